package kmeta

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicResult is what CreateTopics did for one plan.
type TopicResult struct {
	Source  string `json:"source"`
	Target  string `json:"target"`
	ID      string `json:"id,omitempty"` // the target topic's id, Kafka notation
	Created bool   `json:"created"`
	// Existed is set when the topic was already there with the planned
	// partition count: a retried restore finds the topics its first
	// attempt created, so this is reported, not refused. Whether the
	// existing topic is empty is for the data restore to check.
	Existed    bool   `json:"existed"`
	Partitions int32  `json:"partitions"` // partition count on the target
	Note       string `json:"note,omitempty"`
}

// leaderWait bounds how long CreateTopics waits for new partitions to get
// leaders, so that the producer that follows does not start on a topic the
// brokers do not serve yet.
var leaderWait = 30 * time.Second

// CreateTopics creates the planned topics with their partition counts,
// replication factors and configs in one request, then waits until every
// new partition has a leader. A topic that already exists is reported
// (Existed) when its partition count matches the plan; a different count is
// an error naming the topic, because records would land in other
// partitions than they were backed up from. Results are returned for the
// topics that are fine even when others fail.
func CreateTopics(ctx context.Context, cl *kgo.Client, plans []TopicPlan) ([]TopicResult, error) {
	if len(plans) == 0 {
		return nil, nil
	}
	byTarget := make(map[string]TopicPlan, len(plans))
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, p := range plans {
		if p.Partitions <= 0 {
			return nil, fmt.Errorf("create topic %s: the plan has no partitions: %s", p.Target, p.Note)
		}
		if _, dup := byTarget[p.Target]; dup {
			return nil, fmt.Errorf("create topic %s: planned twice (check the renames)", p.Target)
		}
		byTarget[p.Target] = p
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = p.Target
		rt.NumPartitions = p.Partitions
		rt.ReplicationFactor = p.ReplicationFactor
		keys := make([]string, 0, len(p.Configs))
		for k := range p.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name = k
			c.Value = kmsg.StringPtr(p.Configs[k])
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("create %d topic(s), first %s: %w", len(plans), plans[0].Target, err)
	}

	var (
		errs     []error
		created  []string
		existing []string
		results  = map[string]*TopicResult{}
	)
	for _, rt := range resp.Topics {
		p, ok := byTarget[rt.Topic]
		if !ok {
			continue
		}
		r := &TopicResult{Source: p.Source, Target: p.Target, Note: p.Note}
		switch terr := kerr.ErrorForCode(rt.ErrorCode); {
		case terr == nil:
			r.Created, r.ID, r.Partitions = true, topicIDString(rt.TopicID), p.Partitions
			created = append(created, rt.Topic)
		case errors.Is(terr, kerr.TopicAlreadyExists):
			r.Existed = true
			existing = append(existing, rt.Topic)
		default:
			errs = append(errs, fmt.Errorf("create topic %s: %w%s", rt.Topic, terr, msgSuffix(derefString(rt.ErrorMessage))))
			continue
		}
		results[rt.Topic] = r
	}
	for _, p := range plans {
		if _, ok := results[p.Target]; !ok && !hasErrFor(resp, p.Target) {
			errs = append(errs, fmt.Errorf("create topic %s: no answer for the topic", p.Target))
		}
	}

	if len(existing) > 0 {
		meta, err := existingMetadata(ctx, cl, existing)
		if err != nil {
			errs = append(errs, err)
		} else {
			for _, name := range existing {
				r, mt := results[name], meta[name]
				r.Partitions, r.ID = int32(len(mt.Partitions)), topicIDString(mt.TopicID)
				if want := byTarget[name].Partitions; r.Partitions != want {
					errs = append(errs, fmt.Errorf("topic %s already exists with %d partition(s), the backup has %d", name, r.Partitions, want))
					delete(results, name)
				}
			}
		}
	}
	if len(created) > 0 {
		if err := waitForLeaders(ctx, cl, created, byTarget); err != nil {
			errs = append(errs, err)
		}
	}

	out := make([]TopicResult, 0, len(results))
	for _, p := range plans {
		if r, ok := results[p.Target]; ok {
			out = append(out, *r)
		}
	}
	return out, errors.Join(errs...)
}

func hasErrFor(resp *kmsg.CreateTopicsResponse, topic string) bool {
	for _, rt := range resp.Topics {
		if rt.Topic == topic {
			return true
		}
	}
	return false
}

// existingMetadata is topicMetadata for topics the controller says exist:
// a broker may not know one yet (ZooKeeper-mode brokers learn new topics
// asynchronously, and a retried create finds the topics its first attempt
// made), which it answers with an error or no partitions. Such topics are
// asked again until they show partitions, for up to leaderWait.
func existingMetadata(ctx context.Context, cl *kgo.Client, topics []string) (map[string]kmsg.MetadataResponseTopic, error) {
	deadline := time.Now().Add(leaderWait)
	out := make(map[string]kmsg.MetadataResponseTopic, len(topics))
	pending := topics
	for {
		meta, err := topicMetadata(ctx, cl, pending)
		if err != nil {
			return nil, err
		}
		var again []string
		for _, name := range pending {
			mt, ok := meta[name]
			if !ok || mt.ErrorCode != 0 || len(mt.Partitions) == 0 {
				again = append(again, name)
			}
			out[name] = mt
		}
		if len(again) == 0 || time.Now().After(deadline) {
			return out, nil
		}
		pending = again
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// topicMetadata fetches fresh metadata for the named topics.
func topicMetadata(ctx context.Context, cl *kgo.Client, topics []string) (map[string]kmsg.MetadataResponseTopic, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata of topics %v: %w", topics, err)
	}
	out := make(map[string]kmsg.MetadataResponseTopic, len(resp.Topics))
	for _, t := range resp.Topics {
		out[derefString(t.Topic)] = t
	}
	return out, nil
}

// waitForLeaders polls every broker's metadata until each created topic
// shows all its partitions with a leader. ZooKeeper-mode brokers learn of
// new topics asynchronously, so one broker knowing is not enough for the
// producer and group commits that follow.
func waitForLeaders(ctx context.Context, cl *kgo.Client, topics []string, plans map[string]TopicPlan) error {
	deadline := time.Now().Add(leaderWait)
	for {
		pending := leadersPending(ctx, cl, topics, plans)
		if pending == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics created, but after %s: %s", leaderWait, pending)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("topics created, but waiting for leaders: %w (%s)", err, pending)
		}
	}
}

// leadersPending says what is not ready yet, or "" when all is.
func leadersPending(ctx context.Context, cl *kgo.Client, topics []string, plans map[string]TopicPlan) string {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	first, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err.Error()
	}
	for _, b := range first.Brokers {
		resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
		if err != nil {
			return fmt.Sprintf("metadata from broker %d: %v", b.NodeID, err)
		}
		seen := map[string]bool{}
		for _, mt := range resp.Topics {
			name := derefString(mt.Topic)
			seen[name] = true
			if mt.ErrorCode != 0 || int32(len(mt.Partitions)) != plans[name].Partitions {
				return fmt.Sprintf("broker %d does not list topic %s fully yet", b.NodeID, name)
			}
			for _, p := range mt.Partitions {
				if p.Leader < 0 || p.ErrorCode == kerr.LeaderNotAvailable.Code {
					return fmt.Sprintf("partition %s/%d has no leader on broker %d", name, p.Partition, b.NodeID)
				}
			}
		}
		for _, t := range topics {
			if !seen[t] {
				return fmt.Sprintf("broker %d does not list topic %s yet", b.NodeID, t)
			}
		}
	}
	return ""
}
