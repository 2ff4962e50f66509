package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pythonGroups is the confluent-kafka client script. It runs with
// /usr/bin/python3, where Debian's python3-confluent-kafka lives: python3
// on PATH may be another interpreter without it.
var pythonGroups = filepath.Join("..", "interop", "python", "groups.py")

const systemPython = "/usr/bin/python3"

// needConfluentKafka skips the test when the python client is missing.
func needConfluentKafka(t testing.TB) {
	t.Helper()
	if err := exec.Command(systemPython, "-c", "import confluent_kafka").Run(); err != nil {
		missingTool(t, "%s cannot import confluent_kafka (tests/install-deps.sh installs python3-confluent-kafka): %v", systemPython, err)
	}
}

// pyEvent is one line printed by groups.py.
type pyEvent struct {
	Type       string           `json:"type"`
	Partitions []int32          `json:"partitions"`
	Offsets    map[string]int64 `json:"offsets"`
	Count      int              `json:"count"`
	Error      string           `json:"error"`
	groupRecord
}

// pythonConsume runs `groups.py consume` to completion and returns the
// records it read and the offsets it committed (nil when it read nothing).
func pythonConsume(t testing.TB, ctx context.Context, addr, topic, group string, minCount int) ([]groupRecord, map[int32]int64) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 75*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, systemPython, pythonGroups, "consume", addr, topic, group, fmt.Sprint(minCount))
	var recs []groupRecord
	var committed map[int32]int64
	done := false
	for _, line := range runLines(t, cmd) {
		var ev pyEvent
		decodeLine(t, line, &ev)
		switch ev.Type {
		case "record":
			recs = append(recs, ev.groupRecord)
		case "committed":
			committed = map[int32]int64{}
			for p, o := range ev.Offsets {
				var part int32
				fmt.Sscan(p, &part)
				committed[part] = o
			}
		case "done":
			done = true
			if ev.Count != len(recs) {
				t.Fatalf("groups.py counted %d records, printed %d", ev.Count, len(recs))
			}
		case "error":
			t.Fatalf("groups.py: %s", ev.Error)
		}
	}
	if !done {
		t.Fatal("groups.py consume ended without its done line")
	}
	return recs, committed
}

// TestGroupConfluentKafka: a librdkafka consumer (confluent-kafka for
// python) in a group reads every record of a 3-partition topic, commits
// synchronously and closes; started again it resumes right after the
// committed offsets, and a third run with nothing new reads nothing.
func TestGroupConfluentKafka(t *testing.T) {
	needConfluentKafka(t)
	forEachBackend(t, func(t *testing.T, newSilt func(testing.TB, ...string) *silt) {
		s := newSilt(t).Start()
		ctx := testContext(t, 150*time.Second)
		const topic, group = "group-python", "group-python"
		createTopic(t, ctx, s.Kafka(), topic, 3)
		acks := produceKeyed(t, ctx, s.Kafka(), topic, "python round 1", 40, 8)

		recs, committed := pythonConsume(t, ctx, s.Kafka(), topic, group, len(acks))
		checkExactly(t, "confluent-kafka first run", acks, recs)
		ends := endOffsets(t, ctx, s.Kafka(), topic)
		if !sameOffsets(committed, ends) {
			t.Fatalf("commit() returned offsets %v, want the end offsets %v", committed, ends)
		}
		if c := committedOffsets(t, ctx, s.Kafka(), group, topic); !sameOffsets(c, ends) {
			t.Fatalf("committed offsets seen by OffsetFetch %v, want %v", c, ends)
		}

		more := produceKeyed(t, ctx, s.Kafka(), topic, "python round 2", 20, 8)
		recs, _ = pythonConsume(t, ctx, s.Kafka(), topic, group, len(more))
		checkExactly(t, "confluent-kafka run after the commit", more, recs)

		if recs, _ = pythonConsume(t, ctx, s.Kafka(), topic, group, 0); len(recs) != 0 {
			t.Fatalf("a run with nothing new read %d records, first %+v", len(recs), recs[0])
		}
		if c, ends := committedOffsets(t, ctx, s.Kafka(), group, topic), endOffsets(t, ctx, s.Kafka(), topic); !sameOffsets(c, ends) {
			t.Fatalf("committed offsets %v at the end, want the end offsets %v", c, ends)
		}
	})
}

