package config

import (
	"fmt"

	"github.com/kbr-project/kbr/internal/backupset"
)

// LogicalRestore is the document of `kbr restore logical -f` and the input
// of LogicalRestoreWorkflow: the logical metadata of a recovery point
// (topics with partitions and configs, ACLs, quotas, SCRAM users) applied
// through the Admin API, typically to a new or empty KRaft cluster.
type LogicalRestore struct {
	Cluster Cluster `yaml:"cluster" json:"cluster"`
	Source  Source  `yaml:"source" json:"source"`
	// Topics to create, by source name (default: every non-internal topic).
	Topics []string `yaml:"topics,omitempty" json:"topics,omitempty"`
	// Rename maps source to target topic names ("orders:orders_dr"); topic
	// ACLs with a literal name follow the rename.
	Rename []string `yaml:"rename,omitempty" json:"rename,omitempty"`
	// ACLs: "all", "topics" (only those on the restored topics) or "none";
	// default "all" without a topics list, "topics" with one.
	ACLs string `yaml:"acls,omitempty" json:"acls,omitempty"`
	// Quotas applies the client quotas (default: true without a topics
	// list, false with one).
	Quotas *bool `yaml:"quotas,omitempty" json:"quotas,omitempty"`
	// DryRun plans and reports without changing the cluster.
	DryRun bool `yaml:"dry_run,omitempty" json:"dry_run,omitempty"`
}

// LoadLogicalRestore reads, defaults and validates a logical restore file.
func LoadLogicalRestore(path string) (*LogicalRestore, error) {
	var r LogicalRestore
	if err := decodeFile(path, &r); err != nil {
		return nil, err
	}
	r.ApplyDefaults()
	absLocal(&r.Source.Target)
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// ApplyDefaults fills what the operator left out.
func (r *LogicalRestore) ApplyDefaults() {
	r.Cluster.ApplyDefaults()
	if r.ACLs == "" {
		r.ACLs = "all"
		if len(r.Topics) > 0 {
			r.ACLs = "topics"
		}
	}
	if r.Quotas == nil {
		q := len(r.Topics) == 0
		r.Quotas = &q
	}
}

// RenameMap parses Rename.
func (r *LogicalRestore) RenameMap() (map[string]string, error) {
	return (&Restore{Rename: r.Rename}).RenameMap()
}

// Validate checks everything that can be checked without the network.
func (r *LogicalRestore) Validate() error {
	if err := r.Cluster.Validate("cluster"); err != nil {
		return err
	}
	if err := ValidateTarget("source.target", r.Source.Target); err != nil {
		return err
	}
	if r.Source.RecoveryPoint == "" {
		return fieldErr("source.recovery_point", `required: a manifest name (see "kbr backups list") or "latest"`)
	}
	if r.Source.RecoveryPoint != "latest" {
		if _, _, _, ok := backupset.ParseManifestName(r.Source.RecoveryPoint); !ok {
			return fieldErr("source.recovery_point", "%q is not <task>_<created>/<version>_manifest_<executed>.json", r.Source.RecoveryPoint)
		}
	}
	for i, t := range r.Topics {
		if !topicNameRE.MatchString(t) {
			return fieldErr(fmt.Sprintf("topics[%d]", i), "%q is not a topic name", t)
		}
	}
	if _, err := r.RenameMap(); err != nil {
		return err
	}
	switch r.ACLs {
	case "all", "topics", "none":
	default:
		return fieldErr("acls", "%q: want all, topics or none", r.ACLs)
	}
	return nil
}
