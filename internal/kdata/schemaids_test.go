package kdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/kbatch"
	"github.com/kbr-project/kbr/internal/schemareg/wire"
	"github.com/kbr-project/kbr/storage/localdir"
)

// framed is payload in the wire format of schema id.
func framed(id int32, payload string) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, payload...)
}

// fillFramed writes n records per partition, half through an uncompressed
// producer and half through a zstd one: values framed with ids 1..4 (4 is
// outside the remap below), every third key framed with id 7, the rest
// plain keys, a tombstone, a value of 0 bytes under 5 and one that starts
// with 1 (no prefix). It returns the ids written.
func fillFramed(t *testing.T, f *fake, topic string, partitions int32, n int) []int32 {
	t.Helper()
	ctx := context.Background()
	zstd, err := kgo.NewClient(kgo.SeedBrokers(f.seed...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer zstd.Close()
	plain, err := kgo.NewClient(kgo.SeedBrokers(f.seed...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for p := int32(0); p < partitions; p++ {
		for half, cl := range []*kgo.Client{plain, zstd} {
			var rs []*kgo.Record
			for k := half * n / 2; k < (half+1)*n/2; k++ {
				r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", k)),
					Value: framed(int32(1+k%4), fmt.Sprintf("payload %d", k)), Timestamp: time.UnixMilli(1_500_000_000_000 + int64(k)),
					Headers: []kgo.RecordHeader{{Key: "h", Value: framed(9, "header: never rewritten")}}}
				switch k % 7 {
				case 1:
					r.Value = nil
				case 2:
					r.Value = []byte{0, 0, 1}
				case 3:
					r.Value = append([]byte{1}, framed(2, "not framed")...)
				}
				if k%3 == 0 {
					r.Key = framed(7, fmt.Sprintf("key %d", k))
				}
				rs = append(rs, r)
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return []int32{1, 2, 3, 4, 7}
}

// The export, asked to, collects every schema id the records carry, in key
// or value, compressed or not, and keeps them across a resumed attempt; the
// import rewrites them through the map in keys and values only, leaves
// unframed bytes, headers and ids the map lacks alone, and stays exact:
// every record once, in order, with its timestamp, offsets translated as
// without the remap, nothing produced again when run a second time.
func TestSchemaIDsScanAndRemap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const parts = 2
	f := newFake(t, parts, "src", "dst")
	want := fillFramed(t, f, "src", parts, 600)
	b, _ := localdir.New(t.TempDir())
	spec := ExportSpec{Dir: "d", Partitions: f.cut(t, "src", parts), PackBytes: 8 << 10, FetchMaxBytes: 64 << 10,
		PartitionMaxBytes: 8 << 10, ScanSchemaIDs: true}
	errKilled := errors.New("killed")
	commits := 0
	st, err := Export(ctx, f.cl, b, spec, NewExportState(spec), func(ExportState) error {
		if commits++; commits == 2 {
			return errKilled
		}
		return nil
	}, nil)
	if !errors.Is(err, errKilled) {
		t.Fatalf("first attempt: %v", err)
	}
	if st.SchemaIDs.Len() == 0 {
		t.Fatal("the durable state of the first attempt holds no schema ids")
	}
	spec.Attempt = 1
	if st, err = Export(ctx, f.cl, b, spec, st, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := st.SchemaIDs.IDs(); !slices.Equal(got, want) {
		t.Fatalf("schema ids %v, want %v", got, want)
	}
	// Without the option nothing is scanned.
	plainSpec := spec
	plainSpec.ScanSchemaIDs, plainSpec.Dir = false, "plain"
	if pst, err := Export(ctx, f.cl, b, plainSpec, NewExportState(plainSpec), nil, nil); err != nil || pst.SchemaIDs != nil {
		t.Fatalf("export without the option: ids %v, err %v", pst.SchemaIDs, err)
	}

	remap := map[int32]int32{1: 101, 2: 102, 3: 3, 7: 70007}
	translate := []int64{0, 17, 299, 599, 600}
	var ip []ImportPartition
	for i, p := range spec.Partitions {
		ip = append(ip, ImportPartition{SourceTopic: "src", TargetTopic: "dst", Partition: p.Partition, Sources: sources(st, i, b), Translate: translate})
	}
	res, err := Import(ctx, f.cl, b, ImportSpec{Partitions: ip, RemapSchemaIDs: remap}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rewritten, unmapped int64
	for i, p := range spec.Partitions {
		src := f.consume(t, "src", p.Partition, p.From, p.To)
		dst := f.consume(t, "dst", p.Partition, 0, res.Partitions[i].EndOffset)
		if len(src) != len(dst) {
			t.Fatalf("partition %d: %d records in source, %d restored", i, len(src), len(dst))
		}
		for k := range src {
			s, d := src[k], dst[k]
			wk, wv := []byte(s.Key), []byte(s.Value)
			if s.Key == "" && len(wk) == 0 {
				wk = nil
			}
			for _, x := range [][]byte{wk, wv} {
				if pre, done := wire.Rewrite(x, remap); done {
					rewritten++
				} else if pre {
					unmapped++
				}
			}
			if string(wk) != d.Key || string(wv) != d.Value || s.Null != d.Null || s.Headers != d.Headers || s.Timestamp != d.Timestamp {
				t.Fatalf("partition %d record %d: got %+v, want key %q value %q (from %+v)", i, k, d, wk, wv, s)
			}
			if d.Offset != int64(k) {
				t.Fatalf("partition %d record %d landed at offset %d", i, k, d.Offset)
			}
		}
		for _, o := range translate {
			if got, want := res.Partitions[i].Translated[o], min(o, int64(len(src))); got != want {
				t.Errorf("partition %d: offset %d translated to %d, want %d", i, o, got, want)
			}
		}
	}
	if res.SchemaIDsRewritten != rewritten || res.SchemaIDsUnmapped != unmapped || rewritten == 0 || unmapped == 0 {
		t.Errorf("counted %d rewritten, %d unmapped; want %d, %d", res.SchemaIDsRewritten, res.SchemaIDsUnmapped, rewritten, unmapped)
	}
	if res.RawBatches != 0 {
		t.Errorf("%d batches produced as stored: a remap must rebuild every batch", res.RawBatches)
	}
	again, err := Import(ctx, f.cl, b, ImportSpec{Partitions: ip, RemapSchemaIDs: remap}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again.Partitions {
		if r.Produced != 0 || r.Skipped != res.Partitions[i].Records {
			t.Errorf("partition %d run again: produced %d, skipped %d of %d", i, r.Produced, r.Skipped, res.Partitions[i].Records)
		}
	}
}

// A batch that counts more records than it holds is refused, not read past its end.
func TestScanSchemaIDsCorrupt(t *testing.T) {
	t.Parallel()
	recs := []kbatch.Record{{Offset: 0, Key: framed(5, "k"), Value: framed(6, "v")}, {Offset: 1, Value: framed(8, "v")}}
	batch := kbatch.Build(recs, nil)
	var set wire.IDSet
	if err := scanSchemaIDs(&set, [][]byte{batch}); err != nil || !slices.Equal(set.IDs(), []int32{5, 6, 8}) {
		t.Fatalf("ids %v, err %v", set.IDs(), err)
	}
	bad := slices.Clone(batch)
	binary.BigEndian.PutUint32(bad[57:], 3) // counts a record the batch does not hold
	if err := scanSchemaIDs(&wire.IDSet{}, [][]byte{bad}); !errors.Is(err, kbatch.ErrCorrupt) {
		t.Fatalf("corrupt batch: %v, want ErrCorrupt", err)
	}
}

// What scanning costs the export, per MB of batches (measured, not asserted):
//
//	go test -run '^$' -bench BenchmarkScanSchemaIDs ./internal/kdata
func BenchmarkScanSchemaIDs(b *testing.B) {
	var recs []kbatch.Record
	for k := 0; k < 1000; k++ {
		recs = append(recs, kbatch.Record{Offset: int64(k), Key: []byte(fmt.Sprintf("key-%d", k)), Value: framed(int32(k%20), string(make([]byte, 200)))})
	}
	for _, codec := range []string{"none", "lz4", "zstd"} {
		comp, _ := kbatch.Compressor(codec)
		batch := kbatch.Build(recs, comp)
		raw := 0
		for _, r := range recs {
			raw += len(r.Key) + len(r.Value)
		}
		b.Run(codec+"/scan", func(b *testing.B) {
			b.SetBytes(int64(raw))
			for i := 0; i < b.N; i++ {
				var set wire.IDSet
				if err := scanSchemaIDs(&set, [][]byte{batch}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(codec+"/decode", func(b *testing.B) {
			b.SetBytes(int64(raw))
			for i := 0; i < b.N; i++ {
				if _, err := kbatch.Decode(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
