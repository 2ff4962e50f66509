// Package objstore is silt's view of object storage: a flat namespace of
// immutable objects that are written whole, read by byte range, listed by
// prefix and deleted. Backends: a local directory (for `silt dev` and tests)
// and S3-compatible storage (production). Metrics and fault injection are
// decorators around the Bucket interface.
package objstore

import (
	"context"
	"errors"
	"time"
)

// Bucket is the object store as silt uses it. Objects are never overwritten
// in normal operation (every segment gets a unique key), so the interface has
// no conditional writes.
//
// Every implementation must pass the acceptance suite in objstoretest.
type Bucket interface {
	// Put stores body under key, replacing any object already there. When
	// Put returns nil the object is durable and visible to GetRange and List.
	Put(ctx context.Context, key string, body []byte) error

	// GetRange returns length bytes of the object starting at offset. A
	// length of -1 reads to the end of the object. A range that runs past
	// the end of the object returns the bytes that exist (like an HTTP
	// range GET); an offset at or past the end returns ErrRangeNotSatisfiable
	// unless the object is empty and offset is 0. A missing object returns
	// an error for which IsNotFound is true.
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)

	// Delete removes key. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error

	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. If fn returns an error, List stops and returns it.
	List(ctx context.Context, prefix string, fn func(Attrs) error) error

	// IsNotFound reports whether err means the object does not exist.
	IsNotFound(err error) bool

	// Close releases the bucket's resources.
	Close() error
}

// Attrs describes one listed object.
type Attrs struct {
	Key          string
	Size         int64
	LastModified time.Time
}

var (
	// ErrNotFound is returned (wrapped) by backends for a missing object.
	// Callers use Bucket.IsNotFound rather than errors.Is, so a backend may
	// classify its own error types too.
	ErrNotFound = errors.New("object not found")

	// ErrRangeNotSatisfiable is returned by GetRange for an offset past
	// the end of the object.
	ErrRangeNotSatisfiable = errors.New("range not satisfiable")

	// ErrInvalidKey is returned for a key a backend cannot store: empty,
	// absolute, or with "..", "." or empty path elements.
	ErrInvalidKey = errors.New("invalid object key")

	// ErrInvalidRange is returned by GetRange for a negative offset or a
	// length below -1: a caller's bug, unlike ErrRangeNotSatisfiable.
	ErrInvalidRange = errors.New("invalid range")

	// ErrInvalidURL is returned by Open for a bucket URL it cannot use.
	ErrInvalidURL = errors.New("invalid bucket URL")
)
