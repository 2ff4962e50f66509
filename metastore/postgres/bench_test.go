package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/storetest"
)

func BenchmarkCommitSegment(b *testing.B) {
	storetest.BenchCommit(b, openFresh(b))
}

// BenchmarkLookups loads 10k, 1M and 10M batch rows into three partitions
// of one table with generate_series (10M is left out with -short: it takes
// about a minute to load), then measures lookups at random depths of each.
func BenchmarkLookups(b *testing.B) {
	s := openFresh(b)
	c := b.Context()
	sizes := []int64{10_000, 1_000_000, 10_000_000}
	if testing.Short() {
		sizes = sizes[:2]
	}
	top, err := s.CreateTopic(c, metastore.TopicSpec{Name: "bench-lookups", Partitions: int32(len(sizes))})
	if err != nil {
		b.Fatal(err)
	}
	for i, n := range sizes {
		tp := metastore.TopicPartition{Topic: top.ID, Partition: int32(i)}
		start := time.Now()
		bulkLoad(b, s, tp, n)
		b.Logf("loaded %d batch rows in %v", n, time.Since(start).Round(time.Millisecond))
	}
	if _, err := s.pool.Exec(c, `VACUUM ANALYZE batches`); err != nil {
		b.Fatal(err)
	}
	for i, n := range sizes {
		tp := metastore.TopicPartition{Topic: top.ID, Partition: int32(i)}
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { storetest.BenchLookups(b, s, tp, n, 1000) })
	}
}

// bulkLoad gives tp n batches of 10 records (timestamps = last offsets),
// 100 batches per segment, as storetest.BenchLookups expects.
func bulkLoad(b *testing.B, s *Store, tp metastore.TopicPartition, n int64) {
	c := b.Context()
	tx, err := s.pool.Begin(c)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback(c)
	var pid, seg0 int64
	if err := tx.QueryRow(c, `SELECT id FROM partitions WHERE topic_id = $1 AND partition = $2`, uuidOf(tp.Topic), tp.Partition).Scan(&pid); err != nil {
		b.Fatal(err)
	}
	if err := tx.QueryRow(c, `WITH ins AS (INSERT INTO segments (key, size, state)
		SELECT 'bulk-' || $1::bigint || '-' || g, 1 << 20, 'committed' FROM generate_series(0, ($2::bigint - 1) / 100) g
		RETURNING id) SELECT min(id) FROM ins`, pid, n).Scan(&seg0); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.Exec(c, `INSERT INTO batches (partition_id, base_offset, last_offset, max_timestamp,
			running_max_timestamp, segment_id, chunk_offset, chunk_length, pos, len)
		SELECT $1, g * 10, g * 10 + 9, g * 10 + 9, g * 10 + 9, $2 + g / 100, (g % 100) * 1000, 1000, 0, 1000
		FROM generate_series(0::bigint, $3::bigint - 1) g`, pid, seg0, n); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.Exec(c, `UPDATE partitions SET high_watermark = $2 * 10, max_timestamp = $2 * 10 - 1 WHERE id = $1`, pid, n); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(c); err != nil {
		b.Fatal(err)
	}
}
