package config

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/localdir"
)

// Cluster is a Kafka cluster: the backup object of a task, or a restore's target.
type Cluster struct {
	// Name identifies the cluster in search attributes and the cluster lock.
	Name             string   `yaml:"name" json:"name"`
	BootstrapServers []string `yaml:"bootstrap_servers" json:"bootstrap_servers"`
	// ZooKeeper is set for ZooKeeper-mode clusters; its znodes are backed up.
	ZooKeeper *ZooKeeper `yaml:"zookeeper,omitempty" json:"zookeeper,omitempty"`
	TLS       *TLS       `yaml:"tls,omitempty" json:"tls,omitempty"`
	SASL      *SASL      `yaml:"sasl,omitempty" json:"sasl,omitempty"`
	// KafkaVersion overrides the version guessed from the brokers' API
	// versions; it heads every file name.
	KafkaVersion string `yaml:"kafka_version,omitempty" json:"kafka_version,omitempty"`
	// LockQueue bounds how many runs wait for this cluster while another
	// holds it (default 10); one more is refused.
	LockQueue int `yaml:"lock_queue,omitempty" json:"lock_queue,omitempty"`
	// ConnectTimeout bounds every reachability check (default 10s).
	ConnectTimeout Duration `yaml:"connect_timeout,omitempty" json:"connect_timeout,omitempty"`

	// Controllers are a KRaft cluster's controllers (and combined nodes) with
	// their agents' host names: the kraft_log data source copies their
	// metadata logs (kraft.go).
	Controllers []BrokerHost `yaml:"controllers,omitempty" json:"controllers,omitempty"`
}

// ZooKeeper locates the metadata of a ZooKeeper-mode cluster.
type ZooKeeper struct {
	Connect []string `yaml:"connect" json:"connect"`
	Chroot  string   `yaml:"chroot" json:"chroot"`
}

