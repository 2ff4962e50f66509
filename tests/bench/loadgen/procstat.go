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

// CPUSeconds returns the user plus system CPU time the process has used,
// from /proc/PID/stat (Linux only).
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are space separated: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
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
