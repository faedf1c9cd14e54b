package kdata

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbr-project/kbr/storage/localdir"
)

// produceWatch counts the produce requests a client has written and not yet
// had answered, and the most there were at once.
type produceWatch struct {
	mu        sync.Mutex
	out, most int
	// early counts the requests written before the first answer was read.
	early int
	read  bool
}

func (w *produceWatch) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != int16(kmsg.Produce) || err != nil {
		return
	}
	w.mu.Lock()
	w.out++
	w.most = max(w.most, w.out)
	if !w.read {
		w.early++
	}
	w.mu.Unlock()
}

func (w *produceWatch) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key != int16(kmsg.Produce) {
		return
	}
	w.mu.Lock()
	w.out--
	w.read = true
	w.mu.Unlock()
}

// exportAll backs up partitions 0..parts-1 of src with small batches, for
// imports of many batches per partition.
func exportAll(t *testing.T, f *fake, parts int32) (ExportSpec, ExportState, *localdir.Dir) {
	t.Helper()
	b, _ := localdir.New(t.TempDir())
	spec := ExportSpec{Unit: 0, Attempt: 1, Dir: "d", Partitions: f.cut(t, "src", parts), PackBytes: 1 << 20,
		Compression: "none", FetchMaxBytes: 1 << 20, PartitionMaxBytes: 256 << 10}
	st, err := Export(context.Background(), f.cl, b, spec, NewExportState(spec), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return spec, st, b
}

func compareRestored(t *testing.T, f *fake, spec ExportSpec, res ImportResult) {
	t.Helper()
	for i, p := range spec.Partitions {
		r := res.Partitions[i]
		src := f.consume(t, "src", p.Partition, p.From, p.To)
		dst := f.consume(t, "dst", p.Partition, 0, r.EndOffset)
		if len(src) != len(dst) || int64(len(dst)) != r.Records {
			t.Fatalf("partition %d: %d records in source, %d restored (result says %d)", i, len(src), len(dst), r.Records)
		}
		for k := range src {
			s, d := src[k], dst[k]
			if s.Key != d.Key || s.Value != d.Value || s.Null != d.Null || s.Headers != d.Headers || s.Timestamp != d.Timestamp || d.Offset != int64(k) {
				t.Fatalf("partition %d record %d: got %+v, want %+v", i, k, d, s)
			}
		}
	}
}

// A unit of one partition keeps more than one of its batches in flight
// once the broker acknowledged its first: the broker, slowed on every
// produce, sees the next request before it answers the last. Every record
// lands once, in order.
func TestImportPipelinesOnePartition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFake(t, 1, "src", "dst")
	f.fill(t, "src", 1, 3000, 37)
	spec, st, b := exportAll(t, f, 1)

	f.c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		f.c.KeepControl()
		if toDst(f, r) {
			time.Sleep(3 * time.Millisecond)
		}
		return nil, nil, false
	})
	w := &produceWatch{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.seed...), kgo.WithHooks(w))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ip := []ImportPartition{{SourceTopic: "src", TargetTopic: "dst", Partition: 0, Sources: sources(st, 0, b)}}
	res, err := Import(ctx, cl, b, ImportSpec{Partitions: ip, BatchBytes: 4 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	most, early := w.most, w.early
	w.mu.Unlock()
	if most < 2 {
		t.Errorf("at most %d produce request in flight for one partition, want pipelining (2 or more)", most)
	}
	// A broker without the producer's state takes any first sequence: a
	// second batch that overtook the first would land before it.
	if early != 1 {
		t.Errorf("%d produce requests sent before the partition's first batch was acknowledged, want 1", early)
	}
	compareRestored(t, f, spec, res)
}

func toDst(f *fake, r kmsg.Request) bool {
	req := r.(*kmsg.ProduceRequest)
	return len(req.Topics) > 0 && (req.Topics[0].Topic == "dst" || req.Topics[0].TopicID == f.ids["dst"])
}

// Produce requests fail while others of the same partitions are in
// flight: some answered not-leader without landing (the batches behind
// them are then refused as out of order by the broker), some cut off by a
// closed connection. The retry rounds resend from the oldest batch in
// doubt, and every record lands exactly once, in order.
func TestImportRetryRoundsAreExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const parts = 3
	f := newFake(t, parts, "src", "dst")
	f.fill(t, "src", parts, 2000, 23)
	spec, st, b := exportAll(t, f, parts)

	var n, failed, cut atomic.Int32
	f.c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		f.c.KeepControl()
		if !toDst(f, r) {
			return nil, nil, false
		}
		req := r.(*kmsg.ProduceRequest)
		time.Sleep(time.Millisecond) // let the next requests queue behind this one
		switch k := n.Add(1); {
		case k%5 == 2 && failed.Load() < 8:
			failed.Add(1)
			resp := req.ResponseKind().(*kmsg.ProduceResponse)
			resp.Version = req.Version
			for _, rt := range req.Topics {
				t2 := kmsg.NewProduceResponseTopic()
				t2.Topic, t2.TopicID = rt.Topic, rt.TopicID
				for _, p := range rt.Partitions {
					rp := kmsg.NewProduceResponseTopicPartition()
					rp.Partition = p.Partition
					rp.ErrorCode = kerr.NotLeaderForPartition.Code
					t2.Partitions = append(t2.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, t2)
			}
			return resp, nil, true
		case k%11 == 7 && cut.Load() < 3:
			cut.Add(1)
			return nil, errors.New("connection cut by the test"), true
		}
		return nil, nil, false
	})
	var ip []ImportPartition
	for i, p := range spec.Partitions {
		ip = append(ip, ImportPartition{SourceTopic: "src", TargetTopic: "dst", Partition: p.Partition, Sources: sources(st, i, b)})
	}
	res, err := Import(ctx, f.cl, b, ImportSpec{Partitions: ip, BatchBytes: 4 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if failed.Load() == 0 || cut.Load() == 0 {
		t.Fatalf("the test injected %d not-leader answers and %d cut connections, want both", failed.Load(), cut.Load())
	}
	if res.Resent == 0 {
		t.Errorf("no batch resent after %d failed requests", failed.Load()+cut.Load())
	}
	compareRestored(t, f, spec, res)
}
