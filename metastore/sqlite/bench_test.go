package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/siltdata/silt/metastore"
	"github.com/siltdata/silt/metastore/storetest"
)

func BenchmarkCommitSegment(b *testing.B) {
	storetest.BenchCommit(b, openTemp(b))
}

// BenchmarkLookups loads 10k, 1M and 10M batch rows (10M is left out
// with -short: it takes most of a minute to load) into partitions of one
// table with a recursive CTE, then measures lookups at random depths of
// each.
func BenchmarkLookups(b *testing.B) {
	s := openTemp(b)
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
	if _, err := s.w.ExecContext(c, `ANALYZE`); err != nil {
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
	tx, err := s.w.BeginTx(c, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	var pid, seg0 int64
	if err := tx.QueryRowContext(c, `SELECT id FROM partitions WHERE topic_id = ? AND partition = ?`, tp.Topic[:], tp.Partition).Scan(&pid); err != nil {
		b.Fatal(err)
	}
	if err := tx.QueryRowContext(c, `SELECT coalesce(max(id), 0) + 1 FROM segments`).Scan(&seg0); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.ExecContext(c, `WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x < (?2 - 1) / 100)
		INSERT INTO segments (id, key, size, state, created_at) SELECT ?1 + x, 'bulk-' || ?3 || '-' || x, 1048576, 'committed', 0 FROM g`,
		seg0, n, pid); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.ExecContext(c, `WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x < ?3 - 1)
		INSERT INTO batches (partition_id, base_offset, last_offset, max_timestamp, running_max_timestamp,
			segment_id, chunk_offset, chunk_length, pos, len)
		SELECT ?1, x * 10, x * 10 + 9, x * 10 + 9, x * 10 + 9, ?2 + x / 100, (x % 100) * 1000, 1000, 0, 1000 FROM g`,
		pid, seg0, n); err != nil {
		b.Fatal(err)
	}
	if _, err := tx.ExecContext(c, `UPDATE partitions SET high_watermark = ?2 * 10, max_timestamp = ?2 * 10 - 1 WHERE id = ?1`, pid, n); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
