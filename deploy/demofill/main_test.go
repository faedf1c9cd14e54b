package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/testenv"
)

// The demo's fill on the real three-broker cluster: a new topic ends with
// exactly the records asked for, a second fill leaves it alone, and a topic
// holding another count (what a cut-short kcat fill left behind, which the
// demo then backed up as if complete) is made again and filled exactly.
func TestFillExactlyOnRealCluster(t *testing.T) {
	env := testenv.Load(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := fillOptions{brokers: env.ZKModeBootstrap, topic: fmt.Sprintf("demofill-%08x", rand.Uint32()),
		partitions: 6, replicas: 3, records: 5000}
	// A new client for each count: one that outlived the topic's deletion
	// could ask a broker that led a partition of the old topic.
	held := func() int64 {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(env.ZKModeBootstrap...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		n, _, err := count(ctx, kadm.NewClient(cl), o.topic)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(env.ZKModeBootstrap...))
		if err == nil {
			_, _ = kadm.NewClient(cl).DeleteTopic(context.Background(), o.topic)
			cl.Close()
		}
	})

	if _, err := fill(ctx, o); err != nil {
		t.Fatalf("fill: %v", err)
	}
	if n := held(); n != o.records {
		t.Fatalf("after the fill the topic holds %d records, want %d", n, o.records)
	}
	msg, err := fill(ctx, o)
	if err != nil {
		t.Fatalf("second fill: %v", err)
	}
	if n := held(); n != o.records {
		t.Fatalf("second fill: %d records, want %d (%s)", n, o.records, msg)
	}

	// Half-filled: the fill is asked for more than the topic holds.
	o.records = 7000
	if _, err := fill(ctx, o); err != nil {
		t.Fatalf("refill: %v", err)
	}
	if n := held(); n != o.records {
		t.Fatalf("refill: %d records, want %d (the old records were kept or doubled)", n, o.records)
	}
}
