// Package secretscan finds secret values where they must never be: in a
// workflow history and in logs. It is test support for the e2e suite.
//
// A history's payloads (inputs, results, heartbeats, memos, search
// attributes, failure details) are bytes: protojson shows them in base64,
// so a plain text search of it finds nothing inside a payload. Scan walks
// every field of every event instead and looks at each bytes field as it
// is, as JSON (its strings unescaped), and where a string or the bytes are
// base64 or gzip (a memo's compressed plan), decoded as well.
package secretscan

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxDepth bounds the decoding of decoded data (base64 in JSON in gzip ...).
const maxDepth = 4

// History returns, for each secret found in the history, where: the event
// id and type and the field path. Secrets are never in the result.
func History(h *historypb.History, secrets []string) []string {
	var found []string
	for _, ev := range h.GetEvents() {
		where := fmt.Sprintf("event %d (%s)", ev.GetEventId(), ev.GetEventType())
		walk(ev.ProtoReflect(), where, func(path string, data []byte) {
			for i, s := range secrets {
				if contains(data, s, 0) {
					found = append(found, fmt.Sprintf("secret %d in %s", i+1, path))
				}
			}
		})
	}
	return found
}

// Text returns, for each secret in text (a log), its line number.
func Text(text []byte, secrets []string) []string {
	var found []string
	for n, line := range bytes.Split(text, []byte("\n")) {
		for i, s := range secrets {
			if contains(line, s, 0) {
				found = append(found, fmt.Sprintf("secret %d on line %d", i+1, n+1))
			}
		}
	}
	return found
}

// walk calls fn with every string and bytes value in m, by field path.
func walk(m protoreflect.Message, path string, fn func(string, []byte)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				value(fd, l.Get(i), fmt.Sprintf("%s[%d]", p, i), fn)
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				fn(p+"{key}", []byte(k.String()))
				value(fd.MapValue(), mv, fmt.Sprintf("%s[%s]", p, k.String()), fn)
				return true
			})
		default:
			value(fd, v, p, fn)
		}
		return true
	})
}

func value(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string, fn func(string, []byte)) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		walk(v.Message(), path, fn)
	case protoreflect.StringKind:
		fn(path, []byte(v.String()))
	case protoreflect.BytesKind:
		fn(path, v.Bytes())
	}
}

// contains tells whether data holds s: as it is, in its JSON strings
// (escapes undone), and in what base64 or gzip in it decodes to.
func contains(data []byte, s string, depth int) bool {
	if bytes.Contains(data, []byte(s)) {
		return true
	}
	if depth >= maxDepth || len(data) == 0 {
		return false
	}
	if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
		if b, err := io.ReadAll(io.LimitReader(zr, 64<<20)); err == nil && contains(b, s, depth+1) {
			return true
		}
	}
	if b, ok := unbase64(data); ok && contains(b, s, depth+1) {
		return true
	}
	var v any
	if json.Unmarshal(data, &v) == nil {
		return jsonContains(v, s, depth+1)
	}
	return false
}

func jsonContains(v any, s string, depth int) bool {
	switch v := v.(type) {
	case string:
		return contains([]byte(v), s, depth)
	case []any:
		for _, x := range v {
			if jsonContains(x, s, depth) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if strings.Contains(k, s) || jsonContains(x, s, depth) {
				return true
			}
		}
	}
	return false
}

func unbase64(data []byte) ([]byte, bool) {
	t := bytes.TrimSpace(data)
	if len(t) < 8 {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(string(t)); err == nil {
			return b, true
		}
	}
	return nil, false
}