// TLS for the Kafka connection.
type TLS struct {
	CAFile             string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	ServerName         string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// SASL for the Kafka connection. The password is a secret reference.
type SASL struct {
	Mechanism string `yaml:"mechanism" json:"mechanism"` // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username  string `yaml:"username" json:"username"`
	Password  Secret `yaml:"password" json:"password"`
}

// TopicFilter selects topics by regular expressions (anchored).
type TopicFilter struct {
	Include         []string `yaml:"include,omitempty" json:"include,omitempty"`
	Exclude         []string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	IncludeInternal bool     `yaml:"include_internal,omitempty" json:"include_internal,omitempty"`
}

// Backup is the document of `kbr backup run -f` and the BackupWorkflow input.
type Backup struct {
	Cluster Cluster `yaml:"cluster" json:"cluster"`
	// Task names the folder "<task>_<creation time>" (default: the cluster name).
	Task string `yaml:"task,omitempty" json:"task,omitempty"`
	// DataSources: metadata, topicdata, offsets (default all three),
	// kraft_log (the controllers' metadata logs, through their agents) and
	// schemas (the Schema Registry).
	DataSources []string       `yaml:"data_sources,omitempty" json:"data_sources,omitempty"`
	Topics      TopicFilter    `yaml:"topics,omitempty" json:"topics,omitempty"`
	Target      storage.Target `yaml:"target" json:"target"`
	Options     BackupOptions  `yaml:"options,omitempty" json:"options,omitempty"`
	// Policy: full (default: full every time), incremental (full first, then
	// incremental), or full_every_n (a full once every full_every runs, the
	// others incremental). Metadata and offsets are always full.
	Policy    string `yaml:"policy,omitempty" json:"policy,omitempty"`
	FullEvery int    `yaml:"full_every,omitempty" json:"full_every,omitempty"`
	// MaxCopies keeps at most this many recovery points of the task after a
	// successful run (0: keep all); a full that a kept incremental needs is kept.
	MaxCopies int `yaml:"max_copies,omitempty" json:"max_copies,omitempty"`
	// TaskCreated is the task's creation time, which names its folder; set
	// by `kbr task`. Without it a run reuses the task's newest folder.
	TaskCreated *time.Time `yaml:"task_created,omitempty" json:"task_created,omitempty"`
	// SchemaRegistry is the registry of the schemas data source (schemas.go).
	SchemaRegistry *SchemaRegistry `yaml:"schema_registry,omitempty" json:"schema_registry,omitempty"`
}

// Backup policies.
const (
	PolicyFull        = backupset.PolicyFull
	PolicyIncremental = backupset.PolicyIncremental
	PolicyFullEveryN  = backupset.PolicyFullEveryN
)

// BackupOptions tune a backup run.
type BackupOptions struct {
	// Parallelism is how many work units export at once (default 4).
	Parallelism int `yaml:"parallelism,omitempty" json:"parallelism,omitempty"`
	// SegmentBytes rolls a unit's pack file at about this size, and so
	// checkpoints its progress (default 64MiB).
	SegmentBytes ByteSize `yaml:"segment_bytes,omitempty" json:"segment_bytes,omitempty"`
	// Compression of the stored batches: none (default: the batches as the
	// brokers keep them, with the producers' compression) or zstd (each
	// chunk compressed again; smaller files, more CPU).
	Compression string `yaml:"compression,omitempty" json:"compression,omitempty"`
	// UnitBytes and UnitPartitions bound a work unit: the partitions one
	// activity reads, led by one broker (defaults 1GiB and 1000).
	UnitBytes      ByteSize `yaml:"unit_bytes,omitempty" json:"unit_bytes,omitempty"`
	UnitPartitions int      `yaml:"unit_partitions,omitempty" json:"unit_partitions,omitempty"`
	// FailOnLostRecords fails a backup that found records of its cut
	// deleted by retention before it could read them, instead of
	// completing it with the status records-lost.
	FailOnLostRecords bool `yaml:"fail_on_lost_records,omitempty" json:"fail_on_lost_records,omitempty"`
	// FetchPartitionBytes bounds one partition's share of a fetch (default 4MiB).
	FetchPartitionBytes ByteSize `yaml:"fetch_partition_bytes,omitempty" json:"fetch_partition_bytes,omitempty"`
	// MinFreeBytes is the least free space at the staging dir and target (default 20GiB, as MRS).
	MinFreeBytes *ByteSize `yaml:"min_free_bytes,omitempty" json:"min_free_bytes,omitempty"`
	// StagingDir is the worker's local scratch directory (default: the worker's temp dir).
	StagingDir string `yaml:"staging_dir,omitempty" json:"staging_dir,omitempty"`
	// Bandwidth estimates the duration in preflight (default 100MB per second).
	Bandwidth ByteSize `yaml:"bandwidth,omitempty" json:"bandwidth,omitempty"`
	// ThrottleBytesPerSecond caps each running work unit's read rate (0 = no cap).
	ThrottleBytesPerSecond ByteSize `yaml:"throttle_bytes_per_second,omitempty" json:"throttle_bytes_per_second,omitempty"`
	// FetchMaxBytes bounds one fetch response (default 16MiB); memory scales with it.
	FetchMaxBytes ByteSize `yaml:"fetch_max_bytes,omitempty" json:"fetch_max_bytes,omitempty"`
}

// Restore is the document of `kbr restore run -f` and the RestoreWorkflow input.
type Restore struct {
	// Cluster is the target cluster.
	Cluster Cluster `yaml:"cluster" json:"cluster"`
	Source  Source  `yaml:"source" json:"source"`
	// Topics to restore, by source name (default: every topic in the backup).
	Topics []string `yaml:"topics,omitempty" json:"topics,omitempty"`
	// Rename maps source to target topic names: "orders:orders_restored".
	Rename []string `yaml:"rename,omitempty" json:"rename,omitempty"`
	// AllowNonEmpty lets records be appended to a target topic that has data.
	AllowNonEmpty bool `yaml:"allow_nonempty,omitempty" json:"allow_nonempty,omitempty"`
	// SkipGroups leaves consumer-group offsets alone.
	SkipGroups bool `yaml:"skip_groups,omitempty" json:"skip_groups,omitempty"`
	// ToTime restores each partition as it was at this time: its records
	// before the first one stamped at or after it, and group offsets from the
	// newest recovery point of the chain taken at or before it.
	ToTime *time.Time `yaml:"to_time,omitempty" json:"to_time,omitempty"`
	// Resume is set by `kbr restore retry`: the plan the failed run fixed
	// (topics created, each partition's base offset), so the retry produces
	// only what has not landed. Never read from a file.
	Resume  *RestoreResume `yaml:"-" json:"resume,omitempty"`
	Options RestoreOptions `yaml:"options,omitempty" json:"options,omitempty"`
	// SchemaRegistry receives the recovery point's schemas ("restore schemas"
	// step); SchemaIDs is keep or remap (schemas.go).
	SchemaRegistry *SchemaRegistry `yaml:"schema_registry,omitempty" json:"schema_registry,omitempty"`
	SchemaIDs      string          `yaml:"schema_ids,omitempty" json:"schema_ids,omitempty"`
}

// Source is where a restore reads from.
type Source struct {
	Target storage.Target `yaml:"target" json:"target"`
	// RecoveryPoint is a manifest name relative to the target
	// ("<task>_<created>/<version>_manifest_<executed>.json") or "latest".
	RecoveryPoint string `yaml:"recovery_point" json:"recovery_point"`
	// Task narrows "latest" to one task's recovery points.
	Task string `yaml:"task,omitempty" json:"task,omitempty"`
}

// RestoreResume carries a failed restore's plan into its retry.
type RestoreResume struct {
	FromRunID string `json:"from_run_id"`
	Manifest  string `json:"manifest"`
	// Plan is the failed run's activities.PrepareResult, as JSON (runs
	// from before PlanGzip).
	Plan json.RawMessage `json:"plan,omitempty"`
	// PlanGzip is the same JSON, gzip-compressed: a plan names every
	// partition, and Temporal bounds a memo's size.
	PlanGzip []byte `json:"plan_gzip,omitempty"`
}

// SetPlan stores v as gzip-compressed JSON in PlanGzip.
//
// Workflows call it: encoding/json is deterministic (map keys sorted) and
// gzip's output is a function of its input (no time in the header);
// workflowcheck flags json for the runtime's GC start deep inside reflect.
func (r *RestoreResume) SetPlan(v any) error {
	js, err := json.Marshal(v) //workflowcheck:ignore
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(js); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	r.Plan, r.PlanGzip = nil, buf.Bytes()
	return nil
}

// DecodePlan reads the plan into v, from PlanGzip or else Plan.
func (r RestoreResume) DecodePlan(v any) error {
	js := []byte(r.Plan)
	if len(r.PlanGzip) > 0 {
		zr, err := gzip.NewReader(bytes.NewReader(r.PlanGzip))
		if err != nil {
			return fmt.Errorf("plan_gzip: %w", err)
		}
		if js, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("plan_gzip: %w", err)
		}
	}
	if len(js) == 0 {
		return errors.New("no plan")
	}
	// Deterministic, as in SetPlan.
	return json.Unmarshal(js, v) //workflowcheck:ignore
}

