// Package harness gives tests real Postgres and S3 (MinIO) servers.
// PLACEHOLDER with the agreed API: the harness helper replaces it.
package harness

import "testing"

// S3Config is an S3 endpoint with a bucket created for the caller.
type S3Config struct {
	Endpoint  string // http://127.0.0.1:port
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
}

// URL is the bucket URL as silt's flags take it:
// s3://bucket?endpoint=...&region=... (credentials from the environment).
func (c S3Config) URL() string { panic("harness: unimplemented") }

// Postgres returns a URL to a fresh, empty database.
func Postgres(t testing.TB) string { t.Fatal("harness: unimplemented"); return "" }

// S3 returns an endpoint with a fresh, empty bucket.
func S3(t testing.TB) S3Config { t.Fatal("harness: unimplemented"); return S3Config{} }

// Run runs the tests (call from TestMain: os.Exit(harness.Run(m))) and then
// stops every server the harness started.
func Run(m *testing.M) int { return m.Run() }
