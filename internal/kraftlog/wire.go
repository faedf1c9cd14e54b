package kraftlog

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// reader reads the primitives of Kafka's message format. The first error
// sticks: every later read returns a zero value, so a decoder checks once
// at the end.
type reader struct {
	b   []byte
	n   int
	err error
}

var errShort = errors.New("message ends early")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.n {
		r.fail(errShort)
		return nil
	}
	out := r.b[r.n : r.n+n]
	r.n += n
	return out
}

func (r *reader) int8() int8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return int8(b[0])
}

func (r *reader) bool() bool { return r.int8() != 0 }

func (r *reader) int16() int16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(b))
}

func (r *reader) uint16() uint16 { return uint16(r.int16()) }

func (r *reader) int32() int32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

func (r *reader) int64() int64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func (r *reader) float64() float64 { return math.Float64frombits(uint64(r.int64())) }

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Varint(r.b[r.n:])
	if k <= 0 {
		r.fail(errShort)
		return 0
	}
	r.n += k
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b[r.n:])
	if k <= 0 {
		r.fail(errShort)
		return 0
	}
	r.n += k
	return v
}

// varbytes is a record's key or value: a varint length (-1 for null).
func (r *reader) varbytes() []byte {
	n := r.varint()
	if n < 0 {
		return nil
	}
	if b := r.take(int(min(n, math.MaxInt32))); b != nil {
		return b
	}
	return nil
}

// compactLen reads a compact length (stored plus one; 0 is null) and
// returns it, -1 for null.
func (r *reader) compactLen() int {
	v := r.uvarint()
	if v > uint64(len(r.b))+1 {
		r.fail(fmt.Errorf("length %d beyond the message", v-1))
		return -1
	}
	return int(v) - 1
}

// compactString reads a (compact, nullable) string; null reads as "".
func (r *reader) compactString() string {
	s, _ := r.compactNullableString()
	return s
}

func (r *reader) compactNullableString() (string, bool) {
	n := r.compactLen()
	if n < 0 {
		return "", false
	}
	return string(r.take(n)), true
}

func (r *reader) compactBytes() []byte {
	n := r.compactLen()
	if n < 0 {
		return nil
	}
	return r.take(n)
}

func (r *reader) uuid() string {
	b := r.take(16)
	if b == nil {
		return ""
	}
	return UUIDString(b)
}

// arrayLen reads a compact array's length (-1 for null). Each element takes
// at least one byte, which bounds what a corrupt length can ask for.
func (r *reader) arrayLen() int { return r.compactLen() }

func (r *reader) int32s() []int32 {
	n := r.arrayLen()
	if n < 0 {
		return nil
	}
	out := make([]int32, 0, min(n, (len(r.b)-r.n)/4+1))
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.int32())
	}
	return out
}

func (r *reader) uuids() []string {
	n := r.arrayLen()
	if n < 0 {
		return nil
	}
	out := make([]string, 0, min(n, (len(r.b)-r.n)/16+1))
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.uuid())
	}
	return out
}

// tagged reads the tagged fields that end every flexible struct, handing
// each to fn (which reads the field from the reader it is given), or
// skipping those fn does not want (fn nil, or returning false).
func (r *reader) tagged(fn func(tag uint64, f *reader) bool) {
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		tag := r.uvarint()
		size := r.uvarint()
		if size > uint64(len(r.b)-r.n) {
			r.fail(errShort)
			return
		}
		data := r.take(int(size))
		if fn != nil {
			f := &reader{b: data}
			if fn(tag, f) && f.err != nil {
				r.fail(fmt.Errorf("tagged field %d: %w", tag, f.err))
			}
		}
	}
}

// UUIDString is how Kafka writes a Uuid: URL-safe base64 without padding.
func UUIDString(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ParseUUID reads a Uuid as Kafka writes it.
func ParseUUID(s string) ([16]byte, error) {
	var out [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return out, fmt.Errorf("%q is not a Kafka Uuid (22 characters of URL-safe base64)", s)
	}
	copy(out[:], b)
	return out, nil
}
