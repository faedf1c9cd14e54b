// Package workflows holds kbr's workflows: thin, deterministic sequences of
// the MRS steps, with every bit of I/O in activities.
package workflows

import (
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/activities"
)

// TaskQueue is where kbr workers poll.
const TaskQueue = "kbr"

// QueryProgress returns a workflow's Progress.
const QueryProgress = "progress"

// Workflow type names, as the temporal CLI and Web UI show them.
const (
	BackupWorkflowName  = "BackupWorkflow"
	RestoreWorkflowName = "RestoreWorkflow"
	// MetadataRestoreWorkflowName restores a ZooKeeper-mode cluster's znodes the MRS way.
	MetadataRestoreWorkflowName = "MetadataRestoreWorkflow"
	// LogicalRestoreWorkflowName restores a recovery point's logical metadata through the Admin API.
	LogicalRestoreWorkflowName = "LogicalRestoreWorkflow"
)

// Search attributes every run carries, so the Web UI finds runs by cluster,
// task, kind and status.
var (
	SACluster       = temporal.NewSearchAttributeKeyKeyword("KbrCluster")
	SATask          = temporal.NewSearchAttributeKeyKeyword("KbrTask")
	SAKind          = temporal.NewSearchAttributeKeyKeyword(activities.SearchAttrKind)
	SAStatus        = temporal.NewSearchAttributeKeyKeyword("KbrStatus")
	SARecoveryPoint = temporal.NewSearchAttributeKeyKeyword(activities.SearchAttrRecoveryPoint)
)

// Statuses.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)
