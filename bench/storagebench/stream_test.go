package main

import (
	"bytes"
	"io"
	"testing"
)

// The stream must give the same bytes whatever the size of the reads, and
// differ from chunk to chunk.
func TestStreamIsReproducible(t *testing.T) {
	const size = 3*streamChunk + 12345
	whole, err := io.ReadAll(newStream(size))
	if err != nil || len(whole) != size {
		t.Fatalf("read %d bytes, %v", len(whole), err)
	}
	for _, n := range []int{1, 7, 4096, streamChunk - 1, streamChunk + 3} {
		var got bytes.Buffer
		buf := make([]byte, n)
		if _, err := io.CopyBuffer(onlyWriter{&got}, onlyReader{newStream(size)}, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), whole) {
			t.Fatalf("reads of %d bytes give other bytes", n)
		}
	}
	if bytes.Equal(whole[:streamChunk], whole[streamChunk:2*streamChunk]) {
		t.Fatal("two chunks are alike")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "256MiB": 256 << 20, "256KiB": 256 << 10, "1MB": 1e6, "100": 100, "1.5GiB": 3 << 29} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
