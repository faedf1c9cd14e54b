package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/internal/config"
)

// CheckTaskWorkflow runs the read-only checks a task gets before `kbr task
// create|update` stores it, on a worker that reaches the cluster.
func CheckTaskWorkflow(ctx workflow.Context, cfg config.Backup) error {
	return workflow.ExecuteActivity(shortOpts(ctx, 2*time.Minute, 2), a.CheckTopics, cfg).Get(ctx, nil)
}
