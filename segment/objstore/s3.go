package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Config configures an S3 bucket.
type S3Config struct {
	// Bucket is the bucket name. Required.
	Bucket string
	// Prefix is prepended to every key (with a "/" added when missing), so
	// several clusters can share one bucket. List strips it again.
	Prefix string
	// Endpoint is the S3 API URL for S3-compatible stores (MinIO, R2…),
	// e.g. http://127.0.0.1:9000. Empty means AWS. An endpoint implies
	// path-style addressing, which such stores expect.
	Endpoint string
	// Region is the bucket's region; empty takes it from the environment
	// (AWS_REGION, shared config) or falls back to us-east-1.
	Region string
	// AccessKey and SecretKey are static credentials. Empty means the
	// standard AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared
	// config files, instance or pod roles.
	AccessKey string
	SecretKey string
	// PathStyle forces path-style URLs (endpoint/bucket/key) even without
	// an Endpoint.
	PathStyle bool
	// RequestTimeout bounds one operation including its retries and body
	// transfer. Longer tolerates slow links for big segments; shorter fails
	// over faster when the store hangs.
	RequestTimeout time.Duration
	// MaxAttempts is how many times the SDK's standard retryer (jittered
	// exponential backoff) tries a throttled or failed request. More rides
	// out longer blips but delays the retriable error a client would see.
	MaxAttempts int
}

// DefaultS3Config returns the defaults: us-east-1, 30s per operation,
// 5 attempts.
func DefaultS3Config() S3Config {
	return S3Config{Region: "us-east-1", RequestTimeout: 30 * time.Second, MaxAttempts: 5}
}

// Validate reports a configuration NewS3 cannot use.
func (c S3Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("objstore: s3: bucket is required")
	case c.RequestTimeout < 0:
		return errors.New("objstore: s3: negative request timeout")
	case c.MaxAttempts < 0:
		return errors.New("objstore: s3: negative max attempts")
	case (c.AccessKey == "") != (c.SecretKey == ""):
		return errors.New("objstore: s3: access key and secret key go together")
	case c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://"):
		return fmt.Errorf("objstore: s3: endpoint %q is not an http(s) URL", c.Endpoint)
	}
	return nil
}

// S3 is a Bucket on S3 or an S3-compatible store.
type S3 struct {
	cfg       S3Config
	prefix    string
	client    *s3.Client
	transport *http.Transport // ours, so Close can drop idle connections
}

var _ Bucket = (*S3)(nil)

// NewS3 returns a Bucket for cfg. Zero RequestTimeout and MaxAttempts take
// the defaults. It does not contact the store.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	def := DefaultS3Config()
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = def.RequestTimeout
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = def.MaxAttempts
	}

	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = cfg.MaxAttempts })
		}),
		// Checksums only where S3 requires them: many S3-compatible stores
		// reject the newer default trailing checksums, and segments carry
		// their own CRC-32C per chunk.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	} else {
		opts = append(opts, config.WithDefaultRegion(def.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: s3: load AWS config: %w", err)
	}
	// Take the transport the SDK configured (it applies AWS_CA_BUNDLE and
	// the like) and hold on to it, so Close can drop idle connections.
	var tr *http.Transport
	if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		tr = bc.GetTransport()
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	// Agents upload and range-read many objects in parallel from one host.
	tr.MaxIdleConnsPerHost = 64
	awsCfg.HTTPClient = &http.Client{Transport: tr}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		if cfg.PathStyle {
			o.UsePathStyle = true
		}
	})
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &S3{cfg: cfg, prefix: prefix, client: client, transport: tr}, nil
}

func (b *S3) key(k string) string { return b.prefix + k }

func (b *S3) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.RequestTimeout)
}

// Put uploads body in one PutObject: segments are at most a few tens of
// MiB, below the size where multipart pays off.
func (b *S3) Put(ctx context.Context, key string, body []byte) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(b.cfg.Bucket),
		Key:           aws.String(b.key(key)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return fmt.Errorf("s3 put %s: %w", key, b.classify(err))
	}
	return nil
}

