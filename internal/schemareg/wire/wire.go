// Package wire reads and rewrites the Confluent wire format of a record's
// key or value: a magic byte 0, then the 4-byte big-endian id of the
// schema in the registry it was written against, then the payload. It is a
// leaf (no dependency of kbr's), so the data path can use it without the
// registry client.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// PrefixSize is the size of the magic byte and the id.
const PrefixSize = 5

// ID is the schema id b carries, if it starts with the prefix. A value of
// five bytes or more that starts with 0 counts: the wire format has no
// other mark, so a registry-less payload that happens to start with a 0
// byte reads as an id too (a remap leaves one whose id the map does not
// hold alone).
func ID(b []byte) (int32, bool) {
	if len(b) < PrefixSize || b[0] != 0 {
		return 0, false
	}
	return int32(binary.BigEndian.Uint32(b[1:5])), true
}

// Rewrite puts the new id of b's schema id in place, through m. It reports
// whether b carries the prefix, and whether it was rewritten (the id is in
// m). A nil or prefix-less b is left alone.
func Rewrite(b []byte, m map[int32]int32) (prefixed, rewritten bool) {
	id, ok := ID(b)
	if !ok {
		return false, false
	}
	to, ok := m[id]
	if !ok {
		return true, false
	}
	binary.BigEndian.PutUint32(b[1:5], uint32(to))
	return true, true
}

// MaxIDs bounds an IDSet: what a set holds past it is only counted, so a
// work unit's set stays small in heartbeats and results whatever the data.
const MaxIDs = 4096

// IDSet is a bounded set of schema ids. Its JSON is a string of sorted
// ranges ("1-40,52,77-80"), small for the dense ids registries assign, and
// "+N" at the end when N more ids were seen past MaxIDs. The zero value is
// an empty set.
type IDSet struct {
	ids  []int32 // sorted, distinct
	Over int64   // ids seen past MaxIDs, not kept
}

// Add puts id in the set.
func (s *IDSet) Add(id int32) {
	i, found := slices.BinarySearch(s.ids, id)
	if found {
		return
	}
	if len(s.ids) >= MaxIDs {
		s.Over++
		return
	}
	s.ids = slices.Insert(s.ids, i, id)
}

// Has reports whether id is in the set.
func (s *IDSet) Has(id int32) bool {
	if s == nil {
		return false
	}
	_, found := slices.BinarySearch(s.ids, id)
	return found
}

// Merge adds every id of o.
func (s *IDSet) Merge(o *IDSet) {
	if o == nil {
		return
	}
	for _, id := range o.ids {
		s.Add(id)
	}
	s.Over += o.Over
}

// IDs are the ids in the set, in order.
func (s *IDSet) IDs() []int32 {
	if s == nil {
		return nil
	}
	return slices.Clone(s.ids)
}

// Len is how many ids the set holds.
func (s *IDSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.ids)
}

// Clone copies the set (nil stays nil).
func (s *IDSet) Clone() *IDSet {
	if s == nil {
		return nil
	}
	return &IDSet{ids: slices.Clone(s.ids), Over: s.Over}
}

// String is the set's JSON text without the quotes.
func (s *IDSet) String() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(s.ids); {
		j := i
		for j+1 < len(s.ids) && s.ids[j+1] == s.ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(s.ids[i]), 10))
		if j > i {
			b.WriteByte('~')
			b.WriteString(strconv.FormatInt(int64(s.ids[j]), 10))
		}
		i = j + 1
	}
	if s.Over > 0 {
		b.WriteString("+" + strconv.FormatInt(s.Over, 10))
	}
	return b.String()
}

// MarshalJSON writes the ranges string.
func (s IDSet) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads the ranges string.
func (s *IDSet) UnmarshalJSON(data []byte) error {
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return fmt.Errorf("schema id set: %w", err)
	}
	set, err := ParseIDSet(text)
	if err != nil {
		return err
	}
	*s = *set
	return nil
}

// ParseIDSet reads what String writes. Ranges are "a~b": ids may be
// negative (the wire format's 4 bytes are signed to Go), so '-' is a sign.
func ParseIDSet(text string) (*IDSet, error) {
	s := &IDSet{}
	if text == "" {
		return s, nil
	}
	if i := strings.LastIndexByte(text, '+'); i >= 0 {
		n, err := strconv.ParseInt(text[i+1:], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("schema id set %q: bad overflow count", text)
		}
		s.Over, text = n, text[:i]
	}
	if text == "" {
		return s, nil
	}
	for _, part := range strings.Split(text, ",") {
		lo, hi, isRange := strings.Cut(part, "~")
		a, err := strconv.ParseInt(lo, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("schema id set: %q is not an id", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(hi, 10, 32); err != nil || b < a {
				return nil, fmt.Errorf("schema id set: %q is not a range", part)
			}
		}
		for id := a; id <= b; id++ {
			if len(s.ids) >= MaxIDs {
				s.Over += b - id + 1
				break
			}
			s.Add(int32(id))
		}
	}
	return s, nil
}
