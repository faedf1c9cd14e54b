package backupset

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A pack file holds the topic data of many partitions of one work unit, as
// Kafka record batches exactly as the brokers served them (see FORMAT.md):
//
//	pack   = "KBRPACK1" chunk* index footer
//	chunk  = the committed batches of one partition from one fetch, as bytes
//	         (zstd-compressed as one frame when the recovery point's
//	         compression is zstd)
//	index  = JSON PackIndex: the partitions, and each chunk's place, size,
//	         CRC-32C and offsets
//	footer = index offset uint64 | index length uint32 | CRC-32C of the index
//	         uint32 | "KBRPEND1"        (24 bytes, big-endian)
//
// A reader loads the footer and the index, then reads the chunks it wants by
// range; each chunk's CRC is checked before use, and the whole file's
// SHA-256 is in the recovery point's manifest part.
var (
	packMagic    = []byte("KBRPACK1")
	packEndMagic = []byte("KBRPEND1")
)

// PackFooterSize is the size of a pack's footer.
const PackFooterSize = 24

// Chunk codecs.
const (
	ChunkRaw  = 0
	ChunkZstd = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// Chunk is one partition's batches from one fetch, as placed in a pack.
type Chunk struct {
	Slot   int    `json:"slot"`   // index into PackIndex.Partitions
	Offset int64  `json:"offset"` // in the file
	Length int64  `json:"length"` // stored bytes
	Raw    int64  `json:"raw"`    // bytes after decompression
	Codec  int    `json:"codec"`  // ChunkRaw or ChunkZstd
	CRC    uint32 `json:"crc"`    // CRC-32C of the stored bytes
	// First is the base offset of the first batch, Next is where reading
	// continued after the chunk (one past its last batch's last offset).
	First   int64 `json:"first"`
	Next    int64 `json:"next"`
	Records int64 `json:"records"`
	// MaxTimestamp is the largest record timestamp of the chunk's batches
	// (milliseconds), so a point-in-time restore skips whole chunks.
	MaxTimestamp int64 `json:"max_timestamp"`
}

// PackIndex is the index at the end of a pack.
type PackIndex struct {
	Format     int              `json:"format"`
	Partitions []TopicPartition `json:"partitions"`
	Chunks     []Chunk          `json:"chunks"`
}

// ChunksOf returns the chunks of one partition, in file order.
func (ix *PackIndex) ChunksOf(topic string, partition int32) []Chunk {
	slot := -1
	for i, p := range ix.Partitions {
		if p.Topic == topic && p.Partition == partition {
			slot = i
			break
		}
	}
	var out []Chunk
	for _, c := range ix.Chunks {
		if c.Slot == slot {
			out = append(out, c)
		}
	}
	return out
}

// ChunkInfo describes the batches handed to PackWriter.Add.
type ChunkInfo struct {
	First, Next  int64
	Records      int64
	MaxTimestamp int64
}

var (
	zenc     *zstd.Encoder
	zdec     *zstd.Decoder
	zencOnce sync.Once
	zdecOnce sync.Once
)

func encoder() *zstd.Encoder {
	zencOnce.Do(func() {
		zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
	})
	return zenc
}

func decoder() *zstd.Decoder {
	zdecOnce.Do(func() {
		zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	})
	return zdec
}

// PackWriter writes a pack file, hashing what it writes.
type PackWriter struct {
	w     io.Writer
	h     hash.Hash
	n     int64
	zstd  bool
	slots map[TopicPartition]int
	index PackIndex
	buf   []byte
}

// NewPackWriter starts a pack on w; compression is CompressionNone or
// CompressionZstd.
func NewPackWriter(w io.Writer, compression string) (*PackWriter, error) {
	p := &PackWriter{w: w, h: sha256.New(), slots: map[TopicPartition]int{}, index: PackIndex{Format: FormatVersion}}
	switch compression {
	case CompressionZstd:
		p.zstd = true
	case CompressionNone, "":
	default:
		return nil, fmt.Errorf("compression %q: want %q or %q", compression, CompressionNone, CompressionZstd)
	}
	return p, p.write(packMagic)
}

func (p *PackWriter) write(b []byte) error {
	n, err := p.w.Write(b)
	p.h.Write(b[:n])
	p.n += int64(n)
	return err
}

// Size is how many bytes the pack holds so far.
func (p *PackWriter) Size() int64 { return p.n }

// Chunks is how many chunks were added.
func (p *PackWriter) Chunks() int { return len(p.index.Chunks) }

// Add appends one partition's batches (the pieces, in order) as a chunk.
func (p *PackWriter) Add(tp TopicPartition, info ChunkInfo, pieces ...[]byte) error {
	slot, ok := p.slots[tp]
	if !ok {
		slot = len(p.index.Partitions)
		p.slots[tp] = slot
		p.index.Partitions = append(p.index.Partitions, tp)
	}
	c := Chunk{Slot: slot, Offset: p.n, First: info.First, Next: info.Next, Records: info.Records, MaxTimestamp: info.MaxTimestamp}
	for _, b := range pieces {
		c.Raw += int64(len(b))
	}
	if p.zstd {
		raw := p.buf[:0]
		for _, b := range pieces {
			raw = append(raw, b...)
		}
		p.buf = raw
		pieces = [][]byte{encoder().EncodeAll(raw, nil)}
		c.Codec = ChunkZstd
	}
	crc := uint32(0)
	for _, b := range pieces {
		crc = crc32.Update(crc, castagnoli, b)
		if err := p.write(b); err != nil {
			return err
		}
		c.Length += int64(len(b))
	}
	c.CRC = crc
	p.index.Chunks = append(p.index.Chunks, c)
	return nil
}

// Finish writes the index and the footer and returns the file's size and
// SHA-256 and its index. The caller commits the file afterwards.
func (p *PackWriter) Finish() (size int64, sha string, index *PackIndex, err error) {
	data, err := json.Marshal(&p.index)
	if err != nil {
		return 0, "", nil, err
	}
	off := p.n
	footer := make([]byte, 0, PackFooterSize)
	footer = binary.BigEndian.AppendUint64(footer, uint64(off))
	footer = binary.BigEndian.AppendUint32(footer, uint32(len(data)))
	footer = binary.BigEndian.AppendUint32(footer, crc32.Checksum(data, castagnoli))
	footer = append(footer, packEndMagic...)
	if err := p.write(data); err != nil {
		return 0, "", nil, err
	}
	if err := p.write(footer); err != nil {
		return 0, "", nil, err
	}
	return p.n, hex.EncodeToString(p.h.Sum(nil)), &p.index, nil
}

// ErrPackCorrupt reports a pack whose structure does not read.
var ErrPackCorrupt = errors.New("pack is corrupt")

// MaxPackIndexBytes bounds the index a reader loads.
const MaxPackIndexBytes = 256 << 20

// ParsePackFooter reads a pack's footer: where its index is.
func ParsePackFooter(footer []byte, fileSize int64) (offset, length int64, crc uint32, err error) {
	if len(footer) != PackFooterSize || !bytes.Equal(footer[16:], packEndMagic) {
		return 0, 0, 0, fmt.Errorf("%w: bad footer", ErrPackCorrupt)
	}
	offset = int64(binary.BigEndian.Uint64(footer))
	length = int64(binary.BigEndian.Uint32(footer[8:]))
	crc = binary.BigEndian.Uint32(footer[12:])
	if offset < int64(len(packMagic)) || length > MaxPackIndexBytes || offset+length+PackFooterSize != fileSize {
		return 0, 0, 0, fmt.Errorf("%w: index at %d+%d in a file of %d bytes", ErrPackCorrupt, offset, length, fileSize)
	}
	return offset, length, crc, nil
}

// ParsePackIndex decodes and checks an index read from where its footer
// said; every chunk must lie between the magic and the index.
func ParsePackIndex(data []byte, crc uint32, indexOffset int64) (*PackIndex, error) {
	if crc32.Checksum(data, castagnoli) != crc {
		return nil, fmt.Errorf("%w: index checksum", ErrPackCorrupt)
	}
	var ix PackIndex
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("%w: index: %v", ErrPackCorrupt, err)
	}
	if ix.Format != FormatVersion {
		return nil, fmt.Errorf("%w: index format %d, this kbr reads %d", ErrPackCorrupt, ix.Format, FormatVersion)
	}
	for i, c := range ix.Chunks {
		if c.Slot < 0 || c.Slot >= len(ix.Partitions) || c.Offset < int64(len(packMagic)) || c.Length < 0 ||
			c.Offset+c.Length > indexOffset || c.Raw < 0 || c.Raw > MaxChunkBytes || (c.Codec != ChunkRaw && c.Codec != ChunkZstd) ||
			(c.Codec == ChunkRaw && c.Raw != c.Length) {
			return nil, fmt.Errorf("%w: chunk %d (%+v) out of place", ErrPackCorrupt, i, c)
		}
	}
	return &ix, nil
}

// MaxChunkBytes bounds one chunk's decompressed size.
const MaxChunkBytes = 1 << 30

// ReadChunk reads a chunk's stored bytes from r (positioned at the chunk),
// checks its CRC and returns the batches, decompressed.
func ReadChunk(r io.Reader, c Chunk, buf []byte) ([]byte, error) {
	if int64(cap(buf)) < c.Length {
		buf = make([]byte, c.Length)
	}
	buf = buf[:c.Length]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("%w: chunk at %d: %v", ErrPackCorrupt, c.Offset, err)
	}
	if crc32.Checksum(buf, castagnoli) != c.CRC {
		return nil, fmt.Errorf("%w: chunk at %d: checksum", ErrPackCorrupt, c.Offset)
	}
	if c.Codec == ChunkRaw {
		return buf, nil
	}
	out, err := decoder().DecodeAll(buf, make([]byte, 0, c.Raw))
	if err != nil || int64(len(out)) != c.Raw {
		return nil, fmt.Errorf("%w: chunk at %d: decompress: %v", ErrPackCorrupt, c.Offset, err)
	}
	return out, nil
}