// GetRange issues a GET with a Range header.
func (b *S3) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if offset < 0 || length < -1 {
		return nil, fmt.Errorf("s3 get %s: %w: offset %d length %d", key, ErrInvalidRange, offset, length)
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	in := &s3.GetObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.key(key))}
	switch {
	case offset == 0 && length == -1:
		// No Range: a whole-object GET also works for an empty object,
		// where any range is unsatisfiable.
	case length == -1:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	case length == 0:
		// HTTP cannot ask for zero bytes; ask for one so existence and the
		// offset are still checked, and return none.
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset))
	default:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		err = b.classify(err)
		if errors.Is(err, ErrRangeNotSatisfiable) && offset == 0 {
			// Offset 0 of an empty object is satisfiable by contract.
			if size, herr := b.size(ctx, key); herr == nil && size == 0 {
				return []byte{}, nil
			}
		}
		return nil, fmt.Errorf("s3 get %s: %w", key, err)
	}
	defer out.Body.Close()
	want := int64(-1)
	if out.ContentLength != nil {
		want = *out.ContentLength
	}
	var buf []byte
	if want >= 0 {
		buf = make([]byte, want)
		_, err = io.ReadFull(out.Body, buf)
	} else {
		buf, err = io.ReadAll(out.Body)
	}
	if err != nil {
		return nil, fmt.Errorf("s3 get %s: read body: %w", key, err)
	}
	if length == 0 {
		return buf[:0], nil
	}
	if length > 0 && int64(len(buf)) > length {
		return nil, fmt.Errorf("s3 get %s: server returned %d bytes for a %d-byte range", key, len(buf), length)
	}
	return buf, nil
}

func (b *S3) size(ctx context.Context, key string) (int64, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.key(key))})
	if err != nil {
		return 0, b.classify(err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Delete removes key; S3 answers a delete of a missing key with success.
func (b *S3) Delete(ctx context.Context, key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	ctx, cancel := b.opContext(ctx)
	defer cancel()
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.key(key))})
	if err != nil {
		err = b.classify(err)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return fmt.Errorf("s3 delete %s: %w", key, err)
	}
	return nil
}

// List pages through ListObjectsV2, which returns keys in UTF-8 binary
// (lexical) order. The timeout applies to each page, not the whole
// listing, which may be long.
func (b *S3) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.cfg.Bucket),
		Prefix: aws.String(b.key(prefix)),
	})
	for p.HasMorePages() {
		pctx, cancel := b.opContext(ctx)
		page, err := p.NextPage(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("s3 list %q: %w", prefix, b.classify(err))
		}
		for _, o := range page.Contents {
			a := Attrs{
				Key:  strings.TrimPrefix(aws.ToString(o.Key), b.prefix),
				Size: aws.ToInt64(o.Size),
			}
			if o.LastModified != nil {
				a.LastModified = *o.LastModified
			}
			if err := fn(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// IsNotFound reports whether err means the object does not exist.
func (b *S3) IsNotFound(err error) bool {
	return errors.Is(b.classify(err), ErrNotFound)
}

// classify wraps an SDK error with ErrNotFound or ErrRangeNotSatisfiable
// when it means one, keeping the original in the chain. A missing bucket
// is not a missing object: it is a configuration error and stays one.
func (b *S3) classify(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrRangeNotSatisfiable) {
		return err
	}
	var code interface{ ErrorCode() string }
	if errors.As(err, &code) {
		switch code.ErrorCode() {
		case "NoSuchBucket":
			return err
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case "InvalidRange":
			return fmt.Errorf("%w: %w", ErrRangeNotSatisfiable, err)
		}
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case http.StatusRequestedRangeNotSatisfiable:
			return fmt.Errorf("%w: %w", ErrRangeNotSatisfiable, err)
		}
	}
	return err
}

// Close drops idle connections.
func (b *S3) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}
