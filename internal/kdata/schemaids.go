package kdata

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/kbatch"
	"github.com/kbr-project/kbr/internal/schemareg/wire"
)

// The schemas data source checks that every schema id a backed-up record
// carries is in the registry export. The export keeps batches as bytes, so
// the ids are read only when asked (ExportSpec.ScanSchemaIDs), straight from
// the records' bytes: a compressed batch is decompressed once, and no record
// is built (kbatch.Decode would allocate each one).

var scanDecompressor = kgo.DefaultDecompressor()

// scanSchemaIDs adds to set the schema id of every record key and value in
// runs (complete batches as Next splits them) that carries the wire
// format's prefix. Old message formats are left out: no registry client
// writes them.
func scanSchemaIDs(set *wire.IDSet, runs [][]byte) error {
	for _, run := range runs {
		for len(run) > 0 {
			entry, h, rest, ok, err := kbatch.Next(run)
			if err != nil || !ok {
				return fmt.Errorf("scan schema ids: %w", kbatch.ErrCorrupt)
			}
			run = rest
			if h.Magic != 2 || h.IsControl() || h.NumRecords == 0 {
				continue
			}
			body := entry[kbatch.HeaderSize:]
			if c := h.Codec(); c != kbatch.CodecNone {
				if body, err = scanDecompressor.Decompress(body, kgo.CompressionCodecType(c)); err != nil {
					return fmt.Errorf("scan schema ids at offset %d: %w: %v", h.BaseOffset, kbatch.ErrCorrupt, err)
				}
			}
			if err := recordsIDs(set, body, h.NumRecords); err != nil {
				return fmt.Errorf("scan schema ids at offset %d: %w", h.BaseOffset, err)
			}
		}
	}
	return nil
}

// recordsIDs walks n records of a v2 batch's (uncompressed) body: length,
// attributes, timestamp delta, offset delta, key, value (headers skipped).
func recordsIDs(set *wire.IDSet, body []byte, n int32) error {
	for k := int32(0); k < n; k++ {
		length, m := binary.Varint(body)
		if m <= 0 || length < 1 || int64(len(body)-m) < length {
			return fmt.Errorf("%w: record %d", kbatch.ErrCorrupt, k)
		}
		rec := body[m : m+int(length)]
		body = body[m+int(length):]
		p := 1                   // attributes
		for f := 0; f < 2; f++ { // timestamp and offset deltas
			_, w := binary.Varint(rec[p:])
			if w <= 0 {
				return fmt.Errorf("%w: record %d", kbatch.ErrCorrupt, k)
			}
			p += w
		}
		for f := 0; f < 2; f++ { // key, value
			l, w := binary.Varint(rec[p:])
			if w <= 0 || l > int64(len(rec)-p-w) {
				return fmt.Errorf("%w: record %d", kbatch.ErrCorrupt, k)
			}
			p += w
			if l < 0 {
				continue // null
			}
			if id, ok := wire.ID(rec[p : p+int(l)]); ok {
				set.Add(id)
			}
			p += int(l)
		}
	}
	return nil
}

// remapSchemaIDs rewrites, in place, the schema id of each record's key and
// value that carries the prefix and an id of m; it counts what it rewrote
// and the prefixed ones whose id m does not hold (left as they are).
func remapSchemaIDs(recs []kbatch.Record, m map[int32]int32) (rewritten, unmapped int64) {
	for i := range recs {
		for _, b := range [][]byte{recs[i].Key, recs[i].Value} {
			switch prefixed, done := wire.Rewrite(b, m); {
			case done:
				rewritten++
			case prefixed:
				unmapped++
			}
		}
	}
	return rewritten, unmapped
}
