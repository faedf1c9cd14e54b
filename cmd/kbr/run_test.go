package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/names"
)

func TestRunBackup(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	run := func(task string, start startOpts) (captured, error) {
		var c captured
		o := newBackupOpts()
		o.conn, o.file.path = conn, backupYAML(t, task)
		start.idHelp = o.start.idHelp
		o.start = start
		return c, runBackup(ctx, o, c.streams())
	}

	t.Run("succeeded", func(t *testing.T) {
		c, err := run("daily", startOpts{})
		checkExit(t, "backup", err, exitOK)
		for _, w := range []string{"backup succeeded: 1000 records, 4 files, 4096 bytes", "recovery point: daily_20261122T100000Z/3.9.1_manifest_20261122T100000Z.json", "backup path:    "} {
			if !strings.Contains(c.out.String(), w) {
				t.Errorf("stdout lacks %q:\n%s", w, c.out.String())
			}
		}
		if !strings.Contains(c.err.String(), "BackupWorkflow started: workflow id backup-daily-") {
			t.Errorf("stderr:\n%s", c.err.String())
		}
	})

	// Records lost: exit 4 and one line that counts them and names the
	// first ranges; the recovery point is still printed.
	t.Run("records lost", func(t *testing.T) {
		c, err := run(taskLost, startOpts{id: "backup-lost-1"})
		line := checkExit(t, "backup", err, exitRecordsLost)
		want := "kbr: backup lost records: 130 offsets in 2 partitions were deleted by retention before the backup read them: " +
			"orders[0] offsets 0..99; orders[3] offsets 10..19; audit[1] offsets 5..9; audit[1] offsets 20..24; audit[1] offsets 40..44 (the first 5 of 7 ranges); " +
			"recovery point lost-records_20261122T100000Z/3.9.1_manifest_20261122T100000Z.json lacks them (workflow id backup-lost-1, run id "
		if !strings.HasPrefix(line, want) || !strings.HasSuffix(line, ")") {
			t.Errorf("got  %q\nwant %q…", line, want)
		}
		if !strings.Contains(c.out.String(), "backup completed with records lost: 1000 records") || !strings.Contains(c.out.String(), "recovery point: lost-records_") {
			t.Errorf("stdout:\n%s", c.out.String())
		}
	})

	t.Run("records lost, --json", func(t *testing.T) {
		c, err := run(taskLost, startOpts{outputOpts: outputOpts{json: true}})
		checkExit(t, "backup --json", err, exitRecordsLost)
		var got struct {
			Status string `json:"status"`
			Result struct {
				Lost *backupset.LostSummary `json:"lost"`
			} `json:"result"`
		}
		if err := json.Unmarshal(c.out.Bytes(), &got); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, c.out.String())
		}
		if got.Status != names.StatusRecordsLost || got.Result.Lost == nil || got.Result.Lost.Offsets != 130 {
			t.Errorf("--json: %+v", got)
		}
		if c.err.Len() != 0 {
			t.Errorf("--json wrote to stderr: %s", c.err.String())
		}
	})

	t.Run("failed", func(t *testing.T) {
		_, err := run(taskFail, startOpts{id: "backup-fail-1"})
		line := checkExit(t, "backup", err, exitFailed)
		want := `kbr: backup failed at step "export partitions": export orders[3]: broker 127.0.0.1:9 unreachable (workflow id backup-fail-1, run id `
		if !strings.HasPrefix(line, want) {
			t.Errorf("got  %q\nwant %q…", line, want)
		}
	})

	t.Run("failed, --json", func(t *testing.T) {
		c, err := run(taskFail, startOpts{outputOpts: outputOpts{json: true}})
		checkExit(t, "backup --json", err, exitFailed)
		var got map[string]string
		if err := json.Unmarshal(c.out.Bytes(), &got); err != nil || got["status"] != names.StatusFailed ||
			got["error"] != "export partitions: export orders[3]: broker 127.0.0.1:9 unreachable" {
			t.Errorf("--json: %v %v", got, err)
		}
	})

	t.Run("detach", func(t *testing.T) {
		c, err := run("daily", startOpts{detach: true, id: "backup-detached-1"})
		checkExit(t, "backup --detach", err, exitOK)
		if c.out.String() != "backup-detached-1\n" {
			t.Errorf("stdout %q, want the workflow id", c.out.String())
		}
	})

	// The status of a run that ended: its steps from the progress query.
	t.Run("status", func(t *testing.T) {
		var c captured
		err := runStatus(ctx, &statusOpts{conn: conn, kind: "backup"}, "backup-detached-1", c.streams())
		checkExit(t, "status", err, exitOK)
		if !strings.Contains(c.out.String(), "backup backup-detached-1: succeeded") || !strings.Contains(c.out.String(), "export partitions") {
			t.Errorf("status:\n%s", c.out.String())
		}
		err = runStatus(ctx, &statusOpts{conn: conn, kind: "backup"}, "no-such-run", c.streams())
		if line := checkExit(t, "status of nothing", err, exitFailed); !strings.Contains(line, "no backup with workflow id no-such-run") {
			t.Errorf("status of nothing: %s", line)
		}
	})
}

