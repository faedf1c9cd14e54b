package backupset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Compression of segment files.
const (
	CompressionNone = "none"
	CompressionZstd = "zstd"
)

// Record is one Kafka record as backed up. Nil Key, Value or header Value
// mean null, which is not the same as empty: a nil Value is a tombstone.
type Record struct {
	Offset    int64
	Timestamp int64 // milliseconds since the epoch
	// LogAppendTime is true when the broker stamped the time; restores still
	// send Timestamp, and a topic configured for LogAppendTime restamps it.
	LogAppendTime bool
	Key, Value    []byte
	Headers       []Header
}

// Header is a record header; keys repeat and values are bytes.
type Header struct {
	Key   string
	Value []byte
}

var (
	segMagic = []byte("KBRSEG1\n")
	endMagic = []byte("KBREND1\n")
)

const (
	tagEnd    = 0
	tagRecord = 1
)

// SegmentInfo describes a finished segment file.
type SegmentInfo struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	FirstOffset int64  `json:"firstOffset"` // offset of the first record, or NextOffset when empty
	LastOffset  int64  `json:"lastOffset"`  // offset of the last record, -1 when empty
	// NextOffset is where the export stood after this segment: one past the
	// last batch read, which can be past LastOffset (compaction, markers).
	NextOffset   int64 `json:"nextOffset"`
	Records      int64 `json:"records"`
	PayloadBytes int64 `json:"payloadBytes"` // keys+values+headers, uncompressed
	// Compression is set on segments of a chain view (Flatten), whose
	// recovery points may differ; empty means the manifest's.
	Compression string `json:"compression,omitempty"`
}

// countHash counts and hashes what passes to the file.
type countHash struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// SegmentWriter encodes records into a segment file.
type SegmentWriter struct {
	file    *countHash
	zw      *zstd.Encoder
	bw      *bufio.Writer
	scratch []byte
	info    SegmentInfo
	started bool
}

