package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/workflows"
)

// TestLogicalRestoreZooKeeperToKRaft backs up a ZooKeeper-mode cluster's
// metadata and restores it logically into the KRaft node under a renamed
// topic: --dry-run shows the plan and changes nothing; the real run
// creates the topic with its partition count and configs (replication
// clamped to KRaft's one broker), the ACL following the rename, and the
// client quota; a second run is idempotent; a topic with another
// partition count is refused before anything changes.
func TestLogicalRestoreZooKeeperToKRaft(t *testing.T) {
	env := testenv.Load(t)
	ctx := context.Background()
	id := randID()
	topic := "lr-" + id
	dst := topic + "-restored"
	clash := topic + "-clash"
	clientID := "kbr-lr-" + id
	zkAdm := kadm.NewClient(client(t, env.ZKModeBootstrap))
	krAdm := kadm.NewClient(client(t, env.KRaftBootstrap))
	acl := func(name string) *kadm.ACLBuilder {
		return kadm.NewACLs().Allow("User:lr-bob").AllowHosts().Topics(name).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	}
	quota := func(rate float64, remove bool) []kadm.AlterClientQuotaEntry {
		return []kadm.AlterClientQuotaEntry{{Entity: []kadm.ClientQuotaEntityComponent{{Type: "client-id", Name: &clientID}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate, Remove: remove}}}}
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = zkAdm.DeleteTopics(c, topic)
		_, _ = krAdm.DeleteTopics(c, dst, clash)
		_, _ = zkAdm.DeleteACLs(c, acl(topic))
		_, _ = krAdm.DeleteACLs(c, acl(dst))
		_, _ = zkAdm.AlterClientQuotas(c, quota(0, true))
		_, _ = krAdm.AlterClientQuotas(c, quota(0, true))
	})
	createTopic(t, zkAdm, topic, 3, 3, map[string]*string{"retention.ms": sptr("7200000"), "cleanup.policy": sptr("compact")})
	if _, err := zkAdm.CreateACLs(ctx, acl(topic)); err != nil {
		t.Fatal(err)
	}
	// ZooKeeper-mode brokers learn new ACLs through a watch: wait until
	// every broker describes it, or the backup could miss it.
	waitACLsOnEveryBroker(t, env, topic, 1)
	if _, err := zkAdm.AlterClientQuotas(ctx, quota(1048576, false)); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	rp := backupMetadata(t, env, "lr", target)

	cfg := func(rename string) string {
		return writeFile(t, "logical.yaml", `
cluster:
  name: kraft
  bootstrap_servers: `+quoteList(env.KRaftBootstrap)+`
source:
  target: {type: LocalDir, path: `+target+`}
  recovery_point: `+rp+`
topics: [`+topic+`]
rename: ["`+topic+`:`+rename+`"]
quotas: true
`)
	}
	run := func(args ...string) (result, workflows.LogicalRestoreResult, string) {
		r := kbr(t, 5*time.Minute, append([]string{"restore", "logical", "--json"}, args...)...)
		var out struct {
			Error  string                         `json:"error"`
			Result workflows.LogicalRestoreResult `json:"result"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("--json: %v\nstdout %s\nstderr %s", err, r.stdout, r.stderr)
		}
		return r, out.Result, out.Error
	}

	// Dry run: the plan, and nothing on KRaft.
	r, res, errMsg := run("-f", cfg(dst), "--dry-run")
	if r.code != 0 {
		t.Fatalf("dry run exit %d: %s", r.code, errMsg)
	}
	if len(res.Plan.Topics) != 1 {
		t.Fatalf("plan topics %+v", res.Plan.Topics)
	}
	pt := res.Plan.Topics[0]
	if pt.Target != dst || pt.Action != "create" || pt.Partitions != 3 || pt.ReplicationFactor != 1 ||
		pt.Configs["retention.ms"] != "7200000" || pt.Configs["cleanup.policy"] != "compact" || !strings.Contains(pt.Note, "clamped") {
		t.Errorf("planned topic %+v", pt)
	}
	if len(res.Plan.ACLs) != 1 || res.Plan.ACLs[0].ResourceName != dst || res.Plan.ACLs[0].Principal != "User:lr-bob" {
		t.Errorf("planned ACLs %+v", res.Plan.ACLs)
	}
	foundQuota := false
	for _, q := range res.Plan.Quotas {
		if q.EntityString() == "{client-id="+clientID+"}" && q.Values["producer_byte_rate"] == 1048576 {
			foundQuota = true
		}
	}
	if !foundQuota {
		t.Errorf("planned quotas %+v lack client-id=%s", res.Plan.Quotas, clientID)
	}
	if md, err := krAdm.Metadata(ctx, dst); err == nil && md.Topics[dst].Err == nil {
		t.Fatalf("the dry run created %s", dst)
	}

	// The restore.
	if r, res, errMsg = run("-f", cfg(dst)); r.code != 0 {
		t.Fatalf("restore exit %d: %s", r.code, errMsg)
	}
	t.Logf("restore: topics %+v", res.Topics)
	krAdm = kadm.NewClient(client(t, env.KRaftBootstrap)) // no metadata cached from before the restore
	md, err := krAdm.Metadata(ctx, dst)
	if err != nil || len(md.Topics[dst].Partitions) != 3 {
		t.Fatalf("%s on KRaft: %+v, %v", dst, md.Topics[dst], err)
	}
	rcs, err := krAdm.DescribeTopicConfigs(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On(dst, nil)
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	if got["retention.ms"] != "7200000" || got["cleanup.policy"] != "compact" {
		t.Errorf("configs of %s: retention.ms=%s cleanup.policy=%s", dst, got["retention.ms"], got["cleanup.policy"])
	}
	if acls, err := krAdm.DescribeACLs(ctx, acl(dst)); err != nil || len(acls) == 0 || len(acls[0].Described) != 1 {
		t.Errorf("ACL on KRaft: %+v, %v", acls, err)
	}
	qs, err := krAdm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: &clientID, MatchType: 0}})
	if err != nil || len(qs) != 1 {
		t.Errorf("quota on KRaft: %+v, %v", qs, err)
	}

	// Again: idempotent.
	if r, res, errMsg = run("-f", cfg(dst)); r.code != 0 || res.Plan.Topics[0].Action != "exists" {
		t.Errorf("second restore: exit %d %s, plan %+v", r.code, errMsg, res.Plan.Topics)
	}

	// A clash: the target topic exists with another partition count.
	createTopic(t, krAdm, clash, 1, 1, nil)
	r, _, errMsg = run("-f", cfg(clash))
	if r.code != 1 || !strings.Contains(errMsg, "exists on kraft with 1 partitions, the backup has 3") {
		t.Errorf("clash: exit %d, %q", r.code, errMsg)
	}
}

// waitACLsOnEveryBroker asks each broker of the ZooKeeper-mode cluster in
// turn until all of them describe n ACLs on topic.
func waitACLsOnEveryBroker(t *testing.T, env testenv.Env, topic string, n int) {
	t.Helper()
	cl := client(t, env.ZKModeBootstrap)
	deadline := time.Now().Add(30 * time.Second)
	for _, b := range zkBrokers {
		id := 0
		fmt.Sscan(env.Broker(b).ID, &id)
		for {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType = kmsg.ACLResourceTypeTopic
			req.ResourceName = &topic
			req.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
			req.Operation = kmsg.ACLOperationAny
			req.PermissionType = kmsg.ACLPermissionTypeAny
			resp, err := req.RequestWith(context.Background(), cl.Broker(id))
			if err == nil && len(resp.Resources) == 1 && len(resp.Resources[0].ACLs) == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker %d does not describe %d ACLs on %s within 30s (%v, %+v)", id, n, topic, err, resp)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
