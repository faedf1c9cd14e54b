package kraftlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/kbatch"
)

// MaxBatchBytes bounds one batch a reader accepts. KRaft writes batches of
// at most 8 MiB (KafkaRaftClient.MAX_BATCH_SIZE_BYTES); a larger length is
// a damaged file, and must not drive an allocation.
const MaxBatchBytes = 64 << 20

// ErrDamaged reports bytes that are not well-formed metadata batches.
var ErrDamaged = errors.New("damaged metadata log")

// Batch is one record batch of a snapshot or a log segment.
type Batch struct {
	kbatch.Header
	// Raw is the batch as stored (valid until the next call to Next).
	Raw []byte
	// Position is where the batch starts in its file.
	Position int64
}

// Scanner reads the batches of a snapshot or segment file in order,
// checking each one's CRC and that offsets only grow.
type Scanner struct {
	r    *bufio.Reader
	buf  []byte
	pos  int64
	next int64 // the offset the next batch must start at or above
	// Truncated is set when the input ended inside a batch (a segment
	// read up to a size fixed while Kafka appended to it).
	Truncated bool
}

// NewScanner reads batches from r.
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{r: bufio.NewReaderSize(r, 256<<10), next: -1}
}

// Pos is the file position after the last batch returned.
func (s *Scanner) Pos() int64 { return s.pos }

// Next returns the next complete batch, or io.EOF after the last one (also
// when the input ends inside a batch: Truncated then says so).
func (s *Scanner) Next() (Batch, error) {
	var head [17]byte
	n, err := io.ReadFull(s.r, head[:])
	switch {
	case err == io.EOF:
		return Batch{}, io.EOF
	case err == io.ErrUnexpectedEOF:
		s.Truncated = true
		return Batch{}, io.EOF
	case err != nil:
		return Batch{}, err
	}
	_ = n
	length := int32(binary.BigEndian.Uint32(head[8:]))
	if length < kbatch.HeaderSize-12 || int64(length)+12 > MaxBatchBytes {
		return Batch{}, fmt.Errorf("%w: batch at position %d has length %d", ErrDamaged, s.pos, length)
	}
	if head[16] != 2 {
		return Batch{}, fmt.Errorf("%w: batch at position %d has magic %d (a metadata log holds v2 batches)", ErrDamaged, s.pos, head[16])
	}
	size := 12 + int(length)
	if cap(s.buf) < size {
		s.buf = make([]byte, size)
	}
	s.buf = s.buf[:size]
	copy(s.buf, head[:])
	if _, err := io.ReadFull(s.r, s.buf[17:]); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			s.Truncated = true
			return Batch{}, io.EOF
		}
		return Batch{}, err
	}
	entry, h, _, complete, err := kbatch.Next(s.buf)
	if err != nil || !complete {
		return Batch{}, fmt.Errorf("%w: batch at position %d: %v", ErrDamaged, s.pos, err)
	}
	if err := kbatch.CheckCRC(entry); err != nil {
		return Batch{}, fmt.Errorf("%w: batch at position %d: %v", ErrDamaged, s.pos, err)
	}
	if h.BaseOffset < s.next {
		return Batch{}, fmt.Errorf("%w: batch at position %d starts at offset %d, below the previous batch's end %d", ErrDamaged, s.pos, h.BaseOffset, s.next)
	}
	b := Batch{Header: h, Raw: entry, Position: s.pos}
	s.pos += int64(size)
	s.next = h.NextOffset()
	return b, nil
}

// CopyResult is what CopyBatches copied.
type CopyResult struct {
	Bytes   int64 `json:"bytes"`
	Batches int   `json:"batches"`
	// FirstOffset and NextOffset bound the copied records: NextOffset is
	// the offset after the last copied batch (-1, -1 when none).
	FirstOffset int64 `json:"first_offset"`
	NextOffset  int64 `json:"next_offset"`
	// LastEpoch is the leader epoch of the last copied batch.
	LastEpoch int32 `json:"last_epoch"`
	// Cut is set when the copy stopped at a batch that was still being
	// written when the limit was fixed.
	Cut bool `json:"cut,omitempty"`
}

// CopyBatches copies the complete batches among the first limit bytes of
// src to dst, each checked (CRC, offsets in order), and stops at the first
// batch that does not end within limit: the segment's end as it was when
// the copy began, so a batch Kafka was appending then is left out whole.
// Anything that is not a well-formed batch fails the copy.
func CopyBatches(dst io.Writer, src io.Reader, limit int64) (CopyResult, error) {
	res := CopyResult{FirstOffset: -1, NextOffset: -1}
	s := NewScanner(io.LimitReader(src, limit))
	for {
		b, err := s.Next()
		if err == io.EOF {
			res.Cut = s.Truncated
			return res, nil
		}
		if err != nil {
			return res, err
		}
		if _, err := dst.Write(b.Raw); err != nil {
			return res, err
		}
		if res.FirstOffset < 0 {
			res.FirstOffset = b.BaseOffset
		}
		res.NextOffset, res.LastEpoch = b.NextOffset(), b.LeaderEpoch
		res.Bytes += int64(len(b.Raw))
		res.Batches++
	}
}

// Record is one record of a batch. Nil Key or Value is null.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
}

var decompressor = kgo.DefaultDecompressor()

// Records decodes the records of a batch (decompressed if it is).
func (b Batch) Records() ([]Record, error) {
	body := b.Raw[kbatch.HeaderSize:]
	if c := b.Codec(); c != kbatch.CodecNone {
		d, err := decompressor.Decompress(body, kgo.CompressionCodecType(c))
		if err != nil {
			return nil, fmt.Errorf("%w: batch at offset %d: decompress: %v", ErrDamaged, b.BaseOffset, err)
		}
		body = d
	}
	out := make([]Record, 0, min(int(b.NumRecords), 1<<16))
	r := reader{b: body}
	for i := int32(0); i < b.NumRecords; i++ {
		length := r.varint()
		if r.err != nil || length < 0 || length > int64(len(r.b)-r.n) {
			return nil, fmt.Errorf("%w: batch at offset %d: record %d has length %d", ErrDamaged, b.BaseOffset, i, length)
		}
		rr := reader{b: r.b[r.n : r.n+int(length)]}
		r.n += int(length)
		rr.int8() // attributes
		ts := rr.varint()
		od := rr.varint()
		key := rr.varbytes()
		val := rr.varbytes()
		if hc := rr.varint(); hc > 0 {
			for k := int64(0); k < hc && rr.err == nil; k++ {
				rr.varbytes()
				rr.varbytes()
			}
		}
		if rr.err != nil {
			return nil, fmt.Errorf("%w: batch at offset %d: record %d: %v", ErrDamaged, b.BaseOffset, i, rr.err)
		}
		out = append(out, Record{Offset: b.BaseOffset + od, Timestamp: b.FirstTimestamp + ts, Key: key, Value: val})
	}
	return out, nil
}
