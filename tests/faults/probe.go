package faults

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// probe asks every running agent, several times a second, where it sends
// clients (Metadata's brokers and leaders, FindCoordinator for the
// workload's group), and the metastore which leases have expired, before
// and after each question. An agent whose lease expired before the
// question and had not been renewed when it was answered is dead as far
// as the cluster knows: naming it sends a client to an agent that may be
// gone (DeadNamed).
type probe struct {
	s      *Suite
	pgURL  string
	conn   *pgx.Conn
	topic  string
	agents []*Agent
}

// lease is one agent row of the metastore.
type lease struct {
	expired bool
	expires time.Time
}

func (p *probe) run(ctx context.Context) {
	defer func() {
		if p.conn != nil {
			p.conn.Close(context.Background())
		}
	}()
	for sleepCtx(ctx, 200*time.Millisecond) {
		for _, a := range p.agents {
			if ctx.Err() != nil {
				return
			}
			p.check(ctx, a)
		}
	}
}

// leases reads every agent's lease; nil when the metastore is down.
func (p *probe) leases(ctx context.Context) map[int32]lease {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if p.conn == nil {
		c, err := pgx.Connect(ctx, p.pgURL)
		if err != nil {
			return nil
		}
		p.conn = c
	}
	rows, err := p.conn.Query(ctx, `SELECT node_id, expires_at <= now(), expires_at FROM agents`)
	if err != nil {
		p.conn.Close(context.Background())
		p.conn = nil
		return nil
	}
	out := map[int32]lease{}
	var node int32
	var l lease
	if _, err := pgx.ForEachRow(rows, []any{&node, &l.expired, &l.expires}, func() error { out[node] = l; return nil }); err != nil {
		p.conn.Close(context.Background())
		p.conn = nil
		return nil
	}
	return out
}

// check asks one agent where it sends clients, between two reads of the
// leases.
func (p *probe) check(ctx context.Context, a *Agent) {
	if !a.Running() || a.Paused() {
		return
	}
	before := p.leases(ctx)
	if before == nil {
		return
	}
	asked := time.Now()
	named, err := p.named(ctx, a)
	if err != nil {
		return
	}
	after := p.leases(ctx)
	if after == nil {
		return
	}
	for _, n := range named {
		// Dead throughout: its lease expired before the question and
		// was not renewed by the answer (same expiry, or the row was
		// removed), or it had no lease row at all, before or after.
		b, known := before[n.node]
		l, still := after[n.node]
		dead := !still && (!known || b.expired) || known && b.expired && still && l.expired && l.expires.Equal(b.expires)
		if dead {
			p.s.h.AddDeadNamed(fmt.Sprintf("agent %s named node %d as %s at %s; its lease had expired (%s)", a.ID, n.node, n.as, asked.Format("15:04:05.000"), describeLease(b, known)))
		}
	}
}

func describeLease(l lease, known bool) string {
	if !known {
		return "no lease row"
	}
	return "expired at " + l.expires.Format("15:04:05.000")
}

// naming is one agent named in an answer, and as what.
type naming struct {
	node int32
	as   string
}

// named asks a for Metadata of the workload's topic and the group's
// coordinator, and returns every node it named.
func (p *probe) named(ctx context.Context, a *Agent) ([]naming, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cl := p.s.direct[a]
	br := cl.SeedBrokers()[0]
	md := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(p.topic)
	md.Topics = append(md.Topics, rt)
	resp, err := br.Request(ctx, md)
	if err != nil {
		return nil, err
	}
	var out []naming
	mr := resp.(*kmsg.MetadataResponse)
	for _, b := range mr.Brokers {
		// An agent that can vouch for no lease lists itself alone (an
		// empty broker list helps no client) and names no leader: that
		// sends the client nowhere it is not already.
		if addr := b.Host + ":" + strconv.Itoa(int(b.Port)); addr != a.Kafka {
			out = append(out, naming{b.NodeID, "broker " + addr})
		}
	}
	for _, t := range mr.Topics {
		for _, pt := range t.Partitions {
			if pt.Leader >= 0 && !slices.ContainsFunc(out, func(n naming) bool { return n.node == pt.Leader && n.as == "leader" }) {
				out = append(out, naming{pt.Leader, "leader"})
			}
		}
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = groupName, []string{groupName} // v0-v3, v4+
	fresp, err := br.Request(ctx, fc)
	if err != nil {
		return nil, err
	}
	// v4+ answers in Coordinators (the top-level fields stay zero).
	fr := fresp.(*kmsg.FindCoordinatorResponse)
	for _, c := range fr.Coordinators {
		if c.ErrorCode == 0 {
			out = append(out, naming{c.NodeID, "group coordinator"})
		}
	}
	if len(fr.Coordinators) == 0 && fr.ErrorCode == 0 {
		out = append(out, naming{fr.NodeID, "group coordinator"})
	}
	return out, nil
}
