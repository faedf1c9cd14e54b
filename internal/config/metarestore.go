package config

import (
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/kbr-project/kbr/internal/backupset"
)

// MetadataRestore is the document of `kbr restore metadata -f` and the
// input of MetadataRestoreWorkflow: the MRS metadata restore of a
// ZooKeeper-mode cluster, run on the brokers' hosts through their agents.
type MetadataRestore struct {
	// Cluster is the cluster to restore; cluster.zookeeper is required.
	Cluster Cluster `yaml:"cluster" json:"cluster"`
	// Source is the recovery point whose metadata is restored.
	Source Source `yaml:"source" json:"source"`
	// Brokers lists every broker of the cluster with the host name its
	// agent runs under (`kbr agent --host NAME`).
	Brokers []BrokerHost `yaml:"brokers" json:"brokers"`
	// SafetyBackup is the metadata backup of the current state taken
	// before anything is changed.
	SafetyBackup SafetyBackup       `yaml:"safety_backup,omitempty" json:"safety_backup,omitempty"`
	Options      MetaRestoreOptions `yaml:"options,omitempty" json:"options,omitempty"`
}

// BrokerHost is one broker and the agent that runs its host-local steps.
type BrokerHost struct {
	// ID is the broker.id.
	ID int32 `yaml:"id" json:"id"`
	// Host is the agent's --host name; its task queue is kbr-agent-<host>.
	Host string `yaml:"host" json:"host"`
}

// SafetyBackup is where the pre-restore metadata backup goes.
type SafetyBackup struct {
	// Task names its folder on the source's target (default
	// "<cluster>-before-restore").
	Task string `yaml:"task,omitempty" json:"task,omitempty"`
}

// MetaRestoreOptions tune a metadata restore.
type MetaRestoreOptions struct {
	// BatchSize is the most znode operations in one ZooKeeper multi (default 500).
	BatchSize      int `yaml:"batch_size,omitempty" json:"batch_size,omitempty"`
	HostOpsOptions `yaml:",inline"`
}