// Bad arguments exit 2 before anything is started; an unreachable Temporal
// exits 3.
func TestRunBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var c captured
	o := newBackupOpts()
	line := checkExit(t, "no -f", runBackup(ctx, o, c.streams()), exitBadInput)
	if line != "kbr: -f CONFIG is required" {
		t.Errorf("no -f: %s", line)
	}
	o.file.path = writeConfig(t, "cluster: {name: prod}\ntarget: {type: LocalDir, path: /tmp}\n")
	if line := checkExit(t, "no brokers", runBackup(ctx, o, c.streams()), exitBadInput); !strings.Contains(line, "cluster.bootstrap_servers") {
		t.Errorf("no brokers: %s", line)
	}
	so := newSchemasRestoreOpts()
	if line := checkExit(t, "schemas: no -f", runSchemasRestore(ctx, so, c.streams()), exitBadInput); line != "kbr: -f CONFIG is required" {
		t.Errorf("schemas: no -f: %s", line)
	}
	so.file.path = writeConfig(t, "source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}\n")
	if line := checkExit(t, "schemas: no registry", runSchemasRestore(ctx, so, c.streams()), exitBadInput); !strings.Contains(line, "schema_registry") {
		t.Errorf("schemas: no registry: %s", line)
	}
	so.file.path = writeConfig(t, "source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}\nschema_registry: {url: http://sr:8081}\nrename: [bad]\n")
	if line := checkExit(t, "schemas: bad rename", runSchemasRestore(ctx, so, c.streams()), exitBadInput); !strings.Contains(line, "rename[0]") {
		t.Errorf("schemas: bad rename: %s", line)
	}
	for _, v := range []string{"12", "lots"} {
		w := newWorkerOpts()
		w.proc.restBuf = v
		if line := checkExit(t, "--restore-buffer "+v, runWorker(ctx, w, c.streams()), exitBadInput); !strings.Contains(line, "--restore-buffer") {
			t.Errorf("--restore-buffer %s: %s", v, line)
		}
	}
	r := newRestoreOpts()
	r.file.path, r.toTime = writeConfig(t, `cluster: {name: prod, bootstrap_servers: ["127.0.0.1:9"]}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
`), "yesterday"
	if line := checkExit(t, "--to-time", runRestore(ctx, r, c.streams()), exitBadInput); !strings.Contains(line, "--to-time \"yesterday\": want RFC 3339") {
		t.Errorf("--to-time: %s", line)
	}

	o.file.path = backupYAML(t, "daily")
	o.conn = connOpts{address: "127.0.0.1:1", namespace: "default", dialTimeout: 2 * time.Second}
	if line := checkExit(t, "unreachable", runBackup(ctx, o, c.streams()), exitConnect); !strings.Contains(line, "connect to Temporal at 127.0.0.1:1") {
		t.Errorf("unreachable: %s", line)
	}
	o.conn.tlsCert = "cert.pem"
	if line := checkExit(t, "cert without key", runBackup(ctx, o, c.streams()), exitBadInput); !strings.Contains(line, "--tls-cert and --tls-key go together") {
		t.Errorf("cert without key: %s", line)
	}
	if c.out.Len() != 0 {
		t.Errorf("stdout: %s", c.out.String())
	}
	// Cobra's own refusals (an unknown flag, a missing argument) are bad
	// input too.
	for _, args := range [][]string{{"backup", "run", "--no-such-flag"}, {"restore", "retry"}, {"no-such-command"}} {
		root := newRoot()
		root.SetArgs(args)
		root.SetOut(&c.out)
		root.SetErr(&c.err)
		checkExit(t, strings.Join(args, " "), root.Execute(), exitBadInput)
	}
	c.out.Reset()
	ts := &taskSaveOpts{verb: "create", file: fileOpts{arg: "TASK.yaml"}}
	if line := checkExit(t, "task create", runTaskSave(ctx, ts, c.streams()), exitBadInput); line != "kbr: -f TASK.yaml is required" {
		t.Errorf("task create: %s", line)
	}
}

