package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity options, one table: short steps (no heartbeat, few attempts,
// local where they can be), long steps that heartbeat and resume, and the
// work units of the data path.

func shortOpts(ctx workflow.Context, timeout time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    timeout,
		RetryPolicy:         shortRetry(attempts),
	})
}

// shortStep runs a step that neither heartbeats nor moves data. As a local
// activity it runs in the worker that runs the workflow, recorded in the
// same workflow task: no server round trips to schedule and hand it over,
// which is most of a small run's time. Histories from before local steps
// keep normal activities.
func shortStep(ctx workflow.Context, local bool, timeout time.Duration, attempts int32, fn, arg any) workflow.Future {
	if !local {
		return workflow.ExecuteActivity(shortOpts(ctx, timeout, attempts), fn, arg)
	}
	return workflow.ExecuteLocalActivity(localOpts(ctx, timeout, attempts), fn, arg)
}

// localOpts is shortOpts for local activities.
func localOpts(ctx workflow.Context, timeout time.Duration, attempts int32) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: timeout, RetryPolicy: shortRetry(attempts),
	})
}

// shortRetry is the retry policy of short steps.
func shortRetry(attempts int32) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
		MaximumAttempts: attempts,
	}
}

// longOpts is for activities that heartbeat and resume from their last
// heartbeat when retried.
func longOpts(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 48 * time.Hour,
		HeartbeatTimeout:    20 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 30,
		},
	})
}
