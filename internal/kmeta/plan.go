package kmeta

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
)

// TopicPlan is how one backed-up topic is to be created on the target.
type TopicPlan struct {
	Source            string            `json:"source"`
	Target            string            `json:"target"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
	// Note says what the plan changed from the backup (a replication
	// factor clamped to the target's broker count) or, with Partitions 0,
	// why the topic cannot be planned; CreateTopics refuses such a plan.
	Note string `json:"note,omitempty"`
}

// PlanTopics plans the creation of topics from a snapshot. topics names the
// source topics (nil: every non-internal topic of the snapshot); rename maps
// a source name to its target name (src:dst), others keep their name.
//
// Partition counts are kept exactly, because key placement depends on
// them. The replication factor is clamped to targetBrokers (when > 0) so a
// restore into a smaller cluster works, and min.insync.replicas is clamped
// to the new replication factor, or every acks=all write would fail; both
// are said in Note. Only the configs the operator set are planned (see
// Topic.Configs), so the target's own defaults apply to the rest.
func PlanTopics(s *Snapshot, topics []string, rename map[string]string, targetBrokers int) []TopicPlan {
	if topics == nil && s != nil {
		for _, t := range s.Topics {
			if !t.Internal {
				topics = append(topics, t.Name)
			}
		}
		sort.Strings(topics)
	}
	plans := make([]TopicPlan, 0, len(topics))
	for _, name := range topics {
		p := TopicPlan{Source: name, Target: name}
		if dst, ok := rename[name]; ok && dst != "" {
			p.Target = dst
		}
		t := s.Topic(name)
		if t == nil {
			p.Note = fmt.Sprintf("topic %s is not in the backup's metadata", name)
			plans = append(plans, p)
			continue
		}
		p.Partitions = int32(len(t.Partitions))
		p.ReplicationFactor = t.ReplicationFactor
		p.Configs = maps.Clone(t.Configs)
		if p.Configs == nil {
			p.Configs = map[string]string{}
		}
		var notes []string
		if targetBrokers > 0 && int(p.ReplicationFactor) > targetBrokers {
			notes = append(notes, fmt.Sprintf("replication factor %d clamped to %d: the target has %d broker(s)", p.ReplicationFactor, targetBrokers, targetBrokers))
			p.ReplicationFactor = int16(targetBrokers)
		}
		if v, ok := p.Configs["min.insync.replicas"]; ok && p.ReplicationFactor > 0 {
			if n, err := strconv.Atoi(v); err == nil && n > int(p.ReplicationFactor) {
				p.Configs["min.insync.replicas"] = strconv.Itoa(int(p.ReplicationFactor))
				notes = append(notes, fmt.Sprintf("min.insync.replicas %d clamped to %d to match the replication factor", n, p.ReplicationFactor))
			}
		}
		p.Note = strings.Join(notes, "; ")
		plans = append(plans, p)
	}
	return plans
}
