package postgres

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
	return s.watchChannel(ctx, commitChannel, func() { fn(nil) }, func(n *pgconn.Notification) {
		if _, own := s.own.Load(n.PID); !own {
			fn(parseCommitPayload(n.Payload))
		}
	})
}

// watchChannel LISTENs on channel until ctx ends, reconnecting with
// backoff: listening is called each time the LISTEN is in place (changes
// may have been missed before), notify for each notification.
func (s *Store) watchChannel(ctx context.Context, channel string, listening func(), notify func(*pgconn.Notification)) error {
	const maxPause = 5 * time.Second
	pause := 100 * time.Millisecond
	for {
		listened, err := s.listen(ctx, channel, listening, notify)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listened {
			pause = 100 * time.Millisecond
		}
		s.logger.Warn("metastore notifications interrupted, reconnecting", "channel", channel, "err", err, "pause", pause)
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

// listen runs one LISTEN session until it fails or ctx ends; listened
// reports whether it got as far as listening.
func (s *Store) listen(ctx context.Context, channel string, listening func(), notify func(*pgconn.Notification)) (listened bool, err error) {
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
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return false, err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		notify(n)
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
