package postgres

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/siltdata/silt/metastore"
)

// commitChannel is the NOTIFY channel silt_commit_segment signals on.
const commitChannel = "silt_commits"

var _ metastore.CommitWatcher = (*Store)(nil)

// WatchCommits implements metastore.CommitWatcher with LISTEN on a
// connection taken out of the pool for the watch's lifetime. A
// notification sent by one of this store's own connections is its own
// commit and is left out.
func (s *Store) WatchCommits(ctx context.Context, fn func([]metastore.TopicPartition)) error {
	const maxPause = 5 * time.Second
	pause := 100 * time.Millisecond
	for {
		listening, err := s.listen(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listening {
			pause = 100 * time.Millisecond
		}
		s.logger.Warn("metastore commit notifications interrupted, reconnecting", "err", err, "pause", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, maxPause)
	}
}

// listen runs one LISTEN session until it fails or ctx ends; listening
// reports whether it got as far as listening.
func (s *Store) listen(ctx context.Context, fn func([]metastore.TopicPartition)) (listening bool, err error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	// Hijacked: a connection that LISTENs must not go back to the pool
	// (nor reach its BeforeClose).
	conn := pc.Hijack()
	defer func() {
		s.own.Delete(conn.PgConn().PID())
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+commitChannel); err != nil {
		return false, err
	}
	fn(nil)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if _, own := s.own.Load(n.PID); own {
			continue
		}
		fn(parseCommitPayload(n.Payload))
	}
}

// parseCommitPayload decodes "<topic id hex>:<p>,<p>;..." (see
// silt_commit_segment); anything else, including "*", is nil (everything).
func parseCommitPayload(p string) []metastore.TopicPartition {
	if p == "" || p == "*" {
		return nil
	}
	var out []metastore.TopicPartition
	for _, topic := range strings.Split(p, ";") {
		idHex, parts, ok := strings.Cut(topic, ":")
		var id metastore.TopicID
		if !ok || hex.DecodedLen(len(idHex)) != len(id) {
			return nil
		}
		if _, err := hex.Decode(id[:], []byte(idHex)); err != nil {
			return nil
		}
		for _, ps := range strings.Split(parts, ",") {
			n, err := strconv.ParseInt(ps, 10, 32)
			if err != nil {
				return nil
			}
			out = append(out, metastore.TopicPartition{Topic: id, Partition: int32(n)})
		}
	}
	return out
}
