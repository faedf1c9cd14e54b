package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTaskValidation(t *testing.T) {
	dir := t.TempDir()
	base := "name: orders\ncluster: {name: c, bootstrap_servers: [\"127.0.0.1:9092\"]}\ntarget: {type: LocalDir, path: " + dir + "}\n"
	cases := []struct{ body, want string }{
		{"max_copies: 3\nmode: periodic\nperiod: 60s\n", "period: 1m0s is under the minimum of 120s"},
		{"max_copies: 3\nmode: periodic\n", "period: required"},
		{"max_copies: 3\nmode: manual\nperiod: 1h\n", "mode: a manual task takes no period"},
		{"max_copies: 0\n", "max_copies: 0"},
		{"max_copies: 3\npolicy: sometimes\n", "policy: \"sometimes\""},
		{"max_copies: 3\npolicy: full_every_n\nfull_every: 1\n", "full_every: 1"},
		{"max_copies: 3\ntask: other\n", "task: \"other\" differs from name"},
		{"max_copies: 3\nperiod: 1x\n", "is not a duration"},
		// Its own target, not a second `target:` key (a duplicate key fails
		// to parse, and an empty want matched that, so this case could
		// never fail).
		{"max_copies: 3\ntarget: {type: Tape, path: /x}\n", `target.type: unknown path type "Tape"`},
	}
	for _, c := range cases {
		p := filepath.Join(dir, "t.yaml")
		doc := base + c.body
		if strings.Contains(c.body, "target:") {
			doc = strings.Replace(base, "target: {type: LocalDir, path: "+dir+"}\n", "", 1) + c.body
		}
		if c.want == "" || strings.Count(doc, "target:") != 1 {
			t.Fatalf("case %q: a case must want an error and give one target", c.body)
		}
		os.WriteFile(p, []byte(doc), 0o644)
		_, err := LoadTask(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.body, err, c.want)
		}
	}
	p := filepath.Join(dir, "ok.yaml")
	os.WriteFile(p, []byte(base+"max_copies: 3\nperiod: 1d\nstart_time: 2026-11-23T00:00:00Z\npolicy: incremental\n"), 0o644)
	task, err := LoadTask(p)
	if err != nil {
		t.Fatal(err)
	}
	if task.Mode != ModePeriodic || task.Period.D() != 24*time.Hour || task.Backup.Task != "orders" {
		t.Errorf("task %+v", task)
	}
	run := task.Run(time.Date(2026, 11, 22, 1, 2, 3, 4, time.UTC))
	if run.TaskCreated == nil || run.TaskCreated.Nanosecond() != 0 || run.Policy != PolicyIncremental || run.MaxCopies != 3 {
		t.Errorf("run %+v", run)
	}
}
