package objstore_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/segment/objstore/objstoretest"
	"github.com/siltdata/silt/tests/harness"
)

func newMinioBucket(t *testing.T, prefix string) *objstore.S3 {
	t.Helper()
	cfg := harness.S3(t)
	b, err := objstore.NewS3(t.Context(), objstore.S3Config{
		Bucket:         cfg.Bucket,
		Prefix:         prefix,
		Endpoint:       cfg.Endpoint,
		Region:         cfg.Region,
		AccessKey:      cfg.AccessKey,
		SecretKey:      cfg.SecretKey,
		RequestTimeout: 10 * time.Second,
		MaxAttempts:    2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAcceptanceS3(t *testing.T) {
	t.Run("s3-minio", func(t *testing.T) {
		objstoretest.AcceptanceTest(t, func(t *testing.T) objstore.Bucket { return newMinioBucket(t, "") })
	})
	t.Run("s3-minio-prefix", func(t *testing.T) {
		objstoretest.AcceptanceTest(t, func(t *testing.T) objstore.Bucket { return newMinioBucket(t, "cluster-1") })
	})
}

// TestS3PrefixIsolation checks two prefixes in one bucket do not see each
// other's objects and that the prefix is really in the stored key.
func TestS3PrefixIsolation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := harness.S3(t)
	open := func(prefix string) objstore.Bucket {
		q := url.Values{"endpoint": {cfg.Endpoint}, "region": {cfg.Region}, "access_key": {cfg.AccessKey}, "secret_key": {cfg.SecretKey}}
		b, err := objstore.Open(ctx, "s3://"+cfg.Bucket+"/"+prefix+"?"+q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	a, b, root := open("a"), open("b/"), open("")
	if err := a.Put(ctx, "k", []byte("from a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "k", []byte("from b")); err != nil {
		t.Fatal(err)
	}
	got, err := a.GetRange(ctx, "k", 0, -1)
	if err != nil || string(got) != "from a" {
		t.Fatalf("a/k = %q, %v", got, err)
	}
	var keys []string
	if err := root.List(ctx, "", func(at objstore.Attrs) error { keys = append(keys, at.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"a/k", "b/k"}) {
		t.Fatalf("bucket root lists %v, want [a/k b/k]", keys)
	}
	keys = nil
	if err := a.List(ctx, "", func(at objstore.Attrs) error { keys = append(keys, at.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("prefix a lists %v, want [k]", keys)
	}
}

// TestS3MissingBucketIsNotNotFound: a wrong bucket name is a configuration
// error, and must not look like a missing object (which readers may treat
// as data that is gone).
func TestS3MissingBucketIsNotNotFound(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := harness.S3(t)
	b, err := objstore.NewS3(ctx, objstore.S3Config{
		Bucket: cfg.Bucket + "-missing", Endpoint: cfg.Endpoint, Region: cfg.Region,
		AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.GetRange(ctx, "k", 0, -1)
	if err == nil || b.IsNotFound(err) {
		t.Fatalf("GetRange in a missing bucket: err %v, IsNotFound %v; want a non-not-found error", err, b.IsNotFound(err))
	}
}

// TestS3Unreachable: a store that does not answer gives an error within the
// request timeout, not a hang.
func TestS3Unreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := objstore.NewS3(ctx, objstore.S3Config{
		Bucket: "b", Endpoint: "http://127.0.0.1:1", Region: "us-east-1",
		AccessKey: "k", SecretKey: "s", MaxAttempts: 2, RequestTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Put(ctx, "k", []byte("x"))
	if err == nil || b.IsNotFound(err) || errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Put to an unreachable store: err %v", err)
	}
}
