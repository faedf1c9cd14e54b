package metrics

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// NewWorkerInterceptor counts retries: every activity attempt after the
// first (local activities too), by activity type, without code in the
// activities. Add it to worker.Options.Interceptors.
func NewWorkerInterceptor() interceptor.WorkerInterceptor { return &retries{} }

type retries struct {
	interceptor.WorkerInterceptorBase
}

func (*retries) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &retriedActivity{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}}
}

type retriedActivity struct {
	interceptor.ActivityInboundInterceptorBase
}

func (a *retriedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if activity.GetInfo(ctx).Attempt > 1 {
		ActivityRetried(activity.GetMetricsHandler(ctx))
	}
	return a.Next.ExecuteActivity(ctx, in)
}
