// Package names holds every name that crosses a process boundary: task
// queues, workflow types, signals, queries, memo and search-attribute keys,
// run kinds, statuses and the error types workflows and the CLI tell apart.
// They are persisted in histories, schedules and visibility, or sent between
// processes, so each is spelled once, here. It imports nothing of kbr.
package names

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// TaskQueue is where kbr workers poll.
const TaskQueue = "kbr"

// AgentTaskQueue is the task queue of the `kbr agent` on a broker host.
func AgentTaskQueue(host string) string { return "kbr-agent-" + host }

// Workflow type names, as the temporal CLI and the Web UI show them.
const (
	BackupWorkflow          = "BackupWorkflow"
	RestoreWorkflow         = "RestoreWorkflow"
	MetadataRestoreWorkflow = "MetadataRestoreWorkflow"
	KRaftRestoreWorkflow    = "KRaftMetadataRestoreWorkflow" // a KRaft cluster's metadata log
	LogicalRestoreWorkflow  = "LogicalRestoreWorkflow"
	SchemasRestoreWorkflow  = "SchemasRestoreWorkflow"
	VerifyWorkflow          = "VerifyWorkflow"
	CheckTaskWorkflow       = "CheckTaskWorkflow"
	ClusterLockWorkflow     = "ClusterLockWorkflow"
	// ExportWorkflow and ImportWorkflow are the children a backup or a
	// restore runs over a window of work units, so that no history grows
	// with the partition count.
	ExportWorkflow = "ExportWorkflow"
	ImportWorkflow = "ImportWorkflow"
)

// Queries.
const (
	QueryProgress  = "progress"
	QueryLockState = "lock-state"
)

// Signals of the cluster lock.
const (
	SignalLockAcquire = "kbr-lock-acquire"
	SignalLockRelease = "kbr-lock-release"
	SignalLockReply   = "kbr-lock-reply"
)

// LockWorkflowID is the id of a cluster's lock workflow.
func LockWorkflowID(cluster string) string { return lockPrefix + cluster }

// LockCluster is the cluster of a lock workflow's id ("" if it is none).
func LockCluster(workflowID string) string {
	if len(workflowID) <= len(lockPrefix) || workflowID[:len(lockPrefix)] != lockPrefix {
		return ""
	}
	return workflowID[len(lockPrefix):]
}

const lockPrefix = "kbr-lock-"

// Memo keys. They are read back from ended runs (history, retry), so their
// spellings stay as first written.
const (
	// MemoHistory is what `kbr task history` lists of a finished backup.
	MemoHistory = "kbr_history"
	// MemoResume is what a failed metadata restore completed.
	MemoResume = "kbr-resume"
	// MemoRestorePlan is the plan a data restore retries with.
	MemoRestorePlan = "kbr_restore_plan"
)

// Search attribute names.
const (
	AttrCluster       = "KbrCluster"
	AttrTask          = "KbrTask"
	AttrKind          = "KbrKind"
	AttrStatus        = "KbrStatus"
	AttrRecoveryPoint = "KbrRecoveryPoint"
)

// Search attribute keys every run carries, so the Web UI finds runs by
// cluster, task, kind and status.
var (
	SACluster       = temporal.NewSearchAttributeKeyKeyword(AttrCluster)
	SATask          = temporal.NewSearchAttributeKeyKeyword(AttrTask)
	SAKind          = temporal.NewSearchAttributeKeyKeyword(AttrKind)
	SAStatus        = temporal.NewSearchAttributeKeyKeyword(AttrStatus)
	SARecoveryPoint = temporal.NewSearchAttributeKeyKeyword(AttrRecoveryPoint)
)

// Run kinds, the values of KbrKind.
const (
	KindBackup          = "backup"
	KindRestore         = "restore"
	KindMetadataRestore = "metadata-restore"
	KindKRaftRestore    = "kraft-metadata-restore"
	KindLogicalRestore  = "logical-restore"
	KindSchemasRestore  = "schemas-restore"
	KindVerify          = "verify"
	KindLock            = "lock"
	KindCheckTask       = "check-task"
	// KindExport and KindImport are the child runs of a backup and a restore.
	KindExport = "export"
	KindImport = "import"
)

// KindOf is the run kind of a workflow type ("" for a type kbr does not
// know), for the metrics a workflow emits about itself.
func KindOf(workflowType string) string {
	switch workflowType {
	case BackupWorkflow:
		return KindBackup
	case RestoreWorkflow:
		return KindRestore
	case MetadataRestoreWorkflow:
		return KindMetadataRestore
	case KRaftRestoreWorkflow:
		return KindKRaftRestore
	case LogicalRestoreWorkflow:
		return KindLogicalRestore
	case SchemasRestoreWorkflow:
		return KindSchemasRestore
	case VerifyWorkflow:
		return KindVerify
	case ClusterLockWorkflow:
		return KindLock
	case CheckTaskWorkflow:
		return KindCheckTask
	case ExportWorkflow:
		return KindExport
	case ImportWorkflow:
		return KindImport
	}
	return ""
}

// Statuses, the values of KbrStatus.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	// StatusRecordsLost is a backup that completed but could not read some
	// records of its cut: retention deleted them first. It is not a success.
	StatusRecordsLost = "records-lost"
)

// Error types of ApplicationErrors that workflows and the CLI tell apart.
const (
	ErrPreflight     = "PreflightFailed"
	ErrBadInput      = "BadInput"
	ErrStorage       = "StoragePermanent"
	ErrTopicGone     = "TopicGone"
	ErrChecksum      = "ChecksumMismatch"
	ErrForeignWrites = "ForeignWrites"
	ErrNonEmpty      = "TargetNotEmpty"
	ErrClusterBusy   = "ClusterBusy"
	ErrStepFailed    = "StepFailed"
	ErrCommand       = "CommandFailed"
	ErrWrongHost     = "WrongHost"
	ErrRecordsLost   = "RecordsLost"
	// ErrRegistryRefused is a Schema Registry that refused kbr's
	// credentials or the request itself (4xx): retrying gives the same.
	ErrRegistryRefused = "SchemaRegistryRefused"
	// ErrRetired fails an activity of a data path that no longer exists.
	ErrRetired = "Retired"
)

// SignalUnitDone is what a child of a backup or a restore sends its parent
// after each work unit, for the parent's progress.
const SignalUnitDone = "kbr-unit-done"

// ChildID is the workflow id of a backup's or a restore's k-th child.
func ChildID(parent, kind string, k int) string { return fmt.Sprintf("%s/%s-%d", parent, kind, k) }
