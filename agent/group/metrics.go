package group

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siltdata/silt/metastore"
)

// metrics are the coordinator's Prometheus metrics. Group names appear only
// in silt_group_lag, whose series exist only for groups loaded here.
type metrics struct {
	rebalances prometheus.Counter
	commits    prometheus.Counter
}

func newMetrics(c *Coordinator, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_group_rebalances_total",
			Help: "Rebalances started (groups entering PreparingRebalance).",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "silt_offset_commits_total",
			Help: "Committed partition offsets.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.rebalances, m.commits, &collector{c: c}} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// collector computes silt_groups and silt_group_lag on scrape.
type collector struct{ c *Coordinator }

var (
	groupsDesc = prometheus.NewDesc("silt_groups", "Groups loaded on this coordinator, by state.", []string{"state"}, nil)
	lagDesc    = prometheus.NewDesc("silt_group_lag",
		"Records between a group's committed offset and the partition's high watermark, for groups loaded on this coordinator.",
		[]string{"group", "topic", "partition"}, nil)
)

func (col *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- groupsDesc
	ch <- lagDesc
}

// lagScrapeTimeout bounds the metastore reads one scrape makes.
const lagScrapeTimeout = 5 * time.Second

func (col *collector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	var names []string
	for _, g := range col.c.running() {
		v := g.view.Load()
		if v == nil {
			continue
		}
		counts[v.state]++
		names = append(names, g.name)
	}
	// The classic and consumer state machines share Empty, Stable and
	// Dead; each name is one series.
	for _, s := range []string{"Empty", "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling", "Stable", "Dead"} {
		ch <- prometheus.MustNewConstMetric(groupsDesc, prometheus.GaugeValue, float64(counts[s]), s)
	}

	ctx, cancel := context.WithTimeout(col.c.ctx, lagScrapeTimeout)
	defer cancel()
	store := col.c.store
	topics := map[metastore.TopicID]string{}
	// Every group's committed offsets first, then every partition's high
	// watermark in one round trip (a group may consume thousands).
	type committed struct {
		group string
		offs  []metastore.CommittedOffset
	}
	var all []committed
	seen := map[metastore.TopicPartition]bool{}
	var tps []metastore.TopicPartition
	for _, name := range names {
		offs, err := store.FetchOffsets(ctx, name, nil)
		if err != nil {
			col.c.logger.Debug("lag scrape failed", "group", name, "err", err)
			continue
		}
		all = append(all, committed{name, offs})
		for _, o := range offs {
			if !seen[o.TopicPartition] {
				seen[o.TopicPartition] = true
				tps = append(tps, o.TopicPartition)
			}
		}
	}
	hw := make(map[metastore.TopicPartition]int64, len(tps))
	if len(tps) > 0 {
		res, err := store.OffsetsMany(ctx, tps)
		if err != nil {
			col.c.logger.Debug("lag scrape failed", "err", err)
			return
		}
		for i, r := range res {
			if r.Err == nil {
				hw[tps[i]] = r.Offsets.HighWatermark
			}
		}
	}
	for _, g := range all {
		for _, o := range g.offs {
			tn, ok := topics[o.Topic]
			if !ok {
				if t, err := store.TopicByID(ctx, o.Topic); err == nil {
					tn = t.Name
				}
				topics[o.Topic] = tn
			}
			h, ok := hw[o.TopicPartition]
			if tn == "" || !ok {
				continue
			}
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(max(h-o.Offset, 0)),
				g.group, tn, strconv.Itoa(int(o.Partition)))
		}
	}
}
