package harness

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(RunCheckingLeaks(m)) }

func TestPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	u1 := Postgres(t)
	u2 := Postgres(t)
	if u1 == u2 {
		t.Fatalf("two calls returned the same database %s", u1)
	}
	conn, err := pgx.Connect(ctx, u1)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE t (k int primary key, v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM t WHERE k = 1").Scan(&v); err != nil || v != "one" {
		t.Fatalf("got %q, %v; want one", v, err)
	}

	// The second database is fresh: it has no table t.
	conn2, err := pgx.Connect(ctx, u2)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(context.Background())
	var n int
	if err := conn2.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 't'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("fresh database has %d tables named t (err %v)", n, err)
	}
}

func TestS3(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := S3(t)
	other := S3(t)
	if cfg.Bucket == other.Bucket {
		t.Fatalf("two calls returned the same bucket %s", cfg.Bucket)
	}
	if !strings.HasPrefix(cfg.URL(), "s3://"+cfg.Bucket+"?") || !strings.Contains(cfg.URL(), "endpoint=http%3A%2F%2F") {
		t.Fatalf("URL() = %s", cfg.URL())
	}
	env := strings.Join(cfg.Env(), "\n")
	if !strings.Contains(env, "AWS_ACCESS_KEY_ID="+cfg.AccessKey) || !strings.Contains(env, "AWS_SECRET_ACCESS_KEY="+cfg.SecretKey) {
		t.Fatalf("Env() = %v", cfg.Env())
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := s3.New(s3.Options{
		HTTPClient:   &http.Client{Transport: tr},
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
	})
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(cfg.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 0 {
		t.Fatalf("fresh bucket holds %d objects", len(list.Contents))
	}
	body := []byte("hello, silt")
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String("a/b"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String("a/b")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("got %q, %v; want %q", got, err, body)
	}
}

func TestS3ConfigURL(t *testing.T) {
	c := S3Config{Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", Bucket: "b"}
	want := "s3://b?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=us-east-1"
	if got := c.URL(); got != want {
		t.Fatalf("URL() = %s, want %s", got, want)
	}
}
