package objstore_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siltdata/silt/segment/objstore"
)

func TestParseS3URL(t *testing.T) {
	def := objstore.DefaultS3Config()
	cases := []struct {
		url  string
		want objstore.S3Config
	}{
		{"s3://bucket", objstore.S3Config{Bucket: "bucket", Region: def.Region, RequestTimeout: def.RequestTimeout, MaxAttempts: def.MaxAttempts}},
		{"s3://bucket/some/prefix/", objstore.S3Config{Bucket: "bucket", Prefix: "some/prefix", Region: def.Region, RequestTimeout: def.RequestTimeout, MaxAttempts: def.MaxAttempts}},
		{
			"s3://b/p?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1&access_key=AK&secret_key=SK&path_style=true&request_timeout=5s&max_attempts=3",
			objstore.S3Config{Bucket: "b", Prefix: "p", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", AccessKey: "AK", SecretKey: "SK", PathStyle: true, RequestTimeout: 5 * time.Second, MaxAttempts: 3},
		},
		// An unescaped endpoint works too, as long as it holds no '&'.
		{"s3://b?endpoint=http://minio:9000", objstore.S3Config{Bucket: "b", Endpoint: "http://minio:9000", Region: def.Region, RequestTimeout: def.RequestTimeout, MaxAttempts: def.MaxAttempts}},
	}
	for _, c := range cases {
		got, err := objstore.ParseS3URL(c.url)
		if err != nil {
			t.Errorf("ParseS3URL(%q): %v", c.url, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseS3URL(%q) =\n %+v\nwant\n %+v", c.url, got, c.want)
		}
	}
}

func TestOpenRejectsMalformedURLs(t *testing.T) {
	for _, c := range []struct{ url, mention string }{
		{"", "empty"},
		{"s3://", "no bucket"},
		{"s3:///prefix", "no bucket"},
		{"s3://b?endpoint=127.0.0.1:9000", "endpoint"},
		{"s3://b?endpoint=ftp://x", "endpoint"},
		{"s3://b?path_style=maybe", "path_style"},
		{"s3://b?max_attempts=0", "max_attempts"},
		{"s3://b?request_timeout=soon", "request_timeout"},
		{"s3://b?regoin=us-east-1", "unknown parameter"},
		{"s3://b?region=a&region=b", "2 times"},
		{"s3://b?access_key=AK", "go together"},
		{"s3://host:9000/b", "endpoint"},
		{"file://relative/dir", "absolute path"},
		{"file:///tmp/x?sync=1", "no parameters"},
		{"gs://bucket", "scheme"},
		{"s3://b?secret_key=hunter2&bogus=1", "unknown parameter"},
		{"s3://b\x7f", "invalid"},
	} {
		_, err := objstore.Open(t.Context(), c.url)
		if !errors.Is(err, objstore.ErrInvalidURL) {
			t.Errorf("Open(%q): err %v, want ErrInvalidURL", c.url, err)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Open(%q): error %q does not mention %q", c.url, err, c.mention)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): error %q shows the secret key", c.url, err)
		}
	}
}

func TestOpenFS(t *testing.T) {
	dir := t.TempDir()
	for _, u := range []string{"file://" + filepath.Join(dir, "a"), filepath.Join(dir, "b"), "file://localhost" + filepath.Join(dir, "c")} {
		b, err := objstore.Open(t.Context(), u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		fs, ok := b.(*objstore.FS)
		if !ok {
			t.Fatalf("Open(%q) = %T, want *objstore.FS", u, b)
		}
		if err := fs.Put(t.Context(), "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
}

func TestOpenS3(t *testing.T) {
	b, err := objstore.Open(t.Context(), "s3://bucket/prefix?endpoint=http%3A%2F%2F127.0.0.1%3A9&access_key=a&secret_key=s")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok := b.(*objstore.S3); !ok {
		t.Fatalf("Open = %T, want *objstore.S3", b)
	}
}