// RestoreOptions tune a restore run.
type RestoreOptions struct {
	Parallelism int `yaml:"parallelism,omitempty" json:"parallelism,omitempty"`
	// ProducerCompression: keep (default: the batches as backed up, with the
	// producers' compression), or none, lz4, zstd, snappy, gzip to build
	// every batch again with that codec.
	ProducerCompression    string   `yaml:"producer_compression,omitempty" json:"producer_compression,omitempty"`
	ThrottleBytesPerSecond ByteSize `yaml:"throttle_bytes_per_second,omitempty" json:"throttle_bytes_per_second,omitempty"`
	// ReplicationFactor for created topics (default: as backed up, capped at the target's broker count).
	ReplicationFactor int16 `yaml:"replication_factor,omitempty" json:"replication_factor,omitempty"`
	// UnitPartitions bounds a work unit of a restore from a format 1
	// recovery point (format 2 restores by the backup's own units; default 1000).
	UnitPartitions int `yaml:"unit_partitions,omitempty" json:"unit_partitions,omitempty"`
}

// Data sources.
const (
	SourceMetadata  = backupset.SourceMetadata
	SourceTopicData = backupset.SourceTopicData
	SourceOffsets   = backupset.SourceOffsets
	SourceKRaftLog  = backupset.SourceKRaftLog
)

