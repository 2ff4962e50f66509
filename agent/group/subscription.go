package group

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/siltdata/silt/metastore"
)

// topicView is the coordinator's cached view of the topics, shared by
// its consumer groups: they match subscriptions (names and regular
// expressions) against it, and name assigned partitions by topic id.
type topicView struct {
	// mu guards snap; it is held while the topic list is read from the
	// store, so that one group reloads it while others wait.
	mu   sync.Mutex
	snap *topicSnapshot
}

// topicSnapshot is the topic list at one moment.
type topicSnapshot struct {
	at     time.Time
	byName map[string]metastore.Topic
	byID   map[metastore.TopicID]metastore.Topic
	names  []string // sorted
}

// topicSnapshot returns the topic list, read again from the store when
// the cached one is older than maxAge.
func (c *Coordinator) topicSnapshot(maxAge time.Duration) (*topicSnapshot, error) {
	c.topics.mu.Lock()
	defer c.topics.mu.Unlock()
	if s := c.topics.snap; s != nil && time.Since(s.at) < maxAge {
		return s, nil
	}
	ctx, cancel := c.storeCtx()
	defer cancel()
	ts, err := c.store.Topics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	s := &topicSnapshot{at: time.Now(), byName: make(map[string]metastore.Topic, len(ts)), byID: make(map[metastore.TopicID]metastore.Topic, len(ts))}
	for _, t := range ts {
		s.byName[t.Name] = t
		s.byID[t.ID] = t
		s.names = append(s.names, t.Name)
	}
	slices.Sort(s.names)
	c.topics.snap = s
	return s, nil
}

// topicMeta is one subscribed topic as a consumer group saw it last: the
// group epoch moves when it changes (partitions added, topic deleted and
// created again).
type topicMeta struct {
	ID         metastore.TopicID `json:"id"`
	Partitions int32             `json:"partitions"`
}

// compileRegex compiles a subscription's regular expression as Kafka
// matches it: against the whole topic name (Kafka uses RE2/J, whose
// syntax Go's regexp shares).
func compileRegex(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// memberTopics is the names of the topics member m subscribes to in snap:
// its topic names and the topics its regular expression matches.
func (m *cmember) memberTopics(snap *topicSnapshot) []string {
	out := slices.Clone(m.topics)
	if m.regex != "" {
		re, err := compileRegex(m.regex)
		if err == nil {
			for _, n := range snap.names {
				if re.MatchString(n) {
					out = append(out, n)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// subscriptions returns the topics the group's members subscribe to that
// exist in snap, by name.
func (cg *consumerGroup) subscriptions(snap *topicSnapshot) map[string]topicMeta {
	out := map[string]topicMeta{}
	for _, m := range cg.members {
		for _, n := range m.memberTopics(snap) {
			if t, ok := snap.byName[n]; ok {
				out[n] = topicMeta{ID: t.ID, Partitions: t.Partitions}
			}
		}
	}
	return out
}

// sameSubscriptions reports whether a and b are equal.
func sameSubscriptions(a, b map[string]topicMeta) bool {
	return maps.Equal(a, b)
}
