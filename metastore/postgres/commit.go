package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/siltdata/silt/metastore"
)

// AddPendingSegment implements metastore.Store. A key already recorded
// (pending or committed) is left as it is.
func (s *Store) AddPendingSegment(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO segments (key, state) VALUES ($1, 'pending') ON CONFLICT (key) DO NOTHING`, key)
	if err != nil {
		return fmt.Errorf("add pending segment %s: %w", key, err)
	}
	return nil
}

// Result codes of silt_commit_segment.
var commitCodes = [...]error{
	0: nil,
	1: metastore.ErrDuplicateSequence,
	2: metastore.ErrOutOfOrderSequence,
	3: metastore.ErrInvalidProducerEpoch,
	4: metastore.ErrUnknownTopicOrPartition,
	5: metastore.ErrInvalidTxnState,
	6: metastore.ErrPartitionNotInTxn,
	7: metastore.ErrInvalidProducerIDMapping,
}

// CommitSegment implements metastore.Store with one call of
// silt_commit_segment (see the package comment for why a function).
func (s *Store) CommitSegment(ctx context.Context, seg metastore.Segment) ([]metastore.BatchResult, error) {
	n := len(seg.Batches)
	var (
		topics   = make([]pgtype.UUID, n)
		parts    = make([]int32, n)
		records  = make([]int32, n)
		maxTS    = make([]int64, n)
		pids     = make([]int64, n)
		epochs   = make([]int16, n)
		seqs     = make([]int32, n)
		chunkOff = make([]int64, n)
		chunkLen = make([]int64, n)
		pos      = make([]int32, n)
		lens     = make([]int32, n)
		txn      = make([]bool, n)
	)
	for i, b := range seg.Batches {
		topics[i] = uuidOf(b.Topic)
		parts[i], records[i], maxTS[i] = b.Partition, b.Records, b.MaxTimestamp
		pids[i], epochs[i], seqs[i] = b.ProducerID, b.ProducerEpoch, b.BaseSequence
		chunkOff[i], chunkLen[i], pos[i], lens[i] = b.ChunkOffset, b.ChunkLength, b.Pos, b.Len
		txn[i] = b.Transactional
	}
	results := make([]metastore.BatchResult, 0, n)
	err := retry(ctx, func() error {
		results = results[:0]
		rows, err := s.pool.Query(ctx, `SELECT out_base_offset, out_log_start_offset, out_code
			FROM silt_commit_segment($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			seg.Key, seg.Size, topics, parts, records, maxTS, pids, epochs, seqs, chunkOff, chunkLen, pos, lens, txn)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r    metastore.BatchResult
				code int32
			)
			if err := rows.Scan(&r.BaseOffset, &r.LogStartOffset, &code); err != nil {
				return err
			}
			if code < 0 || int(code) >= len(commitCodes) {
				return fmt.Errorf("unknown result code %d", code)
			}
			r.Err = commitCodes[code]
			results = append(results, r)
		}
		return rows.Err()
	})
	if err != nil {
		switch pgCode(err) {
		case errSegmentCommittedCode:
			err = metastore.ErrSegmentCommitted
		case errSegmentGoneCode:
			err = metastore.ErrSegmentGone
		}
		return nil, fmt.Errorf("commit segment %s: %w", seg.Key, err)
	}
	if len(results) != n {
		return nil, fmt.Errorf("commit segment %s: %d results for %d batches", seg.Key, len(results), n)
	}
	return results, nil
}
