// Package jsoncase reads JSON objects whose keys older kbr versions spelled
// in camelCase into structs whose tags are snake_case, the one casing of
// every file kbr writes (FORMAT.md). A type opts in with
//
//	func (t *T) UnmarshalJSON(b []byte) error { type plain T; return jsoncase.Decode(b, (*plain)(t)) }
//
// Only the object's own keys are matched this way; the values (maps keyed by
// topic or config names, nested types) decode as they are.
package jsoncase

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode"
)

// Decode decodes the JSON object b into the struct v points to, matching
// each key to a field by its json tag, or, failing that, by the key spelled
// in snake_case ("clusterID" -> "cluster_id", "takenAt" -> "taken_at").
// Unknown keys are ignored, as encoding/json does.
func Decode(b []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("jsoncase: %T is not a pointer to a struct", v)
	}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	st := rv.Elem()
	idx := fieldsOf(st.Type())
	for key, raw := range obj {
		i, ok := idx[key]
		if !ok {
			if i, ok = idx[Snake(key)]; !ok {
				continue
			}
		}
		f := st.FieldByIndex(i)
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

var cache sync.Map // reflect.Type -> map[string][]int

// fieldsOf maps a struct's json names to its fields (embedded structs'
// fields included, as encoding/json promotes them).
func fieldsOf(t reflect.Type) map[string][]int {
	if m, ok := cache.Load(t); ok {
		return m.(map[string][]int)
	}
	m := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			index := append(append([]int(nil), prefix...), i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, index)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			m[name] = index
		}
	}
	walk(t, nil)
	cache.Store(t, m)
	return m
}

// Snake spells a camelCase key in snake_case: an underscore before each
// upper-case letter that follows a lower-case letter or a digit, and every
// letter in lower case ("clusterID" -> "cluster_id", "zkChroot" ->
// "zk_chroot", "aclsNote" -> "acls_note").
func Snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
