package kdata

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/storage/localdir"
)

func fakeCluster(t *testing.T, topics ...string) (*kgo.Client, [16]byte) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	md, err := kadm.NewClient(cl).Metadata(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	return cl, md.Topics[topics[0]].ID
}

// An export interrupted after its first segments and resumed from the last
// durable segment's NextOffset holds each record exactly once, in order.
// Guards against duplicates or holes at resume boundaries.
func TestExportResumeIsExact(t *testing.T) {
	ctx := context.Background()
	cl, id := fakeCluster(t, "t")
	var rs []*kgo.Record
	for i := 0; i < 3000; i++ {
		rs = append(rs, &kgo.Record{Topic: "t", Key: []byte(fmt.Sprint(i)), Value: make([]byte, 1000), Timestamp: time.UnixMilli(int64(i))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b, _ := localdir.New(t.TempDir())
	spec := ExportSpec{Topic: "t", TopicID: id, Partition: 0, From: 0, To: 3000, Dir: "d", SegmentBytes: 1 << 20,
		Compression: backupset.CompressionNone, FetchMaxBytes: 256 << 10}

	// First attempt: stop after two segments, as a killed worker would.
	var first []backupset.SegmentInfo
	errStop := fmt.Errorf("killed")
	_, err := Export(ctx, cl, b, spec, func(s backupset.SegmentInfo) error {
		first = append(first, s)
		if len(first) == 2 {
			return errStop
		}
		return nil
	}, nil)
	for _, s := range first {
		t.Logf("%+v", s)
	}
	if err != errStop || len(first) != 2 {
		t.Fatalf("first attempt: %v with %d segments", err, len(first))
	}
	spec.From = first[1].NextOffset
	res, err := Export(ctx, cl, b, spec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	segs := append(first, res.Segments...)
	var next int64
	for _, s := range segs {
		err := ReadSegment(ctx, b, s, spec.Compression, func(r *backupset.Record) error {
			if r.Offset != next || string(r.Key) != fmt.Sprint(next) || r.Timestamp != next {
				return fmt.Errorf("got record %d (key %s), want %d", r.Offset, r.Key, next)
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if next != 3000 {
		t.Fatalf("read %d records, want 3000", next)
	}
}

// A restore that finds records already landed skips exactly those, and
// translates group offsets through base + ordinal.
func TestRestoreSkipsLandedRecords(t *testing.T) {
	ctx := context.Background()
	src, id := fakeCluster(t, "s")
	var rs []*kgo.Record
	for i := 0; i < 100; i++ {
		rs = append(rs, &kgo.Record{Topic: "s", Key: []byte(fmt.Sprint(i)), Value: []byte("v")})
	}
	src.ProduceSync(ctx, rs...)
	b, _ := localdir.New(t.TempDir())
	res, err := Export(ctx, src, b, ExportSpec{Topic: "s", TopicID: id, To: 100, Dir: "d", SegmentBytes: 1 << 20,
		Compression: backupset.CompressionZstd, FetchMaxBytes: 1 << 20}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	dst, _ := fakeCluster(t, "d")
	// An earlier attempt landed 40 records before it died.
	var landed []*kgo.Record
	for i := 0; i < 40; i++ {
		landed = append(landed, &kgo.Record{Topic: "d", Key: []byte(fmt.Sprint(i)), Value: []byte("v")})
	}
	dst.ProduceSync(ctx, landed...)
	out, err := Restore(ctx, dst, b, RestoreSpec{Topic: "d", Base: 0, Segments: res.Segments, Compression: backupset.CompressionZstd,
		Translate: []int64{0, 57, 100}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Skipped != 40 || out.Produced != 60 || out.EndOffset != 100 {
		t.Errorf("skipped %d produced %d end %d, want 40 60 100", out.Skipped, out.Produced, out.EndOffset)
	}
	if out.Translated[0] != 0 || out.Translated[57] != 57 || out.Translated[100] != 100 {
		t.Errorf("translated %v", out.Translated)
	}
	// More records on the target than the backup holds: someone else writes.
	dst.ProduceSync(ctx, &kgo.Record{Topic: "d", Key: []byte("intruder")})
	if _, err := Restore(ctx, dst, b, RestoreSpec{Topic: "d", Base: 0, Segments: res.Segments, Compression: backupset.CompressionZstd}, nil); err == nil {
		t.Error("restore accepted a target with foreign records")
	}
}
