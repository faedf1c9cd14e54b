package kdata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/localdir"
)

type fake struct {
	c    *kfake.Cluster
	cl   *kgo.Client
	adm  *kadm.Client
	seed []string
	ids  map[string][16]byte
}

func newFake(t *testing.T, partitions int32, topics ...string) *fake {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f := &fake{c: c, cl: cl, adm: kadm.NewClient(cl), seed: c.ListenAddrs(), ids: map[string][16]byte{}}
	md, err := f.adm.Metadata(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range topics {
		f.ids[tn] = md.Topics[tn].ID
	}
	return f
}

// fill produces n records per partition (keys, null values, headers, old
// timestamps), a committed and an aborted transaction in partition 0, in
// batches of about batch records each.
func (f *fake) fill(t *testing.T, topic string, partitions int32, n, batch int) {
	t.Helper()
	ctx := context.Background()
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < n; i += batch {
			var rs []*kgo.Record
			for k := i; k < min(n, i+batch); k++ {
				v := make([]byte, 100+k%50)
				for j := range v {
					v[j] = byte((k*7919 + j*104729 + int(p)*31) >> 3)
				}
				r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", k)), Value: v,
					Timestamp: time.UnixMilli(1_400_000_000_000 + int64(k)*1000)}
				switch k % 5 {
				case 1:
					r.Value = nil
				case 2:
					r.Key = nil
					r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte{0, 255}}, {Key: "h", Value: nil}}
				}
				rs = append(rs, r)
			}
			if err := f.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, commit := range []bool{true, false} {
		tx, err := kgo.NewClient(kgo.SeedBrokers(f.seed...), kgo.TransactionalID(fmt.Sprintf("tx-%v", commit)), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 3; k++ {
			tx.Produce(ctx, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprintf("tx-%v-%d", commit, k)), Value: []byte("in a transaction")}, nil)
		}
		if err := tx.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		tx.Close()
	}
	// A plain record after the transactions.
	if err := f.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Key: []byte("last"), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

type rec struct {
	Offset    int64
	Key       string
	Value     string
	Null      bool
	Headers   string
	Timestamp int64
}

// consume reads a partition read_committed, [start, end).
func (f *fake) consume(t *testing.T, topic string, p int32, start, end int64) []rec {
	t.Helper()
	if end <= start {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.seed...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(start)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []rec
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume %s[%d]: %v", topic, p, err)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end {
				done = true
				return
			}
			h := ""
			for _, x := range r.Headers {
				h += fmt.Sprintf("%s=%x/%v;", x.Key, x.Value, x.Value == nil)
			}
			out = append(out, rec{r.Offset, string(r.Key), string(r.Value), r.Value == nil, h, r.Timestamp.UnixMilli()})
			if r.Offset == end-1 {
				done = true
			}
		})
		if done {
			return out
		}
		// read_committed may stop short of end at a trailing marker.
		lso, _ := f.adm.ListCommittedOffsets(ctx, topic)
		if o, _ := lso.Lookup(topic, p); len(out) > 0 && out[len(out)-1].Offset+1 >= o.Offset-1 {
			return out
		}
	}
}

func (f *fake) cut(t *testing.T, topic string, partitions int32) []ExportPartition {
	t.Helper()
	ctx := context.Background()
	starts, err := f.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := f.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []ExportPartition
	for p := int32(0); p < partitions; p++ {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		out = append(out, ExportPartition{Topic: topic, TopicID: f.ids[topic], Partition: p, From: s.Offset, To: e.Offset})
	}
	return out
}

func sources(st ExportState, i int, b storage.Backend) []backupset.Source {
	src := backupset.Source{Manifest: "m", Format: backupset.FormatVersion}
	for _, ps := range st.Packs {
		for _, s := range ps.Slots {
			if s == i {
				src.Packs = append(src.Packs, ps.File)
			}
		}
	}
	return []backupset.Source{src}
}