// A failed restore is resumed by `kbr restore retry` with the plan its run
// fixed, on the recovery point that run restored.
func TestRunRetryDataRestore(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	var c captured
	r := newRestoreOpts()
	r.conn, r.start.id = conn, "restore-retry-1"
	r.file.path = writeConfig(t, `cluster: {name: prod, bootstrap_servers: ["127.0.0.1:9"]}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
`)
	line := checkExit(t, "restore", runRestore(ctx, r, c.streams()), exitFailed)
	if !strings.HasPrefix(line, `kbr: restore failed at step "restore partitions": produce orders[1]: NOT_ENOUGH_REPLICAS (workflow id restore-retry-1`) {
		t.Errorf("restore: %s", line)
	}
	o := newRetryOpts()
	o.conn, o.grace = conn, 0
	c = captured{}
	checkExit(t, "retry", runRetry(ctx, o, "restore-retry-1", c.streams()), exitOK)
	if !strings.Contains(c.err.String(), "retrying restore restore-retry-1 with the plan of run ") {
		t.Errorf("stderr:\n%s", c.err.String())
	}
	if !strings.Contains(c.out.String(), "restore succeeded: 42 records from prod_20261122T100000Z/3.9.1_manifest_20261122T100000Z.json (plan of ") {
		t.Errorf("stdout:\n%s", c.out.String())
	}
	// Succeeded: it runs once.
	line = checkExit(t, "retry of a succeeded restore", runRetry(ctx, o, "restore-retry-1", c.streams()), exitBadInput)
	if line != "kbr: restore restore-retry-1 succeeded: a restore runs once" {
		t.Errorf("retry of a succeeded restore: %s", line)
	}
	line = checkExit(t, "retry of nothing", runRetry(ctx, o, "no-such-restore", c.streams()), exitBadInput)
	if line != "kbr: no restore with id no-such-restore" {
		t.Errorf("retry of nothing: %s", line)
	}
}

// A failed metadata restore says how to resume it; the retry is given
// the steps it completed and the recovery point it resolved.
func TestRunRetryMetadataRestore(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	var c captured
	o := newMetadataRestoreOpts()
	o.conn, o.start.id = conn, "metarestore-retry-1"
	o.file.path = writeConfig(t, `cluster:
  name: prod
  bootstrap_servers: ["127.0.0.1:9"]
  zookeeper: {connect: ["127.0.0.1:2181"], chroot: /kafka}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
brokers: [{id: 1, host: zk1}]
`)
	err := runMetadataRestore(ctx, o, c.streams())
	if _, line := exitOf(err); exitCode(err) == exitBadInput {
		t.Fatalf("the metadata restore config was refused: %s", line)
	}
	checkExit(t, "metadata restore", err, exitFailed)
	if !strings.Contains(c.err.String(), "resume it with: kbr restore retry metarestore-retry-1") {
		t.Errorf("stderr:\n%s", c.err.String())
	}
	r := newRetryOpts()
	r.conn = conn
	c = captured{}
	checkExit(t, "retry", runRetry(ctx, r, "metarestore-retry-1", c.streams()), exitOK)
	if !strings.Contains(c.out.String(), "metadata restore metarestore-retry-1 succeeded: resolved/manifest.json") ||
		!strings.Contains(c.out.String(), "note: resumed from run ") || !strings.Contains(c.out.String(), "after [preflight]") {
		t.Errorf("stdout:\n%s", c.out.String())
	}
	// Started again under the same id: refused.
	c = captured{}
	line := checkExit(t, "again", runMetadataRestore(ctx, o, c.streams()), exitBadInput)
	if !strings.Contains(line, "restore metarestore-retry-1 already ran and succeeded, or is running") {
		t.Errorf("again: %s", line)
	}
}

func TestRunLogicalRestore(t *testing.T) {
	conn := testConn(t)
	var c captured
	o := newLogicalRestoreOpts()
	o.conn, o.dryRun = conn, true
	o.file.path = writeConfig(t, `cluster: {name: new, bootstrap_servers: ["127.0.0.1:9"]}
source: {target: {type: LocalDir, path: /tmp}, recovery_point: latest}
`)
	err := runLogicalRestore(context.Background(), o, c.streams())
	checkExit(t, "logical --dry-run", err, exitOK)
	for _, w := range []string{"dry run of prod_20261122T100000Z/4.1.1_manifest_20261122T100000Z.json: nothing was changed", "TOPIC", "note: dry run"} {
		if !strings.Contains(c.out.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, c.out.String())
		}
	}
	if !strings.Contains(c.err.String(), "workflow id logical-dryrun-new-") {
		t.Errorf("stderr:\n%s", c.err.String())
	}
}

