package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// Linux has fixed it at 100 on every architecture silt runs on.
const clockTicks = 100

// procStat is what the report reads of /proc/PID/stat.
type procStat struct {
	comm string
	ppid int
	// cpu is utime+stime and children is cutime+cstime (children waited
	// for), in seconds.
	cpu, children float64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are space separated: state is field 3, ppid 4, utime 14,
	// stime 15, cutime 16, cstime 17.
	j := bytes.IndexByte(b, '(')
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || j < 0 || j > i {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no (comm)", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var v [4]uint64
	for k, idx := range []int{11, 12, 13, 14} {
		n, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil || n < 0 {
			return procStat{}, fmt.Errorf("/proc/%d/stat: bad time %q", pid, f[idx])
		}
		v[k] = uint64(n)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: bad ppid %q", pid, f[1])
	}
	return procStat{comm: string(b[j+1 : i]), ppid: ppid,
		cpu: float64(v[0]+v[1]) / clockTicks, children: float64(v[2]+v[3]) / clockTicks}, nil
}

// CPUSeconds returns the user plus system CPU time the process has used,
// from /proc/PID/stat (Linux only).
func CPUSeconds(pid int) (float64, error) {
	s, err := readProcStat(pid)
	return s.cpu, err
}

// CPUWithChildren is CPUSeconds plus the CPU time of the process's
// children that have exited and been waited for (a client program the
// process ran to completion, for example).
func CPUWithChildren(pid int) (float64, error) {
	s, err := readProcStat(pid)
	return s.cpu + s.children, err
}

// DescendantsCPU returns the CPU seconds used so far by every live
// descendant of root (not root itself), including their own waited-for
// children, summed by command name (/proc/PID/comm: "minio", "postgres",
// "silt", ...). The difference of two calls is what a server tree started
// by root used in between (a Postgres backend that exits moves its time
// to the postmaster's children time, so it is still counted).
func DescendantsCPU(root int) (map[string]float64, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	stats := map[int]procStat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readProcStat(pid); err == nil {
			stats[pid] = s
		}
	}
	out := map[string]float64{}
	for _, s := range stats {
		// Walk up to root (or to the top); cycles cannot happen in /proc
		// but a bound costs nothing.
		for p, n := s.ppid, 0; p > 0 && n < 64; n++ {
			if p == root {
				out[s.comm] += s.cpu + s.children
				break
			}
			parent, ok := stats[p]
			if !ok {
				break
			}
			p = parent.ppid
		}
	}
	return out, nil
}

// MachineCPU returns the CPU time (in seconds, summed over CPUs) the
// whole machine spent busy and in total since boot, from /proc/stat's
// first line: busy is everything but idle and iowait.
func MachineCPU() (busy, total float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: first line %q", line)
	}
	var sum, idle uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %q: %w", v, err)
		}
		// guest and guest_nice (fields 9, 10) are already counted in
		// user and nice.
		if i >= 8 {
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return float64(sum-idle) / clockTicks, float64(sum) / clockTicks, nil
}

// MemoryBytes returns a field of /proc/PID/status in bytes: "VmRSS"
// (resident now) or "VmHWM" (peak resident since start).
func MemoryBytes(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// RSSPeak samples a process's VmRSS every interval and keeps the peak:
// VmHWM is the peak since the process started, which cannot tell two
// phases of one process apart.
type RSSPeak struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex // mu guards peak
	peak   int64
}

// WatchRSS starts sampling pid. Stop ends the sampling goroutine.
func WatchRSS(ctx context.Context, pid int, interval time.Duration) *RSSPeak {
	ctx, cancel := context.WithCancel(ctx)
	w := &RSSPeak{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v, err := MemoryBytes(pid, "VmRSS"); err == nil {
				w.mu.Lock()
				w.peak = max(w.peak, v)
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Stop ends sampling and returns the peak RSS seen, in bytes.
func (w *RSSPeak) Stop() int64 {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}
