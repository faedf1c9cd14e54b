package kmeta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests run against the real local stack (deploy/stack.sh up): a
// ZooKeeper-mode Kafka 3.9 cluster of three brokers and a KRaft node, both
// with an authorizer. Names carry a random suffix and everything created
// is deleted again.

func realClient(t *testing.T, seeds []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatalf("client for %v: %v", seeds, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func suffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// cleanup deletes what seedRF created, best effort, reporting failures.
func cleanup(t *testing.T, cl *kgo.Client, topic, group, user string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteGroup(ctx, group); err != nil {
		t.Logf("cleanup: delete group %s: %v", group, err)
	}
	if r, err := adm.DeleteTopic(ctx, topic); err != nil || r.Err != nil {
		t.Errorf("cleanup: delete topic %s: %v %v", topic, err, r.Err)
	}
	cleanupSecurity(t, cl, topic, user)
}

// cleanupSecurity deletes the ACL, quota and SCRAM user seedRF created.
func cleanupSecurity(t *testing.T, cl *kgo.Client, topic, user string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics(topic).Allow("User:"+user).AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)); err != nil {
		t.Errorf("cleanup: delete ACLs of %s: %v", user, err)
	}
	if _, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}},
	}}); err != nil {
		t.Errorf("cleanup: remove quota of %s: %v", user, err)
	}
	if r, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user, Mechanism: kadm.ScramSha256}}, nil); err != nil || r.Error() != nil {
		t.Logf("cleanup: delete SCRAM user %s: %v %v", user, err, r.Error())
	}
}

// checkTake asserts that s holds what seedRF created.
func checkTake(t *testing.T, s *Snapshot, rf int16, topic, group, user string) {
	t.Helper()
	tp := s.Topic(topic)
	if tp == nil {
		t.Fatalf("topic %s not in snapshot", topic)
	}
	if len(tp.Partitions) != 3 || tp.ReplicationFactor != rf || tp.ID == "" || len(tp.ID) != 22 {
		t.Errorf("topic = %+v", *tp)
	}
	for _, p := range tp.Partitions {
		if len(p.Replicas) != int(rf) || p.Leader < 0 || len(p.ISR) == 0 {
			t.Errorf("partition = %+v", p)
		}
	}
	if !reflect.DeepEqual(tp.Configs, map[string]string{"retention.ms": "3600000"}) {
		t.Errorf("configs = %v, want only retention.ms (no broker defaults)", tp.Configs)
	}
	want := ACL{ResourceType: "TOPIC", ResourceName: topic, PatternType: "LITERAL", Principal: "User:" + user, Host: "*", Operation: "READ", Permission: "ALLOW"}
	found := false
	for _, a := range s.ACLs {
		found = found || a == want
	}
	if !found || s.ACLsNote != "" {
		t.Errorf("ACL %v not among %d ACLs (note %q)", want, len(s.ACLs), s.ACLsNote)
	}
	found = false
	for _, q := range s.Quotas {
		if q.EntityString() == "{user="+user+"}" && q.Values["producer_byte_rate"] == 1048576 {
			found = true
		}
	}
	if !found {
		t.Errorf("quota of %s not among %+v", user, s.Quotas)
	}
	found = false
	for _, u := range s.SCRAMUsers {
		if u.Name == user && reflect.DeepEqual(u.Mechanisms, []SCRAMMechanism{{"SCRAM-SHA-256", 8192}}) {
			found = true
		}
	}
	if !found {
		t.Errorf("SCRAM user %s not among %+v", user, s.SCRAMUsers)
	}
	var g *Group
	for i := range s.Groups {
		if s.Groups[i].ID == group {
			g = &s.Groups[i]
		}
	}
	if g == nil {
		t.Fatalf("group %s not among %+v", group, s.Groups)
	}
	wantOffsets := []GroupOffset{{Topic: topic, Partition: 0, Offset: 5, LeaderEpoch: -1, Metadata: "m0"}, {Topic: topic, Partition: 2, Offset: 7, LeaderEpoch: -1}}
	if !reflect.DeepEqual(g.Offsets, wantOffsets) || g.State != "Empty" {
		t.Errorf("group = %+v, want offsets %+v", *g, wantOffsets)
	}
	if len(s.Brokers) == 0 || s.ClusterID == "" {
		t.Errorf("brokers %+v cluster %q", s.Brokers, s.ClusterID)
	}
}

func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func TestTakeRealClusters(t *testing.T) {
	env := testenv.Load(t)
	for _, c := range []struct {
		name    string
		seeds   []string
		rf      int16
		version string
		brokers int
	}{
		{"zkmode", env.ZKModeBootstrap, 3, env.ZKModeVersion, 3},
		{"kraft", env.KRaftBootstrap, 1, env.KRaftVersion, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			cl := realClient(t, c.seeds)
			sfx := suffix()
			topic, group, user := "kbr-kmeta-"+sfx, "kbr-kmeta-g-"+sfx, "kbr-kmeta-u-"+sfx
			t.Cleanup(func() { cleanup(t, cl, topic, group, user) })
			seedRF(t, ctx, cl, c.rf, topic, group, user)

			s, err := Take(ctx, cl, Options{Groups: true, Topics: func(n string) bool { return strings.HasPrefix(n, "kbr-kmeta-") }})
			if err != nil {
				t.Fatalf("Take: %v", err)
			}
			checkTake(t, s, c.rf, topic, group, user)
			if len(s.Brokers) != c.brokers {
				t.Errorf("brokers = %+v, want %d", s.Brokers, c.brokers)
			}
			if s.KafkaVersion != majorMinor(c.version) {
				t.Errorf("KafkaVersion = %q, the stack runs %s (brokers %+v)", s.KafkaVersion, c.version, s.Brokers)
			}
			for _, tp := range s.Topics {
				if !strings.HasPrefix(tp.Name, "kbr-kmeta-") {
					t.Errorf("topic %s passed the filter", tp.Name)
				}
			}
			// The offsets data source on its own sees the same group.
			gs, err := GroupOffsets(ctx, cl, func(n string) bool { return n == topic })
			if err != nil || len(gs) != 1 || gs[0].ID != group || len(gs[0].Offsets) != 2 {
				t.Errorf("GroupOffsets = %+v, %v", gs, err)
			}
			t.Logf("%s: cluster %s, Kafka %s, %d topics, %d ACLs, %d quotas, %d SCRAM users, %d groups",
				c.name, s.ClusterID, s.KafkaVersion, len(s.Topics), len(s.ACLs), len(s.Quotas), len(s.SCRAMUsers), len(s.Groups))
		})
	}
}

