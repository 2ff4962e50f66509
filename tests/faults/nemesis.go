package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// leaseTTL is the agents' lease (agent.DefaultConfig): faults meant to
// outlast a lease hold longer than this.
const leaseTTL = 9 * time.Second

// Nemesis is one kind of fault. Run applies it, holds it and heals it,
// returning what it hit; it must leave the cluster healed whatever
// happens (the suite also heals everything at the end).
type Nemesis struct {
	Name string
	// Doc says what the fault is, for the report.
	Doc string
	Run func(ctx context.Context, s *Suite) (target, note string, err error)
}

// Nemeses are every fault the suite applies, in report order.
var Nemeses = []Nemesis{
	{"kill-agent", "SIGKILL an agent, hold 3-10 s, start it again (same id and address)", killAgent},
	{"pause-agent", "SIGSTOP an agent that does not coordinate the group for longer than its lease (12-16 s), then SIGCONT: a zombie that wakes believing it still leads partitions", pauseAgent},
	{"coordinator-pause", "SIGSTOP the group's coordinator past its lease until another agent coordinates the group and the group committed past every offset it had (at most 45 s), then SIGCONT", pauseCoordinator},
	{"pause-minio", "SIGSTOP MinIO for 5-12 s, then SIGCONT", pauseMinio},
	{"kill-minio", "SIGKILL MinIO, hold 3-8 s, restart it on its data", killMinio},
	{"restart-postgres", "Postgres immediate stop (SIGQUIT, crash recovery at the next start), hold 3-8 s, start it", restartPostgres},
	{"cut-postgres", "blackhole one agent's link to Postgres for longer than its lease (12-16 s), then heal", cutPostgres},
	{"cut-minio", "blackhole one agent's link to MinIO for 5-12 s, then heal", cutMinio},
	{"slow-postgres", "add 50-250 ms of latency each way to one agent's link to Postgres for 10-20 s", slowPostgres},
	{"slow-minio", "add 100-600 ms of latency each way to one agent's link to MinIO for 10-20 s", slowMinio},
}

// NemesisByName returns the named nemesis.
func NemesisByName(name string) (Nemesis, bool) {
	for _, n := range Nemeses {
		if n.Name == name {
			return n, true
		}
	}
	return Nemesis{}, false
}

// between is a random duration in [lo, hi].
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// hold keeps a fault in place for d (or until ctx ends). Holding a fault
// is the fault, not a synchronization.
func hold(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func killAgent(ctx context.Context, s *Suite) (string, string, error) {
	a := s.randomAgent(nil)
	a.Kill()
	d := between(s.rng, 3*time.Second, 10*time.Second)
	hold(ctx, d)
	return a.ID, fmt.Sprintf("down %v", d.Round(time.Millisecond)), a.Start(context.WithoutCancel(ctx))
}

func pauseAgent(ctx context.Context, s *Suite) (string, string, error) {
	coord, _ := s.Coordinator(ctx)
	a := s.randomAgent(coord)
	if err := a.Pause(); err != nil {
		return a.ID, "", err
	}
	d := between(s.rng, leaseTTL+3*time.Second, leaseTTL+7*time.Second)
	hold(ctx, d)
	return a.ID, fmt.Sprintf("paused %v", d.Round(time.Millisecond)), a.Resume()
}

func pauseCoordinator(ctx context.Context, s *Suite) (string, string, error) {
	coord, err := s.Coordinator(ctx)
	if err != nil {
		return "", "", fmt.Errorf("find the group's coordinator: %w", err)
	}
	before, _ := s.h.LatestSample()
	start := time.Now()
	if err := coord.Pause(); err != nil {
		return coord.ID, "", err
	}
	// Past the lease, until another agent has the group and the group
	// committed past every offset it had when the pause began: from
	// then on, any commit the paused agent still holds in its sockets
	// would move an offset back if it were accepted.
	deadline := start.Add(45 * time.Second)
	took := ""
	moved := false
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if time.Since(start) > leaseTTL+time.Second {
			if c, err := s.CoordinatorVia(ctx, coord); err == nil && c != coord {
				took = c.ID
			}
			moved = took != "" && s.committedPast(start.Add(leaseTTL), before.Offsets)
			if moved {
				break
			}
		}
		hold(ctx, 250*time.Millisecond)
	}
	note := fmt.Sprintf("paused %v", time.Since(start).Round(time.Millisecond))
	if moved {
		note += ", until the group committed past it through " + took
	} else {
		note += ", deadline reached before the group committed past it elsewhere"
	}
	return coord.ID, note, coord.Resume()
}

func pauseMinio(ctx context.Context, s *Suite) (string, string, error) {
	if err := s.c.Minio.Pause(); err != nil {
		return "minio", "", err
	}
	d := between(s.rng, 5*time.Second, 12*time.Second)
	hold(ctx, d)
	return "minio", fmt.Sprintf("paused %v", d.Round(time.Millisecond)), s.c.Minio.Resume()
}

func killMinio(ctx context.Context, s *Suite) (string, string, error) {
	if err := s.c.Minio.Kill(); err != nil {
		return "minio", "", err
	}
	d := between(s.rng, 3*time.Second, 8*time.Second)
	hold(ctx, d)
	return "minio", fmt.Sprintf("down %v", d.Round(time.Millisecond)), s.c.Minio.Start()
}

func restartPostgres(ctx context.Context, s *Suite) (string, string, error) {
	if err := s.c.PG.StopImmediate(); err != nil {
		return "postgres", "", err
	}
	d := between(s.rng, 3*time.Second, 8*time.Second)
	hold(ctx, d)
	return "postgres", fmt.Sprintf("down %v", d.Round(time.Millisecond)), s.c.PG.Start()
}

func cutPostgres(ctx context.Context, s *Suite) (string, string, error) {
	a := s.randomAgent(nil)
	a.PGLink.Cut()
	d := between(s.rng, leaseTTL+3*time.Second, leaseTTL+7*time.Second)
	hold(ctx, d)
	a.PGLink.Heal()
	return a.PGLink.Name(), fmt.Sprintf("cut %v", d.Round(time.Millisecond)), nil
}

func cutMinio(ctx context.Context, s *Suite) (string, string, error) {
	a := s.randomAgent(nil)
	a.S3Link.Cut()
	d := between(s.rng, 5*time.Second, 12*time.Second)
	hold(ctx, d)
	a.S3Link.Heal()
	return a.S3Link.Name(), fmt.Sprintf("cut %v", d.Round(time.Millisecond)), nil
}

func slowPostgres(ctx context.Context, s *Suite) (string, string, error) {
	a := s.randomAgent(nil)
	lat := between(s.rng, 50*time.Millisecond, 250*time.Millisecond).Round(time.Millisecond)
	a.PGLink.SetLatency(lat)
	d := between(s.rng, 10*time.Second, 20*time.Second)
	hold(ctx, d)
	a.PGLink.Heal()
	return a.PGLink.Name(), fmt.Sprintf("+%v each way for %v", lat, d.Round(time.Millisecond)), nil
}

func slowMinio(ctx context.Context, s *Suite) (string, string, error) {
	a := s.randomAgent(nil)
	lat := between(s.rng, 100*time.Millisecond, 600*time.Millisecond).Round(time.Millisecond)
	a.S3Link.SetLatency(lat)
	d := between(s.rng, 10*time.Second, 20*time.Second)
	hold(ctx, d)
	a.S3Link.Heal()
	return a.S3Link.Name(), fmt.Sprintf("+%v each way for %v", lat, d.Round(time.Millisecond)), nil
}
