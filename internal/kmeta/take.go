package kmeta

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Options chooses what Take reads.
type Options struct {
	// IncludeInternal keeps internal topics (__consumer_offsets,
	// __transaction_state). They are left out by default because brokers
	// create and own them; restoring them by hand would be wrong.
	IncludeInternal bool
	// Topics selects topics by name; nil selects every topic. It also
	// filters the offsets of consumer groups when Groups is set.
	Topics func(string) bool
	// Groups also reads consumer groups and their committed offsets.
	Groups bool
	// Layout reads only the cluster, its brokers and the chosen topics'
	// names, IDs and partitions: no topic configs, ACLs, quotas or SCRAM
	// users, and no groups even with Groups. It is what a preflight needs,
	// in a few round trips.
	Layout bool
}

func (o Options) keepTopic(name string, internal bool) bool {
	if internal && !o.IncludeInternal {
		return false
	}
	return o.Topics == nil || o.Topics(name)
}

// Take reads the logical metadata of the cluster cl is connected to. It
// only reads; every failure names what was being read.
func Take(ctx context.Context, cl *kgo.Client, opt Options) (*Snapshot, error) {
	s := &Snapshot{
		// UTC and no monotonic reading, so the value survives a JSON
		// round trip unchanged.
		TakenAt: time.Now().UTC().Round(0),
	}
	meta, err := fetchMetadata(ctx, cl, opt.keepTopic)
	if err != nil {
		return nil, err
	}
	if meta.ClusterID != nil {
		s.ClusterID = *meta.ClusterID
	}
	s.ControllerID = meta.ControllerID

	versions, err := brokerVersions(ctx, cl, meta.Brokers)
	if err != nil {
		return nil, err
	}
	for _, b := range meta.Brokers {
		s.Brokers = append(s.Brokers, Broker{
			ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack,
			VersionGuess: versionGuess(versions[b.NodeID]),
		})
	}
	sort.Slice(s.Brokers, func(i, j int) bool { return s.Brokers[i].ID < s.Brokers[j].ID })
	s.KafkaVersion = lowestVersion(s.Brokers)

	adm := kadm.NewClient(cl) // never Close: that would close the caller's client
	if s.Topics, err = topicsOf(ctx, adm, meta, opt.keepTopic, !opt.Layout); err != nil {
		return nil, err
	}
	if opt.Layout {
		return s, nil
	}
	if s.ACLs, s.ACLsNote, err = describeACLs(ctx, cl); err != nil {
		return nil, err
	}
	if allSupport(versions, kmsg.DescribeClientQuotas.Int16()) {
		if s.Quotas, err = describeQuotas(ctx, adm); err != nil {
			return nil, err
		}
	} else {
		s.Notes = append(s.Notes, "client quotas not read: some broker does not support DescribeClientQuotas (Kafka < 2.6)")
	}
	if allSupport(versions, kmsg.DescribeUserSCRAMCredentials.Int16()) {
		if s.SCRAMUsers, err = describeSCRAMUsers(ctx, adm); err != nil {
			return nil, err
		}
	} else {
		s.Notes = append(s.Notes, "SCRAM users not read: some broker does not support DescribeUserScramCredentials (Kafka < 2.7)")
	}
	if opt.Groups {
		if s.Groups, err = GroupOffsets(ctx, cl, opt.Topics); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// fetchMetadata asks for every topic with a fresh request (not the client's
// cache, which may predate a topic created a moment ago). Topics that are
// still electing leaders are asked again a few times before giving up, so a
// snapshot right after a broker restart does not fail needlessly.
func fetchMetadata(ctx context.Context, cl *kgo.Client, keep func(string, bool) bool) (*kmsg.MetadataResponse, error) {
	const attempts = 6
	for attempt := 1; ; attempt++ {
		req := kmsg.NewPtrMetadataRequest() // nil Topics: all topics
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("request cluster metadata: %w", err)
		}
		var retry error
		for _, t := range resp.Topics {
			name := derefString(t.Topic)
			if !keep(name, t.IsInternal) {
				continue
			}
			terr := kerr.ErrorForCode(t.ErrorCode)
			switch {
			case terr == nil:
			case errors.Is(terr, kerr.UnknownTopicOrPartition):
				// Deleted while being listed: it is simply not there.
			case kerr.IsRetriable(terr):
				retry = fmt.Errorf("metadata of topic %s: %w", name, terr)
			default:
				return nil, fmt.Errorf("metadata of topic %s: %w", name, terr)
			}
		}
		if retry == nil {
			return resp, nil
		}
		if attempt == attempts {
			return nil, fmt.Errorf("%w (still failing after %d attempts)", retry, attempts)
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, retry
		}
	}
}

// topicsOf turns the metadata of the kept topics into Topics and adds their
// dynamic configs.
func topicsOf(ctx context.Context, adm *kadm.Client, meta *kmsg.MetadataResponse, keep func(string, bool) bool, configs bool) ([]Topic, error) {
	var topics []Topic
	for _, mt := range meta.Topics {
		name := derefString(mt.Topic)
		if !keep(name, mt.IsInternal) || mt.ErrorCode == kerr.UnknownTopicOrPartition.Code {
			continue
		}
		t := Topic{Name: name, ID: topicIDString(mt.TopicID), Internal: mt.IsInternal, Configs: map[string]string{}}
		for _, p := range mt.Partitions {
			t.Partitions = append(t.Partitions, Partition{
				ID: p.Partition, Leader: p.Leader,
				Replicas: append([]int32(nil), p.Replicas...),
				ISR:      append([]int32(nil), p.ISR...),
			})
			if n := int16(len(p.Replicas)); n > t.ReplicationFactor {
				t.ReplicationFactor = n
			}
		}
		sort.Slice(t.Partitions, func(i, j int) bool { return t.Partitions[i].ID < t.Partitions[j].ID })
		topics = append(topics, t)
	}
	sort.Slice(topics, func(i, j int) bool { return topics[i].Name < topics[j].Name })
	if !configs {
		return topics, nil
	}
	if err := addTopicConfigs(ctx, adm, topics); err != nil {
		return nil, err
	}
	// A topic deleted between the metadata and the configs request was
	// marked with a nil Configs map; drop it.
	kept := topics[:0]
	for _, t := range topics {
		if t.Configs != nil {
			kept = append(kept, t)
		}
	}
	return kept, nil
}

// addTopicConfigs fills Configs with the DYNAMIC_TOPIC_CONFIG entries of
// each topic, asking in batches to keep requests small on big clusters.
func addTopicConfigs(ctx context.Context, adm *kadm.Client, topics []Topic) error {
	const batch = 200
	idx := make(map[string]int, len(topics))
	for i, t := range topics {
		idx[t.Name] = i
	}
	for start := 0; start < len(topics); start += batch {
		end := min(start+batch, len(topics))
		names := make([]string, 0, end-start)
		for _, t := range topics[start:end] {
			names = append(names, t.Name)
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			return fmt.Errorf("describe configs of %s: %w", topicList(names), err)
		}
		for _, rc := range rcs {
			i, ok := idx[rc.Name]
			if !ok {
				continue
			}
			if rc.Err != nil {
				if errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
					topics[i].Configs = nil
					continue
				}
				return fmt.Errorf("describe configs of topic %s: %w%s", rc.Name, rc.Err, msgSuffix(rc.ErrMessage))
			}
			for _, c := range rc.Configs {
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.Value != nil {
					topics[i].Configs[c.Key] = *c.Value
				}
			}
		}
	}
	return nil
}

// topicIDString writes a topic id as Kafka does (Uuid.toString: URL-safe
// base64 without padding); the zero id of old brokers becomes "".
func topicIDString(id [16]byte) string {
	if id == [16]byte{} {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// topicList names topics for an error: "topic a", or "topics a, b, c and
// 197 more".
func topicList(names []string) string {
	if len(names) == 1 {
		return "topic " + names[0]
	}
	const show = 5
	if len(names) <= show {
		return "topics " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("topics %s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}

func allSupport(vs map[int32]*kversion.Versions, key int16) bool {
	if len(vs) == 0 {
		return false
	}
	for _, v := range vs {
		if v == nil || !v.HasKey(key) {
			return false
		}
	}
	return true
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func msgSuffix(m string) string {
	if m == "" {
		return ""
	}
	return " (" + m + ")"
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
