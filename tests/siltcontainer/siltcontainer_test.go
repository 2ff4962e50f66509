package siltcontainer_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltdata/silt/tests/siltcontainer"
)

// imageOption picks the image under test: SILT_IMAGE when set (CI builds
// it once), else an image built from this repository's Dockerfile.
func imageOption() (string, []testcontainers.ContainerCustomizer) {
	if img := os.Getenv("SILT_IMAGE"); img != "" {
		return img, nil
	}
	return "", []testcontainers.ContainerCustomizer{
		testcontainers.WithDockerfile(testcontainers.FromDockerfile{
			Context:    "../..",
			Dockerfile: "Dockerfile",
			KeepImage:  true, // the next run reuses the layers
		}),
	}
}

func TestRunProduceConsume(t *testing.T) {
	// The only reason to skip: no Docker engine answers.
	testcontainers.SkipIfProviderIsNotHealthy(t)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	img, opts := imageOption()
	opts = append(opts, siltcontainer.WithFlushInterval(10*time.Millisecond))
	ctr, err := siltcontainer.Run(ctx, img, opts...)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}

	addr, err := ctr.BootstrapAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics("siltcontainer"),
		kgo.AllowAutoTopicCreation(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// The broker silt advertises must be the mapped address, or every
	// client outside the container would fail after bootstrapping.
	brokers, err := kadm.NewClient(cl).ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	if len(brokers) != 1 || brokers[0].Host != host || strconv.Itoa(int(brokers[0].Port)) != port {
		t.Fatalf("advertised brokers %+v, want one at %s", brokers, addr)
	}

	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "siltcontainer", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fetches := cl.PollFetches(ctx)
	if err := fetches.Err(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	recs := fetches.Records()
	if len(recs) != 1 || string(recs[0].Value) != "hello" || recs[0].Offset != 0 {
		t.Fatalf("consumed %d records (%+v), want one \"hello\" at offset 0", len(recs), recs)
	}

	admin, err := ctr.AdminURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d %q, want 200", resp.StatusCode, body)
	}
}
