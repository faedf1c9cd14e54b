package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbr-project/kbr/internal/testenv"
)

// TestDamagedManifestReadably guards two things a 0-byte manifest did: a
// backup whose retention read it failed with one message repeated through
// five nested Temporal wrappers, and the CLI printed only "unexpected end
// of JSON input", with no step and no file; and `kbr backups list` listed
// it as a recovery point with 0 topics. Now the failure is one line naming
// the step (retention), the file and the cause, and the list marks the
// manifest damaged, with why.
func TestDamagedManifestReadably(t *testing.T) {
	env := testenv.Load(t)
	target := filepath.Join(t.TempDir(), "backups")
	task := "dmg-" + randID()
	// An older run of the task whose manifest was left empty (0 bytes).
	damaged := task + "_20260101T000000Z/3.9_manifest_20260101T000000Z.json"
	if err := os.MkdirAll(filepath.Join(target, filepath.Dir(damaged)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, damaged), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	r := kbr(t, time.Minute, "backups", "list", target)
	if r.code != 0 || !strings.Contains(r.stdout, damaged+"  DAMAGED: the file is empty (0 bytes)") {
		t.Errorf("backups list: exit %d\n%s%s\nwant %s listed as DAMAGED: the file is empty", r.code, r.stdout, r.stderr, damaged)
	}
	r = kbr(t, time.Minute, "backups", "list", "--json", target)
	var listed []struct {
		Manifest string `json:"manifest"`
		Damaged  string `json:"damaged"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 1 || listed[0].Damaged == "" {
		t.Errorf("backups list --json: %v, %+v; want the manifest with a damaged reason", err, listed)
	}

	// A run of the same task keeps it (max copies 3) and its retention
	// cannot read it: the run fails, saying so on one line.
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
  zookeeper: {connect: ["`+env.ZKConnect+`"], chroot: `+env.ZKChroot+`}
task: `+task+`
data_sources: [metadata]
max_copies: 3
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB}
`)
	r = kbr(t, 3*time.Minute, "backup", "run", "-f", cfg)
	if r.code != 1 {
		t.Fatalf("backup: exit %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "kbr: ") {
			if last != "" {
				t.Errorf("more than one error line:\n%s", r.stderr)
			}
			last = l
		}
	}
	for _, want := range []string{"retention", damaged, "the file is empty (0 bytes)"} {
		if !strings.Contains(last, want) {
			t.Errorf("error line %q does not name %q", last, want)
		}
	}
	for _, noise := range []string{"activity error", "workflow execution error", "retryable:", "unexpected end of JSON input"} {
		if strings.Contains(r.stderr, noise) {
			t.Errorf("the output holds %q:\n%s", noise, r.stderr)
		}
	}
	if n := strings.Count(last, "the file is empty"); n != 1 {
		t.Errorf("the cause appears %d times in %q, want once", n, last)
	}
}
