package objstore_test

import (
	"fmt"
	"testing"

	"github.com/siltdata/silt/segment/objstore"
	"github.com/siltdata/silt/tests/harness"
)

// benchBuckets returns the backends to benchmark: the filesystem and, when
// the harness has one, MinIO.
func benchBuckets(b *testing.B) map[string]func(b *testing.B) objstore.Bucket {
	return map[string]func(b *testing.B) objstore.Bucket{
		"fs": func(b *testing.B) objstore.Bucket {
			fs, err := objstore.NewFS(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return fs
		},
		"s3-minio": func(b *testing.B) objstore.Bucket {
			cfg := harness.S3(b)
			s3, err := objstore.NewS3(b.Context(), objstore.S3Config{
				Bucket: cfg.Bucket, Endpoint: cfg.Endpoint, Region: cfg.Region,
				AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s3.Close() })
			return s3
		},
	}
}

func BenchmarkPut(b *testing.B) {
	for name, open := range benchBuckets(b) {
		for _, size := range []int{64 << 10, 4 << 20} {
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				bucket := open(b)
				body := make([]byte, size)
				b.SetBytes(int64(size))
				i := 0
				for b.Loop() {
					if err := bucket.Put(b.Context(), fmt.Sprintf("seg/%08d", i), body); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

func BenchmarkGetRange(b *testing.B) {
	for name, open := range benchBuckets(b) {
		b.Run(name+"/64KiB-of-8MiB", func(b *testing.B) {
			bucket := open(b)
			const size, chunk = 8 << 20, 64 << 10
			if err := bucket.Put(b.Context(), "seg", make([]byte, size)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(chunk)
			i := 0
			for b.Loop() {
				off := int64(i*chunk) % (size - chunk)
				if _, err := bucket.GetRange(b.Context(), "seg", off, chunk); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
