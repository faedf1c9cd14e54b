// Package secret holds references to secrets: an environment variable or a
// file, read by the worker that needs the value. The value itself is never
// part of a config, a workflow input or a history, and never printed.
package secret

import (
	"fmt"
	"os"
	"strings"
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
