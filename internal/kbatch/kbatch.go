// Package kbatch reads and writes Kafka record batches as bytes, the way
// brokers store and serve them (the v2 "RecordBatch" of the Kafka protocol),
// so that topic data can be backed up and restored without decoding and
// re-encoding every record.
//
// A v2 batch is a 61-byte header followed by its records, which may be
// compressed as one block:
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 (2)
//	crc uint32 (CRC-32C of everything from attributes on) | attributes int16
//	lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64
//	producerId int64 | producerEpoch int16 | baseSequence int32 | records int32
//	records...
//
// The package does only what needs no record: split a fetch response's
// bytes into complete batches, tell committed from aborted ones, and restamp
// a batch for a new idempotent producer. Where records must be touched (a
// batch straddling a range's edge, old message formats, compacted batches
// whose offsets are no longer contiguous, LogAppendTime batches, a point in
// time inside a batch) Decode and Build do it.
package kbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a v2 batch header.
const HeaderSize = 61

// Attribute bits of a v2 batch.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Codec numbers of the attributes' low bits.
const (
	CodecNone   = 0
	CodecGzip   = 1
	CodecSnappy = 2
	CodecLz4    = 3
	CodecZstd   = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt reports bytes that are not a well-formed batch.
var ErrCorrupt = errors.New("corrupt record batch")

// Header is a batch's header. For the old message formats (magic 0 and 1)
// only BaseOffset, Length and Magic are set, and the entry is one message
// (possibly a compressed wrapper of several).
type Header struct {
	BaseOffset      int64
	Length          int32 // bytes after the length field
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attrs           int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// Size is the batch's size in bytes, header included.
func (h Header) Size() int { return 12 + int(h.Length) }

// LastOffset is the offset of the batch's last record as written: it stays
// when compaction removes that record, so reading resumes after it.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the batch's compression codec number.
func (h Header) Codec() int { return int(h.Attrs & attrCodecMask) }

// IsControl reports a transaction marker batch.
func (h Header) IsControl() bool { return h.Attrs&attrControl != 0 }

// IsTransactional reports a batch written inside a transaction.
func (h Header) IsTransactional() bool { return h.Attrs&attrTransactional != 0 }

// LogAppendTime reports a batch whose records all carry the broker's append
// time, MaxTimestamp, instead of their own.
func (h Header) LogAppendTime() bool { return h.Attrs&attrLogAppendTime != 0 }

// Contiguous reports a batch whose records hold every offset from BaseOffset
// to LastOffset, as a producer writes them; compaction leaves gaps.
func (h Header) Contiguous() bool { return int64(h.NumRecords) == int64(h.LastOffsetDelta)+1 }

// Next splits the first entry off b: a v2 batch, or one message of the old
// formats. complete is false when b ends inside it (a fetch response's last
// batch is often cut short by the size limit); the entry and rest are then
// nil. err reports bytes that cannot be an entry at all.
func Next(b []byte) (entry []byte, h Header, rest []byte, complete bool, err error) {
	if len(b) < 17 {
		return nil, h, nil, false, nil
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[0:]))
	h.Length = int32(binary.BigEndian.Uint32(b[8:]))
	h.Magic = int8(b[16])
	if h.Length < 0 {
		return nil, h, nil, false, fmt.Errorf("%w: length %d at offset %d", ErrCorrupt, h.Length, h.BaseOffset)
	}
	size := 12 + int(h.Length)
	if len(b) < size {
		return nil, h, nil, false, nil
	}
	switch h.Magic {
	case 2:
		if size < HeaderSize {
			return nil, h, nil, false, fmt.Errorf("%w: batch of %d bytes at offset %d", ErrCorrupt, size, h.BaseOffset)
		}
		h.LeaderEpoch = int32(binary.BigEndian.Uint32(b[12:]))
		h.CRC = binary.BigEndian.Uint32(b[17:])
		h.Attrs = int16(binary.BigEndian.Uint16(b[21:]))
		h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[23:]))
		h.FirstTimestamp = int64(binary.BigEndian.Uint64(b[27:]))
		h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[35:]))
		h.ProducerID = int64(binary.BigEndian.Uint64(b[43:]))
		h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[51:]))
		h.BaseSequence = int32(binary.BigEndian.Uint32(b[53:]))
		h.NumRecords = int32(binary.BigEndian.Uint32(b[57:]))
		if h.LastOffsetDelta < 0 || h.NumRecords < 0 {
			return nil, h, nil, false, fmt.Errorf("%w: batch at offset %d counts %d records up to delta %d", ErrCorrupt, h.BaseOffset, h.NumRecords, h.LastOffsetDelta)
		}
	case 0, 1:
	default:
		return nil, h, nil, false, fmt.Errorf("%w: magic %d at offset %d", ErrCorrupt, h.Magic, h.BaseOffset)
	}
	return b[:size], h, b[size:], true, nil
}

