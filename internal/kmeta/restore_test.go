package kmeta

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func planSnapshot() *Snapshot {
	parts := func(n int, rf int) []Partition {
		var ps []Partition
		for i := 0; i < n; i++ {
			reps := make([]int32, rf)
			for r := range reps {
				reps[r] = int32(r + 1)
			}
			ps = append(ps, Partition{ID: int32(i), Leader: 1, Replicas: reps, ISR: reps})
		}
		return ps
	}
	return &Snapshot{Topics: []Topic{
		{Name: "orders", Partitions: parts(3, 3), ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "3600000", "min.insync.replicas": "2"}},
		{Name: "audit", Partitions: parts(1, 1), ReplicationFactor: 1, Configs: map[string]string{}},
		{Name: "__consumer_offsets", Internal: true, Partitions: parts(50, 3), ReplicationFactor: 3},
	}}
}

func TestPlanTopics(t *testing.T) {
	s := planSnapshot()
	plans := PlanTopics(s, nil, map[string]string{"orders": "orders-restored"}, 1)
	if len(plans) != 2 {
		t.Fatalf("plans = %+v (internal topics must be left out)", plans)
	}
	// nil topics: sorted snapshot order.
	a, o := plans[0], plans[1]
	if a.Source != "audit" || a.Target != "audit" || a.Partitions != 1 || a.ReplicationFactor != 1 || a.Note != "" {
		t.Errorf("audit plan = %+v", a)
	}
	if o.Source != "orders" || o.Target != "orders-restored" || o.Partitions != 3 || o.ReplicationFactor != 1 {
		t.Errorf("orders plan = %+v", o)
	}
	if !strings.Contains(o.Note, "replication factor 3 clamped to 1") || !strings.Contains(o.Note, "min.insync.replicas 2 clamped to 1") {
		t.Errorf("orders note = %q", o.Note)
	}
	if o.Configs["min.insync.replicas"] != "1" || o.Configs["retention.ms"] != "3600000" {
		t.Errorf("orders configs = %v", o.Configs)
	}
	if s.Topic("orders").Configs["min.insync.replicas"] != "2" {
		t.Errorf("PlanTopics changed the snapshot's configs")
	}

	// Enough brokers: nothing clamped, no note.
	p := PlanTopics(s, []string{"orders"}, nil, 3)
	if len(p) != 1 || p[0].ReplicationFactor != 3 || p[0].Note != "" || p[0].Configs["min.insync.replicas"] != "2" {
		t.Errorf("plan with 3 brokers = %+v", p)
	}
	// targetBrokers 0: unknown, no clamping.
	if p := PlanTopics(s, []string{"orders"}, nil, 0); p[0].ReplicationFactor != 3 {
		t.Errorf("plan with unknown broker count = %+v", p)
	}
	// A topic not in the snapshot is planned with no partitions and a
	// note, and CreateTopics refuses it.
	p = PlanTopics(s, []string{"missing"}, nil, 1)
	if len(p) != 1 || p[0].Partitions != 0 || !strings.Contains(p[0].Note, "missing is not in the backup") {
		t.Fatalf("plan for missing = %+v", p)
	}
	if _, err := CreateTopics(context.Background(), nil, p); err == nil || !strings.Contains(err.Error(), "create topic missing") {
		t.Errorf("CreateTopics of an empty plan: %v", err)
	}
}

// A topic a broker has not learned of yet (ZooKeeper-mode brokers learn
// new topics asynchronously; a retried create finds the topics its first
// attempt created) is waited for, not refused as having 0 partitions.
func TestCreateTopicsWaitsForExistingTopicMetadata(t *testing.T) {
	ctx := testCtx(t)
	c, cl := fakeCluster(t, 1)
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "orders"); err != nil || r.Err != nil {
		t.Fatalf("create orders: %v %v", err, r.Err)
	}
	unknown := 0
	c.ControlKey(kmsg.Metadata.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		m := req.(*kmsg.MetadataRequest)
		if unknown >= 3 || len(m.Topics) != 1 || m.Topics[0].Topic == nil || *m.Topics[0].Topic != "orders" {
			return nil, nil, false
		}
		unknown++
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr("orders")
		rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	res, err := CreateTopics(ctx, cl, []TopicPlan{{Source: "orders", Target: "orders", Partitions: 3, ReplicationFactor: 1}})
	if err != nil {
		t.Fatalf("CreateTopics of a topic the broker did not know yet: %v", err)
	}
	if len(res) != 1 || !res[0].Existed || res[0].Partitions != 3 || res[0].ID == "" {
		t.Errorf("result = %+v", res)
	}
	if unknown < 3 {
		t.Errorf("the metadata was asked %d times with the topic unknown, want 3 (the test did not bite)", unknown)
	}
}

