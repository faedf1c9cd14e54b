//go:build kraftq

// The three-node quorum's retry and refusal tests: they pass (go test
// -tags kraftq ./test/e2e -run 'TestKRaftRestore(Retry|Refusals)$', about
// 2.5 minutes) but are left out of `make test`, as the stack-node tests in
// kraftstack_test.go cover the same steps in a fraction of the time.

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/enums/v1"

	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/workflows"
)

// TestKRaftRestoreRetry fails a restore at "start Kafka" (node 2's start
// command fails once) and resumes it with `kbr restore retry`: the retry's
// history schedules no activity of the steps the first run completed, and
// the cluster ends healthy; a succeeded restore cannot run again.
func TestKRaftRestoreRetry(t *testing.T) {
	env := testenv.Load(t)
	q := startKraftq(t, env)
	ctx := context.Background()
	adm := kadm.NewClient(client(t, q.bootstrap))
	createTopic(t, adm, "kept", 2, 3, nil)
	produceSync(t, client(t, q.bootstrap), &kgo.Record{Topic: "kept", Value: []byte("v")})
	ids := topicIDs(t, q.bootstrap)
	mark := filepath.Join(t.TempDir(), "failed-once")
	failOnce := fmt.Sprintf(`if [ ! -e %s ]; then touch %s; echo "node 2 start fails once, on purpose"; exit 1; fi; KBR_KRAFTQ_JARS=%s %s`, mark, mark, q.jars, q.v(2, "START"))
	q.startAgents(t, map[int][]string{2: {"--start-command", failOnce}})
	target := t.TempDir()
	rp := q.backup(t, "kqretry", target)
	// Drift after the backup, which the restore undoes.
	createTopic(t, adm, "drift", 1, 3, nil)

	id := "kraft-retry-" + randID()
	cfg := q.restoreConfig(t, target, rp)
	r := kbr(t, 12*time.Minute, "restore", "kraft", "-f", cfg, "--id", id, "--json")
	out := parseKRaftRestore(t, r)
	if r.code != 1 || !strings.Contains(out.Error, "start Kafka") || !strings.Contains(out.Error, "fails once, on purpose") {
		t.Fatalf("first run: exit %d, error %q, want a failure at start Kafka\nstderr: %s", r.code, out.Error, r.stderr)
	}
	st := kbr(t, time.Minute, "restore", "status", id, "--json")
	var p workflows.Progress
	if err := json.Unmarshal([]byte(st.stdout), &p); err != nil {
		t.Fatalf("status --json: %v\n%s%s", err, st.stdout, st.stderr)
	}
	for i, step := range p.Steps {
		want := "done"
		switch step.Name {
		case workflows.StepStartKafka:
			want = "failed"
		case workflows.StepWaitHealthy, workflows.StepReport:
			want = "pending"
		}
		if i >= len(workflows.KRaftRestoreSteps) || step.Name != workflows.KRaftRestoreSteps[i] || step.Status != want {
			t.Errorf("after the failed run, step %d %q is %s, want %s", i, step.Name, step.Status, want)
		}
	}
	tc := temporalClient(t)
	first, err := tc.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	r = kbr(t, 12*time.Minute, "restore", "retry", id, "--json")
	out = parseKRaftRestore(t, r)
	if r.code != 0 {
		t.Fatalf("retry exit %d: %s\nstderr: %s", r.code, out.Error, r.stderr)
	}
	if out.Result.ResumedFrom != first.GetWorkflowExecutionInfo().GetExecution().GetRunId() {
		t.Errorf("resumed from %q", out.Result.ResumedFrom)
	}
	var types []string
	it := tc.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types = append(types, a.GetActivityType().GetName())
		}
	}
	joined := " " + strings.Join(types, " ") + " "
	for _, a := range []string{"ResolveRecoveryPoint", "KRaftRestorePreflight", "KRaftInspect", "CopyKRaftLog", "WriteIndex", "StopKafka", "PutKRaftLog", "FixKRaftMeta"} {
		if strings.Contains(joined, " "+a+" ") {
			t.Errorf("the retry ran %s again (activities %v)", a, types)
		}
	}
	if !strings.Contains(joined, " StartKafka ") || !strings.Contains(joined, " WaitKRaftHealthy ") {
		t.Errorf("the retry's activities %v lack StartKafka or WaitKRaftHealthy", types)
	}
	if m, _ := filepath.Glob(filepath.Join(target, q.name+"-before-restore_*", "*_manifest_*.json")); len(m) != 1 {
		t.Errorf("safety backups: %v, want exactly one", m)
	}
	after := topicIDs(t, q.bootstrap)
	if after["kept"] != ids["kept"] || after["drift"] != "" {
		t.Errorf("topics after the restore %v (kept was %s; drift was created after the backup)", after, ids["kept"])
	}
	if r := kbr(t, time.Minute, "restore", "retry", id); r.code == 0 || !strings.Contains(r.stderr, "succeeded") {
		t.Errorf("second retry: exit %d, %s", r.code, r.stderr)
	}
	if r := kbr(t, time.Minute, "restore", "kraft", "-f", cfg, "--id", id); r.code == 0 || !strings.Contains(r.stderr, "runs once") {
		t.Errorf("same id again: exit %d, %s", r.code, r.stderr)
	}
}

