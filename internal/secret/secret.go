// Package secret holds references to secrets: an environment variable or a
// file, read by the worker that needs the value. The value itself is never
// part of a config, a workflow input or a history, and never printed.
package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Ref is a reference to a secret, never the secret itself.
type Ref struct {
	Env  string `yaml:"env,omitempty" json:"env,omitempty"`
	File string `yaml:"file,omitempty" json:"file,omitempty"`
}

// IsSet reports whether a reference was given.
func (s Ref) IsSet() bool { return s.Env != "" || s.File != "" }

// String names the reference, never the value.
func (s Ref) String() string {
	switch {
	case s.Env != "":
		return "env:" + s.Env
	case s.File != "":
		return "file:" + s.File
	}
	return "<none>"
}

// Resolve reads the secret where it is referenced. field names the config
// field in errors; errors name the reference, never the value.
func (s Ref) Resolve(field string) (string, error) {
	switch {
	case s.Env != "" && s.File != "":
		return "", fmt.Errorf("%s: give env or file, not both", field)
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("%s: environment variable %s is not set on this worker", field, s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("%s: read secret file: %w", field, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("%s: no secret reference (env or file)", field)
}

// InlineError refuses a config where a secret reference belongs but
// something else is written: most often the secret itself. It never holds
// or prints what was written, not even its first characters (a YAML or
// JSON decoder's own error would quote them).
type InlineError struct {
	// Field is the config field ("target.password") when the caller knows
	// it; the YAML decoder of a Ref does not, and gives Line and Column.
	Field        string
	Line, Column int
	// Msg says what is wrong, without the value.
	Msg string
}

func (e *InlineError) Error() string {
	var where string
	switch {
	case e.Field != "" && e.Line > 0:
		where = fmt.Sprintf("%s (line %d)", e.Field, e.Line)
	case e.Field != "":
		where = e.Field
	case e.Line > 0:
		where = fmt.Sprintf("line %d", e.Line)
	default:
		where = "secret"
	}
	return where + ": " + e.Msg
}

const refHint = "write a reference instead, {env: NAME} or {file: PATH} (the value is not shown)"

// UnmarshalYAML takes only a mapping of env and file (or null, no
// reference). Anything else, a scalar above all, is refused without
// quoting it: yaml.v3's own error shows the first characters of the value.
func (s *Ref) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		*s = Ref{}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &InlineError{Line: n.Line, Column: n.Column, Msg: "a secret is given as a value (" + yamlKind(n) + "); " + refHint}
	}
	var r Ref
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var dst *string
		switch k.Value {
		case "env":
			dst = &r.Env
		case "file":
			dst = &r.File
		default:
			return &InlineError{Line: k.Line, Column: k.Column, Msg: "not a field of a secret reference, which takes env or file (the value is not shown)"}
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return &InlineError{Line: v.Line, Column: v.Column, Msg: "want the name of an environment variable or a file path (the value is not shown)"}
		}
		*dst = v.Value
	}
	*s = r
	return nil
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a string"
	}
	return "not a mapping"
}

// refFields is Ref without its methods, for the JSON decoder.
type refFields Ref

// UnmarshalJSON takes an object (or null). Anything else is refused as a
// json.UnmarshalTypeError, which encoding/json completes with the field's
// path ("target.password"), and whose text holds none of the value.
func (s *Ref) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var r refFields
		if err := json.Unmarshal(data, &r); err != nil {
			return &json.UnmarshalTypeError{Value: "a secret reference whose env and file are not both strings (the value is not shown)", Type: reflect.TypeFor[Ref]()}
		}
		*s = Ref(r)
		return nil
	}
	if string(data) == "null" {
		return nil
	}
	return &json.UnmarshalTypeError{Value: `a value where a secret reference belongs (write {"env": NAME} or {"file": PATH}; the value is not shown)`, Type: reflect.TypeFor[Ref]()}
}
