package agent

import (
	"encoding/binary"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltdata/silt/metastore"
)

// topicMetrics count each topic's traffic, as Kafka's per-topic
// BytesInPerSec / MessagesInPerSec / BytesOutPerSec: what operators look at
// to find the topic behind a load change. Bytes are record batch bytes as
// on the wire (client compression included).
type topicMetrics struct {
	bytesIn    *prometheus.CounterVec
	recordsIn  *prometheus.CounterVec
	bytesOut   *prometheus.CounterVec
	recordsOut *prometheus.CounterVec
}

func newTopicMetrics(reg prometheus.Registerer) (*topicMetrics, error) {
	m := &topicMetrics{
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_topic_bytes_in_total",
			Help: "Record batch bytes written, by topic (counted once committed; acks=0 once buffered).",
		}, []string{"topic"}),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_topic_records_in_total",
			Help: "Records written, by topic (counted once committed; acks=0 once buffered).",
		}, []string{"topic"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_topic_bytes_out_total",
			Help: "Record batch bytes returned by Fetch, by topic.",
		}, []string{"topic"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "silt_topic_records_out_total",
			Help: "Records in the batches returned by Fetch, by topic (whole batches: records before the fetch offset included).",
		}, []string{"topic"}),
	}
	for _, c := range []prometheus.Collector{m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register topic metrics: %w", err)
		}
	}
	return m, nil
}

// produced counts batches of topic written.
func (m *topicMetrics) produced(topic string, bytes int, records int64) {
	if bytes == 0 {
		return
	}
	m.bytesIn.WithLabelValues(topic).Add(float64(bytes))
	m.recordsIn.WithLabelValues(topic).Add(float64(records))
}

// fetched counts the record batches of a Fetch response. topics are the
// request's resolved topics, by index (v13+ responses carry only ids).
func (m *topicMetrics) fetched(topics []metastore.Topic, resp *kmsg.FetchResponse) {
	for i := range resp.Topics {
		if i >= len(topics) || topics[i].Name == "" {
			continue
		}
		var bytes, records int64
		for _, p := range resp.Topics[i].Partitions {
			bytes += int64(len(p.RecordBatches))
			records += batchRecords(p.RecordBatches)
		}
		if bytes > 0 {
			m.bytesOut.WithLabelValues(topics[i].Name).Add(float64(bytes))
			m.recordsOut.WithLabelValues(topics[i].Name).Add(float64(records))
		}
	}
}

// batchRecords sums the record counts of the whole magic-2 batches in recs.
func batchRecords(recs []byte) int64 {
	// v2 batch header: base offset 8, length 4, leader epoch 4, magic 1,
	// crc 4, attributes 2, last offset delta 4, timestamps 16, producer id
	// 8, epoch 2, base sequence 4, then the record count at byte 57.
	const countAt = 57
	var n int64
	for len(recs) >= countAt+4 {
		size := int64(int32(binary.BigEndian.Uint32(recs[8:]))) + 12
		if size < countAt+4 || size > int64(len(recs)) {
			break
		}
		n += int64(int32(binary.BigEndian.Uint32(recs[countAt:])))
		recs = recs[size:]
	}
	return n
}
