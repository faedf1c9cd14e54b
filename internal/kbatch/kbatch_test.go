package kbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func recs(base int64, n int) []Record {
	var out []Record
	for i := 0; i < n; i++ {
		r := Record{Offset: base + int64(i), Timestamp: 1_600_000_000_000 + int64(i)*7, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("value-%d", i))}
		switch i % 4 {
		case 1:
			r.Key = nil
		case 2:
			r.Value = nil // tombstone
			r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte{0, 1, 2}}, {Key: "h", Value: nil}, {Key: "", Value: []byte{}}}
		case 3:
			r.Value = []byte{}
		}
		out = append(out, r)
	}
	return out
}

// control builds a transaction marker batch of a producer (abort: type 0).
func control(offset, producer int64, abort bool) []byte {
	key := make([]byte, 4)
	if !abort {
		binary.BigEndian.PutUint16(key[2:], 1)
	}
	b := Build([]Record{{Offset: offset, Timestamp: 1, Key: key, Value: []byte{0, 0, 0, 0, 0, 0}}}, nil)
	setProducer(b, producer, attrControl|attrTransactional)
	return b
}

func setProducer(b []byte, producer int64, attrs uint16) {
	binary.BigEndian.PutUint64(b[43:], uint64(producer))
	binary.BigEndian.PutUint16(b[51:], 0)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|attrs)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}

func txn(base int64, n int, producer int64) []byte {
	b := Build(recs(base, n), nil)
	setProducer(b, producer, attrTransactional)
	return b
}

func TestBuildDecodesAsKafkaWould(t *testing.T) {
	t.Parallel()
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		comp, err := Compressor(codec)
		if err != nil {
			t.Fatal(err)
		}
		want := recs(100, 9)
		b := Build(want, comp)
		if err := CheckCRC(b); err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		entry, h, rest, complete, err := Next(b)
		if err != nil || !complete || len(rest) != 0 || len(entry) != len(b) {
			t.Fatalf("%s: Next: complete %v rest %d err %v", codec, complete, len(rest), err)
		}
		if h.BaseOffset != 100 || h.LastOffset() != 108 || h.NumRecords != 9 || !h.Contiguous() || h.Magic != 2 {
			t.Fatalf("%s: header %+v", codec, h)
		}
		got, err := Decode(b, 0)
		if err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %+v, want %+v", codec, got, want)
		}
		// minOffset leaves out what lies below it.
		if got, _ := Decode(b, 105); len(got) != 4 || got[0].Offset != 105 {
			t.Fatalf("%s: from 105 got %d records", codec, len(got))
		}
	}
}

func TestBuildKeepsNullsAndGaps(t *testing.T) {
	t.Parallel()
	// Offsets with gaps, as compaction leaves them.
	in := []Record{{Offset: 10, Timestamp: 5, Value: nil}, {Offset: 14, Timestamp: 3, Key: []byte{}}, {Offset: 20, Timestamp: 9}}
	b := Build(in, nil)
	_, h, _, _, _ := Next(b)
	if h.Contiguous() || h.LastOffset() != 20 || h.MaxTimestamp != 9 || h.FirstTimestamp != 5 {
		t.Fatalf("header %+v", h)
	}
	got, err := Decode(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("got %+v, want %+v", got, in)
	}
	if got[0].Value != nil || got[0].Key != nil || got[1].Key == nil {
		t.Fatal("null and empty not kept apart")
	}
}