// pyProc is a long-running groups.py (static mode) whose output lines the
// test reads as they come and whose stdin tells it to stop.
type pyProc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string   // stdout lines; closed at EOF
	done   chan struct{} // closed once the process was waited for
	stderr bytes.Buffer  // written by exec until done, read after

	events []pyEvent // every event read so far (test goroutine only)
}

func startPyStatic(t testing.TB, ctx context.Context, addr, topic, group, instance string) *pyProc {
	t.Helper()
	p := &pyProc{t: t, name: instance, lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, systemPython, pythonGroups, "static", addr, topic, group, instance)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start groups.py static %s: %v", instance, err)
	}
	// The reader goroutine belongs to this process: it ends at stdout's
	// EOF, i.e. when the process exits (or is killed at cleanup).
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		io.Copy(io.Discard, stdout)
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		for range p.lines {
		}
		<-p.done
		if t.Failed() && p.stderr.Len() > 0 {
			t.Logf("groups.py static %s stderr:\n%s", instance, p.stderr.String())
		}
	})
	return p
}

// waitEvent reads events until ok holds for one, and returns it.
func (p *pyProc) waitEvent(ctx context.Context, what string, ok func(pyEvent) bool) pyEvent {
	p.t.Helper()
	for {
		if ev := p.next(ctx, what); ok(ev) {
			return ev
		}
	}
}

// next reads the next event.
func (p *pyProc) next(ctx context.Context, what string) pyEvent {
	p.t.Helper()
	select {
	case line, open := <-p.lines:
		return p.decode(line, open, what)
	case <-ctx.Done():
		p.t.Fatalf("%s: no %s: %v", p.name, what, ctx.Err())
		return pyEvent{}
	}
}

// nextOfTwo reads the next event of whichever of p and q prints first.
func nextOfTwo(ctx context.Context, p, q *pyProc, what string) (*pyProc, pyEvent) {
	p.t.Helper()
	select {
	case line, open := <-p.lines:
		return p, p.decode(line, open, what)
	case line, open := <-q.lines:
		return q, q.decode(line, open, what)
	case <-ctx.Done():
		p.t.Fatalf("%s and %s: no %s: %v", p.name, q.name, what, ctx.Err())
		return nil, pyEvent{}
	}
}

// decode records one line read from p.lines (open false: at EOF).
func (p *pyProc) decode(line string, open bool, what string) pyEvent {
	p.t.Helper()
	if !open {
		<-p.done
		p.t.Fatalf("%s exited while waiting for %s; stderr:\n%s", p.name, what, p.stderr.String())
	}
	var ev pyEvent
	decodeLine(p.t, line, &ev)
	p.events = append(p.events, ev)
	if ev.Type == "error" {
		p.t.Fatalf("%s: %s", p.name, ev.Error)
	}
	return ev
}

// sync returns once every event the process printed before now is in
// p.events.
func (p *pyProc) sync(ctx context.Context) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, "ping\n"); err != nil {
		p.t.Fatalf("%s: ping: %v", p.name, err)
	}
	p.waitEvent(ctx, "pong", func(ev pyEvent) bool { return ev.Type == "pong" })
}

// stop asks the process to close its consumer and waits for it to exit.
func (p *pyProc) stop(ctx context.Context) {
	p.t.Helper()
	io.WriteString(p.stdin, "stop\n")
	p.stdin.Close()
	p.waitEvent(ctx, "done line", func(ev pyEvent) bool { return ev.Type == "done" })
	for range p.lines {
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.t.Fatalf("%s did not exit: %v", p.name, ctx.Err())
	}
	if ps := p.cmd.ProcessState; ps == nil || !ps.Success() {
		p.t.Fatalf("%s exit: %v; stderr:\n%s", p.name, p.cmd.ProcessState, p.stderr.String())
	}
}

// assignments counts the "assigned" and "revoked" events read so far,
// up to the "closing" event (closing the consumer revokes its partitions).
func (p *pyProc) assignments() (assigned, revoked int) {
	for _, ev := range p.events {
		switch ev.Type {
		case "closing":
			return assigned, revoked
		case "assigned":
			assigned++
		case "revoked":
			revoked++
		}
	}
	return assigned, revoked
}

// partitionSet renders partitions as a comparable string.
func partitionSet(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return "[" + strings.Join(s, ",") + "]"
}
