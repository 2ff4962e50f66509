package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Open returns the Bucket a URL names:
//
//	s3://bucket[/prefix][?endpoint=http://host:port&region=R&access_key=K
//	    &secret_key=S&path_style=true&request_timeout=30s&max_attempts=5]
//	file:///absolute/dir
//	/plain/path or relative/path (a local directory)
//
// Credentials in the URL are for tests and local setups; elsewhere leave
// them out and use the standard AWS environment and credential chain.
// Unknown query parameters are errors, so a typo does not silently fall
// back to a default.
func Open(ctx context.Context, rawURL string) (Bucket, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	if !strings.Contains(rawURL, "://") {
		fs, err := NewFS(rawURL)
		if err != nil {
			return nil, err
		}
		return fs, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, parseError(err))
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("%w: %q: file URLs take an absolute path, file:///dir (host %q given)", ErrInvalidURL, redactURL(rawURL), u.Host)
		}
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("%w: %q: file URL without an absolute path", ErrInvalidURL, redactURL(rawURL))
		}
		if len(u.Query()) > 0 {
			return nil, fmt.Errorf("%w: %q: file URLs take no parameters", ErrInvalidURL, redactURL(rawURL))
		}
		fs, err := NewFS(u.Path)
		if err != nil {
			return nil, err
		}
		return fs, nil
	case "s3":
		cfg, err := ParseS3URL(rawURL)
		if err != nil {
			return nil, err
		}
		b, err := NewS3(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return b, nil
	default:
		return nil, fmt.Errorf("%w: %q: scheme %q is not s3 or file", ErrInvalidURL, redactURL(rawURL), u.Scheme)
	}
}

// ParseS3URL turns an s3:// URL (see Open) into an S3Config, starting from
// DefaultS3Config.
func ParseS3URL(rawURL string) (S3Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return S3Config{}, fmt.Errorf("%w: %w", ErrInvalidURL, parseError(err))
	}
	if u.Scheme != "s3" {
		return S3Config{}, fmt.Errorf("%w: %q: not an s3:// URL", ErrInvalidURL, redactURL(rawURL))
	}
	if u.Host == "" {
		return S3Config{}, fmt.Errorf("%w: %q: no bucket name (s3://BUCKET/prefix)", ErrInvalidURL, redactURL(rawURL))
	}
	if u.User != nil || u.Port() != "" {
		return S3Config{}, fmt.Errorf("%w: %q: put the server in ?endpoint=, not in the host part", ErrInvalidURL, redactURL(rawURL))
	}
	cfg := DefaultS3Config()
	cfg.Bucket = u.Host
	cfg.Prefix = strings.Trim(u.Path, "/")
	for name, vals := range u.Query() {
		if len(vals) != 1 {
			return S3Config{}, fmt.Errorf("%w: %q: parameter %s given %d times", ErrInvalidURL, redactURL(rawURL), name, len(vals))
		}
		v := vals[0]
		switch name {
		case "endpoint":
			eu, err := url.Parse(v)
			if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
				return S3Config{}, fmt.Errorf("%w: endpoint %q is not an http(s)://host:port URL", ErrInvalidURL, v)
			}
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "access_key":
			cfg.AccessKey = v
		case "secret_key":
			cfg.SecretKey = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("%w: path_style=%q is not a boolean", ErrInvalidURL, v)
			}
			cfg.PathStyle = b
		case "request_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return S3Config{}, fmt.Errorf("%w: request_timeout=%q is not a positive duration", ErrInvalidURL, v)
			}
			cfg.RequestTimeout = d
		case "max_attempts":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return S3Config{}, fmt.Errorf("%w: max_attempts=%q is not a positive integer", ErrInvalidURL, v)
			}
			cfg.MaxAttempts = n
		default:
			return S3Config{}, fmt.Errorf("%w: %q: unknown parameter %q", ErrInvalidURL, redactURL(rawURL), name)
		}
	}
	if err := cfg.Validate(); err != nil {
		return S3Config{}, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	return cfg, nil
}

// redactURL hides a secret key in a URL quoted in an error message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	q := u.Query()
	if q.Has("secret_key") {
		q.Set("secret_key", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// parseError drops the URL, which may hold a secret, from a url.Parse error.
func parseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
