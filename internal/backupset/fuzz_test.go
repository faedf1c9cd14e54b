package backupset

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The fuzz targets of this package run from `make fuzz` for a few seconds
// each (and on their committed corpus in testdata/fuzz with every `go
// test`). Their properties: no panic, no allocation that a length read
// from the file drives past what the file holds, and no file name in a
// manifest that climbs out of the target root.

// allocated returns the bytes fn allocated (the whole process's count:
// the fuzzing engine adds a little, hence the slack in the bounds).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocSlack is what decoding any input may allocate beyond its size: the
// reader's buffer (256 KiB), a zstd decoder, one bounded eager read.
const allocSlack = 16 << 20

// segmentSeed builds a valid segment for the corpus.
func segmentSeed(t testing.TB, comp string, rs ...*Record) []byte {
	var buf bytes.Buffer
	w, err := NewSegmentWriter(&buf, comp)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Finish(100); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodedSize is how many bytes a zstd stream decodes to, up to limit
// (ok false past it, or when it does not decode with a 64 MiB window).
func decodedSize(data []byte, limit int64) (int64, bool) {
	zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return 0, false
	}
	defer zr.Close()
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, limit+1))
	return n, n <= limit
}

// FuzzSegmentReader feeds the v1 segment decoder arbitrary bytes, plain
// and zstd-compressed. Recovery points of format v1 stay readable, so
// this decoder reads files that may be damaged or crafted.
func FuzzSegmentReader(f *testing.F) {
	recs := []*Record{
		{Offset: 0, Timestamp: 1, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Key: "h", Value: []byte("x")}, {Key: "n", Value: nil}}},
		{Offset: 5, Timestamp: -1, Key: nil, Value: nil, LogAppendTime: true},
		{Offset: 6, Timestamp: 2, Key: []byte{}, Value: bytes.Repeat([]byte("ab"), 300)},
	}
	for _, comp := range []string{CompressionNone, CompressionZstd} {
		z := comp == CompressionZstd
		f.Add(segmentSeed(f, comp), z)
		f.Add(segmentSeed(f, comp, recs...), z)
		f.Add(segmentSeed(f, comp, recs[0]), z)
	}
	f.Add([]byte("KBRSEG1\n"), false)
	f.Add([]byte("KBRSEG1\n\x01\x00\x00\x00\x00"), false)
	f.Fuzz(func(t *testing.T, data []byte, z bool) {
		comp := CompressionNone
		budget := int64(len(data))
		if z {
			comp = CompressionZstd
			n, ok := decodedSize(data, 8<<20)
			if !ok {
				return // decodes past 8 MiB: legitimately large (and slow), not a length check's fault
			}
			budget += n
		}
		var records int
		var nextErr error
		got := allocated(func() {
			r, err := NewSegmentReader(bytes.NewReader(data), comp)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !z {
					t.Errorf("NewSegmentReader: %v, want ErrCorrupt", err)
				}
				return
			}
			defer r.Close()
			for {
				rec, err := r.Next()
				if err != nil {
					if err != io.EOF {
						nextErr = err
					}
					return
				}
				records++
				if rec == nil {
					t.Fatal("Next returned no record and no error")
				}
			}
		})
		if nextErr != nil && !errors.Is(nextErr, ErrCorrupt) && !z {
			t.Errorf("Next: %v, want ErrCorrupt", nextErr)
		}
		if limit := uint64(allocSlack + 16*budget); got > limit {
			t.Errorf("decoding %d bytes (%d decoded) allocated %d bytes, more than %d: a length read from the file drives an allocation", len(data), budget, got, limit)
		}
	})
}

// FuzzUnmarshalManifest feeds the manifest reader arbitrary bytes: it
// never panics, and a manifest it accepts names only files inside the
// target root, and encodes back to one that reads the same.
func FuzzUnmarshalManifest(f *testing.F) {
	m := &Manifest{Format: FormatVersion, Task: "t", TaskDir: "t_20250101T000000Z", Kind: KindIncremental,
		Base:        "t_20250101T000000Z/3.9_manifest_20250101T000000Z.json",
		DataSources: []string{SourceMetadata, SourceTopicData}, Compression: CompressionZstd,
		Metadata: &FileEntry{Name: "t_20250101T000000Z/3.9_metadata_20250102T000000Z.tar.gz", Size: 10, SHA256: "ab"},
		Partitions: []PartitionBackup{{Topic: "orders", Partition: 1, StartOffset: 0, EndOffset: 9, Records: 9,
			Segments: []SegmentInfo{{Name: "t_20250101T000000Z/3.9_topicdata_20250102T000000Z/orders/1/0.seg.zst", Size: 5, Records: 9, LastOffset: 8, NextOffset: 9}},
			Lost:     []OffsetRange{{From: 3, To: 4}}}}}
	m.ComputeTotals()
	b, err := m.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"format":1,"metadata":{"name":"../../etc/passwd"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m *Manifest
		var err error
		if got := allocated(func() { m, err = ReadManifest("t/x_manifest.json", data) }); got > uint64(allocSlack+64*len(data)) {
			t.Errorf("reading %d bytes allocated %d", len(data), got)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "t/x_manifest.json") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		for _, name := range m.Names() {
			if !insideRoot(name) {
				t.Errorf("accepted manifest names %q, outside the target root", name)
			}
		}
		if m.Format != FormatVersion {
			return // format 1 is read, never written
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := ReadManifest("again", again); err != nil {
			t.Errorf("a manifest read once does not read again: %v", err)
		}
	})
}

// insideRoot is the storage contract's rule for names, restated here so
// the property does not trust the code it checks.
func insideRoot(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." || part == "" {
			return false
		}
	}
	return true
}
