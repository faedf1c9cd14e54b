package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	historypb "go.temporal.io/api/history/v1"
	sdkclient "go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kbr-project/kbr/internal/testenv"
)

// Back up the ZooKeeper-mode cluster, restore into the KRaft cluster under
// renamed topics, and compare every record and every group's position.
// Guards against: aborted records coming back, nulls turning into empties,
// headers losing order or bytes, timestamps reset, offsets copied instead
// of translated (compaction gaps, transaction markers, empty partitions).
func TestRoundTripZooKeeperToKRaft(t *testing.T) {
	env := testenv.Load(t)
	f := makeFixture(t, env.ZKModeBootstrap)
	want := map[string]map[int32][]rec{}
	for _, topic := range f.topics() {
		want[topic] = readAll(t, env.ZKModeBootstrap, topic)
	}
	assertAbortedAbsent(t, want[f.txn])
	// The worker logs at debug level here, so the secret scan reads
	// everything it could ever write.
	h.stopWorker(syscall.SIGTERM)
	h.worker = h.start("worker", "--address", h.address, "--log-level", "debug")
	t.Cleanup(func() {
		h.stopWorker(syscall.SIGTERM)
		h.startWorker()
	})
	for i, pt := range pathTypes(t, env) {
		t.Run(pt.name, func(t *testing.T) {
			roundTrip(t, env, f, want, pt, i == 0)
		})
	}
}

