// Package workers registers kbr's workflows and activities on a Temporal worker.
package workers

import (
	"log/slog"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/metrics"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/workflows"
)

// Options tune a worker.
type Options struct {
	// MaxConcurrentActivities bounds the activities this worker runs at once
	// (default 32); each partition export or restore is one activity.
	MaxConcurrentActivities int
	// RestoreBufferBytes: activities.Activities.RestoreBufferBytes.
	RestoreBufferBytes int64
	Logger             *slog.Logger
	// Storage opens backup targets: storage/all.Registry() in the binary.
	Storage *storage.Registry
}

// Register adds every kbr workflow and activity to w.
func Register(w worker.Registry, acts *activities.Activities) {
	w.RegisterWorkflowWithOptions(workflows.BackupWorkflow, workflow.RegisterOptions{Name: names.BackupWorkflow})
	w.RegisterWorkflowWithOptions(workflows.RestoreWorkflow, workflow.RegisterOptions{Name: names.RestoreWorkflow})
	w.RegisterWorkflowWithOptions(workflows.ClusterLockWorkflow, workflow.RegisterOptions{Name: names.ClusterLockWorkflow})
	w.RegisterWorkflowWithOptions(workflows.VerifyWorkflow, workflow.RegisterOptions{Name: names.VerifyWorkflow})
	w.RegisterWorkflowWithOptions(workflows.CheckTaskWorkflow, workflow.RegisterOptions{Name: names.CheckTaskWorkflow})
	w.RegisterWorkflowWithOptions(workflows.MetadataRestoreWorkflow, workflow.RegisterOptions{Name: names.MetadataRestoreWorkflow})
	w.RegisterWorkflowWithOptions(workflows.KRaftRestoreWorkflow, workflow.RegisterOptions{Name: names.KRaftRestoreWorkflow})
	w.RegisterWorkflowWithOptions(workflows.LogicalRestoreWorkflow, workflow.RegisterOptions{Name: names.LogicalRestoreWorkflow})
	w.RegisterWorkflowWithOptions(workflows.SchemasRestoreWorkflow, workflow.RegisterOptions{Name: names.SchemasRestoreWorkflow})
	w.RegisterWorkflowWithOptions(workflows.ExportWorkflow, workflow.RegisterOptions{Name: names.ExportWorkflow})
	w.RegisterWorkflowWithOptions(workflows.ImportWorkflow, workflow.RegisterOptions{Name: names.ImportWorkflow})
	w.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}

// New returns a worker on kbr's task queue, not yet started.
func New(c client.Client, o Options) worker.Worker {
	if o.MaxConcurrentActivities == 0 {
		o.MaxConcurrentActivities = 32
	}
	w := worker.New(c, names.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentActivities,
		Interceptors:                       interceptors(),
	})
	Register(w, &activities.Activities{Logger: o.Logger, Temporal: c, TaskQueue: names.TaskQueue, Storage: o.Storage, RestoreBufferBytes: o.RestoreBufferBytes})
	return w
}

// NewAgent returns the worker of `kbr agent` on a broker host: the
// host-local activities only (stop/start Kafka, fix cluster.id, ping, copy
// and put back a KRaft node's metadata log), on the host's own task queue,
// so no other worker ever runs them. o.Storage opens the backup targets the
// metadata log is copied to and from; MaxConcurrentActivities is not used.
func NewAgent(c client.Client, cfg config.Agent, o Options) worker.Worker {
	w := worker.New(c, names.AgentTaskQueue(cfg.Host), worker.Options{
		// A host runs its steps one at a time; the workflow sends one per step.
		MaxConcurrentActivityExecutionSize: 4,
		Interceptors:                       interceptors(),
	})
	w.RegisterActivityWithOptions(&activities.Agent{Config: cfg, Storage: o.Storage, Logger: o.Logger}, activity.RegisterOptions{})
	return w
}

// interceptors of every kbr worker: retries counted by activity type (the
// client's MetricsHandler says where they go).
func interceptors() []interceptor.WorkerInterceptor {
	return []interceptor.WorkerInterceptor{metrics.NewWorkerInterceptor()}
}
