package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/lock"
	"github.com/kbr-project/kbr/internal/names"
)

// LockRelease names the run that lets go.
type LockRelease struct {
	WorkflowID string `json:"workflow_id"`
}

// ClusterLockWorkflow serialises the runs of one cluster: it grants the lock
// to one run at a time, queues the others up to a bound, and refuses a task
// that is already running or waiting. It ends when idle and continues as new
// after many requests, so its history stays short. A holder that ended
// without releasing (terminated) is detected and the lock passed on.
func ClusterLockWorkflow(ctx workflow.Context, st lock.State) error {
	if err := workflow.SetQueryHandler(ctx, names.QueryLockState, func() (lock.State, error) { return st, nil }); err != nil {
		return err
	}
	// Its own kind, so the Web UI's lists of runs can leave locks out
	// (KbrKind != "lock"). Runs started before this carry none.
	if workflow.GetVersion(ctx, "lock-kind", workflow.DefaultVersion, 1) == 1 {
		attrs := []temporal.SearchAttributeUpdate{names.SAKind.ValueSet(names.KindLock)}
		if c := names.LockCluster(workflow.GetInfo(ctx).WorkflowExecution.ID); c != "" {
			attrs = append(attrs, names.SACluster.ValueSet(c))
		}
		if err := workflow.UpsertTypedSearchAttributes(ctx, attrs...); err != nil {
			return err
		}
	}
	acquire := workflow.GetSignalChannel(ctx, names.SignalLockAcquire)
	release := workflow.GetSignalChannel(ctx, names.SignalLockRelease)
	send := func(msgs []lock.Message) {
		for _, m := range msgs {
			// A requester that is gone cannot be told; that is not an error here.
			_ = workflow.SignalExternalWorkflow(ctx, m.To.WorkflowID, m.To.RunID, names.SignalLockReply, m.Reply).Get(ctx, nil)
		}
	}
	checkCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	handled := 0
	for {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(acquire, func(c workflow.ReceiveChannel, _ bool) {
			var r lock.Request
			c.Receive(ctx, &r)
			send(st.Acquire(r, workflow.Now(ctx)))
			handled++
		})
		sel.AddReceive(release, func(c workflow.ReceiveChannel, _ bool) {
			var r LockRelease
			c.Receive(ctx, &r)
			send(st.Release(r.WorkflowID, workflow.Now(ctx)))
			handled++
		})
		if st.Holder != nil {
			holder := *st.Holder
			sel.AddFuture(workflow.NewTimer(ctx, time.Minute), func(workflow.Future) {
				var running bool
				if err := workflow.ExecuteActivity(checkCtx, a.IsRunning, holder.WorkflowID, holder.RunID).Get(ctx, &running); err == nil && !running {
					send(st.Release(holder.WorkflowID, workflow.Now(ctx)))
				}
			})
		}
		sel.Select(ctx)
		if st.Idle() && acquire.Len() == 0 && release.Len() == 0 {
			return nil
		}
		if handled >= 500 && acquire.Len() == 0 && release.Len() == 0 {
			return workflow.NewContinueAsNewError(ctx, names.ClusterLockWorkflow, st)
		}
	}
}

// clusterLock takes a cluster's lock for the calling run, waiting in the
// queue (and saying so in its progress) until granted. The returned
// function releases it, also when the run fails or is cancelled.
func clusterLock(ctx workflow.Context, cluster, task, kind string, queueLimit int, p *Progress, t *tracker) (func(), error) {
	info := workflow.GetInfo(ctx)
	req := lock.Request{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, Task: task, Kind: kind,
		QueueLimit: queueLimit, At: workflow.Now(ctx)}
	replies := workflow.GetSignalChannel(ctx, names.SignalLockReply)
	if err := workflow.ExecuteActivity(shortOpts(ctx, time.Minute, 10), a.RequestClusterLock, activities.LockRequestInput{Cluster: cluster, Request: req}).Get(ctx, nil); err != nil {
		return nil, err
	}
	for {
		var r lock.Reply
		replies.Receive(ctx, &r)
		switch {
		case r.Refused != "":
			return nil, temporal.NewNonRetryableApplicationError(r.Refused, names.ErrClusterBusy, nil)
		case r.Granted:
			p.Waiting = ""
			release := func() {
				dctx, cancel := workflow.NewDisconnectedContext(ctx)
				defer cancel()
				_ = workflow.SignalExternalWorkflow(dctx, names.LockWorkflowID(cluster), "", names.SignalLockRelease, LockRelease{WorkflowID: req.WorkflowID}).Get(dctx, nil)
			}
			return release, nil
		default:
			p.Waiting = fmt.Sprintf("waiting for the lock of cluster %s: %s holds it, %d in line", cluster, r.Holder, r.Position)
			t.details()
		}
	}
}