// roundTrip backs the fixture up to one path type and restores it into
// KRaft under topics renamed with the path type's suffix.
func roundTrip(t *testing.T, env testenv.Env, f *fixture, want map[string]map[int32][]rec, pt pathType, first bool) {
	task := "rt-" + strings.ToLower(pt.name) + "-" + randID()
	targetJSON, err := json.Marshal(pt.target)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "backup.yaml", `
cluster:
  name: zkmode
  bootstrap_servers: `+quoteList(env.ZKModeBootstrap)+`
  zookeeper:
    connect: ["`+env.ZKConnect+`"]
    chroot: `+env.ZKChroot+`
task: `+task+`
topics:
  include: ["`+strings.Join(f.topics(), `", "`)+`"]
target: `+string(targetJSON)+`
options:
  parallelism: 3
  min_free_bytes: 1GiB
  segment_bytes: 1MiB
`)
	r := kbr(t, 5*time.Minute, "backup", "run", "-f", cfg, "--json")
	if r.code != 0 {
		t.Fatalf("backup exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		WorkflowID string `json:"workflow_id"`
		Result     struct {
			RecoveryPoint string `json:"recovery_point"`
			TaskDir       string `json:"task_dir"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("backup --json output: %v\n%s", err, r.stdout)
	}
	if !strings.HasPrefix(out.Result.TaskDir, task+"_") {
		t.Errorf("task dir %q, want %s_<creation time>", out.Result.TaskDir, task)
	}
	if pt.target.Type == "LocalDir" {
		entries, _ := os.ReadDir(filepath.Join(pt.target.Path, out.Result.TaskDir))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		for _, source := range []string{"_metadata_", "_offsets_", "_topicdata_", "_manifest_"} {
			if !containsPart(names, source) {
				t.Errorf("task folder has %v, want a %s entry named <version>%s<time>", names, source, source)
			}
		}
	}
	if first {
		saveHistory(t, out.WorkflowID, "backup", "export")
	}

	suffix := "-r" + strings.ToLower(pt.name)
	rename := []string{}
	for _, topic := range f.topics() {
		rename = append(rename, topic+":"+topic+suffix)
	}
	rcfg := writeFile(t, "restore.yaml", `
cluster:
  name: kraft
  bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`
source:
  target: `+string(targetJSON)+`
  recovery_point: `+out.Result.RecoveryPoint+`
rename: `+quoteList(rename)+`
options:
  parallelism: 3
`)
	r = kbr(t, 5*time.Minute, "restore", "run", "-f", rcfg, "--json")
	if r.code != 0 {
		t.Fatalf("restore exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var rout struct {
		WorkflowID string `json:"workflow_id"`
	}
	json.Unmarshal([]byte(r.stdout), &rout)
	if first {
		saveHistory(t, rout.WorkflowID, "restore", "import")
	}
	got := map[string]map[int32][]rec{}
	for _, topic := range f.topics() {
		got[topic] = readAll(t, env.KRaftBootstrap, topic+suffix)
		compareTopic(t, topic, want[topic], got[topic])
	}
	checkGroups(t, f, env.KRaftBootstrap, suffix, want, got)
	if len(pt.secrets) > 0 {
		assertNoSecrets(t, pt.secrets, out.WorkflowID, rout.WorkflowID)
	}

	if first {
		// A second restore into the now non-empty topics is refused, untouched.
		r = kbr(t, 2*time.Minute, "restore", "run", "-f", rcfg)
		if r.code != 1 || !strings.Contains(r.stderr, "already holds") || !strings.Contains(r.stderr, "allow_nonempty") {
			t.Errorf("restore into non-empty topics: exit %d, stderr %s; want exit 1 naming allow_nonempty", r.code, r.stderr)
		}
		again := readAll(t, env.KRaftBootstrap, f.main+suffix)
		compareTopic(t, f.main+" after refused restore", want[f.main], again)
	}
}

func containsPart(names []string, part string) bool {
	for _, n := range names {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

func assertAbortedAbsent(t *testing.T, parts map[int32][]rec) {
	t.Helper()
	committed := 0
	for _, rs := range parts {
		for _, r := range rs {
			switch string(r.Key) {
			case "aborted":
				t.Fatalf("aborted record visible in the source read: %v", r)
			case "committed":
				committed++
			}
		}
	}
	if committed != 10 {
		t.Fatalf("committed transaction records: got %d, want 10", committed)
	}
}

// compareTopic checks partition by partition that got holds exactly want's
// records, in order.
func compareTopic(t *testing.T, topic string, want, got map[int32][]rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d partitions restored, want %d", topic, len(got), len(want))
	}
	total := 0
	for p, ws := range want {
		gs := got[p]
		if len(gs) != len(ws) {
			t.Errorf("%s[%d]: %d records restored, want %d", topic, p, len(gs), len(ws))
			continue
		}
		for i := range ws {
			if diff := samePayload(ws[i], gs[i]); diff != "" {
				t.Errorf("%s[%d] record %d: %s differs\n got  %v\n want %v", topic, p, i, diff, gs[i], ws[i])
				break
			}
		}
		total += len(ws)
	}
	if total == 0 {
		t.Errorf("%s: no records compared", topic)
	}
}

// checkGroups: each group's translated offset on the target points at the
// same next record as its offset on the source (or both at the end).
func checkGroups(t *testing.T, f *fixture, target []string, suffix string, want, got map[string]map[int32][]rec) {
	t.Helper()
	adm := kadm.NewClient(client(t, target))
	for group, topics := range f.groupOffsets {
		fetched, err := adm.FetchOffsets(context.Background(), group)
		if err != nil {
			t.Fatalf("fetch offsets of %s on target: %v", group, err)
		}
		for topic, parts := range topics {
			for p, srcOff := range parts {
				o, ok := fetched.Lookup(topic+suffix, p)
				if !ok {
					t.Errorf("group %s: no offset for %s%s[%d] on the target (source had %d)", group, topic, suffix, p, srcOff)
					continue
				}
				wantNext, wantEnd := next(want[topic][p], srcOff)
				gotNext, gotEnd := next(got[topic][p], o.At)
				switch {
				case wantEnd != gotEnd:
					t.Errorf("group %s %s[%d]: source offset %d at end=%v, target offset %d at end=%v", group, topic, p, srcOff, wantEnd, o.At, gotEnd)
				case !wantEnd && samePayload(wantNext, gotNext) != "":
					t.Errorf("group %s %s[%d]: source offset %d -> next %v; target offset %d -> next %v", group, topic, p, srcOff, wantNext, o.At, gotNext)
				}
				if gotEnd && len(got[topic][p]) > 0 && o.At != got[topic][p][len(got[topic][p])-1].Offset+1 {
					t.Errorf("group %s %s[%d]: at end, target offset %d, want %d", group, topic, p, o.At, got[topic][p][len(got[topic][p])-1].Offset+1)
				}
			}
		}
	}
}

// next is the first record at or after offset, or end=true.
func next(rs []rec, offset int64) (rec, bool) {
	for _, r := range rs {
		if r.Offset >= offset {
			return r, false
		}
	}
	return rec{}, true
}

// saveHistory refreshes the committed histories the replay test reads
// when KBR_UPDATE_HISTORY=1: the run's own as <kind>_history.json and its
// first child's as <child kind>_history.json.
func saveHistory(t *testing.T, workflowID, kind, childKind string) {
	if os.Getenv("KBR_UPDATE_HISTORY") != "1" {
		return
	}
	root, _ := testenv.RepoRoot()
	c, err := sdkclient.Dial(sdkclient.Options{HostPort: h.address})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runs := runTree(t, c, workflowID)
	write := func(r wfRun, name string) {
		data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: r.events})
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, "workflows", "testdata", name+"_history.json")
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d events)", dst, len(r.events))
	}
	write(runs[0], kind)
	if len(runs) > 1 {
		write(runs[1], childKind)
	} else {
		t.Errorf("%s ran no child workflow", workflowID)
	}
}
