package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/internal/testenv"
)

// readmeQueries are the list queries README.md documents for saved views.
func readmeQueries(t *testing.T) []string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "<!-- example: list-queries")
	if !ok {
		t.Fatal("README.md has no list-queries example")
	}
	_, block, _ = strings.Cut(block, "```text\n")
	block, _, _ = strings.Cut(block, "```")
	var qs []string
	for _, l := range strings.Split(block, "\n") {
		if q, _, _ := strings.Cut(l, " #"); strings.TrimSpace(q) != "" {
			qs = append(qs, strings.TrimSpace(q))
		}
	}
	return qs
}

// The Web UI's views of README work: every documented list query is one
// Temporal accepts, and after a backup the lock workflow it started is
// listed as KbrKind "lock" with its cluster, and left out of a cluster's
// and a task's runs.
func TestWebUIListQueries(t *testing.T) {
	env := testenv.Load(t)
	topic := "e2e-" + randID() + "-webui"
	cl := client(t, env.ZKModeBootstrap)
	createTopic(t, kadm.NewClient(cl), topic, 1, 3, nil)
	produceSync(t, cl, &kgo.Record{Topic: topic, Value: []byte("x")})
	cluster, task := "webui-"+randID(), "webui-task-"+randID()
	cfg := writeFile(t, "b.yaml", `
cluster: {name: `+cluster+`, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: `+task+`
data_sources: [topicdata]
topics: {include: ["`+topic+`"]}
target: {type: LocalDir, path: `+filepath.Join(t.TempDir(), "b")+`}
options: {min_free_bytes: 1GiB}
`)
	if r := kbr(t, 2*time.Minute, "backup", "run", "-f", cfg, "--id", "webui-backup-"+task); r.code != 0 {
		t.Fatalf("backup: exit %d\n%s", r.code, r.stderr)
	}
	c := temporalClient(t)
	list := func(q string) []string {
		t.Helper()
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: q})
		if err != nil {
			t.Fatalf("query %q: %v", q, err)
		}
		var ids []string
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		return ids
	}
	qs := readmeQueries(t)
	if len(qs) < 5 {
		t.Fatalf("README lists %d queries, want at least 5", len(qs))
	}
	sub := strings.NewReplacer("'orders-hourly'", "'"+task+"'", "'prod-a'", "'"+cluster+"'")
	for _, q := range qs {
		list(sub.Replace(q)) // accepted
	}
	lockID := names.LockWorkflowID(cluster)
	backupID := "webui-backup-" + task
	// Visibility lags the runs a little.
	waitList(t, list, "KbrKind = 'lock' AND KbrCluster = '"+cluster+"'", lockID, true)
	for _, q := range qs {
		if strings.Contains(q, "'orders-hourly'") || strings.Contains(q, "'prod-a'") {
			q = sub.Replace(q)
			waitList(t, list, q, backupID, true)
			waitList(t, list, q, lockID, false)
		}
	}
}

// waitList waits until query lists id (or, with want false, checks that it
// does not once the backup is listed).
func waitList(t *testing.T, list func(string) []string, q, id string, want bool) {
	t.Helper()
	for i := 0; ; i++ {
		got := list(q)
		has := false
		for _, g := range got {
			has = has || g == id
		}
		if has == want {
			return
		}
		if !want || i == 50 {
			t.Fatalf("query %q lists %v: %s %s", q, got, map[bool]string{true: "want", false: "do not want"}[want], id)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
