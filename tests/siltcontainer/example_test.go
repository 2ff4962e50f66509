package siltcontainer_test

import (
	"context"
	"fmt"

	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siltdata/silt/tests/siltcontainer"
)

// Start silt, produce a record, stop silt. In a test, pass the container
// to testcontainers.CleanupContainer(t, ctr) instead of terminating it.
func ExampleRun() {
	ctx := context.Background()
	ctr, err := siltcontainer.Run(ctx, "silt:local",
		siltcontainer.WithDefaultPartitions(3),
	)
	defer func() {
		if err := testcontainers.TerminateContainer(ctr); err != nil {
			fmt.Println("terminate:", err)
		}
	}()
	if err != nil {
		fmt.Println("run:", err)
		return
	}

	addr, err := ctr.BootstrapAddr(ctx)
	if err != nil {
		fmt.Println("bootstrap address:", err)
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		fmt.Println("client:", err)
		return
	}
	defer cl.Close()
	res := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("hello")})
	if err := res.FirstErr(); err != nil {
		fmt.Println("produce:", err)
		return
	}
	fmt.Println("produced at offset", res[0].Record.Offset)
}