// Defaults.
const (
	DefaultParallelism    = 4
	DefaultSegmentBytes   = 64 << 20
	DefaultMinFreeBytes   = 20 << 30
	DefaultBandwidth      = 100e6
	DefaultFetchMaxBytes  = 16 << 20
	DefaultFetchPartBytes = 4 << 20
	DefaultUnitBytes      = 1 << 30
	DefaultUnitPartitions = 1000
	DefaultConnectTimeout = Duration(10e9)
)

// FieldError names the field that is wrong.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// LoadBackup reads, defaults and validates a backup config file.
func LoadBackup(path string) (*Backup, error) {
	var b Backup
	if err := decodeFile(path, &b); err != nil {
		return nil, err
	}
	b.ApplyDefaults()
	absLocal(&b.Target)
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

// LoadRestore reads, defaults and validates a restore config file.
func LoadRestore(path string) (*Restore, error) {
	var r Restore
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

// decodeFile decodes YAML strictly: unknown fields and trailing documents are errors.
func decodeFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%s: the file is empty", path)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		var ie *secret.InlineError
		if errors.As(err, &ie) && ie.Field == "" {
			ie.Field = fieldAt(data, ie.Line, ie.Column)
		}
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: more than one YAML document", path)
	}
	return nil
}

// fieldAt names the field of a YAML document whose key or value starts
// at line:column ("target.password", "brokers[1].host"), or "".
func fieldAt(data []byte, line, column int) string {
	var doc yaml.Node
	if line <= 0 || yaml.Unmarshal(data, &doc) != nil {
		return ""
	}
	var find func(n *yaml.Node, path string) string
	find = func(n *yaml.Node, path string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p := find(c, path); p != "" {
					return p
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if (k.Line == line && k.Column == column) || (v.Line == line && v.Column == column && v.Kind != yaml.MappingNode) {
					return p
				}
				if v.Kind == yaml.MappingNode && v.Line == line && v.Column == column && len(v.Content) == 0 {
					return p
				}
				if q := find(v, p); q != "" {
					return q
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Line == line && c.Column == column && c.Kind != yaml.MappingNode {
					return p
				}
				if q := find(c, p); q != "" {
					return q
				}
			}
		}
		return ""
	}
	return find(&doc, "")
}

// ApplyDefaults fills what the operator left out.
func (c *Cluster) ApplyDefaults() {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ZooKeeper != nil && c.ZooKeeper.Chroot == "" {
		c.ZooKeeper.Chroot = "/"
	}
}

