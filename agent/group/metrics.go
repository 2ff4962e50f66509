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
	counts := map[state]int{}
	var names []string
	for _, g := range col.c.running() {
		s := g.stateView.Load()
		if s < 0 {
			continue
		}
		counts[state(s)]++
		names = append(names, g.name)
	}
	for s := stateEmpty; s <= stateDead; s++ {
		ch <- prometheus.MustNewConstMetric(groupsDesc, prometheus.GaugeValue, float64(counts[s]), s.String())
	}

	ctx, cancel := context.WithTimeout(col.c.ctx, lagScrapeTimeout)
	defer cancel()
	store := col.c.store
	topics := map[metastore.TopicID]string{}
	hw := map[metastore.TopicPartition]int64{}
	for _, name := range names {
		offs, err := store.FetchOffsets(ctx, name, nil)
		if err != nil {
			col.c.logger.Debug("lag scrape failed", "group", name, "err", err)
			continue
		}
		for _, o := range offs {
			tn, ok := topics[o.Topic]
			if !ok {
				if t, err := store.TopicByID(ctx, o.Topic); err == nil {
					tn = t.Name
				}
				topics[o.Topic] = tn
			}
			if tn == "" {
				continue
			}
			h, ok := hw[o.TopicPartition]
			if !ok {
				po, err := store.Offsets(ctx, o.TopicPartition)
				if err != nil {
					continue
				}
				h = po.HighWatermark
				hw[o.TopicPartition] = h
			}
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(max(h-o.Offset, 0)),
				name, tn, strconv.Itoa(int(o.Partition)))
		}
	}
}
