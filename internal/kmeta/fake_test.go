package kmeta

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeCluster starts an in-process kfake cluster and a client for it.
func fakeCluster(t *testing.T, brokers int, opts ...kfake.Opt) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(brokers)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// seed creates on cl what Take must find: topic orders (3 partitions,
// retention.ms set), an ACL, a quota, a SCRAM user and a group with offsets.
func seed(t *testing.T, ctx context.Context, cl *kgo.Client, topic, group, user string) {
	t.Helper()
	seedRF(t, ctx, cl, 1, topic, group, user)
}

func seedRF(t *testing.T, ctx context.Context, cl *kgo.Client, rf int16, topic, group, user string) {
	t.Helper()
	adm := kadm.NewClient(cl)
	retention := "3600000"
	r := must[kadm.CreateTopicResponse](t, "create topic")(adm.CreateTopic(ctx, 3, rf, map[string]*string{"retention.ms": &retention}, topic))
	if r.Err != nil {
		t.Fatalf("create topic %s: %v", topic, r.Err)
	}
	// Until every broker knows the topic, commits naming it may fail.
	plan := map[string]TopicPlan{topic: {Partitions: 3}}
	for deadline := time.Now().Add(20 * time.Second); ; {
		pending := leadersPending(ctx, cl, []string{topic}, plan)
		if pending == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: %s", topic, pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	acl := kadm.NewACLs().Topics(topic).Allow("User:" + user).Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	cr := must[kadm.CreateACLsResults](t, "create ACL")(adm.CreateACLs(ctx, acl))
	for _, c := range cr {
		if c.Err != nil {
			t.Fatalf("create ACL: %v", c.Err)
		}
	}
	aq := must[kadm.AlteredClientQuotas](t, "alter quotas")(adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1048576}},
	}}))
	for _, q := range aq {
		if q.Err != nil {
			t.Fatalf("alter quota: %v", q.Err)
		}
	}
	su := must[kadm.AlteredUserSCRAMs](t, "alter SCRAM")(adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "secret"}}))
	if err := su.Error(); err != nil {
		t.Fatalf("alter SCRAM user: %v", err)
	}
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "m0"})
	os.Add(kadm.Offset{Topic: topic, Partition: 2, At: 7, LeaderEpoch: -1})
	// On a fresh cluster the first commit also creates __consumer_offsets,
	// and the coordinator may learn of the new topic after the leaders do:
	// both answer with retriable errors for a moment (some come as shard
	// errors, which kerr.IsRetriable does not see through): try for a while.
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := adm.CommitAllOffsets(ctx, group, os)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("commit offsets of group %s: %v", group, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTakeFake(t *testing.T) {
	ctx := testCtx(t)
	_, cl := fakeCluster(t, 3, kfake.ClusterID("fake-cluster"))
	seed(t, ctx, cl, "orders", "billing", "alice")
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "other"); err != nil || r.Err != nil {
		t.Fatalf("create topic other: %v %v", err, r.Err)
	}

	s, err := Take(ctx, cl, Options{Groups: true, Topics: func(n string) bool { return n != "other" }})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if s.ClusterID != "fake-cluster" {
		t.Errorf("ClusterID = %q", s.ClusterID)
	}
	if len(s.Brokers) != 3 {
		t.Fatalf("brokers = %+v", s.Brokers)
	}
	for _, b := range s.Brokers {
		if b.VersionGuess == "" || b.Host == "" || b.Port == 0 {
			t.Errorf("broker %+v lacks host, port or version", b)
		}
	}
	if s.KafkaVersion == "" || s.KafkaVersion != lowestVersion(s.Brokers) {
		t.Errorf("KafkaVersion = %q", s.KafkaVersion)
	}
	if s.Topic("other") != nil {
		t.Errorf("topic other was not filtered out")
	}
	for _, tp := range s.Topics {
		if tp.Internal {
			t.Errorf("internal topic %s kept without IncludeInternal", tp.Name)
		}
	}
	o := s.Topic("orders")
	if o == nil {
		t.Fatalf("topic orders missing: %+v", s.Topics)
	}
	if len(o.Partitions) != 3 || o.ReplicationFactor != 1 || o.ID == "" {
		t.Errorf("orders = %+v", *o)
	}
	if len(o.Configs) != 1 || o.Configs["retention.ms"] != "3600000" {
		t.Errorf("orders configs = %v, want only retention.ms=3600000", o.Configs)
	}
	wantACL := ACL{ResourceType: "TOPIC", ResourceName: "orders", PatternType: "LITERAL", Principal: "User:alice", Host: "*", Operation: "READ", Permission: "ALLOW"}
	if len(s.ACLs) != 1 || s.ACLs[0] != wantACL || s.ACLsNote != "" {
		t.Errorf("ACLs = %+v note %q", s.ACLs, s.ACLsNote)
	}
	if len(s.Quotas) != 1 || s.Quotas[0].EntityString() != "{user=alice}" || s.Quotas[0].Values["producer_byte_rate"] != 1048576 {
		t.Errorf("quotas = %+v", s.Quotas)
	}
	if len(s.SCRAMUsers) != 1 || s.SCRAMUsers[0].Name != "alice" ||
		len(s.SCRAMUsers[0].Mechanisms) != 1 || s.SCRAMUsers[0].Mechanisms[0] != (SCRAMMechanism{"SCRAM-SHA-256", 8192}) {
		t.Errorf("SCRAM users = %+v", s.SCRAMUsers)
	}
	if len(s.Groups) != 1 || s.Groups[0].ID != "billing" {
		t.Fatalf("groups = %+v", s.Groups)
	}
	want := []GroupOffset{{Topic: "orders", Partition: 0, Offset: 5, LeaderEpoch: -1, Metadata: "m0"}, {Topic: "orders", Partition: 2, Offset: 7, LeaderEpoch: -1}}
	if got := s.Groups[0].Offsets; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("offsets = %+v, want %+v", got, want)
	}

	// Without Groups no groups are read; IncludeInternal keeps the
	// offsets topic that the commit created.
	s2, err := Take(ctx, cl, Options{IncludeInternal: true})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if s2.Groups != nil || s2.Topic("other") == nil {
		t.Errorf("second Take: groups %v, other %v", s2.Groups, s2.Topic("other"))
	}

	// Layout: the same cluster, brokers and topics, nothing else.
	l, err := Take(ctx, cl, Options{Groups: true, Layout: true, Topics: func(n string) bool { return n != "other" }})
	if err != nil {
		t.Fatalf("Take (layout): %v", err)
	}
	if l.ClusterID != s.ClusterID || len(l.Brokers) != 3 || l.KafkaVersion != s.KafkaVersion {
		t.Errorf("layout: cluster %q brokers %d version %q", l.ClusterID, len(l.Brokers), l.KafkaVersion)
	}
	if lo := l.Topic("orders"); lo == nil || lo.ID != o.ID || len(lo.Partitions) != 3 || len(lo.Configs) != 0 || l.Topic("other") != nil {
		t.Errorf("layout topics = %+v", l.Topics)
	}
	if l.ACLs != nil || l.Quotas != nil || l.SCRAMUsers != nil || l.Groups != nil {
		t.Errorf("layout read more than the layout: ACLs %v quotas %v SCRAM %v groups %v", l.ACLs, l.Quotas, l.SCRAMUsers, l.Groups)
	}
}

