package activities

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kclient"
	"github.com/kbr-project/kbr/internal/kmeta"
)

// LogicalInput is a logical metadata restore of a verified recovery point.
type LogicalInput struct {
	Config   config.LogicalRestore `json:"config"`
	Manifest string                `json:"manifest"`
}

// PlannedTopic is one topic of a logical restore plan.
type PlannedTopic struct {
	kmeta.TopicPlan
	// Action: "create", "exists" (same partition count: left as is) or
	// "conflict" (another partition count: the restore is refused).
	Action string `json:"action"`
	// ExistingPartitions is the target topic's partition count when it exists.
	ExistingPartitions int32 `json:"existing_partitions,omitempty"`
}

// LogicalPlan is what a logical restore will do, shown before it does it
// (and all that a dry run does).
type LogicalPlan struct {
	Topics     []PlannedTopic    `json:"topics"`
	ACLs       []kmeta.ACL       `json:"acls"`
	Quotas     []kmeta.Quota     `json:"quotas"`
	SCRAMUsers []kmeta.SCRAMUser `json:"scram_users"`
	Conflicts  []string          `json:"conflicts,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
}

// NoteSCRAM is why SCRAM users are reported, not created.
const NoteSCRAM = "SCRAM users are listed with their mechanisms; the Admin API never reveals salted passwords, so the backup holds no credentials: set each user's password again on the target (kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=…]' --entity-type users --entity-name USER)"

// PlanLogicalRestore reads the recovery point's logical metadata and the
// target cluster, and plans: topics to create (partition counts exact,
// replication clamped to the target's brokers, the configs the operator
// had set), topics already there, conflicts (another partition count),
// ACLs (topic ACLs follow renames), quotas and SCRAM users. It changes
// nothing.
func (a *Activities) PlanLogicalRestore(ctx context.Context, in LogicalInput) (*LogicalPlan, error) {
	cfg := in.Config
	if err := cfg.Validate(); err != nil {
		return nil, badInput("%v", err)
	}
	_, snap, _, err := a.readMetaArchive(ctx, cfg.Source.Target, in.Manifest)
	if err != nil {
		return nil, err
	}
	rename, _ := cfg.RenameMap()
	cl, err := kclient.New(cfg.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	if _, err := kclient.Ping(ctx, cfg.Cluster, cl); err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", cfg.Cluster.Name, err)
	}
	var topics []string
	if len(cfg.Topics) > 0 {
		topics = cfg.Topics
	}
	plan := &LogicalPlan{}
	restored := map[string]string{} // source -> target
	for _, tp := range kmeta.PlanTopics(snap, topics, rename, len(md.Brokers)) {
		pt := PlannedTopic{TopicPlan: tp, Action: "create"}
		if tp.Partitions == 0 {
			plan.Conflicts = append(plan.Conflicts, fmt.Sprintf("topic %s: %s", tp.Source, tp.Note))
			continue
		}
		if td, ok := md.Topics[tp.Target]; ok && td.Err == nil {
			pt.ExistingPartitions = int32(len(td.Partitions))
			pt.Action = "exists"
			if pt.ExistingPartitions != tp.Partitions {
				pt.Action = "conflict"
				plan.Conflicts = append(plan.Conflicts, fmt.Sprintf("topic %s exists on %s with %d partitions, the backup has %d", tp.Target, cfg.Cluster.Name, pt.ExistingPartitions, tp.Partitions))
			}
		}
		restored[tp.Source] = tp.Target
		plan.Topics = append(plan.Topics, pt)
	}
	switch cfg.ACLs {
	case "all", "topics":
		for _, acl := range snap.ACLs {
			if acl.ResourceType == "TOPIC" {
				dst, ok := restored[acl.ResourceName]
				if acl.PatternType == "LITERAL" && ok {
					acl.ResourceName = dst
				} else if cfg.ACLs == "topics" {
					continue
				}
			} else if cfg.ACLs == "topics" {
				continue
			}
			plan.ACLs = append(plan.ACLs, acl)
		}
		if snap.ACLsNote != "" {
			plan.Notes = append(plan.Notes, "ACLs: "+snap.ACLsNote)
		}
	}
	if cfg.Quotas != nil && *cfg.Quotas {
		plan.Quotas = snap.Quotas
	}
	plan.SCRAMUsers = snap.SCRAMUsers
	if len(plan.SCRAMUsers) > 0 {
		plan.Notes = append(plan.Notes, NoteSCRAM)
	}
	plan.Notes = append(plan.Notes, snap.Notes...)
	sort.Strings(plan.Conflicts)
	return plan, nil
}

// LogicalApplyInput applies a plan made by PlanLogicalRestore.
type LogicalApplyInput struct {
	Config config.LogicalRestore `json:"config"`
	Plan   LogicalPlan           `json:"plan"`
}

// CreatePlannedTopics creates the plan's topics; ones that already exist
// with the planned partition count are reported, not refused, so a retried
// step succeeds.
func (a *Activities) CreatePlannedTopics(ctx context.Context, in LogicalApplyInput) ([]kmeta.TopicResult, error) {
	cl, err := kclient.New(in.Config.Cluster)
	if err != nil {
		return nil, badInput("%v", err)
	}
	defer cl.Close()
	var plans []kmeta.TopicPlan
	for _, t := range in.Plan.Topics {
		plans = append(plans, t.TopicPlan)
	}
	return kmeta.CreateTopics(ctx, cl, plans)
}

// ApplyPlannedACLs creates the plan's ACL bindings (idempotent in Kafka).
func (a *Activities) ApplyPlannedACLs(ctx context.Context, in LogicalApplyInput) error {
	cl, err := kclient.New(in.Config.Cluster)
	if err != nil {
		return badInput("%v", err)
	}
	defer cl.Close()
	return kmeta.ApplyACLs(ctx, cl, &kmeta.Snapshot{ACLs: in.Plan.ACLs})
}

// ApplyPlannedQuotas sets the plan's client quotas (idempotent).
func (a *Activities) ApplyPlannedQuotas(ctx context.Context, in LogicalApplyInput) error {
	cl, err := kclient.New(in.Config.Cluster)
	if err != nil {
		return badInput("%v", err)
	}
	defer cl.Close()
	return kmeta.ApplyQuotas(ctx, cl, &kmeta.Snapshot{Quotas: in.Plan.Quotas})
}
