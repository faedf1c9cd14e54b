package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbr-project/kbr/internal/backupset"
)

// `kbr restore kraft` refuses bad input with exit 2 before it dials
// Temporal, naming the field.
func TestRunKRaftRestoreBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var c captured
	o := newKRaftRestoreOpts()
	if line := checkExit(t, "no -f", runKRaftRestore(ctx, o, c.streams()), exitBadInput); line != "kbr: -f CONFIG is required" {
		t.Errorf("no -f: %s", line)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"no nodes", `cluster: {name: k, bootstrap_servers: ["127.0.0.1:9"]}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
`, "nodes: required"},
		{"zookeeper", `cluster: {name: k, bootstrap_servers: ["127.0.0.1:9"], zookeeper: {connect: ["127.0.0.1:2181"]}}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
nodes: [{id: 1, host: k1}]
`, "cluster.zookeeper"},
		{"a host twice", `cluster: {name: k, bootstrap_servers: ["127.0.0.1:9"]}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
nodes: [{id: 1, host: k1}, {id: 2, host: k1}]
`, "nodes[1].host"},
	} {
		o.file.path = writeConfig(t, tc.body)
		if line := checkExit(t, tc.name, runKRaftRestore(ctx, o, c.streams()), exitBadInput); !strings.Contains(line, tc.want) {
			t.Errorf("%s: %s, want it to name %s", tc.name, line, tc.want)
		}
	}
	if c.out.Len() != 0 {
		t.Errorf("stdout: %s", c.out.String())
	}
}

// `kbr backups show` of a recovery point without the kraft_log data source
// says so; --node of a node it does not hold fails naming it.
func TestRunBackupsShowWithoutKRaftLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	created := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	taskDir := backupset.TaskDir("kq", created)
	name := backupset.ManifestName(taskDir, "4.1.1", created.Add(time.Hour))
	m := &backupset.Manifest{Format: backupset.FormatVersion, Task: "kq", TaskDir: taskDir, Cluster: "kq", KafkaVersion: "4.1.1",
		Mode: "kraft", Kind: "full", ExecutedAt: created.Add(time.Hour), FinishedAt: created.Add(time.Hour + time.Minute),
		DataSources: []string{"metadata"}, Compression: "zstd"}
	js, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, taskDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), js, 0o644); err != nil {
		t.Fatal(err)
	}
	var c captured
	checkExit(t, "show", runBackupsShow(ctx, &showOpts{}, []string{filepath.Join(dir, name)}, c.streams()), exitOK)
	if !strings.Contains(c.out.String(), "no KRaft metadata log (data source kraft_log) in it") || !strings.Contains(c.out.String(), "mode kraft") {
		t.Errorf("show:\n%s", c.out.String())
	}
	c = captured{}
	checkExit(t, "show --json", runBackupsShow(ctx, &showOpts{out: outputOpts{json: true}, recoveryPoint: "latest"}, []string{dir}, c.streams()), exitOK)
	var out shown
	if err := json.Unmarshal(c.out.Bytes(), &out); err != nil || out.RecoveryPoint == nil || out.RecoveryPoint.Manifest != name || out.Metadata != nil {
		t.Errorf("show --json: %v %+v\n%s", err, out, c.out.String())
	}
	c = captured{}
	line := checkExit(t, "show --node 5", runBackupsShow(ctx, &showOpts{node: 5, nodeGiven: true}, []string{filepath.Join(dir, name)}, c.streams()), exitFailed)
	if !strings.Contains(line, "holds no metadata log of node 5") {
		t.Errorf("show --node 5: %s", line)
	}
}
