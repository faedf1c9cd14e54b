package config

import (
	"fmt"
	"time"

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
	return validateHosts("cluster.controllers", b.Cluster.Controllers, "node.id of the controller")
}

// validateHosts checks a list of nodes and their agents: ids and hosts
// unique, host names usable in a task queue name.
func validateHosts(field string, hs []BrokerHost, what string) error {
	ids, hosts := map[int32]int{}, map[string]int{}
	for i, b := range hs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if b.ID < 0 {
			return fieldErr(f+".id", "%d: a %s is not negative", b.ID, what)
		}
		if j, dup := ids[b.ID]; dup {
			return fieldErr(f+".id", "%d is also %s[%d].id", b.ID, field, j)
		}
		ids[b.ID] = i
		if b.Host == "" {
			return fieldErr(f+".host", "required: the name the node's agent runs under (kbr agent --host NAME)")
		}
		if !HostNameRE.MatchString(b.Host) {
			return fieldErr(f+".host", "%q: use letters, digits, '.', '_' or '-'", b.Host)
		}
		if j, dup := hosts[b.Host]; dup {
			return fieldErr(f+".host", "%q is also %s[%d].host: run one agent per node", b.Host, field, j)
		}
		hosts[b.Host] = i
	}
	return nil
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
	// AgentTimeout is how long an agent has to pick up a task before its
	// host counts as unreachable (default 15s).
	AgentTimeout Duration `yaml:"agent_timeout,omitempty" json:"agent_timeout,omitempty"`
	// StopTimeout and StartTimeout bound each node's stop and start
	// (defaults 3m and 5m).
	StopTimeout  Duration `yaml:"stop_timeout,omitempty" json:"stop_timeout,omitempty"`
	StartTimeout Duration `yaml:"start_timeout,omitempty" json:"start_timeout,omitempty"`
	// HealthyTimeout bounds the wait for every broker registered and no
	// partition offline or under-replicated (default 10m).
	HealthyTimeout Duration `yaml:"healthy_timeout,omitempty" json:"healthy_timeout,omitempty"`
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
	o := &r.Options
	if o.AgentTimeout == 0 {
		o.AgentTimeout = DefaultAgentTimeout
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.HealthyTimeout == 0 {
		o.HealthyTimeout = DefaultHealthyTimeout
	}
}

// Validate checks everything that can be checked without the network.
func (r *KRaftRestore) Validate() error {
	if err := r.Cluster.Validate("cluster"); err != nil {
		return err
	}
	if r.Cluster.ZooKeeper != nil {
		return fieldErr("cluster.zookeeper", "a KRaft metadata restore is for KRaft clusters (for a ZooKeeper-mode cluster use kbr restore metadata)")
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
	if len(r.Nodes) == 0 {
		return fieldErr("nodes", "required: every node of the cluster (controllers, brokers, combined) with its agent's host name ({id: 1, host: kraft1})")
	}
	if err := validateHosts("nodes", r.Nodes, "node.id"); err != nil {
		return err
	}
	if err := backupset.ValidTaskName(r.SafetyBackup.Task); err != nil {
		return fieldErr("safety_backup.task", "%v", err)
	}
	o := r.Options
	for _, d := range []struct {
		name string
		v    Duration
	}{{"agent_timeout", o.AgentTimeout}, {"stop_timeout", o.StopTimeout}, {"start_timeout", o.StartTimeout}, {"healthy_timeout", o.HealthyTimeout}} {
		if d.v.D() < time.Second {
			return fieldErr("options."+d.name, "%s: want at least 1s", d.v.D())
		}
	}
	return nil
}