// Validate checks a cluster; prefix is the field path ("cluster").
func (c *Cluster) Validate(prefix string) error {
	if c.Name == "" {
		return fieldErr(prefix+".name", "required (it names the cluster in tasks, locks and search attributes)")
	}
	if len(c.BootstrapServers) == 0 {
		return fieldErr(prefix+".bootstrap_servers", "required: at least one host:port")
	}
	for i, s := range c.BootstrapServers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fieldErr(fmt.Sprintf("%s.bootstrap_servers[%d]", prefix, i), "%q is not host:port", s)
		}
	}
	if z := c.ZooKeeper; z != nil {
		if len(z.Connect) == 0 {
			return fieldErr(prefix+".zookeeper.connect", "required when zookeeper is given")
		}
		for i, s := range z.Connect {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return fieldErr(fmt.Sprintf("%s.zookeeper.connect[%d]", prefix, i), "%q is not host:port", s)
			}
		}
		if !strings.HasPrefix(z.Chroot, "/") {
			return fieldErr(prefix+".zookeeper.chroot", "%q must start with /", z.Chroot)
		}
	}
	if s := c.SASL; s != nil {
		switch strings.ToUpper(s.Mechanism) {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return fieldErr(prefix+".sasl.mechanism", "%q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
		}
		if s.Username == "" {
			return fieldErr(prefix+".sasl.username", "required")
		}
		if !s.Password.IsSet() {
			return fieldErr(prefix+".sasl.password", "required: a secret reference {env: NAME} or {file: PATH}")
		}
	}
	if c.LockQueue < 0 || c.LockQueue > 1000 {
		return fieldErr(prefix+".lock_queue", "%d: want 0..1000 (0: the default, 10)", c.LockQueue)
	}
	if c.ConnectTimeout < 0 {
		return fieldErr(prefix+".connect_timeout", "must be positive")
	}
	return nil
}