// NewSegmentWriter starts a segment on w (usually a storage.Writer).
func NewSegmentWriter(w io.Writer, compression string) (*SegmentWriter, error) {
	ch := &countHash{w: w, h: sha256.New()}
	s := &SegmentWriter{file: ch, info: SegmentInfo{LastOffset: -1}}
	var dst io.Writer = ch
	switch compression {
	case CompressionZstd:
		zw, err := zstd.NewWriter(ch, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
		if err != nil {
			return nil, err
		}
		s.zw, dst = zw, zw
	case CompressionNone, "":
	default:
		return nil, fmt.Errorf("compression %q: want %q or %q", compression, CompressionNone, CompressionZstd)
	}
	s.bw = bufio.NewWriterSize(dst, 256<<10)
	if _, err := s.bw.Write(segMagic); err != nil {
		return nil, err
	}
	return s, nil
}

// Append adds a record; offsets must increase.
func (s *SegmentWriter) Append(r *Record) error {
	if s.started && r.Offset <= s.info.LastOffset {
		return fmt.Errorf("segment: offset %d after %d", r.Offset, s.info.LastOffset)
	}
	if !s.started {
		s.info.FirstOffset = r.Offset
		s.started = true
	}
	b := s.scratch[:0]
	b = append(b, tagRecord)
	b = binary.AppendVarint(b, r.Offset)
	b = binary.AppendVarint(b, r.Timestamp)
	if r.LogAppendTime {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendBytes(b, r.Key)
	b = appendBytes(b, r.Value)
	b = binary.AppendUvarint(b, uint64(len(r.Headers)))
	payload := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = appendBytes(b, h.Value)
		payload += len(h.Key) + len(h.Value)
	}
	if cap(b) <= 1<<20 {
		s.scratch = b
	}
	if _, err := s.bw.Write(b); err != nil {
		return err
	}
	s.info.LastOffset = r.Offset
	s.info.Records++
	s.info.PayloadBytes += int64(payload)
	return nil
}

// appendBytes writes a nullable byte string: varint length, -1 for null.
func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

// Records is how many records were appended so far.
func (s *SegmentWriter) Records() int64 { return s.info.Records }

// FileBytes is roughly how many bytes reached the file so far.
func (s *SegmentWriter) FileBytes() int64 { return s.file.n + int64(s.bw.Buffered()) }

// Finish writes the trailer and flushes. nextOffset is where reading
// continues after this segment. The caller commits the file afterwards.
func (s *SegmentWriter) Finish(nextOffset int64) (SegmentInfo, error) {
	if !s.started {
		s.info.FirstOffset = nextOffset
	}
	s.info.NextOffset = nextOffset
	b := []byte{tagEnd}
	b = binary.AppendUvarint(b, uint64(s.info.Records))
	b = binary.AppendVarint(b, nextOffset)
	b = append(b, endMagic...)
	if _, err := s.bw.Write(b); err != nil {
		return s.info, err
	}
	if err := s.bw.Flush(); err != nil {
		return s.info, err
	}
	if s.zw != nil {
		if err := s.zw.Close(); err != nil {
			return s.info, err
		}
	}
	s.info.Size = s.file.n
	s.info.SHA256 = hex.EncodeToString(s.file.h.Sum(nil))
	return s.info, nil
}

// SegmentReader decodes a segment file.
type SegmentReader struct {
	br         *bufio.Reader
	zr         *zstd.Decoder
	records    int64
	NextOffset int64 // valid after Next returned io.EOF
	done       bool
}

// ErrCorrupt reports a segment that does not decode.
var ErrCorrupt = errors.New("segment is corrupt")

// NewSegmentReader reads a segment from r.
func NewSegmentReader(r io.Reader, compression string) (*SegmentReader, error) {
	s := &SegmentReader{}
	src := r
	switch compression {
	case CompressionZstd:
		// kbr writes 1 MiB windows; the decoder allocates the window a
		// frame header asks for (up to 512 MiB by default) before any data.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(4<<20))
		if err != nil {
			return nil, err
		}
		s.zr, src = zr, zr
	case CompressionNone, "":
	default:
		return nil, fmt.Errorf("compression %q unknown", compression)
	}
	s.br = bufio.NewReaderSize(src, 256<<10)
	magic := make([]byte, len(segMagic))
	if _, err := io.ReadFull(s.br, magic); err != nil || !bytes.Equal(magic, segMagic) {
		s.Close()
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	return s, nil
}

// Close releases the decompressor.
func (s *SegmentReader) Close() {
	if s.zr != nil {
		s.zr.Close()
		s.zr = nil
	}
}

// Next returns the next record, or io.EOF after a complete trailer.
func (s *SegmentReader) Next() (*Record, error) {
	if s.done {
		return nil, io.EOF
	}
	tag, err := s.br.ReadByte()
	if err != nil {
		return nil, corrupt("tag", err)
	}
	switch tag {
	case tagEnd:
		n, err := binary.ReadUvarint(s.br)
		if err != nil {
			return nil, corrupt("trailer", err)
		}
		next, err := binary.ReadVarint(s.br)
		if err != nil {
			return nil, corrupt("trailer", err)
		}
		magic := make([]byte, len(endMagic))
		if _, err := io.ReadFull(s.br, magic); err != nil || !bytes.Equal(magic, endMagic) {
			return nil, fmt.Errorf("%w: bad trailer", ErrCorrupt)
		}
		if int64(n) != s.records {
			return nil, fmt.Errorf("%w: trailer counts %d records, read %d", ErrCorrupt, n, s.records)
		}
		s.NextOffset, s.done = next, true
		return nil, io.EOF
	case tagRecord:
	default:
		return nil, fmt.Errorf("%w: unknown tag %d", ErrCorrupt, tag)
	}
	r := &Record{}
	if r.Offset, err = binary.ReadVarint(s.br); err != nil {
		return nil, corrupt("offset", err)
	}
	if r.Timestamp, err = binary.ReadVarint(s.br); err != nil {
		return nil, corrupt("timestamp", err)
	}
	flags, err := s.br.ReadByte()
	if err != nil {
		return nil, corrupt("flags", err)
	}
	r.LogAppendTime = flags&1 != 0
	if r.Key, err = s.readBytes(); err != nil {
		return nil, corrupt("key", err)
	}
	if r.Value, err = s.readBytes(); err != nil {
		return nil, corrupt("value", err)
	}
	nh, err := binary.ReadUvarint(s.br)
	if err != nil || nh > 1<<20 {
		return nil, corrupt("header count", err)
	}
	if nh > 0 {
		// The count is read from the file: grow with the headers found.
		r.Headers = make([]Header, 0, min(nh, 64))
		for range nh {
			kl, err := binary.ReadUvarint(s.br)
			if err != nil || kl > 1<<30 {
				return nil, corrupt("header key", err)
			}
			k, err := s.readN(int64(kl))
			if err != nil {
				return nil, corrupt("header key", err)
			}
			v, err := s.readBytes()
			if err != nil {
				return nil, corrupt("header value", err)
			}
			r.Headers = append(r.Headers, Header{Key: string(k), Value: v})
		}
	}
	s.records++
	return r, nil
}

func (s *SegmentReader) readBytes() ([]byte, error) {
	n, err := binary.ReadVarint(s.br)
	if err != nil {
		return nil, err
	}
	if n == -1 {
		return nil, nil
	}
	if n < 0 || n > 1<<30 {
		return nil, fmt.Errorf("length %d", n)
	}
	return s.readN(n)
}

// eagerRead is the most readN allocates before the bytes are there.
const eagerRead = 1 << 20

// readN reads n bytes. n comes from the file, so past eagerRead the
// buffer grows with what is read: a corrupt length fails at the end of
// the file instead of allocating up to 1 GiB first.
func (s *SegmentReader) readN(n int64) ([]byte, error) {
	if n <= eagerRead {
		b := make([]byte, n)
		_, err := io.ReadFull(s.br, b)
		return b, err
	}
	var buf bytes.Buffer
	buf.Grow(eagerRead)
	if _, err := io.CopyN(&buf, s.br, n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

func corrupt(what string, err error) error {
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: reading %s: %v", ErrCorrupt, what, err)
}

// VerifyingReader passes r through and, at EOF, fails unless exactly size
// bytes with the given SHA-256 were read.
type VerifyingReader struct {
	r      io.Reader
	h      hash.Hash
	n      int64
	size   int64
	sum    string
	name   string
	failed error
}

// NewVerifyingReader wraps r, checking it against the manifest entry.
func NewVerifyingReader(r io.Reader, name string, size int64, sha string) *VerifyingReader {
	return &VerifyingReader{r: r, h: sha256.New(), size: size, sum: sha, name: name}
}

// ChecksumError names a file whose content does not match the manifest.
type ChecksumError struct {
	Name              string
	WantSize, GotSize int64
	WantSHA, GotSHA   string
}

func (e *ChecksumError) Error() string {
	if e.WantSize != e.GotSize {
		return fmt.Sprintf("%s: size %d, manifest says %d", e.Name, e.GotSize, e.WantSize)
	}
	return fmt.Sprintf("%s: sha256 %s, manifest says %s", e.Name, e.GotSHA, e.WantSHA)
}

func (v *VerifyingReader) Read(p []byte) (int, error) {
	if v.failed != nil {
		return 0, v.failed
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		v.failed = &ChecksumError{Name: v.name, WantSize: v.size, GotSize: v.n}
		return n, v.failed
	}
	if err == io.EOF {
		got := hex.EncodeToString(v.h.Sum(nil))
		if v.n != v.size || got != v.sum {
			v.failed = &ChecksumError{Name: v.name, WantSize: v.size, GotSize: v.n, WantSHA: v.sum, GotSHA: got}
			return n, v.failed
		}
	}
	return n, err
}

// Drain reads the rest so the checksum is checked even when the decoder
// stopped before the end of the file.
func (v *VerifyingReader) Drain() error {
	_, err := io.Copy(io.Discard, v)
	return err
}
