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
	"google.golang.org/protobuf/proto"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/workflows"
)

// A backup and a restore of 20,000 partitions, one record each, renamed
// on the way: every record comes back (key, value, header, timestamp, in
// its partition), and no workflow history of either run (parent, children,
// their continued runs) nears Temporal's limits: each under 10,240 events,
// no event over 1 MiB. Guards against the one-activity-per-partition shape,
// which failed near 16,000 partitions.
//
// The partitions live on the ZooKeeper-mode cluster's three brokers: a
// broker keeps one open file per partition, and this machine's hard limit
// of 20,000 open files per process cannot hold 20,000 on the single KRaft
// node (see README, Tests).
func TestManyPartitionsRoundTrip(t *testing.T) {
	env := testenv.Load(t)
	const topics, perTopic = 20, 1000
	ctx := context.Background()
	id := randID()
	cl := client(t, env.ZKModeBootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(50*time.Millisecond))
	adm := kadm.NewClient(cl)
	var src, dst []string
	for i := 0; i < topics; i++ {
		src = append(src, fmt.Sprintf("e2e-%s-many-%02d", id, i))
		dst = append(dst, fmt.Sprintf("e2e-%s-many-%02d-r", id, i))
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// Whichever still exist (the sources are deleted on the way).
		if _, err := adm.DeleteTopics(cctx, append(append([]string{}, src...), dst...)...); err != nil {
			t.Logf("delete the test's topics: %v", err)
		}
		// The next tests run on brokers that have let go of them.
		if left := filesLeft(env, "e2e-"+id+"-many-", 5*time.Minute); left > 0 {
			t.Logf("%d partition dirs of the test still on the brokers after 5 minutes", left)
		}
	})
	for _, name := range src {
		if _, err := adm.CreateTopic(ctx, perTopic, 1, nil, name); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	for _, name := range src {
		waitLeaders(t, adm, name, perTopic)
	}
	var rs []*kgo.Record
	for i, name := range src {
		for p := int32(0); p < perTopic; p++ {
			rs = append(rs, &kgo.Record{Topic: name, Partition: p, Key: []byte(fmt.Sprintf("k-%d-%d", i, p)), Value: []byte(fmt.Sprintf("v-%d-%d", i, p)),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{byte(p)}}}, Timestamp: time.UnixMilli(1_500_000_000_000 + int64(p))})
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	if err := cl.ProduceSync(pctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cancel()

	target := filepath.Join(t.TempDir(), "backups")
	cfg := writeFile(t, "backup.yaml", `
cluster: {name: zkmode-many, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
task: many-`+id+`
data_sources: [topicdata, offsets]
topics: {include: ["e2e-`+id+`-many-.*"]}
target: {type: LocalDir, path: `+target+`}
options: {min_free_bytes: 1GiB, parallelism: 4}
`)
	start := time.Now()
	out := mustKbr(t, 10*time.Minute, "backup", "run", "-f", cfg, "--json")
	backupTook := time.Since(start)
	var bres struct {
		WorkflowID string                 `json:"workflow_id"`
		Result     workflows.BackupResult `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &bres); err != nil {
		t.Fatal(err)
	}
	if bres.Result.Totals.Partitions != topics*perTopic || bres.Result.Totals.Records != topics*perTopic {
		t.Fatalf("backup totals %+v, want %d partitions and records", bres.Result.Totals, topics*perTopic)
	}
	// The three brokers cannot hold 40,000 partitions (an open file or two
	// each, 20,000 per process at most): read the sources, delete them and
	// wait until their files are gone before the restore creates 20,000.
	want := make([]map[int32][]rec, len(src))
	for i := range src {
		want[i] = readAll(t, env.ZKModeBootstrap, src[i])
		if len(want[i]) != perTopic {
			t.Fatalf("%s: %d partitions with records, want %d", src[i], len(want[i]), perTopic)
		}
	}
	if _, err := adm.DeleteTopics(ctx, src...); err != nil {
		t.Fatalf("delete the source topics: %v", err)
	}
	waitFilesGone(t, env, "e2e-"+id+"-many-", 5*time.Minute)
	var rename []string
	for i := range src {
		rename = append(rename, src[i]+":"+dst[i])
	}
	rcfg := writeFile(t, "restore.yaml", `
cluster: {name: zkmode-many-r, bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`}
source: {target: {type: LocalDir, path: `+target+`}, recovery_point: `+bres.Result.RecoveryPoint+`}
rename: `+quoteList(rename)+`
options: {parallelism: 4, replication_factor: 1}   # the backup has no metadata: as the source, not min(3, brokers)
`)
	start = time.Now()
	rout := mustKbr(t, 15*time.Minute, "restore", "run", "-f", rcfg, "--json")
	restoreTook := time.Since(start)
	var rres struct {
		WorkflowID string `json:"workflow_id"`
	}
	json.Unmarshal([]byte(rout), &rres)
	t.Logf("20,000 partitions: backup %s, restore %s", backupTook.Round(time.Millisecond), restoreTook.Round(time.Millisecond))

	c := temporalClient(t)
	for _, wf := range []string{bres.WorkflowID, rres.WorkflowID} {
		runs := runTree(t, c, wf)
		most, largest := 0, 0
		for _, r := range runs {
			most = max(most, len(r.events))
			for _, ev := range r.events {
				largest = max(largest, proto.Size(ev))
			}
		}
		t.Logf("%s: %d runs, largest history %d events, largest event %d bytes", wf, len(runs), most, largest)
		if most >= 10240 || largest >= 1<<20 {
			t.Errorf("%s: a history of %d events or an event of %d bytes: over the bounds (10,240 events, 1 MiB)", wf, most, largest)
		}
	}
	for i := range src {
		got := readAll(t, env.ZKModeBootstrap, dst[i])
		if len(got) != perTopic {
			t.Fatalf("%s: %d partitions with records, want %d", dst[i], len(got), perTopic)
		}
		compareTopic(t, dst[i], want[i], got)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// waitFilesGone waits until no log dir of the ZooKeeper-mode brokers holds a
// partition whose name starts with prefix (deleted topics' dirs included).
func waitFilesGone(t *testing.T, env testenv.Env, prefix string, within time.Duration) {
	t.Helper()
	if left := filesLeft(env, prefix, within); left > 0 {
		t.Fatalf("%d partition dirs %s* still on the brokers %s after their topics were deleted", left, prefix, within)
	}
}

// filesLeft waits up to within for the partition dirs named prefix* to go,
// and says how many are left.
func filesLeft(env testenv.Env, prefix string, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		left := 0
		for _, n := range zkBrokers {
			for _, d := range env.Broker(n).LogDirs {
				entries, _ := os.ReadDir(d)
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), prefix) {
						left++
					}
				}
			}
		}
		if left == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(2 * time.Second)
	}
}