func TestCreateTopicsFake(t *testing.T) {
	ctx := testCtx(t)
	_, cl := fakeCluster(t, 1)
	adm := kadm.NewClient(cl)
	plans := PlanTopics(planSnapshot(), []string{"orders", "audit"}, map[string]string{"audit": "audit2"}, 1)

	res, err := CreateTopics(ctx, cl, plans)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if len(res) != 2 {
		t.Fatalf("results = %+v", res)
	}
	for _, r := range res {
		if !r.Created || r.Existed || r.ID == "" {
			t.Errorf("result = %+v", r)
		}
	}
	if res[0].Target != "orders" || res[0].Partitions != 3 || res[1].Target != "audit2" || res[1].Partitions != 1 {
		t.Errorf("results = %+v", res)
	}
	if !strings.Contains(res[0].Note, "clamped") {
		t.Errorf("the plan's note is not carried: %+v", res[0])
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	got := map[string]string{}
	for _, c := range rc[0].Configs {
		if c.Source == 1 { // DYNAMIC_TOPIC_CONFIG
			got[c.Key] = c.MaybeValue()
		}
	}
	if want := map[string]string{"retention.ms": "3600000", "min.insync.replicas": "1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("orders configs = %v, want %v", got, want)
	}

	// Again: both exist with the planned counts, which is reported.
	res2, err := CreateTopics(ctx, cl, plans)
	if err != nil {
		t.Fatalf("CreateTopics again: %v", err)
	}
	for i, r := range res2 {
		if r.Created || !r.Existed || r.Partitions != res[i].Partitions || r.ID != res[i].ID {
			t.Errorf("second result = %+v, first %+v", r, res[i])
		}
	}

	// A different partition count is refused, naming the topic; the
	// other topic is still reported.
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "payments"); err != nil || r.Err != nil {
		t.Fatalf("create payments: %v %v", err, r.Err)
	}
	mismatch := []TopicPlan{{Source: "payments", Target: "payments", Partitions: 3, ReplicationFactor: 1}, plans[1]}
	res3, err := CreateTopics(ctx, cl, mismatch)
	if err == nil || !strings.Contains(err.Error(), "topic payments already exists with 2 partition(s), the backup has 3") {
		t.Fatalf("mismatch err = %v", err)
	}
	if len(res3) != 1 || res3[0].Target != "audit2" || !res3[0].Existed {
		t.Errorf("mismatch results = %+v", res3)
	}

	// An invalid plan fails with the broker's reason and the topic name.
	_, err = CreateTopics(ctx, cl, []TopicPlan{{Source: "x", Target: "bad", Partitions: 1, ReplicationFactor: 5}})
	if err == nil || !strings.Contains(err.Error(), "create topic bad") {
		t.Errorf("RF 5 on 1 broker: %v", err)
	}
}

func TestApplyACLsAndQuotasFake(t *testing.T) {
	ctx := testCtx(t)
	_, src := fakeCluster(t, 1)
	seed(t, ctx, src, "orders", "billing", "alice")
	s, err := Take(ctx, src, Options{})
	if err != nil {
		t.Fatalf("Take source: %v", err)
	}
	_, dst := fakeCluster(t, 1)
	for range 2 { // idempotent
		if err := ApplyACLs(ctx, dst, s); err != nil {
			t.Fatalf("ApplyACLs: %v", err)
		}
		if err := ApplyQuotas(ctx, dst, s); err != nil {
			t.Fatalf("ApplyQuotas: %v", err)
		}
	}
	d, err := Take(ctx, dst, Options{})
	if err != nil {
		t.Fatalf("Take target: %v", err)
	}
	if !reflect.DeepEqual(d.ACLs, s.ACLs) || len(d.ACLs) != 1 {
		t.Errorf("target ACLs %+v, source %+v", d.ACLs, s.ACLs)
	}
	if !reflect.DeepEqual(d.Quotas, s.Quotas) || len(d.Quotas) != 1 {
		t.Errorf("target quotas %+v, source %+v", d.Quotas, s.Quotas)
	}
	bad := &Snapshot{ACLs: []ACL{{ResourceType: "TABLE", ResourceName: "x", PatternType: "LITERAL", Principal: "User:a", Host: "*", Operation: "READ", Permission: "ALLOW"}}}
	if err := ApplyACLs(ctx, dst, bad); err == nil || !strings.Contains(err.Error(), "TABLE") {
		t.Errorf("ApplyACLs with an unknown resource type: %v", err)
	}
}

func TestCommitGroupOffsetsFake(t *testing.T) {
	ctx := testCtx(t)
	_, cl := fakeCluster(t, 1)
	adm := kadm.NewClient(cl)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "orders"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	if err := CommitGroupOffsets(ctx, cl, "restored", map[string]map[int32]int64{"orders": {0: 10, 1: 0}}); err != nil {
		t.Fatalf("CommitGroupOffsets: %v", err)
	}
	f, err := adm.FetchOffsets(ctx, "restored")
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	if o0, _ := f.Lookup("orders", 0); o0.At != 10 {
		t.Errorf("orders/0 = %+v", o0)
	}
	if o1, _ := f.Lookup("orders", 1); o1.At != 0 {
		t.Errorf("orders/1 = %+v", o1)
	}
	gs, err := GroupOffsets(ctx, cl, func(n string) bool { return n == "orders" })
	if err != nil || len(gs) != 1 || gs[0].ID != "restored" || len(gs[0].Offsets) != 2 {
		t.Fatalf("GroupOffsets = %+v, %v", gs, err)
	}
	if gs, err := GroupOffsets(ctx, cl, func(string) bool { return false }); err != nil || len(gs) != 0 {
		t.Errorf("GroupOffsets with a filter matching nothing = %+v, %v", gs, err)
	}

	// An active group is refused.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...),
		kgo.ConsumerGroup("live"), kgo.ConsumeTopics("orders"))
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		consumer.PollFetches(pctx)
		cancel()
		l, err := adm.ListGroups(ctx)
		if err == nil && l["live"].State == "Stable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group live never became Stable: %+v %v", l, err)
		}
	}
	err = CommitGroupOffsets(ctx, cl, "live", map[string]map[int32]int64{"orders": {0: 1}})
	if err == nil || !strings.Contains(err.Error(), "group live: the group is active") {
		t.Fatalf("commit to an active group: %v", err)
	}
}
