package backupset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// Every field survives a segment round trip, and null stays distinct from
// empty (a nil value is a tombstone; an empty one is not).
func TestSegmentRoundTrip(t *testing.T) {
	records := []*Record{
		{Offset: 3, Timestamp: 1425445567000, Key: nil, Value: []byte("null key")},
		{Offset: 4, Timestamp: -1, Key: []byte{}, Value: nil},
		{Offset: 9, Timestamp: 1, Key: []byte{0, 0xff}, Value: []byte{}, LogAppendTime: true,
			Headers: []Header{{Key: "h", Value: []byte("a")}, {Key: "h", Value: nil}, {Key: "", Value: []byte{}}, {Key: "h", Value: []byte{0}}}},
		{Offset: 10, Timestamp: 2, Key: []byte("big"), Value: bytes.Repeat([]byte("x"), 3<<20)},
	}
	for _, comp := range []string{CompressionNone, CompressionZstd} {
		t.Run(comp, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewSegmentWriter(&buf, comp)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range records {
				if err := w.Append(r); err != nil {
					t.Fatal(err)
				}
			}
			info, err := w.Finish(12)
			if err != nil {
				t.Fatal(err)
			}
			if info.Records != 4 || info.FirstOffset != 3 || info.LastOffset != 10 || info.NextOffset != 12 || info.Size != int64(buf.Len()) {
				t.Errorf("info %+v", info)
			}
			vr := NewVerifyingReader(bytes.NewReader(buf.Bytes()), "s", info.Size, info.SHA256)
			r, err := NewSegmentReader(vr, comp)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i, want := range records {
				got, err := r.Next()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if got.Offset != want.Offset || got.Timestamp != want.Timestamp || got.LogAppendTime != want.LogAppendTime ||
					!sameBytes(got.Key, want.Key) || !sameBytes(got.Value, want.Value) || len(got.Headers) != len(want.Headers) {
					t.Fatalf("record %d: got %+v, want %+v", i, got, want)
				}
				for j := range want.Headers {
					if got.Headers[j].Key != want.Headers[j].Key || !sameBytes(got.Headers[j].Value, want.Headers[j].Value) {
						t.Errorf("record %d header %d: got %+v, want %+v", i, j, got.Headers[j], want.Headers[j])
					}
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("after the last record: %v, want io.EOF", err)
			}
			if r.NextOffset != 12 {
				t.Errorf("next offset %d, want 12", r.NextOffset)
			}
			if err := vr.Drain(); err != nil {
				t.Errorf("checksum: %v", err)
			}
		})
	}
}

func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// A flipped byte or a truncated file is caught by name, never decoded as data.
func TestSegmentDamage(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewSegmentWriter(&buf, CompressionNone)
	for i := int64(0); i < 100; i++ {
		w.Append(&Record{Offset: i, Value: []byte("value")})
	}
	info, _ := w.Finish(100)
	data := buf.Bytes()

	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 1
	vr := NewVerifyingReader(bytes.NewReader(flipped), "seg-a", info.Size, info.SHA256)
	_, err := io.Copy(io.Discard, vr)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Name != "seg-a" {
		t.Errorf("flipped byte: got %v, want a ChecksumError naming seg-a", err)
	}

	r, err := NewSegmentReader(bytes.NewReader(data[:len(data)-3]), CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err = r.Next()
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated segment: got %v, want ErrCorrupt", err)
	}
}

func TestNames(t *testing.T) {
	name := "orders_20260102T030405Z/3.9_manifest_20260102T040506Z.json"
	dir, v, at, ok := ParseManifestName(name)
	if !ok || dir != "orders_20260102T030405Z" || v != "3.9" || at.Format(TimeFormat) != "20260102T040506Z" {
		t.Errorf("ParseManifestName(%q) = %q %q %v %v", name, dir, v, at, ok)
	}
	if task, _, ok := ParseTaskDir(dir); !ok || task != "orders" {
		t.Errorf("ParseTaskDir(%q) = %q %v", dir, task, ok)
	}
	for _, bad := range []string{"", "a_b", "-x", "x/y"} {
		if ValidTaskName(bad) == nil {
			t.Errorf("task name %q accepted", bad)
		}
	}
}

// TestSegmentReaderLengthsDoNotDriveAllocations guards what the fuzzer
// found (testdata/fuzz/FuzzSegmentReader): a few corrupt bytes claimed a
// 51 MB key, a million headers or a 32 MiB zstd window, and the reader
// allocated all of it before finding the file too short. Each must now be
// refused as corrupt within a small allocation.
func TestSegmentReaderLengthsDoNotDriveAllocations(t *testing.T) {
	rec := func(tail ...byte) []byte { // header, then tag, offset 0, timestamp 0, flags 0
		return append([]byte("KBRSEG1\n\x01\x00\x00\x00"), tail...)
	}
	uvarint := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	varint := func(v int64) []byte { return binary.AppendVarint(nil, v) }
	for _, c := range []struct {
		name string
		data []byte
		comp string
	}{
		{"key of 51 MB (the fuzzer's input)", []byte("KBRSEG1\n\x01000\x90\xe9\xfd0"), CompressionNone},
		{"value of 1 GiB", rec(append(varint(-1), varint(1<<30)...)...), CompressionNone},
		{"a million headers", rec(append(append(varint(-1), varint(-1)...), uvarint(1<<20)...)...), CompressionNone},
		{"header key of 1 GiB", rec(append(append(append(varint(-1), varint(-1)...), uvarint(1)...), uvarint(1<<30)...)...), CompressionNone},
		{"zstd window of 32 MiB (the fuzzer's input)", []byte("(\xb5/\xfd\x04x\x00\x00\x00"), CompressionZstd},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			got := allocated(func() {
				var r *SegmentReader
				if r, err = NewSegmentReader(bytes.NewReader(c.data), c.comp); err != nil {
					return
				}
				defer r.Close()
				for err == nil {
					_, err = r.Next()
				}
			})
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
			if got > 8<<20 {
				t.Errorf("%d bytes of input allocated %d bytes", len(c.data), got)
			}
		})
	}
}