// backups list reads a LocalDir path in this process: an empty one, a
// recovery point, and a manifest that does not read.
func TestRunBackupsList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	list := func(jsonOut bool) (captured, error) {
		var c captured
		return c, runBackupsList(ctx, &backupsListOpts{pathType: "LocalDir", out: outputOpts{json: jsonOut}}, dir, c.streams())
	}
	c, err := list(false)
	checkExit(t, "list", err, exitOK)
	if c.out.String() != "no recovery points under "+dir+"\n" {
		t.Errorf("empty: %q", c.out.String())
	}

	created := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	taskDir := backupset.TaskDir("prod-daily", created)
	good := backupset.ManifestName(taskDir, "3.9.1", created.Add(time.Hour))
	damaged := backupset.ManifestName(taskDir, "3.9.1", created.Add(2*time.Hour))
	m := &backupset.Manifest{Format: backupset.FormatVersion, Task: "prod-daily", TaskDir: taskDir, Cluster: "prod", KafkaVersion: "3.9.1",
		Mode: "zookeeper", Kind: "full", ExecutedAt: created.Add(time.Hour), FinishedAt: created.Add(time.Hour + time.Minute),
		DataSources: []string{"metadata"}, Compression: "zstd"}
	js, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{good: js, damaged: nil} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err = list(false)
	checkExit(t, "list", err, exitOK)
	lines := strings.Split(strings.TrimSpace(c.out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "EXECUTED") {
		t.Fatalf("list:\n%s", c.out.String())
	}
	var goodLine, damagedLine string
	for _, l := range lines[1:] {
		if strings.Contains(l, good) {
			goodLine = l
		}
		if strings.Contains(l, damaged) {
			damagedLine = l
		}
	}
	if f := strings.Fields(goodLine); len(f) != 8 || f[0] != "2026-11-22T11:00:00Z" || f[1] != "prod-daily" || f[2] != "prod" || f[3] != "3.9.1" {
		t.Errorf("recovery point line %q", goodLine)
	}
	if !strings.Contains(damagedLine, damaged+"  DAMAGED: the file is empty (0 bytes)") {
		t.Errorf("damaged line %q", damagedLine)
	}

	c, err = list(true)
	checkExit(t, "list --json", err, exitOK)
	var got []listedPoint
	if err := json.Unmarshal(c.out.Bytes(), &got); err != nil || len(got) != 2 {
		t.Fatalf("--json: %v\n%s", err, c.out.String())
	}
	for _, p := range got {
		if (p.Manifest == damaged) != (p.Damaged != "") || p.Manifest == good && p.Cluster != "prod" {
			t.Errorf("--json entry %+v", p)
		}
	}

	var e captured
	if line := checkExit(t, "list of a file", runBackupsList(ctx, &backupsListOpts{pathType: "LocalDir"}, filepath.Join(dir, good), e.streams()), exitBadInput); !strings.Contains(line, "not a directory") {
		t.Errorf("list of a file: %s", line)
	}
}

// backups verify: the shapes of its arguments, then a VerifyWorkflow.
func TestRunBackupsVerify(t *testing.T) {
	dir := t.TempDir()
	rp := "prod-daily_20261122T100000Z/3.9.1_manifest_20261122T110000Z.json"
	for _, tc := range []struct {
		name         string
		args         []string
		rp, target   string
		wantPath     string
		wantRP, fail string
	}{
		{name: "a manifest file", args: []string{filepath.Join(dir, rp)}, wantPath: dir, wantRP: rp},
		{name: "a path and latest", args: []string{dir}, rp: "latest", wantPath: dir, wantRP: "latest"},
		{name: "a path alone", args: []string{dir}, fail: "--recovery-point: required unless PATH is a manifest file"},
		{name: "nothing", fail: "give PATH, or --target FILE with --recovery-point"},
		{name: "not a manifest", args: []string{dir}, rp: "prod/x.json", fail: "prod/x.json is not a recovery point's manifest"},
		{name: "a target file", target: writeConfig(t, "type: LocalDir\npath: "+dir+"\n"), rp: rp, wantPath: dir, wantRP: rp},
		{name: "a target file that is no YAML map", target: writeConfig(t, "[LocalDir]\n"), rp: rp, fail: "--target "},
		{name: "a target of no known type", target: writeConfig(t, "type: Tape\npath: /dev/st0\n"), rp: rp, fail: `unknown path type "Tape"`},
	} {
		in, err := verifyInput(tc.args, tc.rp, tc.target)
		switch {
		case tc.fail != "":
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.fail)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case in.Source.Target.Path != tc.wantPath || in.Source.RecoveryPoint != tc.wantRP || in.Source.Target.Type != "LocalDir":
			t.Errorf("%s: %+v", tc.name, in.Source)
		}
	}

	conn := testConn(t)
	var c captured
	err := runBackupsVerify(context.Background(), &verifyOpts{conn: conn}, []string{filepath.Join(dir, rp)}, c.streams())
	checkExit(t, "verify", err, exitOK)
	if want := "recovery point " + rp + ": 3 files, 300 bytes, every size and SHA-256 matches\n"; c.out.String() != want {
		t.Errorf("stdout %q, want %q", c.out.String(), want)
	}
	c = captured{}
	damaged := "prod-daily_20261122T100000Z/3.9.1_manifest_20261122T120000Z.json"
	err = runBackupsVerify(context.Background(), &verifyOpts{conn: conn, recoveryPoint: damaged}, []string{dir}, c.streams())
	if line := checkExit(t, "verify of a damaged one", err, exitFailed); !strings.Contains(line, damaged+": SHA-256 mismatch") {
		t.Errorf("verify of a damaged one: %s", line)
	}
}