// CheckCRC verifies a v2 batch's CRC-32C.
func CheckCRC(batch []byte) error {
	if len(batch) < HeaderSize || batch[16] != 2 {
		return fmt.Errorf("%w: not a v2 batch", ErrCorrupt)
	}
	want := binary.BigEndian.Uint32(batch[17:])
	if got := crc32.Checksum(batch[21:], castagnoli); got != want {
		return fmt.Errorf("%w: crc %08x, header says %08x (offset %d)", ErrCorrupt, got, want, int64(binary.BigEndian.Uint64(batch)))
	}
	return nil
}

// Restamp makes a stored v2 batch ready to produce as written by an
// idempotent producer: producer id, epoch and base sequence set, the
// transactional flag cleared (a restore writes outside any transaction),
// the leader epoch and base offset reset (the broker assigns them), and the
// CRC computed again. It changes batch in place.
func Restamp(batch []byte, producerID int64, epoch int16, baseSequence int32) {
	binary.BigEndian.PutUint64(batch[0:], 0)
	binary.BigEndian.PutUint32(batch[12:], 0xFFFFFFFF)
	attrs := binary.BigEndian.Uint16(batch[21:]) &^ attrTransactional
	binary.BigEndian.PutUint16(batch[21:], attrs)
	binary.BigEndian.PutUint64(batch[43:], uint64(producerID))
	binary.BigEndian.PutUint16(batch[51:], uint16(epoch))
	binary.BigEndian.PutUint32(batch[53:], uint32(baseSequence))
	binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], castagnoli))
}

// Aborted is an aborted transaction as a fetch response lists it: the
// producer and the first offset of its transaction.
type Aborted struct {
	ProducerID  int64
	FirstOffset int64
}

// Committed tells, batch by batch in offset order, what a read_committed
// consumer sees: it leaves out control batches and the batches of aborted
// transactions, as Kafka's own consumer does with the aborted transactions
// of one fetch response (KIP-98). A transaction is aborted from its first
// offset until its producer's abort marker.
type Committed struct {
	pending []Aborted // by FirstOffset, not yet reached
	active  map[int64]bool
}

// NewCommitted starts the filter of one partition's fetch response.
func NewCommitted(aborted []Aborted) *Committed {
	c := &Committed{pending: append([]Aborted(nil), aborted...), active: map[int64]bool{}}
	// Responses list them in order; make sure.
	for i := 1; i < len(c.pending); i++ {
		for j := i; j > 0 && c.pending[j].FirstOffset < c.pending[j-1].FirstOffset; j-- {
			c.pending[j], c.pending[j-1] = c.pending[j-1], c.pending[j]
		}
	}
	return c
}

// Keep reports whether a batch belongs in the committed log. batch is the
// entry Next returned, needed to read a control batch's marker type.
func (c *Committed) Keep(h Header, batch []byte) bool {
	if h.Magic < 2 {
		return true // no transactions before v2
	}
	for len(c.pending) > 0 && c.pending[0].FirstOffset <= h.LastOffset() {
		c.active[c.pending[0].ProducerID] = true
		c.pending = c.pending[1:]
	}
	if h.IsControl() {
		if isAbortMarker(h, batch) {
			delete(c.active, h.ProducerID)
		}
		return false
	}
	return !(h.IsTransactional() && c.active[h.ProducerID])
}

// isAbortMarker reads a control batch's one record: its key is a version
// int16 and a type int16, 0 for abort and 1 for commit. Control batches are
// never compressed.
func isAbortMarker(h Header, batch []byte) bool {
	if h.Codec() != CodecNone || h.NumRecords < 1 || len(batch) <= HeaderSize {
		return false
	}
	rec := batch[HeaderSize:]
	var n int
	read := func() int64 {
		v, k := binary.Varint(rec[n:])
		if k <= 0 {
			n = len(rec)
			return -1
		}
		n += k
		return v
	}
	read() // record length
	if n >= len(rec) {
		return false
	}
	n++    // attributes
	read() // timestamp delta
	read() // offset delta
	kl := read()
	if kl < 4 || n+int(kl) > len(rec) {
		return false
	}
	return binary.BigEndian.Uint16(rec[n+2:]) == 0
}

// NextOffset is where reading continues after the batch.
func (h Header) NextOffset() int64 {
	if h.Magic < 2 {
		return h.BaseOffset + 1
	}
	return h.LastOffset() + 1
}