// TestRestoreZKModeIntoKRaft takes a snapshot of the ZooKeeper-mode
// cluster and recreates its topic (renamed), ACL and quota on the KRaft
// node, then commits translated offsets there.
func TestRestoreZKModeIntoKRaft(t *testing.T) {
	env := testenv.Load(t)
	ctx := testCtx(t)
	src, dst := realClient(t, env.ZKModeBootstrap), realClient(t, env.KRaftBootstrap)
	sfx := suffix()
	topic, group, user := "kbr-kmeta-r-"+sfx, "kbr-kmeta-rg-"+sfx, "kbr-kmeta-ru-"+sfx
	target := topic + "-restored"
	t.Cleanup(func() { cleanup(t, src, topic, group, user) })
	seedRF(t, ctx, src, 3, topic, group, user)

	s, err := Take(ctx, src, Options{Groups: true, Topics: func(n string) bool { return n == topic }})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	// Only this test's ACLs and quotas go to the target: the stack is
	// shared with other tests.
	mine := *s
	mine.ACLs, mine.Quotas = nil, nil
	for _, a := range s.ACLs {
		if a.Principal == "User:"+user {
			mine.ACLs = append(mine.ACLs, a)
		}
	}
	for _, q := range s.Quotas {
		if q.EntityString() == "{user="+user+"}" {
			mine.Quotas = append(mine.Quotas, q)
		}
	}
	if len(mine.ACLs) != 1 || len(mine.Quotas) != 1 {
		t.Fatalf("source ACLs %+v quotas %+v", mine.ACLs, mine.Quotas)
	}

	dadm := kadm.NewClient(dst)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := dadm.DeleteGroup(ctx, group); err != nil {
			t.Logf("cleanup: delete group %s on KRaft: %v", group, err)
		}
		if r, err := dadm.DeleteTopic(ctx, target); err != nil || r.Err != nil {
			t.Errorf("cleanup: delete topic %s on KRaft: %v %v", target, err, r.Err)
		}
		cleanupSecurity(t, dst, topic, user) // no SCRAM user there: logged only
	})

	kb, err := dadm.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plans := PlanTopics(s, []string{topic}, map[string]string{topic: target}, len(kb))
	if len(plans) != 1 || plans[0].ReplicationFactor != 1 || !strings.Contains(plans[0].Note, "replication factor 3 clamped to 1") {
		t.Fatalf("plans = %+v", plans)
	}
	res, err := CreateTopics(ctx, dst, plans)
	if err != nil || len(res) != 1 || !res[0].Created || res[0].Partitions != 3 {
		t.Fatalf("CreateTopics = %+v, %v", res, err)
	}
	if res[0].ID == s.Topic(topic).ID {
		t.Errorf("the target topic has the source's id %s", res[0].ID)
	}
	for range 2 { // idempotent
		if err := ApplyACLs(ctx, dst, &mine); err != nil {
			t.Fatalf("ApplyACLs: %v", err)
		}
		if err := ApplyQuotas(ctx, dst, &mine); err != nil {
			t.Fatalf("ApplyQuotas: %v", err)
		}
	}
	again, err := CreateTopics(ctx, dst, plans)
	if err != nil || len(again) != 1 || !again[0].Existed || again[0].ID != res[0].ID {
		t.Errorf("CreateTopics again = %+v, %v", again, err)
	}
	if err := CommitGroupOffsets(ctx, dst, group, map[string]map[int32]int64{target: {0: 5, 2: 7}}); err != nil {
		t.Fatalf("CommitGroupOffsets: %v", err)
	}

	d, err := Take(ctx, dst, Options{Groups: true, Topics: func(n string) bool { return n == target }})
	if err != nil {
		t.Fatalf("Take of KRaft: %v", err)
	}
	tp := d.Topic(target)
	if tp == nil || len(tp.Partitions) != 3 || tp.ReplicationFactor != 1 || !reflect.DeepEqual(tp.Configs, map[string]string{"retention.ms": "3600000"}) {
		t.Errorf("restored topic = %+v", tp)
	}
	var gotACL, gotQuota bool
	for _, a := range d.ACLs {
		gotACL = gotACL || a == mine.ACLs[0]
	}
	for _, q := range d.Quotas {
		gotQuota = gotQuota || reflect.DeepEqual(q, mine.Quotas[0])
	}
	if !gotACL || !gotQuota {
		t.Errorf("on KRaft: ACL %v quota %v", gotACL, gotQuota)
	}
	var offsets []GroupOffset
	for _, g := range d.Groups {
		if g.ID == group {
			offsets = g.Offsets
		}
	}
	want := []GroupOffset{{Topic: target, Partition: 0, Offset: 5, LeaderEpoch: -1}, {Topic: target, Partition: 2, Offset: 7, LeaderEpoch: -1}}
	if !reflect.DeepEqual(offsets, want) {
		t.Errorf("restored offsets = %+v, want %+v", offsets, want)
	}
}
