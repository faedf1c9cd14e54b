package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/workflows"
)

func TestBarLine(t *testing.T) {
	t.Parallel()
	export := workflows.Progress{Steps: []workflows.Step{{Name: "preflight", Status: "done"}, {Name: "export partitions", Status: "running"}},
		PartitionsTotal: 8, PartitionsDone: 2, RecordsTotal: 1000, RecordsDone: 250, BytesDone: 25e6}
	for _, tc := range []struct {
		name    string
		p       workflows.Progress
		running time.Duration
		width   int
		want    []string
	}{
		{"records, with bytes moving", export, 10 * time.Second, 120,
			[]string{"export partitions", "[", " 25%", "250/1000 records", "2.5 MB/s", "ETA 30s"}},
		{"bytes when no record count", workflows.Progress{Steps: []workflows.Step{{Name: "restore partitions", Status: "running"}},
			PartitionsTotal: 2, EstimatedBytes: 200e6, BytesDone: 50e6}, time.Minute, 100,
			[]string{"restore partitions", " 25%", "50.0/200.0 MB", "0.8 MB/s", "ETA 3m00s"}},
		{"nothing done yet", workflows.Progress{Steps: []workflows.Step{{Name: "export partitions", Status: "running"}}, PartitionsTotal: 3},
			time.Second, 80, []string{"  0%", "0/3 partitions", "ETA --"}},
		{"done", workflows.Progress{PartitionsTotal: 3, PartitionsDone: 3}, time.Second, 80, []string{"100%", "ETA 0s"}},
		{"narrow terminal: figures only", export, 10 * time.Second, 50, []string{"25%"}},
	} {
		got := barLine(tc.p, tc.running, tc.width)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
		if n := len([]rune(got)); n >= tc.width {
			t.Errorf("%s: %d columns, want fewer than the terminal's %d: %q", tc.name, n, tc.width, got)
		}
	}
	if got := barLine(workflows.Progress{}, time.Second, 80); got != "" {
		t.Errorf("no measure: %q, want no bar", got)
	}
}

// A failed run is one line that says first which run failed, at which
// step, and why; the ids come last.
func TestFailureLine(t *testing.T) {
	t.Parallel()
	cause := temporal.NewApplicationError("export partitions: export orders[3]: broker 127.0.0.1:9092 unreachable", "X")
	p := workflows.Progress{Steps: []workflows.Step{{Name: "preflight", Status: "done"}, {Name: "export partitions", Status: "failed"}}}
	f := &failure{what: runName("BackupWorkflow"), step: failedStep(p), msg: failureText(cause), id: "backup-x", runID: "r1"}
	want := `backup failed at step "export partitions": export orders[3]: broker 127.0.0.1:9092 unreachable (workflow id backup-x, run id r1)`
	if got := f.Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := f.ledByStep(); got != "export partitions: export orders[3]: broker 127.0.0.1:9092 unreachable" {
		t.Errorf("--json error %q: want the cause as it names the step", got)
	}
	var ee *exitError
	if err := withCode(exitFailed, f); !errors.As(err, &ee) || ee.code != exitFailed {
		t.Errorf("exit code lost: %v", err)
	}
	// No step known (refused before its first step): the cause alone.
	g := &failure{what: runName("RestoreWorkflow"), msg: "cluster busy", id: "r", runID: "1"}
	if got := g.Error(); got != "restore failed: cluster busy (workflow id r, run id 1)" {
		t.Errorf("got %q", got)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	t.Parallel()
	if v := buildVersion(); v.Version == "" || v.TemporalSDK == "" || v.GoVersion == "" {
		t.Errorf("version info incomplete: %+v", v)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{"completion", shell})
		if err := root.Execute(); err != nil || !strings.Contains(out.String(), "kbr") {
			t.Errorf("completion %s: %v, %d bytes", shell, err, out.Len())
		}
	}
	// What the shell scripts ask: the completions of "kbr task ".
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"__complete", "task", ""})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"create", "history", "lock", "run"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("kbr task <TAB> lacks %s:\n%s", w, out.String())
		}
	}
}