// HostOpsOptions bound the host-local steps of a metadata restore (the
// ZooKeeper and the KRaft one), which the agents run.
type HostOpsOptions struct {
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

func (o *HostOpsOptions) applyDefaults() {
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

func (o HostOpsOptions) validate() error {
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

// validateRestoreSource checks the recovery point a metadata restore reads.
func validateRestoreSource(src Source) error {
	if err := ValidateTarget("source.target", src.Target); err != nil {
		return err
	}
	if src.RecoveryPoint == "" {
		return fieldErr("source.recovery_point", `required: a manifest name (see "kbr backups list") or "latest"`)
	}
	if src.RecoveryPoint != "latest" {
		if _, _, _, ok := backupset.ParseManifestName(src.RecoveryPoint); !ok {
			return fieldErr("source.recovery_point", "%q is not <task>_<created>/<version>_manifest_<executed>.json", src.RecoveryPoint)
		}
	}
	return nil
}

// validateHosts checks a list of nodes and their agents' host names: each
// id (what: broker.id, node.id) and each host once; noun names one node.
func validateHosts(field string, hs []BrokerHost, what, noun string) error {
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
			return fieldErr(f+".host", "required: the name the %s's agent runs under (kbr agent --host NAME)", noun)
		}
		if !HostNameRE.MatchString(b.Host) {
			return fieldErr(f+".host", "%q: use letters, digits, '.', '_' or '-'", b.Host)
		}
		if j, dup := hosts[b.Host]; dup {
			return fieldErr(f+".host", "%q is also %s[%d].host: run one agent per %s", b.Host, field, j, noun)
		}
		hosts[b.Host] = i
	}
	return nil
}

// Defaults of a metadata restore.
const (
	DefaultZKBatchSize    = 500
	DefaultAgentTimeout   = Duration(15 * time.Second)
	DefaultStopTimeout    = Duration(3 * time.Minute)
	DefaultStartTimeout   = Duration(5 * time.Minute)
	DefaultHealthyTimeout = Duration(10 * time.Minute)
)

// HostNameRE is what an agent's host name may look like: it becomes part
// of a task queue name.
var HostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// LoadMetadataRestore reads, defaults and validates a metadata restore file.
func LoadMetadataRestore(path string) (*MetadataRestore, error) {
	var r MetadataRestore
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
func (r *MetadataRestore) ApplyDefaults() {
	r.Cluster.ApplyDefaults()
	if r.SafetyBackup.Task == "" && r.Cluster.Name != "" {
		r.SafetyBackup.Task = r.Cluster.Name + "-before-restore"
	}
	o := &r.Options
	if o.BatchSize == 0 {
		o.BatchSize = DefaultZKBatchSize
	}
	o.applyDefaults()
}

// Validate checks everything that can be checked without the network.
func (r *MetadataRestore) Validate() error {
	if err := r.Cluster.Validate("cluster"); err != nil {
		return err
	}
	if r.Cluster.ZooKeeper == nil {
		return fieldErr("cluster.zookeeper", "required: the metadata restore writes the znodes of a ZooKeeper-mode cluster (for KRaft clusters use the logical metadata restore)")
	}
	if err := validateRestoreSource(r.Source); err != nil {
		return err
	}
	if len(r.Brokers) == 0 {
		return fieldErr("brokers", "required: every broker of the cluster with its agent's host name ({id: 1, host: broker1})")
	}
	if err := validateHosts("brokers", r.Brokers, "broker.id", "broker"); err != nil {
		return err
	}
	if err := backupset.ValidTaskName(r.SafetyBackup.Task); err != nil {
		return fieldErr("safety_backup.task", "%v", err)
	}
	o := r.Options
	if o.BatchSize < 1 || o.BatchSize > 10000 {
		return fieldErr("options.batch_size", "%d: want 1..10000", o.BatchSize)
	}
	return o.validate()
}

// Agent is the per-host configuration of `kbr agent` (flags or a YAML file).
type Agent struct {
	// Host is the name brokers[].host refers to.
	Host string `yaml:"host" json:"host"`
	// ServerProperties is the broker's server.properties (log.dirs is read from it).
	ServerProperties string `yaml:"server_properties" json:"server_properties"`
	// StopCommand and StartCommand stop and start the broker (default:
	// systemctl stop|start kafka); any shell command.
	StopCommand  string `yaml:"stop_command,omitempty" json:"stop_command,omitempty"`
	StartCommand string `yaml:"start_command,omitempty" json:"start_command,omitempty"`
	// Listener is the broker's host:port; it answers while the broker runs
	// (default 127.0.0.1:9092).
	Listener string `yaml:"listener,omitempty" json:"listener,omitempty"`
	// KafkaLibs is the broker's libs directory; the Kafka version is read
	// from its jar names (the preflight compares it with the backup's).
	KafkaLibs string `yaml:"kafka_libs,omitempty" json:"kafka_libs,omitempty"`
	// KafkaVersion states the installed Kafka version where KafkaLibs
	// cannot tell it.
	KafkaVersion string `yaml:"kafka_version,omitempty" json:"kafka_version,omitempty"`
}

// LoadAgent reads an agent's YAML file strictly.
func LoadAgent(path string) (*Agent, error) {
	var a Agent
	if err := decodeFile(path, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// ApplyDefaults fills what the operator left out.
func (a *Agent) ApplyDefaults() {
	if a.Listener == "" {
		a.Listener = "127.0.0.1:9092"
	}
}

// Validate checks an agent's configuration.
func (a *Agent) Validate() error {
	if a.Host == "" {
		return fieldErr("host", "required: the name brokers[].host of a metadata restore refers to")
	}
	if !HostNameRE.MatchString(a.Host) {
		return fieldErr("host", "%q: use letters, digits, '.', '_' or '-'", a.Host)
	}
	if a.ServerProperties == "" {
		return fieldErr("server_properties", "required: the broker's server.properties (log.dirs is read from it)")
	}
	if _, _, err := net.SplitHostPort(a.Listener); err != nil {
		return fieldErr("listener", "%q is not host:port", a.Listener)
	}
	return nil
}
