package share

import (
	"sync"

	"github.com/siltdata/silt/metastore"
)

// Sessions are the share sessions of one agent (KIP-932's share fetch
// sessions, like fetch sessions): per (group, member), the partitions the
// member fetches from this agent and the epoch its next request must
// carry. A session lives as long as the connection that opened it, or
// until the member closes it (epoch -1); either way the records the member
// holds in the session's partitions are released. Sessions are not
// persisted: an agent that died answers SHARE_SESSION_NOT_FOUND, and the
// client opens a new one (the records it held are released when their
// locks expire, or acknowledged through its next session).
type Sessions struct {
	// mu guards byKey.
	mu    sync.Mutex
	byKey map[SessionKey]*Session
}

// SessionKey identifies a share session on one agent.
type SessionKey struct {
	Group, Member string
}

// Session is one share session.
type Session struct {
	// Epoch is the epoch the next request must carry.
	Epoch int32
	// Parts are the session's partitions; the value is true while the
	// partition must appear in the next answer even without records (it
	// was just added, or its last answer was an error).
	Parts map[metastore.TopicPartition]bool
	// Conn is the connection that opened it.
	Conn any
}

// NewSessions returns an empty session table.
func NewSessions() *Sessions { return &Sessions{byKey: map[SessionKey]*Session{}} }

// Open starts a session at epoch 0's request (replacing one of the same
// key), with parts, and returns it with Epoch 1 (what the next request
// carries). The replaced session's partitions are returned so the caller
// can release what the member held there.
func (s *Sessions) Open(k SessionKey, conn any, parts []metastore.TopicPartition) (sess *Session, replaced []metastore.TopicPartition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.byKey[k]; old != nil {
		for tp := range old.Parts {
			replaced = append(replaced, tp)
		}
	}
	sess = &Session{Epoch: 1, Parts: make(map[metastore.TopicPartition]bool, len(parts)), Conn: conn}
	for _, tp := range parts {
		sess.Parts[tp] = true
	}
	s.byKey[k] = sess
	return sess, replaced
}

// Errors of Use: the session does not exist, or the epoch is not the one
// it expects.
type SessionError int8

const (
	SessionOK SessionError = iota
	SessionNotFound
	SessionBadEpoch
)

// Use checks an incremental request (epoch > 0) against its session,
// adds and forgets partitions, and moves the epoch on. It returns a
// snapshot of the session's partitions (and which must be answered).
func (s *Sessions) Use(k SessionKey, epoch int32, add, forget []metastore.TopicPartition) (map[metastore.TopicPartition]bool, SessionError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.byKey[k]
	switch {
	case sess == nil:
		return nil, SessionNotFound
	case epoch != sess.Epoch:
		return nil, SessionBadEpoch
	}
	for _, tp := range add {
		if _, ok := sess.Parts[tp]; !ok {
			sess.Parts[tp] = true
		}
	}
	for _, tp := range forget {
		delete(sess.Parts, tp)
	}
	sess.Epoch = nextEpoch(sess.Epoch)
	out := make(map[metastore.TopicPartition]bool, len(sess.Parts))
	for tp, v := range sess.Parts {
		out[tp] = v
	}
	return out, SessionOK
}

// Answered records that a partition appeared in an answer (ok: without
// an error), so it need not appear again until it has records.
func (s *Sessions) Answered(k SessionKey, tp metastore.TopicPartition, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.byKey[k]; sess != nil {
		if _, in := sess.Parts[tp]; in {
			sess.Parts[tp] = !ok
		}
	}
}

// Close ends a session (epoch -1) and returns its partitions.
func (s *Sessions) Close(k SessionKey) ([]metastore.TopicPartition, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.byKey[k]
	if sess == nil {
		return nil, false
	}
	delete(s.byKey, k)
	out := make([]metastore.TopicPartition, 0, len(sess.Parts))
	for tp := range sess.Parts {
		out = append(out, tp)
	}
	return out, true
}

// ClosedConn ends every session opened on conn and returns them with
// their partitions.
func (s *Sessions) ClosedConn(conn any) map[SessionKey][]metastore.TopicPartition {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[SessionKey][]metastore.TopicPartition
	for k, sess := range s.byKey {
		if sess.Conn != conn {
			continue
		}
		if out == nil {
			out = map[SessionKey][]metastore.TopicPartition{}
		}
		for tp := range sess.Parts {
			out[k] = append(out[k], tp)
		}
		delete(s.byKey, k)
	}
	return out
}

// Len is the number of open sessions.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

// nextEpoch is the epoch after e: it wraps to 1, never 0 or negative
// (those open and close sessions).
func nextEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}