// TestKRaftRestoreRefusals: a version mismatch, a missing agent and a
// damaged recovery point are refused in preflight, before any node is
// stopped or anything is written.
func TestKRaftRestoreRefusals(t *testing.T) {
	env := testenv.Load(t)
	q := startKraftq(t, env)
	stop := q.startAgents(t, nil)
	target := t.TempDir()
	rp := q.backup(t, "kqrefuse", target)
	stop() // each case starts the agents it needs
	cfg := q.restoreConfig(t, target, rp)
	pids := func() map[int]int {
		out := map[int]int{}
		for n := 1; n <= 3; n++ {
			out[n] = hostops.ListenerPID(portOf(q.v(n, "ADDR")))
		}
		return out
	}
	before := pids()
	check := func(t *testing.T, want ...string) {
		t.Helper()
		r := kbr(t, 5*time.Minute, "restore", "kraft", "-f", cfg, "--json")
		out := parseKRaftRestore(t, r)
		if r.code != 1 || !strings.Contains(out.Error, "refused before anything was stopped") {
			t.Errorf("exit %d, error %q; want a refusal\nstderr: %s", r.code, out.Error, r.stderr)
		}
		for _, w := range want {
			if !strings.Contains(out.Error, w) {
				t.Errorf("refusal %q does not say %q", out.Error, w)
			}
		}
		if after := pids(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("node processes changed: before %v, after %v", before, after)
		}
		if m, _ := filepath.Glob(filepath.Join(target, q.name+"-before-restore_*")); len(m) > 0 {
			t.Errorf("a refused restore wrote a safety copy: %v", m)
		}
	}
	t.Run("version mismatch", func(t *testing.T) {
		q.startAgents(t, map[int][]string{2: {"--kafka-version", "3.9.1"}})
		check(t, "node 2 (host kq2) has Kafka 3.9.1 installed, the backup was taken from Kafka 4.1")
	})
	t.Run("missing agent", func(t *testing.T) {
		q.startAgents(t, nil, 3)
		check(t, "node 3: no agent answered for host kq3 within 15s")
	})
	t.Run("damaged recovery point", func(t *testing.T) {
		q.startAgents(t, nil)
		snaps, _ := filepath.Glob(filepath.Join(target, "kqrefuse_*", "*_kraftlog_*", "node-2", "*.checkpoint"))
		if len(snaps) != 1 {
			t.Fatalf("node 2's snapshots in the backup: %v", snaps)
		}
		b, err := os.ReadFile(snaps[0])
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(snaps[0], b, 0o644); err != nil {
			t.Fatal(err)
		}
		check(t, "damaged", filepath.Base(snaps[0]))
	})
}