func (b *Backup) ApplyDefaults() {
	b.Cluster.ApplyDefaults()
	b.SchemaRegistry.ApplyDefaults()
	if b.Task == "" {
		b.Task = b.Cluster.Name
	}
	if len(b.DataSources) == 0 {
		b.DataSources = []string{SourceMetadata, SourceTopicData, SourceOffsets}
	}
	if b.Policy == "" {
		b.Policy = PolicyFull
	}
	o := &b.Options
	if o.Parallelism == 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.Compression == "" {
		o.Compression = backupset.CompressionNone
	}
	if o.UnitBytes == 0 {
		o.UnitBytes = DefaultUnitBytes
	}
	if o.UnitPartitions == 0 {
		o.UnitPartitions = DefaultUnitPartitions
	}
	if o.MinFreeBytes == nil {
		v := ByteSize(DefaultMinFreeBytes)
		o.MinFreeBytes = &v
	}
	if o.Bandwidth == 0 {
		o.Bandwidth = DefaultBandwidth
	}
	if o.FetchMaxBytes == 0 {
		o.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if o.FetchPartitionBytes == 0 {
		o.FetchPartitionBytes = min(DefaultFetchPartBytes, o.FetchMaxBytes)
	}
}

// Validate checks a backup config without touching anything outside it.
func (b *Backup) Validate() error {
	if err := b.Cluster.Validate("cluster"); err != nil {
		return err
	}
	if err := backupset.ValidTaskName(b.Task); err != nil {
		return fieldErr("task", "%v", err)
	}
	seen := map[string]bool{}
	for i, s := range b.DataSources {
		switch s {
		case SourceMetadata, SourceTopicData, SourceOffsets, SourceKRaftLog, SourceSchemas:
		default:
			return fieldErr(fmt.Sprintf("data_sources[%d]", i), "%q: want metadata, topicdata, offsets, kraft_log or schemas", s)
		}
		if seen[s] {
			return fieldErr(fmt.Sprintf("data_sources[%d]", i), "%q given twice", s)
		}
		seen[s] = true
	}
	if err := b.validateKRaftLog(); err != nil {
		return err
	}
	if _, err := b.Topics.Compile(); err != nil {
		return err
	}
	if err := b.validateSchemas(); err != nil {
		return err
	}
	switch b.Policy {
	case PolicyFull, PolicyIncremental:
		if b.FullEvery != 0 {
			return fieldErr("full_every", "only with policy %s", PolicyFullEveryN)
		}
	case PolicyFullEveryN:
		if b.FullEvery < 2 || b.FullEvery > 1000 {
			return fieldErr("full_every", "%d: want 2..1000 (a full once every n runs)", b.FullEvery)
		}
	default:
		return fieldErr("policy", "%q: want full, incremental or full_every_n", b.Policy)
	}
	if b.MaxCopies < 0 || b.MaxCopies > 10000 {
		return fieldErr("max_copies", "%d: want 1..10000 (0: keep all)", b.MaxCopies)
	}
	if err := ValidateTarget("target", b.Target); err != nil {
		return err
	}
	o := b.Options
	switch {
	case o.Parallelism < 1 || o.Parallelism > 256:
		return fieldErr("options.parallelism", "%d: want 1..256", o.Parallelism)
	case o.SegmentBytes < 1<<20:
		return fieldErr("options.segment_bytes", "%v: want at least 1MiB", o.SegmentBytes)
	case o.Compression != backupset.CompressionZstd && o.Compression != backupset.CompressionNone:
		return fieldErr("options.compression", "%q: want zstd or none", o.Compression)
	case *o.MinFreeBytes < 0:
		return fieldErr("options.min_free_bytes", "must not be negative")
	case o.FetchMaxBytes < 64<<10 || o.FetchMaxBytes > 1<<30:
		return fieldErr("options.fetch_max_bytes", "%v: want 64KiB..1GiB", o.FetchMaxBytes)
	case o.FetchPartitionBytes < 1<<10 || o.FetchPartitionBytes > o.FetchMaxBytes:
		return fieldErr("options.fetch_partition_bytes", "%v: want 1KiB..fetch_max_bytes (%v)", o.FetchPartitionBytes, o.FetchMaxBytes)
	case o.UnitBytes < 1<<20:
		return fieldErr("options.unit_bytes", "%v: want at least 1MiB", o.UnitBytes)
	case o.UnitPartitions < 1 || o.UnitPartitions > 10000:
		return fieldErr("options.unit_partitions", "%d: want 1..10000", o.UnitPartitions)
	case o.Bandwidth <= 0:
		return fieldErr("options.bandwidth", "must be positive")
	case o.ThrottleBytesPerSecond < 0:
		return fieldErr("options.throttle_bytes_per_second", "must not be negative (0: no cap)")
	}
	return nil
}

// Has reports whether a data source is selected.
func (b *Backup) Has(source string) bool {
	for _, s := range b.DataSources {
		if s == source {
			return true
		}
	}
	return false
}

// targets is the registry ValidateTarget checks path types against (see
// UseStorage).
var targets atomic.Pointer[storage.Registry]

// UseStorage gives ValidateTarget the path types it knows and their
// parameter checks: cmd/kbr calls it once at start with the registry it
// opens targets with (storage/all.Registry()), tests with theirs. Until it
// is called a target needs a type and a path and nothing more is checked:
// workflow code validates its input again but links no storage backend, and
// the worker process that runs it has called UseStorage first.
func UseStorage(r *storage.Registry) { targets.Store(r) }

// ValidateTarget checks the fields a path type needs.
func ValidateTarget(field string, t storage.Target) error {
	reg := targets.Load()
	if t.Type == "" {
		if reg == nil {
			return fieldErr(field+".type", "required")
		}
		return fieldErr(field+".type", "required (%s)", strings.Join(reg.Types(), ", "))
	}
	if reg != nil {
		if _, known := reg.Lookup(t.Type); !known {
			return fieldErr(field+".type", "unknown path type %q (known: %s)", t.Type, strings.Join(reg.Types(), ", "))
		}
	}
	if t.Path == "" {
		return fieldErr(field+".path", "required")
	}
	if reg == nil {
		return nil
	}
	if err := reg.Validate(t); err != nil {
		var pe *storage.ParamError
		if errors.As(err, &pe) {
			// Validators name fields as in a backup config ("target.server").
			return fieldErr(field+"."+strings.TrimPrefix(pe.Param, "target."), "%s", pe.Msg)
		}
		return fieldErr(field, "%v", err)
	}
	return nil
}

// Compile turns the filter into a predicate.
func (f TopicFilter) Compile() (func(string) bool, error) {
	compile := func(field string, pats []string) ([]*regexp.Regexp, error) {
		var out []*regexp.Regexp
		for i, p := range pats {
			re, err := regexp.Compile("^(?:" + p + ")$")
			if err != nil {
				return nil, fieldErr(fmt.Sprintf("topics.%s[%d]", field, i), "%q is not a regular expression: %v", p, err)
			}
			out = append(out, re)
		}
		return out, nil
	}
	inc, err := compile("include", f.Include)
	if err != nil {
		return nil, err
	}
	exc, err := compile("exclude", f.Exclude)
	if err != nil {
		return nil, err
	}
	named := map[string]bool{} // internal topics an include names literally
	for _, p := range f.Include {
		named[p] = regexp.QuoteMeta(p) == p
	}
	return func(topic string) bool {
		if !f.IncludeInternal && (strings.HasPrefix(topic, "__") || topic == "_schemas") && !named[topic] {
			return false
		}
		ok := len(inc) == 0
		for _, re := range inc {
			if re.MatchString(topic) {
				ok = true
				break
			}
		}
		for _, re := range exc {
			if re.MatchString(topic) {
				return false
			}
		}
		return ok
	}, nil
}

func (r *Restore) ApplyDefaults() {
	r.Cluster.ApplyDefaults()
	r.SchemaRegistry.ApplyDefaults()
	if r.Options.Parallelism == 0 {
		r.Options.Parallelism = DefaultParallelism
	}
	if r.Options.ProducerCompression == "" {
		r.Options.ProducerCompression = "keep"
	}
	if r.Options.UnitPartitions == 0 {
		r.Options.UnitPartitions = DefaultUnitPartitions
	}
}

// Validate checks a restore config without touching anything outside it.
func (r *Restore) Validate() error {
	if err := r.Cluster.Validate("cluster"); err != nil {
		return err
	}
	if err := validateRestoreSource(r.Source); err != nil {
		return err
	}
	if err := r.validateSchemasAndRename(); err != nil {
		return err
	}
	o := r.Options
	if o.Parallelism < 1 || o.Parallelism > 256 {
		return fieldErr("options.parallelism", "%d: want 1..256", o.Parallelism)
	}
	switch o.ProducerCompression {
	case "keep", "none", "lz4", "zstd", "snappy", "gzip":
	default:
		return fieldErr("options.producer_compression", "%q: want keep, none, lz4, zstd, snappy or gzip", o.ProducerCompression)
	}
	if o.ReplicationFactor < 0 {
		return fieldErr("options.replication_factor", "must not be negative")
	}
	if o.ThrottleBytesPerSecond < 0 {
		return fieldErr("options.throttle_bytes_per_second", "must not be negative (0: no cap)")
	}
	return nil
}

var topicNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// RenameMap parses the src:dst pairs.
func (r *Restore) RenameMap() (map[string]string, error) {
	m := map[string]string{}
	dsts := map[string]string{}
	for i, p := range r.Rename {
		src, dst, ok := strings.Cut(p, ":")
		field := fmt.Sprintf("rename[%d]", i)
		if !ok || !topicNameRE.MatchString(src) || !topicNameRE.MatchString(dst) {
			return nil, fieldErr(field, "%q: want source:target with valid topic names", p)
		}
		if _, dup := m[src]; dup {
			return nil, fieldErr(field, "topic %q renamed twice", src)
		}
		if other, dup := dsts[dst]; dup {
			return nil, fieldErr(field, "topics %q and %q both renamed to %q", other, src, dst)
		}
		m[src], dsts[dst] = dst, src
	}
	return m, nil
}

// absLocal makes a relative LocalDir path absolute against the directory the
// command runs in, which is what the operator means; the worker may run
// elsewhere.
func absLocal(t *storage.Target) {
	if strings.EqualFold(t.Type, localdir.Type) && t.Path != "" {
		if p, err := filepath.Abs(t.Path); err == nil {
			t.Path = p
		}
	}
}
