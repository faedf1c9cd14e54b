package kbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one record with its original offset. Nil Key, Value or header
// Value mean null, which is not empty: a nil Value is a tombstone.
type Record struct {
	Offset    int64
	Timestamp int64 // milliseconds since the epoch
	Key       []byte
	Value     []byte
	Headers   []kgo.RecordHeader
}

var decompressor = kgo.DefaultDecompressor()

// Decode returns the records of entries (complete batches or old-format
// messages, as Next splits them) at or above minOffset, decompressed, with
// the timestamps a consumer sees (the append time for LogAppendTime
// batches). Control batches are left out; the entries must already be
// filtered for aborted transactions. Every batch's CRC is checked.
func Decode(entries []byte, minOffset int64) ([]Record, error) {
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.RecordBatches = entries
	rp.HighWatermark = math.MaxInt64
	rp.LastStableOffset = math.MaxInt64
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset:         minOffset,
		IsolationLevel: kgo.ReadUncommitted(),
	}, &rp, decompressor, nil)
	if fp.Err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, fp.Err)
	}
	out := make([]Record, 0, len(fp.Records))
	for _, r := range fp.Records {
		out = append(out, Record{Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value, Headers: r.Headers})
	}
	return out, nil
}

// Build encodes records, in offset order, as one v2 batch of CreateTime
// records with their own offsets and timestamps, compressed with comp (nil:
// none). Producer fields are unset (-1); Restamp sets them for a producer.
func Build(recs []Record, comp kgo.Compressor) []byte {
	if len(recs) == 0 {
		return nil
	}
	base, firstTS := recs[0].Offset, recs[0].Timestamp
	maxTS := firstTS
	body := make([]byte, 0, 64*len(recs))
	var rec []byte
	for i := range recs {
		r := &recs[i]
		maxTS = max(maxTS, r.Timestamp)
		rec = rec[:0]
		rec = append(rec, 0) // record attributes
		rec = binary.AppendVarint(rec, r.Timestamp-firstTS)
		rec = binary.AppendVarint(rec, r.Offset-base)
		rec = appendNullable(rec, r.Key)
		rec = appendNullable(rec, r.Value)
		rec = binary.AppendVarint(rec, int64(len(r.Headers)))
		for _, h := range r.Headers {
			rec = binary.AppendVarint(rec, int64(len(h.Key)))
			rec = append(rec, h.Key...)
			rec = appendNullable(rec, h.Value)
		}
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	codec := int16(CodecNone)
	if comp != nil {
		var buf bytes.Buffer
		c, typ := comp.Compress(&buf, body)
		if typ != kgo.CodecNone {
			body, codec = append([]byte(nil), c...), int16(typ)
		}
	}
	out := make([]byte, HeaderSize, HeaderSize+len(body))
	binary.BigEndian.PutUint64(out[0:], uint64(base))
	binary.BigEndian.PutUint32(out[8:], uint32(HeaderSize-12+len(body)))
	binary.BigEndian.PutUint32(out[12:], 0xFFFFFFFF) // leader epoch
	out[16] = 2
	binary.BigEndian.PutUint16(out[21:], uint16(codec))
	binary.BigEndian.PutUint32(out[23:], uint32(recs[len(recs)-1].Offset-base))
	binary.BigEndian.PutUint64(out[27:], uint64(firstTS))
	binary.BigEndian.PutUint64(out[35:], uint64(maxTS))
	binary.BigEndian.PutUint64(out[43:], math.MaxUint64) // producer id -1
	binary.BigEndian.PutUint16(out[51:], math.MaxUint16) // epoch -1
	binary.BigEndian.PutUint32(out[53:], math.MaxUint32) // sequence -1
	binary.BigEndian.PutUint32(out[57:], uint32(len(recs)))
	out = append(out, body...)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

// Renumber gives records contiguous offsets from base, keeping their order:
// what a producer's batch must hold (the broker refuses gaps).
func Renumber(recs []Record, base int64) {
	for i := range recs {
		recs[i].Offset = base + int64(i)
	}
}

func appendNullable(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

// Compressor returns kgo's compressor for a codec name (none, gzip, snappy,
// lz4, zstd); none gives nil.
func Compressor(name string) (kgo.Compressor, error) {
	var c kgo.CompressionCodec
	switch name {
	case "", "none":
		return nil, nil
	case "gzip":
		c = kgo.GzipCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", name)
	}
	return kgo.DefaultCompressor(c)
}

// Merge joins uncompressed v2 batches of one partition into one batch for a
// producer: every record's bytes are kept, only its offset delta (now its
// place in the result, from 0) and timestamp delta (now from the first
// batch's base timestamp) are written again. The batches must hold
// CreateTime records; LogAppendTime, compressed or control batches go
// through Decode and Build instead.
func Merge(batches [][]byte) ([]byte, error) {
	if len(batches) == 0 {
		return nil, nil
	}
	size := HeaderSize
	for _, b := range batches {
		size += len(b) - HeaderSize + 8
	}
	out := make([]byte, HeaderSize, size)
	_, first, _, _, err := Next(batches[0])
	if err != nil {
		return nil, err
	}
	var n int64
	maxTS := first.MaxTimestamp
	for _, b := range batches {
		_, h, _, ok, err := Next(b)
		if err != nil || !ok || h.Magic != 2 || h.Codec() != CodecNone || h.LogAppendTime() || h.IsControl() {
			return nil, fmt.Errorf("%w: merge: batch at offset %d is not plain", ErrCorrupt, h.BaseOffset)
		}
		maxTS = max(maxTS, h.MaxTimestamp)
		rec := b[HeaderSize:]
		for k := int32(0); k < h.NumRecords; k++ {
			length, m := binary.Varint(rec)
			if m <= 0 || length < 0 || int64(len(rec)-m) < length || length < 1 {
				return nil, fmt.Errorf("%w: merge: record %d of batch at offset %d", ErrCorrupt, k, h.BaseOffset)
			}
			body := rec[m : m+int(length)]
			rec = rec[m+int(length):]
			attrs := body[0]
			tsDelta, a := binary.Varint(body[1:])
			if a <= 0 {
				return nil, fmt.Errorf("%w: merge: timestamp of record %d at offset %d", ErrCorrupt, k, h.BaseOffset)
			}
			_, o := binary.Varint(body[1+a:])
			if o <= 0 {
				return nil, fmt.Errorf("%w: merge: offset of record %d at offset %d", ErrCorrupt, k, h.BaseOffset)
			}
			rest := body[1+a+o:]
			var hdr [1 + 2*binary.MaxVarintLen64]byte
			hdr[0] = attrs
			hl := 1
			hl += binary.PutVarint(hdr[hl:], h.FirstTimestamp+tsDelta-first.FirstTimestamp)
			hl += binary.PutVarint(hdr[hl:], n)
			out = binary.AppendVarint(out, int64(hl+len(rest)))
			out = append(out, hdr[:hl]...)
			out = append(out, rest...)
			n++
		}
	}
	binary.BigEndian.PutUint64(out[0:], 0)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[12:], 0xFFFFFFFF)
	out[16] = 2
	binary.BigEndian.PutUint16(out[21:], 0)
	binary.BigEndian.PutUint32(out[23:], uint32(n-1))
	binary.BigEndian.PutUint64(out[27:], uint64(first.FirstTimestamp))
	binary.BigEndian.PutUint64(out[35:], uint64(maxTS))
	binary.BigEndian.PutUint64(out[43:], math.MaxUint64)
	binary.BigEndian.PutUint16(out[51:], math.MaxUint16)
	binary.BigEndian.PutUint32(out[53:], math.MaxUint32)
	binary.BigEndian.PutUint32(out[57:], uint32(n))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out, nil
}
