package backupset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

// writePack writes a pack with two partitions' chunks and returns its bytes.
func writePack(t *testing.T, compression string) ([]byte, *PackIndex) {
	t.Helper()
	var buf bytes.Buffer
	pw, err := NewPackWriter(&buf, compression)
	if err != nil {
		t.Fatal(err)
	}
	a, b := TopicPartition{"orders", 0}, TopicPartition{"orders", 1}
	chunks := []struct {
		tp     TopicPartition
		pieces [][]byte
	}{
		{a, [][]byte{[]byte("batch-a0"), []byte("batch-a1")}},
		{b, [][]byte{bytes.Repeat([]byte("b"), 5000)}},
		{a, [][]byte{[]byte("batch-a2")}},
	}
	for i, c := range chunks {
		if err := pw.Add(c.tp, ChunkInfo{First: int64(i * 10), Next: int64(i*10 + 10), Records: 3, MaxTimestamp: int64(i)}, c.pieces...); err != nil {
			t.Fatal(err)
		}
	}
	size, sha, ix, err := pw.Finish()
	if err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if size != int64(len(data)) {
		t.Fatalf("size %d, wrote %d", size, len(data))
	}
	sum := sha256.Sum256(data)
	if sha != hex.EncodeToString(sum[:]) {
		t.Fatal("sha256 differs from the bytes written")
	}
	return data, ix
}

func readIndex(t *testing.T, data []byte) (*PackIndex, error) {
	t.Helper()
	off, n, crc, err := ParsePackFooter(data[len(data)-PackFooterSize:], int64(len(data)))
	if err != nil {
		return nil, err
	}
	return ParsePackIndex(data[off:off+n], crc, off)
}

func TestPackRoundTrip(t *testing.T) {
	t.Parallel()
	for _, comp := range []string{CompressionNone, CompressionZstd} {
		data, written := writePack(t, comp)
		ix, err := readIndex(t, data)
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if len(ix.Chunks) != 3 || len(written.Chunks) != 3 {
			t.Fatalf("%s: %d chunks", comp, len(ix.Chunks))
		}
		a := ix.ChunksOf("orders", 0)
		if len(a) != 2 || a[0].First != 0 || a[1].First != 20 || a[1].Next != 30 {
			t.Fatalf("%s: chunks of orders[0]: %+v", comp, a)
		}
		var got []string
		for _, c := range append(a, ix.ChunksOf("orders", 1)...) {
			b, err := ReadChunk(bytes.NewReader(data[c.Offset:]), c, nil)
			if err != nil {
				t.Fatalf("%s: %v", comp, err)
			}
			got = append(got, string(b))
		}
		if got[0] != "batch-a0batch-a1" || got[1] != "batch-a2" || got[2] != string(bytes.Repeat([]byte("b"), 5000)) {
			t.Fatalf("%s: chunks read back as %q", comp, got)
		}
		if comp == CompressionZstd {
			if b := ix.ChunksOf("orders", 1)[0]; b.Codec != ChunkZstd || b.Length >= b.Raw {
				t.Errorf("zstd chunk stored %d of %d bytes", b.Length, b.Raw)
			}
		}
		if len(ix.ChunksOf("orders", 9)) != 0 {
			t.Error("chunks of a partition not in the pack")
		}
	}
}

func TestPackDamage(t *testing.T) {
	t.Parallel()
	data, _ := writePack(t, CompressionNone)
	// A flipped byte in a chunk: the chunk's CRC says so.
	ix, _ := readIndex(t, data)
	c := ix.Chunks[1]
	bad := append([]byte(nil), data...)
	bad[c.Offset+7] ^= 0xFF
	if _, err := ReadChunk(bytes.NewReader(bad[c.Offset:]), c, nil); !errors.Is(err, ErrPackCorrupt) {
		t.Errorf("flipped chunk byte: %v", err)
	}
	// A flipped byte in the index.
	off, _, _, _ := ParsePackFooter(data[len(data)-PackFooterSize:], int64(len(data)))
	bad = append([]byte(nil), data...)
	bad[off+3] ^= 0x01
	if _, err := readIndex(t, bad); !errors.Is(err, ErrPackCorrupt) {
		t.Errorf("flipped index byte: %v", err)
	}
	// Truncated: the footer no longer adds up.
	if _, err := readIndex(t, data[:len(data)-1]); !errors.Is(err, ErrPackCorrupt) {
		t.Errorf("truncated pack: %v", err)
	}
	// A short read of a chunk.
	if _, err := ReadChunk(bytes.NewReader(data[c.Offset:c.Offset+10]), c, nil); !errors.Is(err, ErrPackCorrupt) {
		t.Errorf("short chunk: %v", err)
	}
}
