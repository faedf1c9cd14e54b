package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/localdir"
)

// testTypes are the path types the tests of this package know: LocalDir
// (as storage/all registers it, without its opener) and TestType, whose
// check TestTargetParamsNamed relies on.
var testTypes = storage.NewRegistry(
	storage.PathType{Name: localdir.Type},
	storage.PathType{Name: "TestType", Validate: func(t storage.Target) error {
		if t.Server == "" {
			return &storage.ParamError{Param: "target.server", Msg: "required"}
		}
		return nil
	}},
)

func TestMain(m *testing.M) {
	UseStorage(testTypes)
	os.Exit(m.Run())
}

func TestLoadBackupErrorsNameTheField(t *testing.T) {
	base := "cluster:\n  name: c\n  bootstrap_servers: [\"h:1\"]\ntarget: {type: LocalDir, path: /b}\n"
	cases := []struct{ name, yaml, want string }{
		{"ok", base, ""},
		{"empty file", "", "empty"},
		{"unknown field", base + "colour: red\n", "colour"},
		{"no bootstrap", "cluster: {name: c}\ntarget: {type: LocalDir, path: /b}\n", "cluster.bootstrap_servers"},
		{"bad server", strings.Replace(base, "h:1", "nohost", 1), "cluster.bootstrap_servers[0]"},
		{"bad type", strings.Replace(base, "LocalDir", "Tape", 1), "target.type"},
		{"bad source", base + "data_sources: [logs]\n", "data_sources[0]"},
		{"bad regex", base + "topics: {include: [\"(\"]}\n", "topics.include[0]"},
		{"bad size", base + "options: {segment_bytes: lots}\n", "lots"},
		{"small segment", base + "options: {segment_bytes: 1KiB}\n", "options.segment_bytes"},
		{"bad parallelism", base + "options: {parallelism: -1}\n", "options.parallelism"},
		{"bad task", base + "task: a_b\n", "task"},
		{"sasl without secret", strings.Replace(base, "  name: c\n", "  name: c\n  sasl: {mechanism: PLAIN, username: u}\n", 1), "cluster.sasl.password"},
		{"two documents", base + "---\n" + base, "more than one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "b.yaml")
			os.WriteFile(p, []byte(tc.yaml), 0o644)
			cfg, err := LoadBackup(p)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				if cfg.Task != "c" || cfg.Options.Parallelism != DefaultParallelism || len(cfg.DataSources) != 3 {
					t.Errorf("defaults not applied: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "b.yaml") {
				t.Errorf("got %v, want an error naming b.yaml and %q", err, tc.want)
			}
		})
	}
}

func TestRenameMap(t *testing.T) {
	r := Restore{Rename: []string{"a:b", "c:d"}}
	m, err := r.RenameMap()
	if err != nil || m["a"] != "b" || m["c"] != "d" {
		t.Errorf("got %v %v", m, err)
	}
	for _, bad := range [][]string{{"a"}, {"a:b", "a:c"}, {"a:x", "b:x"}, {"a:b/c"}} {
		if _, err := (&Restore{Rename: bad}).RenameMap(); err == nil {
			t.Errorf("rename %v accepted", bad)
		}
	}
}

func TestSecretNeverInError(t *testing.T) {
	t.Setenv("KBR_TEST_SECRET", "hunter2")
	v, err := Secret{Env: "KBR_TEST_SECRET"}.Resolve("cluster.sasl.password")
	if err != nil || v != "hunter2" {
		t.Fatalf("got %q %v", v, err)
	}
	_, err = Secret{Env: "KBR_TEST_UNSET_SECRET"}.Resolve("cluster.sasl.password")
	if err == nil || !strings.Contains(err.Error(), "KBR_TEST_UNSET_SECRET") {
		t.Errorf("got %v", err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"20GiB": 20 << 30, "1.5KB": 1500, "1048576": 1 << 20, "64 MiB": 64 << 20} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseByteSize("-1"); err == nil {
		t.Error("negative size accepted")
	}
}

// A path type's own parameter check names the field where the operator
// wrote it, under the target's place in the document.
func TestTargetParamsNamed(t *testing.T) {
	err := ValidateTarget("source.target", storage.Target{Type: "TestType", Path: "/x"})
	if err == nil || err.Error() != "source.target.server: required" {
		t.Errorf("got %v, want source.target.server: required", err)
	}
}

// TestSizesAreNeverNegative guards what the config fuzzer's property
// ("no accepted negative size") caught: "NaN" parsed as a size (NaN
// passes every comparison and converts to -9223372036854775808), and a
// negative throttle from a JSON input was accepted.
func TestSizesAreNeverNegative(t *testing.T) {
	for _, s := range []string{"NaN", "nan", "NaNMiB", "-1", "-Inf", "+Inf", "Inf"} {
		if v, err := ParseByteSize(s); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", s, v)
		}
	}
	b := Backup{Cluster: Cluster{Name: "c", BootstrapServers: []string{"h:1"}}, Target: storage.Target{Type: "LocalDir", Path: "/b"}}
	b.ApplyDefaults()
	b.Options.ThrottleBytesPerSecond = -5
	if err := b.Validate(); err == nil || !strings.Contains(err.Error(), "options.throttle_bytes_per_second") {
		t.Errorf("backup with throttle -5: %v", err)
	}
	r := Restore{Cluster: b.Cluster, Source: Source{Target: b.Target, RecoveryPoint: "latest"}}
	r.ApplyDefaults()
	r.Options.ThrottleBytesPerSecond = -5
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "options.throttle_bytes_per_second") {
		t.Errorf("restore with throttle -5: %v", err)
	}
}
