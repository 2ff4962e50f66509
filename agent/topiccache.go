package agent

import (
	"context"
	"sync"
	"time"

	"github.com/siltdata/silt/metastore"
)

// topicCacheTTL bounds how long another agent's topic changes (delete,
// new partitions, configs) stay invisible here. This agent's own changes
// invalidate the cache at once.
const topicCacheTTL = 2 * time.Second

// topicCache caches topics by name and id for the produce and fetch hot
// paths, which look a topic up on every request. Unknown topics are not
// cached, so a topic created elsewhere is seen at once.
type topicCache struct {
	store metastore.Store
	ttl   time.Duration
	now   func() time.Time

	// mu guards byName and byID.
	mu     sync.Mutex
	byName map[string]cachedTopic
	byID   map[metastore.TopicID]cachedTopic
}

type cachedTopic struct {
	t       metastore.Topic
	expires time.Time
}

func newTopicCache(store metastore.Store, ttl time.Duration) *topicCache {
	return &topicCache{
		store:  store,
		ttl:    ttl,
		now:    time.Now,
		byName: make(map[string]cachedTopic),
		byID:   make(map[metastore.TopicID]cachedTopic),
	}
}

func (c *topicCache) get(ctx context.Context, name string, id metastore.TopicID, byName bool) (metastore.Topic, error) {
	return c.lookup(ctx, name, id, byName, false)
}

// lookup is get; fresh skips the cached entry (and refreshes it).
func (c *topicCache) lookup(ctx context.Context, name string, id metastore.TopicID, byName, fresh bool) (metastore.Topic, error) {
	now := c.now()
	if fresh {
		now = now.Add(c.ttl + time.Hour)
	}
	c.mu.Lock()
	var (
		e  cachedTopic
		ok bool
	)
	if byName {
		e, ok = c.byName[name]
	} else {
		e, ok = c.byID[id]
	}
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.t, nil
	}
	var (
		t   metastore.Topic
		err error
	)
	if byName {
		t, err = c.store.Topic(ctx, name)
	} else {
		t, err = c.store.TopicByID(ctx, id)
	}
	if err != nil {
		return metastore.Topic{}, err // the store's errors name the topic
	}
	c.put(t)
	return t, nil
}

func (c *topicCache) put(t metastore.Topic) {
	e := cachedTopic{t: t, expires: c.now().Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byName[t.Name]; ok && old.t.ID != t.ID {
		delete(c.byID, old.t.ID) // the name was deleted and created again
	}
	c.byName[t.Name] = e
	c.byID[t.ID] = e
}

// invalidate drops a topic by name (and its id).
func (c *topicCache) invalidate(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byName[name]; ok {
		delete(c.byID, e.t.ID)
		delete(c.byName, name)
	}
}

// topicByName returns a topic, from a cache at most topicCacheTTL old.
// Errors wrap metastore.ErrUnknownTopic. The Configs map is shared: treat
// it as read-only.
func (a *Agent) topicByName(ctx context.Context, name string) (metastore.Topic, error) {
	return a.topics.get(ctx, name, metastore.TopicID{}, true)
}

// freshTopicByName is topicByName read from the store, not the cache:
// for Metadata, whose answer a client keeps for minutes
// (metadata.max.age.ms), so a partition another agent just added must be
// in it. The cache is refreshed on the way.
func (a *Agent) freshTopicByName(ctx context.Context, name string) (metastore.Topic, error) {
	return a.topics.lookup(ctx, name, metastore.TopicID{}, true, true)
}

// freshTopicByID is freshTopicByName by topic id.
func (a *Agent) freshTopicByID(ctx context.Context, id metastore.TopicID) (metastore.Topic, error) {
	return a.topics.lookup(ctx, "", id, false, true)
}

// topicByID is topicByName by topic id.
func (a *Agent) topicByID(ctx context.Context, id metastore.TopicID) (metastore.Topic, error) {
	return a.topics.get(ctx, "", id, false)
}
