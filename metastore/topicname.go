package metastore

import (
	"fmt"

	"github.com/google/uuid"
)

// maxTopicNameLen is Kafka's limit (Topic.MAX_NAME_LENGTH): a topic name
// becomes a directory name on a Kafka broker, so it is bounded there, and
// clients validate against the same bound.
const maxTopicNameLen = 249

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
