package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	s3Region        = "us-east-1"
	minioUser       = "siltminio"
	minioPassword   = "siltminio-secret"
	minioStartLimit = 10 * time.Second
)

// s3Server is an S3 endpoint on which the harness creates one bucket per S3
// call.
type s3Server struct {
	endpoint  string
	accessKey string
	secretKey string
	client    *s3.Client
	transport *http.Transport // closed at stop so no idle connection outlives Run
	seq       atomic.Int64
}

var minio struct {
	once sync.Once
	srv  *s3Server
	err  error
}

func s3ServerFor(t testing.TB) (*s3Server, error) {
	minio.once.Do(func() { minio.srv, minio.err = startS3(t) })
	return minio.srv, minio.err
}

func startS3(t testing.TB) (*s3Server, error) {
	if ep := os.Getenv("SILT_TEST_S3_ENDPOINT"); ep != "" {
		ak, sk := os.Getenv("SILT_TEST_S3_ACCESS_KEY"), os.Getenv("SILT_TEST_S3_SECRET_KEY")
		if ak == "" || sk == "" {
			return nil, errors.New("SILT_TEST_S3_ENDPOINT is set but SILT_TEST_S3_ACCESS_KEY or SILT_TEST_S3_SECRET_KEY is not")
		}
		srv := newS3Server(ep, ak, sk)
		if err := srv.ping(); err != nil {
			return nil, fmt.Errorf("SILT_TEST_S3_ENDPOINT %s: %w", ep, err)
		}
		announce(t, "harness: s3 external endpoint from SILT_TEST_S3_ENDPOINT ("+ep+")")
		return srv, nil
	}
	if dockerAvailable() {
		return startMinioContainer(t)
	}
	return startMinioLocal(t)
}

func newS3Server(endpoint, accessKey, secretKey string) *s3Server {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	srv := &s3Server{endpoint: endpoint, accessKey: accessKey, secretKey: secretKey, transport: tr}
	srv.client = s3.New(s3.Options{
		Region:       s3Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		HTTPClient:   &http.Client{Transport: tr},
	})
	onStop(func() error { tr.CloseIdleConnections(); return nil })
	return srv
}

// ping checks that the endpoint answers with these credentials.
func (s *s3Server) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.client.ListBuckets(ctx, &s3.ListBucketsInput{})
	return err
}

func startMinioContainer(t testing.TB) (*s3Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := testcontainers.Run(ctx, "minio/minio",
		testcontainers.WithCmd("server", "/data"),
		testcontainers.WithEnv(map[string]string{
			"MINIO_ROOT_USER":     minioUser,
			"MINIO_ROOT_PASSWORD": minioPassword,
		}),
		testcontainers.WithExposedPorts("9000/tcp"),
		testcontainers.WithWaitStrategy(wait.ForHTTP("/minio/health/live").WithPort("9000/tcp")),
	)
	if c != nil {
		onStop(func() error { return c.Terminate(context.Background()) })
	}
	if err != nil {
		return nil, fmt.Errorf("minio container: %w", err)
	}
	ep, err := c.PortEndpoint(ctx, "9000/tcp", "http")
	if err != nil {
		return nil, err
	}
	announce(t, "harness: minio testcontainers container at "+ep)
	return newS3Server(ep, minioUser, minioPassword), nil
}

// startMinioLocal runs the MinIO binary from $SILT_CACHE/bin on a
// temporary directory.
func startMinioLocal(t testing.TB) (*s3Server, error) {
	bin, err := minioBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "silt-harness-minio-")
	if err != nil {
		return nil, err
	}
	cleanupDir := func() error { return os.RemoveAll(dir) }
	p, port, err := startOnFreePort("minio", minioStartLimit, func(port int) (*process, error) {
		return startMinioProcess(bin, dir, port)
	}, minioLive)
	if err != nil {
		_ = cleanupDir()
		return nil, err
	}
	onStop(func() error {
		err := p.stop(syscall.SIGTERM, 10*time.Second)
		return errors.Join(err, cleanupDir())
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	announce(t, fmt.Sprintf("harness: minio %s local process on %s (%s)", minioVersion(bin), addr, bin))
	return newS3Server("http://"+addr, minioUser, minioPassword), nil
}

// minioBinary is the MinIO server binary tests/install-deps.sh built into
// $SILT_CACHE/bin (SILT_CACHE defaults to ~/.cache/silt).
func minioBinary() (string, error) {
	cache := os.Getenv("SILT_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "silt")
	}
	bin := filepath.Join(cache, "bin", "minio")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no MinIO binary (run tests/install-deps.sh): %w", err)
	}
	return bin, nil
}

// minioVersion is what install-deps.sh recorded beside the binary.
func minioVersion(bin string) string {
	if b, err := os.ReadFile(bin + ".version"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return "unknown version"
}

// startMinioProcess runs MinIO on 127.0.0.1:port with its data under
// dir/data (kept across restarts) and its log in dir/server.log.
func startMinioProcess(bin, dir string, port int) (*process, error) {
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", "127.0.0.1:"+strconv.Itoa(port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(consolePort),
		"--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+minioUser,
		"MINIO_ROOT_PASSWORD="+minioPassword,
		"MINIO_UPDATE=off",
		"MINIO_BROWSER=off",
	)
	return startProcess("minio", cmd, filepath.Join(dir, "server.log"), nil)
}

// minioLive checks MinIO's liveness endpoint on port.
func minioLive(port int) error {
	health := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := health.Get(fmt.Sprintf("http://127.0.0.1:%d/minio/health/live", port))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s", resp.Status)
	}
	return nil
}

// createBucket creates an empty bucket with a unique name.
func (s *s3Server) createBucket(t testing.TB) (S3Config, error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("silt-test-%d-%d-%s", os.Getpid(), s.seq.Add(1), hex.EncodeToString(rnd[:]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return S3Config{}, fmt.Errorf("create bucket %s: %w", name, err)
	}
	return S3Config{
		Endpoint:  s.endpoint,
		Region:    s3Region,
		AccessKey: s.accessKey,
		SecretKey: s.secretKey,
		Bucket:    name,
	}, nil
}