// A unit of several partitions on three brokers, interrupted after its
// first pack and resumed from the durable state, then imported under a new
// name: every committed record once, in order, with key, value, headers and
// timestamp; the aborted transaction and the markers left out; group
// offsets translated exactly. Guards against holes or duplicates at resume
// and pack boundaries.
func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const parts = 4
	f := newFake(t, parts, "src", "dst")
	f.fill(t, "src", parts, 2000, 37)
	b, _ := localdir.New(t.TempDir())
	spec := ExportSpec{Unit: 3, Attempt: 1, Dir: "d", Partitions: f.cut(t, "src", parts), PackBytes: 64 << 10,
		Compression: backupset.CompressionZstd, FetchMaxBytes: 256 << 10, PartitionMaxBytes: 32 << 10}

	errKilled := errors.New("killed")
	commits := 0
	st, err := Export(ctx, f.cl, b, spec, NewExportState(spec), func(ExportState) error {
		commits++
		if commits == 2 {
			return errKilled
		}
		return nil
	}, nil)
	if !errors.Is(err, errKilled) {
		t.Fatalf("first attempt: %v", err)
	}
	if len(st.Packs) != 2 {
		t.Fatalf("first attempt left %d packs durable, want 2", len(st.Packs))
	}
	spec.Attempt = 2
	st, err = Export(ctx, f.cl, b, spec, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range spec.Partitions {
		if st.Next[i] != p.To {
			t.Errorf("partition %d: next %d, want %d", i, st.Next[i], p.To)
		}
	}
	names := map[string]bool{}
	for _, ps := range st.Packs {
		names[ps.File.Name] = true
	}
	if len(names) < 4 || !names[backupset.PackName("d", 3, 1, 0)] || !names[backupset.PackName("d", 3, 2, 2)] {
		t.Fatalf("packs %v", names)
	}

	// Import under the new name, translating a few offsets.
	var ip []ImportPartition
	translate := []int64{0, 5, 1999, 2000, 2003, 2010}
	for i, p := range spec.Partitions {
		ip = append(ip, ImportPartition{SourceTopic: "src", TargetTopic: "dst", Partition: p.Partition, Sources: sources(st, i, b), Translate: translate})
	}
	res, err := Import(ctx, f.cl, b, ImportSpec{Partitions: ip, BatchBytes: 16 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range spec.Partitions {
		src := f.consume(t, "src", p.Partition, p.From, p.To)
		dst := f.consume(t, "dst", p.Partition, 0, res.Partitions[i].EndOffset)
		if len(src) != len(dst) || int64(len(dst)) != res.Partitions[i].Records {
			t.Fatalf("partition %d: %d records in source, %d restored (result says %d)", i, len(src), len(dst), res.Partitions[i].Records)
		}
		pos := map[int64]int64{} // source offset -> target offset
		for k := range src {
			s, d := src[k], dst[k]
			if s.Key != d.Key || s.Value != d.Value || s.Null != d.Null || s.Headers != d.Headers || s.Timestamp != d.Timestamp {
				t.Fatalf("partition %d record %d: got %+v, want %+v", i, k, d, s)
			}
			pos[s.Offset] = d.Offset
		}
		for _, o := range translate {
			// The first restored record at or after o.
			want := res.Partitions[i].EndOffset
			keys := make([]int64, 0, len(pos))
			for so := range pos {
				keys = append(keys, so)
			}
			sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
			for _, so := range keys {
				if so >= o {
					want = pos[so]
					break
				}
			}
			if got := res.Partitions[i].Translated[o]; got != want {
				t.Errorf("partition %d: offset %d translated to %d, want %d", i, o, got, want)
			}
		}
		if i == 0 {
			for _, r := range dst {
				if bytes.HasPrefix([]byte(r.Key), []byte("tx-false")) {
					t.Fatalf("aborted record %q restored", r.Key)
				}
			}
			if dst[len(dst)-1].Key != "last" {
				t.Fatalf("last record %q", dst[len(dst)-1].Key)
			}
		}
	}
	if res.RawBatches == 0 {
		t.Errorf("no batch produced as stored: %d raw, %d rebuilt", res.RawBatches, res.Rebuilt)
	}
}

// An import cut short and run again produces only what had not landed.
func TestImportResumeIsExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFake(t, 2, "src", "dst")
	f.fill(t, "src", 2, 3000, 10)
	b, _ := localdir.New(t.TempDir())
	spec := ExportSpec{Unit: 0, Dir: "d", Partitions: f.cut(t, "src", 2), PackBytes: 1 << 20, FetchMaxBytes: 1 << 20, PartitionMaxBytes: 64 << 10}
	st, err := Export(ctx, f.cl, b, spec, NewExportState(spec), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ip []ImportPartition
	for i, p := range spec.Partitions {
		ip = append(ip, ImportPartition{SourceTopic: "src", TargetTopic: "dst", Partition: p.Partition, Sources: sources(st, i, b)})
	}
	cctx, cancel := context.WithCancel(ctx)
	_, err = Import(cctx, f.cl, b, ImportSpec{Partitions: ip, BatchBytes: 4 << 10, ThrottleBytesS: 400 << 10}, func(n int64) {
		if n > 1000 {
			cancel()
		}
	})
	if err == nil {
		t.Fatal("the throttled import was not cut short")
	}
	ends, _ := f.adm.ListEndOffsets(ctx, "dst")
	o0, _ := ends.Lookup("dst", 0)
	o1, _ := ends.Lookup("dst", 1)
	if o0.Offset+o1.Offset == 0 {
		t.Fatal("nothing landed before the cut")
	}
	res, err := Import(ctx, f.cl, b, ImportSpec{Partitions: ip, BatchBytes: 4 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range spec.Partitions {
		r := res.Partitions[i]
		if r.Skipped == 0 && i == 0 && o0.Offset > 0 {
			t.Errorf("partition %d: nothing skipped", i)
		}
		src := f.consume(t, "src", p.Partition, p.From, p.To)
		dst := f.consume(t, "dst", p.Partition, 0, r.EndOffset)
		if len(src) != len(dst) {
			t.Fatalf("partition %d: %d source records, %d restored", i, len(src), len(dst))
		}
		for k := range src {
			if src[k].Key != dst[k].Key || src[k].Value != dst[k].Value {
				t.Fatalf("partition %d record %d: %+v vs %+v", i, k, dst[k], src[k])
			}
		}
	}
}

// A point-in-time import stops at the first record stamped at or after T.
func TestImportPointInTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFake(t, 1, "src", "dst")
	f.fill(t, "src", 1, 500, 25)
	b, _ := localdir.New(t.TempDir())
	spec := ExportSpec{Dir: "d", Partitions: f.cut(t, "src", 1), PackBytes: 1 << 20, FetchMaxBytes: 1 << 20, PartitionMaxBytes: 1 << 20}
	st, err := Export(ctx, f.cl, b, spec, NewExportState(spec), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_400_000_000_000 + 333*1000) // record k333's time
	res, err := Import(ctx, f.cl, b, ImportSpec{ToTime: at, Partitions: []ImportPartition{{SourceTopic: "src", TargetTopic: "dst", Sources: sources(st, 0, b), Translate: []int64{400}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Partitions[0]
	if r.Records != 333 || r.CutOffset != 333 || r.Translated[400] != 333 {
		t.Fatalf("records %d cut %d translated %v, want 333, 333, 400->333", r.Records, r.CutOffset, r.Translated)
	}
}
