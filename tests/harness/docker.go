package harness

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

var docker struct {
	once sync.Once
	ok   bool
}

// dockerAvailable reports whether a Docker engine answers a ping within a
// short timeout. It is asked before testcontainers-go is touched, so
// machines without Docker pay nothing for the check and start no
// testcontainers goroutines. SILT_TEST_NO_DOCKER=1 skips Docker.
func dockerAvailable() bool {
	docker.once.Do(func() {
		if os.Getenv("SILT_TEST_NO_DOCKER") != "" {
			return
		}
		docker.ok = pingDocker(os.Getenv("DOCKER_HOST"))
	})
	return docker.ok
}

func pingDocker(host string) bool {
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	u, err := url.Parse(host)
	if err != nil {
		return false
	}
	tr := &http.Transport{DisableKeepAlives: true}
	base := "http://docker"
	switch u.Scheme {
	case "unix":
		if _, err := os.Stat(u.Path); err != nil {
			return false
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", u.Path)
		}
	case "tcp":
		base = "http://" + u.Host
	default:
		// ssh:// and npipe:// are left to testcontainers users with a
		// reachable tcp or unix socket; the harness falls back to processes.
		return false
	}
	c := &http.Client{Timeout: time.Second, Transport: tr}
	resp, err := c.Get(base + "/_ping")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
