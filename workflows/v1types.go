package workflows

// The inputs and results of the activities of the data path before format
// 2, as their runs recorded them: backupV1 and restoreV1 decode histories
// into these. Nothing new uses them.

import (
	"time"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/storage"
)

// v1TopicRef is a topic chosen for backup.
type v1TopicRef struct {
	Name       string `json:"name"`
	ID         string `json:"id,omitempty"`
	Partitions int32  `json:"partitions"`
}

// v1PreflightReport is what the read-only checks found; it is shown before
// anything is written.
type v1PreflightReport struct {
	ClusterID         string        `json:"cluster_id"`
	KafkaVersion      string        `json:"kafka_version"`
	Mode              string        `json:"mode"` // zookeeper | kraft
	Brokers           int           `json:"brokers"`
	Topics            []v1TopicRef  `json:"topics"`
	Partitions        int           `json:"partitions"`
	EstimatedBytes    int64         `json:"estimated_bytes"`
	EstimatedDuration time.Duration `json:"estimated_duration"`
	StagingFree       int64         `json:"staging_free"` // -1: unknown
	TargetFree        int64         `json:"target_free"`  // -1: the target cannot tell
	ZnodeCount        int           `json:"znode_count,omitempty"`
	OpenFileLimit     uint64        `json:"open_file_limit,omitempty"`
	FileMax           uint64        `json:"file_max,omitempty"`
	TaskDir           string        `json:"task_dir"`
	// ExecutedAt is the run's execution time: the one asked for, or one
	// second after the newest name already in the task folder.
	ExecutedAt time.Time `json:"executed_at"`
	Warnings   []string  `json:"warnings,omitempty"`
}

// v1CutInput asks for the consistent cut of the chosen topics.
type v1CutInput struct {
	Cluster config.Cluster `json:"cluster"`
	Topics  []v1TopicRef   `json:"topics"`
	// Base, for an incremental run, is the previous recovery point on Target.
	Target storage.Target `json:"target,omitempty"`
	Base   string         `json:"base,omitempty"`
}

// v1PartitionRange is one partition's range to export, [Start, End).
type v1PartitionRange struct {
	Topic     string `json:"topic"`
	TopicID   string `json:"topic_id,omitempty"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	// Incremental ranges start at the base's end offset; LogStart is then the
	// partition's log start offset at the cut. FullReason says why a
	// partition of an incremental run is copied whole.
	Incremental bool   `json:"incremental,omitempty"`
	LogStart    int64  `json:"log_start,omitempty"`
	FullReason  string `json:"full_reason,omitempty"`
}

// v1ExportInput is one partition to export.
type v1ExportInput struct {
	Cluster config.Cluster       `json:"cluster"`
	Target  storage.Target       `json:"target"`
	Options config.BackupOptions `json:"options"`
	Dir     string               `json:"dir"` // the run's topic-data folder
	Range   v1PartitionRange     `json:"range"`
}

// v1ExportProgress is heartbeated after every durable segment and returned at
// the end; a retried attempt resumes at NextOffset with Segments kept.
type v1ExportProgress struct {
	Topic      string                  `json:"topic"`
	Partition  int32                   `json:"partition"`
	NextOffset int64                   `json:"next_offset"`
	EndOffset  int64                   `json:"end_offset"`
	Segments   []backupset.SegmentInfo `json:"segments"`
	Gaps       []backupset.OffsetRange `json:"gaps,omitempty"`
	Records    int64                   `json:"records"` // including the open segment, for progress
	Bytes      int64                   `json:"bytes"`
	Attempt    int32                   `json:"attempt"`
}

// v1ManifestInput is the finished recovery point.
type v1ManifestInput struct {
	Target   storage.Target      `json:"target"`
	Manifest *backupset.Manifest `json:"manifest"`
}

// v1PrepareInput is a restore about to write.
type v1PrepareInput struct {
	Config   config.Restore `json:"config"`
	Manifest string         `json:"manifest"`
}

// v1PartitionPlan is one partition to restore.
type v1PartitionPlan struct {
	SourceTopic string  `json:"source_topic"`
	TargetTopic string  `json:"target_topic"`
	Partition   int32   `json:"partition"`
	Base        int64   `json:"base"` // the target's end offset before the restore wrote
	Records     int64   `json:"records"`
	Translate   []int64 `json:"translate,omitempty"`
}

// v1GroupOffset is one committed source offset.
type v1GroupOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// v1RetentionReset is a topic config to put back after the restore.
type v1RetentionReset struct {
	Topic    string  `json:"topic"`
	Original *string `json:"original"` // nil: no override, delete ours
}

// v1PrepareResult is the restore's plan, fixed before any record is written.
type v1PrepareResult struct {
	Topics     []kmeta.TopicResult `json:"topics"`
	Plans      []kmeta.TopicPlan   `json:"plans"`
	Partitions []v1PartitionPlan   `json:"partitions"`
	Retention  []v1RetentionReset  `json:"retention"`
	// GroupOffsets is each group's committed source offsets, restored topics only.
	GroupOffsets map[string][]v1GroupOffset `json:"group_offsets,omitempty"`
	Warnings     []string                   `json:"warnings,omitempty"`
}

// v1RestorePartitionInput is one partition to restore.
type v1RestorePartitionInput struct {
	Config   config.Restore  `json:"config"`
	Manifest string          `json:"manifest"`
	Plan     v1PartitionPlan `json:"plan"`
}

// v1RestorePartitionResult is a restored partition.
type v1RestorePartitionResult struct {
	Plan       v1PartitionPlan  `json:"plan"`
	Records    int64            `json:"records"`
	Produced   int64            `json:"produced"`
	Skipped    int64            `json:"skipped"`
	EndOffset  int64            `json:"end_offset"`
	Translated map[string]int64 `json:"translated"` // source offset (decimal) -> target offset
}

// v1GroupCommitInput is the translated offsets of every group.
type v1GroupCommitInput struct {
	Config   config.Restore                        `json:"config"`
	Manifest string                                `json:"manifest"`
	Offsets  map[string]map[string]map[int32]int64 `json:"offsets"` // group -> target topic -> partition -> offset
}

// v1GroupCommitResult reports committed groups.
type v1GroupCommitResult struct {
	Committed []string          `json:"committed"`
	Failed    map[string]string `json:"failed,omitempty"`
}

// v1FinishInput puts topic configs back.
type v1FinishInput struct {
	Config    config.Restore     `json:"config"`
	Retention []v1RetentionReset `json:"retention"`
}
