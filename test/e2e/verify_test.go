package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/testenv"
)

// Verify finds a flipped byte and a missing file, each by name, and passes
// an intact recovery point.
func TestVerifyNamesDamagedFiles(t *testing.T) {
	env := testenv.Load(t)
	topic := "e2e-" + randID() + "-verify"
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, kadm.NewClient(cl), topic, 2, 3, nil)
	var rs []*kgo.Record
	for i := 0; i < 500; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: []byte(fmt.Sprint(i)), Value: []byte(strings.Repeat("v", 100))})
	}
	produceSync(t, cl, rs...)
	target := filepath.Join(t.TempDir(), "backups")
	cfg := writeFile(t, "backup.yaml", `
cluster: {name: zkmode, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: verify-`+randID()+`
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB, compression: none}
`)
	r := kbr(t, 3*time.Minute, "backup", "run", "-f", cfg, "--json")
	if r.code != 0 {
		t.Fatalf("backup: exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		Result struct {
			RecoveryPoint string `json:"recovery_point"`
		} `json:"result"`
	}
	json.Unmarshal([]byte(r.stdout), &out)
	manifestPath := filepath.Join(target, out.Result.RecoveryPoint)

	if r := kbr(t, 2*time.Minute, "backups", "verify", manifestPath); r.code != 0 {
		t.Fatalf("verify of an intact recovery point: exit %d: %s", r.code, r.stderr)
	}

	data, _ := os.ReadFile(manifestPath)
	m, err := backupset.UnmarshalManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	seg := dataFiles(t, target, out.Result.RecoveryPoint)[0]
	flipped, _ := filepath.Rel(target, seg)
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 0x01
	os.WriteFile(seg, b, 0o640)
	missing := m.Offsets.Name
	os.Remove(filepath.Join(target, missing))

	r = kbr(t, 2*time.Minute, "backups", "verify", target, "--recovery-point", out.Result.RecoveryPoint)
	if r.code != 1 {
		t.Fatalf("verify of a damaged recovery point: exit %d, want 1: %s", r.code, r.stderr)
	}
	for _, name := range []string{flipped, missing} {
		if !strings.Contains(r.stderr, name) {
			t.Errorf("verify output does not name %s:\n%s", name, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "2 of") {
		t.Errorf("verify output does not count 2 damaged files:\n%s", r.stderr)
	}
}
