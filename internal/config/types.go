// Package config holds the operator-facing configuration of backups and
// restores: the YAML files of `kbr backup run -f` and `kbr restore run -f`,
// which are also the JSON inputs of the workflows (same field names), so a
// run started from the temporal CLI or the Web UI takes the same document.
//
// Secrets never appear in a config, only references to them (an environment
// variable or a file), resolved by the worker that needs them.
package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kbr-project/kbr/internal/secret"
)

// ByteSize is a byte count written as a number or with a unit: 20GiB, 64MiB, 500MB.
type ByteSize int64

var units = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"PiB", 1 << 50},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15}, {"B", 1},
}

// ParseByteSize reads "20GiB", "1.5GB", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	// NaN passes both comparisons, and converts to a negative count.
	if err != nil || math.IsNaN(f) || f < 0 || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size (examples: 64MiB, 20GiB, 1048576)", s)
	}
	return ByteSize(f * mult), nil
}

func (b ByteSize) String() string {
	v := float64(b)
	for _, u := range []struct {
		s string
		m float64
	}{{"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.m {
			return strconv.FormatFloat(v/u.m, 'f', 1, 64) + u.s
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		*b = ByteSize(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a size, got %s", data)
	}
	v, err := ParseByteSize(s)
	*b = v
	return err
}

// Duration is a time.Duration written as "10s", "5m", "6h" or "1d".
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration is time.ParseDuration that also takes whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 && days < 100000 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	return time.ParseDuration(s)
}

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: 10s, 5m, 6h, 1d)", n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d *Duration) UnmarshalJSON(data []byte) error {
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		*d = Duration(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a duration, got %s", data)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: 10s, 5m, 6h, 1d)", s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Secret is a reference to a secret, never the secret itself.
type Secret = secret.Ref
