package metastore

import (
	"fmt"

	"github.com/google/uuid"
)

// maxTopicNameLen is Kafka's limit (Topic.MAX_NAME_LENGTH): a topic name
// becomes a directory name on a Kafka broker, so it is bounded there, and
// clients validate against the same bound.
const maxTopicNameLen = 249

// ConsumerOffsetsTopic is the topic where Kafka keeps committed offsets
// and group metadata. silt keeps them in the metastore; the topic exists
// (empty) because clients and tools expect to see it.
const ConsumerOffsetsTopic = "__consumer_offsets"

// IsInternalTopic reports whether Kafka treats a topic as internal, which
// it decides by name (Topic.isInternal): Metadata flags these, clients
// skip them when subscribing by regular expression, and plain clients may
// not produce to them.
func IsInternalTopic(name string) bool {
	switch name {
	case ConsumerOffsetsTopic, "__transaction_state", "__share_group_state":
		return true
	}
	return false
}

// ValidateTopicName applies Apache Kafka's topic name rules: 1 to 249
// characters of [a-zA-Z0-9._-], and not "." or "..". The error wraps
// ErrInvalidTopic.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("%w: name is %d characters, the limit is %d", ErrInvalidTopic, len(name), maxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q contains a character other than ASCII alphanumerics, '.', '_' and '-'", ErrInvalidTopic, name)
		}
	}
	return nil
}

// NewTopicID returns a random (version 4) UUID, as Kafka gives topics.
func NewTopicID() TopicID {
	return TopicID(uuid.New())
}

// String formats the id as a UUID.
func (id TopicID) String() string { return uuid.UUID(id).String() }

// IsZero reports whether id is the zero (invalid) id.
func (id TopicID) IsZero() bool { return id == TopicID{} }