func TestRunNamespaceCreate(t *testing.T) {
	conn := testConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, want := range []string{"created", "exists"} {
		var c captured
		err := runNamespaceCreate(ctx, &namespaceCreateOpts{conn: conn, retention: 48 * time.Hour}, "kbr-cli-test", c.streams())
		checkExit(t, "namespace create", err, exitOK)
		if got := c.out.String(); got != "namespace kbr-cli-test "+want+"; kbr's search attributes registered\n" {
			t.Errorf("%q, want it %s", got, want)
		}
	}
	var c captured
	err := runNamespaceCreate(ctx, &namespaceCreateOpts{conn: conn, retention: time.Hour}, "kbr-cli-test", c.streams())
	if line := checkExit(t, "short retention", err, exitBadInput); !strings.Contains(line, "at least 24h") {
		t.Errorf("short retention: %s", line)
	}
}

func TestRunTaskList(t *testing.T) {
	conn := testConn(t)
	var c captured
	err := runTaskList(context.Background(), &taskOpts{conn: conn}, c.streams())
	checkExit(t, "task list", err, exitOK)
	if !strings.HasPrefix(c.out.String(), "TASK") {
		t.Errorf("task list:\n%s", c.out.String())
	}
	err = runTaskShow(context.Background(), &taskOpts{conn: conn}, "no-such-task", c.streams())
	if code, line := exitOf(err); code == exitOK || !strings.Contains(line, "no-such-task") {
		t.Errorf("task show of nothing: exit %d %s", code, line)
	}
}

// The agent's settings: the file's, each flag given over them, --port as
// a shorthand for --listener.
func TestAgentConfig(t *testing.T) {
	t.Parallel()
	props := writeConfig(t, "log.dirs=/var/lib/kafka\n")
	file := writeConfig(t, "host: zk1\nserver_properties: "+props+"\nlistener: 127.0.0.1:19092\nstop_command: stop-it\n")
	for _, tc := range []struct {
		args               []string
		host, listen, stop string
		fail               string
	}{
		{args: []string{"--config", file}, host: "zk1", listen: "127.0.0.1:19092", stop: "stop-it"},
		{args: []string{"--config", file, "--host", "zk2", "--port", "19093"}, host: "zk2", listen: "127.0.0.1:19093", stop: "stop-it"},
		{args: []string{"--config", file, "--listener", "10.0.0.1:9092", "--port", "1"}, host: "zk1", listen: "10.0.0.1:9092", stop: "stop-it"},
		// Unset, the commands stay empty: hostops runs its defaults.
		{args: []string{"--host", "zk3", "--server-properties", props}, host: "zk3", listen: "127.0.0.1:9092", stop: ""},
		{args: []string{"--server-properties", props}, fail: "agent config (flags): host: required"},
	} {
		o := newAgentOpts()
		fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		eff, err := agentConfig(o)
		if tc.fail != "" {
			if code, line := exitOf(err); code != exitBadInput || !strings.Contains(line, tc.fail) {
				t.Errorf("%v: exit %d %s, want %q", tc.args, code, line, tc.fail)
			}
			continue
		}
		if err != nil || eff.Host != tc.host || eff.Listener != tc.listen || eff.StopCommand != tc.stop {
			t.Errorf("%v: %+v %v", tc.args, eff, err)
		}
	}
}
