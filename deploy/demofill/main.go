// Command demofill makes the demo topic of `make run` and fills it with
// exactly -records records, or says why it could not.
//
// It replaces a kcat pipe that produced while the brokers still disagreed on
// the new topic: one broker answered "partition count changed from 6 to 0",
// kcat's handles were torn down, a third of the records were lost and the
// demo went on. Here the topic is filled only once every broker serves
// every partition with a leader and its full ISR; the producer is
// idempotent and retries (no record lost, none doubled); and the fill ends
// by counting what the brokers hold. A topic left half-filled by an earlier
// attempt is deleted and made again.
//
//	go run ./deploy/demofill -brokers 127.0.0.1:19092,127.0.0.1:19093 -topic demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	var o fillOptions
	brokers := flag.String("brokers", "", "bootstrap servers, comma-separated")
	flag.StringVar(&o.topic, "topic", "demo", "topic to make and fill")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions of the topic")
	flag.IntVar(&o.replicas, "replication-factor", 3, "replicas of each partition")
	flag.Int64Var(&o.records, "records", 50000, "records the topic holds at the end")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	o.brokers = strings.Split(*brokers, ",")
	if *brokers == "" {
		fmt.Fprintln(os.Stderr, "demofill: -brokers is required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	msg, err := fill(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demofill:", err)
		os.Exit(1)
	}
	fmt.Println(msg)
}

type fillOptions struct {
	brokers    []string
	topic      string
	partitions int
	replicas   int
	records    int64
}

func newClient(o fillOptions) (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(o.brokers...),
		kgo.DefaultProduceTopic(o.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // also what the idempotent producer needs
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.RecordDeliveryTimeout(2*time.Minute), // retried until then, never given up silently
		kgo.MetadataMinAge(250*time.Millisecond),
	)
}

func fill(ctx context.Context, o fillOptions) (string, error) {
	cl, err := newClient(o)
	if err != nil {
		return "", err
	}
	held, exists, err := count(ctx, kadm.NewClient(cl), o.topic)
	if err == nil && exists && held != o.records {
		// Left half-filled by an earlier attempt (or by hand): start again.
		fmt.Fprintf(os.Stderr, "demofill: topic %s holds %d records, not %d: deleting it and filling it again\n", o.topic, held, o.records)
		err = deleteTopic(ctx, kadm.NewClient(cl), o.topic)
	}
	// The rest with a client that never knew the old topic: one that did
	// can still send a request to a broker that led one of its partitions.
	cl.Close()
	switch {
	case err != nil:
		return "", err
	case exists && held == o.records:
		return fmt.Sprintf("demo topic %s: already holds %d records", o.topic, held), nil
	}
	if cl, err = newClient(o); err != nil {
		return "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := createTopic(ctx, adm, o); err != nil {
		return "", err
	}
	if err := waitServed(ctx, cl, o); err != nil {
		return "", err
	}
	if err := produce(ctx, cl, o); err != nil {
		return "", err
	}
	held, _, err = count(ctx, adm, o.topic)
	if err != nil {
		return "", err
	}
	if held != o.records {
		return "", fmt.Errorf("topic %s holds %d records after the fill, want %d", o.topic, held, o.records)
	}
	return fmt.Sprintf("demo topic %s: %d partitions, %d records", o.topic, o.partitions, held), nil
}

// count is the number of records the topic holds (its offsets, summed over
// partitions: the demo's producer writes no transactions and no topic here
// is compacted).
func count(ctx context.Context, adm *kadm.Client, topic string) (int64, bool, error) {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, false, fmt.Errorf("list topic %s: %w", topic, err)
	}
	if !td.Has(topic) {
		return 0, false, nil
	}
	if err := td[topic].Err; err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("topic %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, true, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, true, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	var n int64
	var firstErr error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil && firstErr == nil {
			firstErr = fmt.Errorf("end offset of %s[%d]: %w", e.Topic, e.Partition, e.Err)
		}
		s, _ := starts.Lookup(e.Topic, e.Partition)
		n += e.Offset - s.Offset
	})
	return n, true, firstErr
}

func deleteTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	if _, err := adm.DeleteTopic(ctx, topic); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	// Deletion is asynchronous: wait until no broker lists it.
	for {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil && (!td.Has(topic) || errors.Is(td[topic].Err, kerr.UnknownTopicOrPartition)) {
			return nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return fmt.Errorf("topic %s still listed after delete: %w", topic, err)
		}
	}
}

func createTopic(ctx context.Context, adm *kadm.Client, o fillOptions) error {
	for {
		r, err := adm.CreateTopic(ctx, int32(o.partitions), int16(o.replicas), nil, o.topic)
		if err == nil {
			err = r.Err
		}
		switch {
		case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
			return nil
		case errors.Is(err, kerr.InvalidReplicationFactor), errors.Is(err, kerr.InvalidPartitions):
			return fmt.Errorf("create topic %s: %w", o.topic, err)
		}
		// A topic being deleted, or a controller moving: try again.
		if serr := sleep(ctx, time.Second); serr != nil {
			return fmt.Errorf("create topic %s: %v (%w)", o.topic, err, serr)
		}
	}
}

// waitServed returns once every broker, asked itself, lists every partition
// of the topic with a leader and all its replicas in sync. Until then a
// producer can be told by one broker that the topic has no partitions.
func waitServed(ctx context.Context, cl *kgo.Client, o fillOptions) error {
	adm := kadm.NewClient(cl)
	var last string
	for {
		last = notServed(ctx, cl, adm, o)
		if last == "" {
			return nil
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return fmt.Errorf("topic %s not served by every broker: %s (%w)", o.topic, last, err)
		}
	}
}

// notServed says what is missing, or "" when every broker serves the topic.
func notServed(ctx context.Context, cl *kgo.Client, adm *kadm.Client, o fillOptions) string {
	bd, err := adm.ListBrokers(ctx)
	if err != nil {
		return "list brokers: " + err.Error()
	}
	if len(bd) < o.replicas {
		return fmt.Sprintf("%d brokers registered, want at least %d", len(bd), o.replicas)
	}
	for _, b := range bd {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(o.topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err != nil {
			return fmt.Sprintf("broker %d: %v", b.NodeID, err)
		}
		if len(resp.Topics) != 1 {
			return fmt.Sprintf("broker %d lists %d topics", b.NodeID, len(resp.Topics))
		}
		t := resp.Topics[0]
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Sprintf("broker %d: %v", b.NodeID, err)
		}
		if len(t.Partitions) != o.partitions {
			return fmt.Sprintf("broker %d lists %d partitions, want %d", b.NodeID, len(t.Partitions), o.partitions)
		}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Sprintf("broker %d, partition %d: %v", b.NodeID, p.Partition, err)
			}
			if p.Leader < 0 {
				return fmt.Sprintf("broker %d: partition %d has no leader", b.NodeID, p.Partition)
			}
			if len(p.ISR) != o.replicas {
				return fmt.Sprintf("broker %d: partition %d has %d of %d replicas in sync", b.NodeID, p.Partition, len(p.ISR), o.replicas)
			}
		}
	}
	return ""
}

// produce writes the records, the same the kcat fill wrote (key order-N,
// a small JSON order as value), and returns the first delivery failure.
func produce(ctx context.Context, cl *kgo.Client, o fillOptions) error {
	errc := make(chan error, 1)
	for i := int64(1); i <= o.records; i++ {
		r := &kgo.Record{
			Key:   fmt.Appendf(nil, "order-%d", i),
			Value: fmt.Appendf(nil, `{"order":%d,"item":"widget-%d","qty":%d}`, i, i%97, i%7),
		}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- fmt.Errorf("record %s: %w", r.Key, err):
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