func TestTakeSecurityDisabled(t *testing.T) {
	ctx := testCtx(t)
	c, cl := fakeCluster(t, 1)
	c.ControlKey(kmsg.DescribeACLs.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
		resp.ErrorCode = kerr.SecurityDisabled.Code
		return resp, nil, true
	})
	s, err := Take(ctx, cl, Options{})
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if s.ACLs != nil || !strings.Contains(s.ACLsNote, "SECURITY_DISABLED") {
		t.Errorf("ACLs %v note %q", s.ACLs, s.ACLsNote)
	}
	if err := ApplyACLs(ctx, cl, &Snapshot{ACLs: []ACL{{ResourceType: "TOPIC", ResourceName: "x", PatternType: "LITERAL", Principal: "User:a", Host: "*", Operation: "READ", Permission: "ALLOW"}}}); err != nil {
		t.Fatalf("ApplyACLs: %v", err) // CreateACLs is not intercepted: must work
	}
}

func TestTakeDescribeConfigsErrorNamesTopic(t *testing.T) {
	ctx := testCtx(t)
	c, cl := fakeCluster(t, 1)
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "payments"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	c.ControlKey(kmsg.DescribeConfigs.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		dreq := req.(*kmsg.DescribeConfigsRequest)
		resp := dreq.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range dreq.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
			rr.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, nil, true
	})
	_, err := Take(ctx, cl, Options{})
	if err == nil || !strings.Contains(err.Error(), "describe configs of topic payments") {
		t.Fatalf("err = %v, want one naming topic payments", err)
	}
}

func TestLowestVersion(t *testing.T) {
	bs := []Broker{{VersionGuess: "3.9"}, {VersionGuess: "at least v4.1"}, {VersionGuess: "3.10"}, {VersionGuess: "unknown custom version"}}
	if got := lowestVersion(bs); got != "3.9" {
		t.Errorf("lowest = %q", got)
	}
	if got := lowestVersion([]Broker{{VersionGuess: "unknown custom version"}}); got != "unknown custom version" {
		t.Errorf("lowest of custom = %q", got)
	}
	if got := lowestVersion([]Broker{{VersionGuess: "3.10"}, {VersionGuess: "3.9"}}); got != "3.9" {
		t.Errorf("3.9 vs 3.10: %q", got)
	}
}
