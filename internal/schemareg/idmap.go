package schemareg

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// IDMap maps backed-up schema ids to the target registry's.
type IDMap map[int32]int32

// Changed counts the ids that differ.
func (m IDMap) Changed() int {
	n := 0
	for a, b := range m {
		if a != b {
			n++
		}
	}
	return n
}

// Remap is what a data restore rewrites records through: the ids that
// changed, or nil when none did (the records' bytes are then right as they
// are, and the import keeps its fast path).
func (m IDMap) Remap() map[int32]int32 {
	if m.Changed() == 0 {
		return nil
	}
	out := make(map[int32]int32, len(m))
	for a, b := range m {
		out[a] = b
	}
	return out
}

// Encode packs the map small, for a memo or a result: the pairs by old id,
// each old id as a varint delta from the previous one and the new id as a
// zigzag varint delta from its old one, gzipped. Dense ids re-registered in
// order cost about a byte a pair.
func (m IDMap) Encode() []byte {
	olds := make([]int32, 0, len(m))
	for a := range m {
		olds = append(olds, a)
	}
	slices.Sort(olds)
	var raw []byte
	raw = binary.AppendUvarint(raw, uint64(len(olds)))
	prev := int64(0)
	for _, a := range olds {
		raw = binary.AppendVarint(raw, int64(a)-prev)
		raw = binary.AppendVarint(raw, int64(m[a])-int64(a))
		prev = int64(a)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return buf.Bytes()
}

// maxPairs bounds what DecodeIDMap accepts (ids are 32-bit).
const maxPairs = 1 << 24

// DecodeIDMap reads what Encode wrote.
func DecodeIDMap(b []byte) (IDMap, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("schema id map: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("schema id map: %w", err)
	}
	bad := errors.New("schema id map: corrupt")
	n, k := binary.Uvarint(raw)
	if k <= 0 || n > maxPairs {
		return nil, bad
	}
	raw = raw[k:]
	m := make(IDMap, n)
	prev := int64(0)
	for i := uint64(0); i < n; i++ {
		d, k1 := binary.Varint(raw)
		if k1 <= 0 {
			return nil, bad
		}
		e, k2 := binary.Varint(raw[k1:])
		if k2 <= 0 {
			return nil, bad
		}
		raw = raw[k1+k2:]
		a := prev + d
		prev = a
		m[int32(a)] = int32(a + e)
	}
	return m, nil
}
