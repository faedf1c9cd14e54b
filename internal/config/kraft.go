package config

import (
	"fmt"

	"github.com/kbr-project/kbr/internal/backupset"
)

// validateKRaftLog checks what the kraft_log data source needs: a KRaft
// cluster (no zookeeper) and its controllers, each with its agent's host.
func (b *Backup) validateKRaftLog() error {
	if !b.Has(SourceKRaftLog) {
		return nil
	}
	if b.Cluster.ZooKeeper != nil {
		return fieldErr("data_sources", "kraft_log: the cluster has zookeeper set; a ZooKeeper-mode cluster has no metadata log (its znodes are in the metadata data source)")
	}
	if len(b.Cluster.Controllers) == 0 {
		return fieldErr("cluster.controllers", "required with the kraft_log data source: every controller (and combined node) with its agent's host name ({id: 1, host: controller1})")
	}
	return validateHosts("cluster.controllers", b.Cluster.Controllers, "node.id of the controller", "node")
}

// KRaftRestore is the document of `kbr restore kraft -f` and the input of
// KRaftMetadataRestoreWorkflow: the MRS metadata restore of a KRaft
// cluster, which puts the controllers' backed-up metadata log back in
// place through the nodes' agents.
type KRaftRestore struct {
	// Cluster is the cluster to restore (a KRaft cluster: no zookeeper).
	Cluster Cluster `yaml:"cluster" json:"cluster"`
	// Source is the recovery point whose kraft_log is restored.
	Source Source `yaml:"source" json:"source"`
	// Nodes lists every node of the cluster — controllers, brokers and
	// combined nodes — with the host name its agent runs under. The agent
	// tells each node's roles from its server.properties.
	Nodes []BrokerHost `yaml:"nodes" json:"nodes"`
	// SafetyBackup is where the current metadata logs are copied before
	// anything is changed (default task "<cluster>-before-restore").
	SafetyBackup SafetyBackup        `yaml:"safety_backup,omitempty" json:"safety_backup,omitempty"`
	Options      KRaftRestoreOptions `yaml:"options,omitempty" json:"options,omitempty"`
}

// KRaftRestoreOptions tune a KRaft metadata restore.
type KRaftRestoreOptions struct {
	HostOpsOptions `yaml:",inline"`
}

// LoadKRaftRestore reads, defaults and validates a KRaft metadata restore file.
func LoadKRaftRestore(path string) (*KRaftRestore, error) {
	var r KRaftRestore
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
func (r *KRaftRestore) ApplyDefaults() {
	r.Cluster.ApplyDefaults()
	if r.SafetyBackup.Task == "" && r.Cluster.Name != "" {
		r.SafetyBackup.Task = r.Cluster.Name + "-before-restore"
	}
	r.Options.applyDefaults()
}

// Validate checks everything that can be checked without the network.
func (r *KRaftRestore) Validate() error {
	if err := r.Cluster.Validate("cluster"); err != nil {
		return err
	}
	if r.Cluster.ZooKeeper != nil {
		return fieldErr("cluster.zookeeper", "a KRaft metadata restore is for KRaft clusters (for a ZooKeeper-mode cluster use kbr restore metadata)")
	}
	if err := validateRestoreSource(r.Source); err != nil {
		return err
	}
	if len(r.Nodes) == 0 {
		return fieldErr("nodes", "required: every node of the cluster (controllers, brokers, combined) with its agent's host name ({id: 1, host: kraft1})")
	}
	if err := validateHosts("nodes", r.Nodes, "node.id", "node"); err != nil {
		return err
	}
	if err := backupset.ValidTaskName(r.SafetyBackup.Task); err != nil {
		return fieldErr("safety_backup.task", "%v", err)
	}
	return r.Options.validate()
}