func TestNextSplitsAndStopsAtPartial(t *testing.T) {
	t.Parallel()
	a, b := Build(recs(0, 3), nil), Build(recs(3, 2), nil)
	all := append(append([]byte{}, a...), b...)
	e, h, rest, ok, err := Next(all)
	if !ok || err != nil || !bytes.Equal(e, a) || h.NextOffset() != 3 {
		t.Fatalf("first: ok %v err %v next %d", ok, err, h.NextOffset())
	}
	// The second cut short: not complete, no error.
	if _, _, _, ok, err := Next(rest[:len(rest)-1]); ok || err != nil {
		t.Fatalf("partial: ok %v err %v", ok, err)
	}
	if _, _, _, ok, err := Next(rest[:10]); ok || err != nil {
		t.Fatalf("short header: ok %v err %v", ok, err)
	}
	bad := append([]byte{}, a...)
	bad[16] = 7
	if _, _, _, _, err := Next(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("magic 7: err %v", err)
	}
	binary.BigEndian.PutUint32(bad[8:], 0xFFFFFFF0)
	if _, _, _, _, err := Next(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("negative length: err %v", err)
	}
	flipped := append([]byte{}, a...)
	flipped[len(flipped)-1] ^= 1
	if err := CheckCRC(flipped); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped byte: %v", err)
	}
}

func TestRestampIsWhatAProducerWrites(t *testing.T) {
	t.Parallel()
	b := txn(500, 4, 77)
	Restamp(b, 12345, 3, 99)
	if err := CheckCRC(b); err != nil {
		t.Fatal(err)
	}
	_, h, _, _, _ := Next(b)
	if h.BaseOffset != 0 || h.ProducerID != 12345 || h.ProducerEpoch != 3 || h.BaseSequence != 99 || h.IsTransactional() || h.LeaderEpoch != -1 {
		t.Fatalf("header %+v", h)
	}
	got, err := Decode(b, 0)
	if err != nil || len(got) != 4 || got[0].Offset != 0 || string(got[0].Key) != "k0" {
		t.Fatalf("decode: %v %+v", err, got)
	}
}

// The read_committed rules of Kafka's own consumer, batch by batch.
func TestCommittedLeavesOutAbortedAndMarkers(t *testing.T) {
	t.Parallel()
	type step struct {
		batch []byte
		keep  bool
	}
	steps := []step{
		{Build(recs(0, 2), nil), true}, // plain
		{txn(2, 2, 7), false},          // producer 7, aborted below
		{txn(4, 1, 8), true},           // producer 8, committed
		{txn(5, 1, 7), false},          // still producer 7's aborted txn
		{control(6, 7, true), false},   // abort marker of 7
		{control(7, 8, false), false},  // commit marker of 8
		{txn(8, 2, 7), true},           // a new txn of 7, committed
		{control(10, 7, false), false}, // its commit marker
		{Build(recs(11, 1), nil), true},
	}
	c := NewCommitted([]Aborted{{ProducerID: 7, FirstOffset: 2}})
	for i, s := range steps {
		_, h, _, ok, err := Next(s.batch)
		if !ok || err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := c.Keep(h, s.batch); got != s.keep {
			t.Errorf("step %d (offset %d): keep %v, want %v", i, h.BaseOffset, got, s.keep)
		}
	}
}

func TestCompressorNames(t *testing.T) {
	t.Parallel()
	if c, err := Compressor("none"); c != nil || err != nil {
		t.Fatalf("none: %v %v", c, err)
	}
	if _, err := Compressor("brotli"); err == nil {
		t.Fatal("brotli accepted")
	}
}

func TestMergeKeepsEveryRecord(t *testing.T) {
	t.Parallel()
	a := recs(100, 3)
	b := recs(200, 4) // a gap between them, as control batches leave
	for i := range b {
		b[i].Timestamp -= 5000 // earlier than a's: deltas go negative
	}
	m, err := Merge([][]byte{Build(a, nil), Build(b, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCRC(m); err != nil {
		t.Fatal(err)
	}
	_, h, _, _, _ := Next(m)
	if h.NumRecords != 7 || !h.Contiguous() || h.BaseOffset != 0 {
		t.Fatalf("header %+v", h)
	}
	got, err := Decode(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]Record{}, a...), b...)
	Renumber(want, 0)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	comp, _ := Compressor("lz4")
	if _, err := Merge([][]byte{Build(a, comp)}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("compressed batch merged: %v", err)
	}
}
