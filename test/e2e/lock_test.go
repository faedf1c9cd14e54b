package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkclient "go.temporal.io/sdk/client"

	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/workflows"
)

// Runs of one cluster never overlap, whoever starts them: a second task
// waits (and says for what), then runs; the queue bound and a task already
// running are refused with a clear message.
func TestClusterLockSerialisesRuns(t *testing.T) {
	env := testenv.Load(t)
	topic := "e2e-" + randID() + "-lock"
	// Batches of 64 KiB: the throttle paces fetches, and one batch is the
	// least a fetch returns.
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(64<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
	createTopic(t, kadm.NewClient(cl), topic, 1, 3, nil)
	var rs []*kgo.Record
	for i := 0; i < 2000; i++ {
		v := make([]byte, 2000)
		rand.Read(v) // incompressible, so the throttle sees real bytes
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: v})
	}
	produceSync(t, cl, rs...)
	cluster := "lock-" + randID()
	target := filepath.Join(t.TempDir(), "backups")
	cfg := func(task string) string {
		return writeFile(t, task+".yaml", `
cluster: {name: `+cluster+`, lock_queue: 1, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: `+task+`
data_sources: [topicdata]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB, throttle_bytes_per_second: 1MiB, segment_bytes: 1MiB}
`)
	}
	start := func(task string) string {
		r := kbr(t, time.Minute, "backup", "run", "-f", cfg(task), "--detach", "--json")
		if r.code != 0 {
			t.Fatalf("start %s: exit %d: %s", task, r.code, r.stderr)
		}
		var s struct {
			WorkflowID string `json:"workflow_id"`
		}
		json.Unmarshal([]byte(r.stdout), &s)
		return s.WorkflowID
	}
	c := temporalClient(t)
	first := start("first")
	waitSegments(t, c, first, 1, target)
	second := start("second")

	// The second waits and says for what.
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, ok := queryProgress(t, c, second)
		if ok && strings.Contains(p.Waiting, "first") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second run does not say it waits for the first: %+v", p)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The queue (limit 1) is full: a third is refused, and so is the first task again.
	for _, task := range []string{"third", "first"} {
		r := kbr(t, time.Minute, "backup", "run", "-f", cfg(task))
		want := map[string]string{"third": "cluster.lock_queue", "first": "already running"}[task]
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s while busy: exit %d, want 1 with %q:\n%s", task, r.code, want, r.stderr)
		}
	}
	firstRes := waitBackup(t, c, first)
	secondRes := waitBackup(t, c, second)
	if firstRes.Totals.Records != 2000 || secondRes.Totals.Records != 2000 {
		t.Errorf("records: first %d, second %d, want 2000 each", firstRes.Totals.Records, secondRes.Totals.Records)
	}
	// The second's export (its preflight is a local activity, not scheduled) started after the first ended.
	firstEnd := closeTime(t, c, first)
	if s := firstActivity(t, c, second, "PlanExport"); !s.After(firstEnd) {
		t.Errorf("second preflight at %s, first ended %s: the runs overlapped", s, firstEnd)
	}
}

func queryProgress(t *testing.T, c sdkclient.Client, id string) (workflows.Progress, bool) {
	var p workflows.Progress
	v, err := c.QueryWorkflow(context.Background(), id, "", names.QueryProgress)
	if err != nil || v.Get(&p) != nil {
		return p, false
	}
	return p, true
}

func closeTime(t *testing.T, c sdkclient.Client, id string) time.Time {
	d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	return d.GetWorkflowExecutionInfo().GetCloseTime().AsTime()
}

func firstActivity(t *testing.T, c sdkclient.Client, id, activity string) time.Time {
	for _, r := range runTree(t, c, id) {
		for _, ev := range r.events {
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activity {
				return ev.GetEventTime().AsTime()
			}
		}
	}
	t.Fatalf("%s never scheduled %s", id, activity)
	return time.Time{}
}
