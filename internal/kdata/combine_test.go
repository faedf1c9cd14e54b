package kdata

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbr-project/kbr/storage/localdir"
)

func sub(size int, parts ...partKey) *subRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30000
	for _, p := range parts {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = p.topic
		rt.TopicID = [16]byte{byte(len(p.topic))}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p.partition
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	return &subRequest{req: req, size: size}
}

func TestTakeGroup(t *testing.T) {
	t.Parallel()
	a0, a1, b0 := partKey{"a", 0}, partKey{"a", 1}, partKey{"bb", 0}
	for _, tc := range []struct {
		name        string
		waiting     []*subRequest
		group, rest int
	}{
		{"all fit", []*subRequest{sub(3, a0), sub(3, a1), sub(4, b0)}, 3, 0},
		{"over the bytes: the rest waits", []*subRequest{sub(6, a0), sub(6, a1), sub(4, b0)}, 2, 1},
		{"the first always goes, however large", []*subRequest{sub(20, a0), sub(1, a1)}, 1, 1},
		{"a partition twice: the second waits", []*subRequest{sub(1, a0), sub(1, a0, b0), sub(1, a1)}, 2, 1},
	} {
		g, r := takeGroup(tc.waiting, 10)
		if len(g) != tc.group || len(r) != tc.rest {
			t.Errorf("%s: group %d rest %d, want %d and %d", tc.name, len(g), len(r), tc.group, tc.rest)
		}
		if len(g) > 0 && g[0] != tc.waiting[0] {
			t.Errorf("%s: the first waiting request is not in the group", tc.name)
		}
	}
}

// A combined response goes back in parts: each request gets the answers
// to its own partitions, matched by topic name or (produce v13) by id.
func TestCombineSplit(t *testing.T) {
	t.Parallel()
	group := []*subRequest{sub(1, partKey{"a", 0}, partKey{"bb", 1}), sub(1, partKey{"a", 1})}
	req, _ := combine(group)
	if len(req.Topics) != 2 || len(req.Topics[0].Partitions) != 2 || len(req.Topics[1].Partitions) != 1 {
		t.Fatalf("combined request %+v", req.Topics)
	}
	resp := kmsg.NewPtrProduceResponse()
	for _, byID := range []bool{false, true} {
		resp.Topics = nil
		for _, rt := range req.Topics {
			t2 := kmsg.NewProduceResponseTopic()
			if byID {
				t2.TopicID = rt.TopicID
			} else {
				t2.Topic = rt.Topic
			}
			for _, p := range rt.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.BaseOffset = int64(100*len(rt.Topic)) + int64(p.Partition)
				t2.Partitions = append(t2.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, t2)
		}
		parts := split(group, resp)
		got := func(i int) map[int64]bool {
			m := map[int64]bool{}
			for _, t := range parts[i].Topics {
				for _, p := range t.Partitions {
					m[p.BaseOffset] = true
				}
			}
			return m
		}
		if g := got(0); len(g) != 2 || !g[100] || !g[201] {
			t.Errorf("by id %v: first request's answers %v, want a[0] and bb[1]", byID, g)
		}
		if g := got(1); len(g) != 1 || !g[101] {
			t.Errorf("by id %v: second request's answers %v, want a[1]", byID, g)
		}
	}
}

// Three imports on one client at once, into different partitions of one
// topic led by one broker: their produce requests go out combined (the
// broker is held for a moment on each produce, so that two imports' requests
// wait while the third's is served), and every record lands once, in
// order, as the roundtrip test compares them.
func TestConcurrentImportsCombine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const parts = 6
	f := newFakeN(t, 1, parts, "src", "dst")
	f.fill(t, "src", parts, 3000, 50)
	b, _ := localdir.New(t.TempDir())
	spec := ExportSpec{Unit: 0, Attempt: 1, Dir: "d", Partitions: f.cut(t, "src", parts), PackBytes: 1 << 20,
		Compression: "none", FetchMaxBytes: 1 << 20, PartitionMaxBytes: 256 << 10}
	st, err := Export(ctx, f.cl, b, spec, NewExportState(spec), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var combined, produces atomic.Int32
	f.c.KeepControl()
	f.c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.ProduceRequest)
		imports := map[int32]bool{}
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				imports[p.Partition/2] = true
			}
		}
		produces.Add(1)
		if len(imports) > 1 {
			combined.Add(1)
		}
		time.Sleep(5 * time.Millisecond)
		return nil, nil, false
	})
	var wg sync.WaitGroup
	results := make([]ImportResult, 3)
	errs := make([]error, 3)
	for h := 0; h < 3; h++ {
		var ip []ImportPartition
		for i := 2 * h; i < 2*h+2; i++ {
			ip = append(ip, ImportPartition{SourceTopic: "src", TargetTopic: "dst", Partition: int32(i), Sources: sources(st, i, b)})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[h], errs[h] = Import(ctx, f.cl, b, ImportSpec{Partitions: ip, BatchBytes: 8 << 10}, nil)
		}()
	}
	wg.Wait()
	for h := range errs {
		if errs[h] != nil {
			t.Fatalf("import %d: %v", h, errs[h])
		}
	}
	for i, p := range spec.Partitions {
		r := results[i/2].Partitions[i%2]
		src := f.consume(t, "src", p.Partition, p.From, p.To)
		dst := f.consume(t, "dst", p.Partition, 0, r.EndOffset)
		if len(src) != len(dst) || int64(len(dst)) != r.Records {
			t.Fatalf("partition %d: %d records in source, %d restored (result says %d)", i, len(src), len(dst), r.Records)
		}
		for k := range src {
			s, d := src[k], dst[k]
			if s.Key != d.Key || s.Value != d.Value || s.Null != d.Null || s.Headers != d.Headers || s.Timestamp != d.Timestamp {
				t.Fatalf("partition %d record %d: got %+v, want %+v", i, k, d, s)
			}
		}
	}
	if combined.Load() == 0 {
		t.Errorf("none of %d produce requests carried partitions of two imports", produces.Load())
	}
	combinersMu.Lock()
	_, left := combiners[f.cl]
	combinersMu.Unlock()
	if left {
		t.Errorf("the client's combiner is left after the imports ended")
	}
}
