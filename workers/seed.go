package workers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/kbr-project/kbr/internal/metrics"
	"github.com/kbr-project/kbr/internal/names"
)

// seedPages bounds the visibility pages a seed reads (1,000 runs each).
const seedPages = 10

// SeedLastSuccess sets the last-success gauge of every task from the
// succeeded backups Temporal lists, newest first. A backup's workflow sets
// the gauge when it succeeds, but only in the worker that ran it and only
// while that process lives: without the seed, a restarted worker would show
// no series at all for a task, and an alert on its age would stay silent
// just when backups stopped. Call it before the worker starts, so a run
// that succeeds later is not overwritten with an older time.
func SeedLastSuccess(ctx context.Context, c client.Client, namespace string, h client.MetricsHandler, logger *slog.Logger) error {
	query := fmt.Sprintf("%s = '%s' AND %s = '%s' AND ExecutionStatus = 'Completed'",
		names.AttrKind, names.KindBackup, names.AttrStatus, names.StatusSucceeded)
	dc := converter.GetDefaultDataConverter()
	type key struct{ cluster, task string }
	last := map[key]int64{}
	var token []byte
	for page := 0; page < seedPages; page++ {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: query, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("list succeeded backups: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			var k key
			f := e.GetSearchAttributes().GetIndexedFields()
			if p, ok := f[names.AttrCluster]; ok {
				_ = dc.FromPayload(p, &k.cluster)
			}
			if p, ok := f[names.AttrTask]; ok {
				_ = dc.FromPayload(p, &k.task)
			}
			if e.GetCloseTime() == nil || k.cluster == "" {
				continue
			}
			if t := e.GetCloseTime().AsTime().Unix(); t > last[k] {
				last[k] = t
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	for k, t := range last {
		metrics.BackupSucceeded(h, k.cluster, k.task, time.Unix(t, 0))
	}
	if logger != nil {
		logger.Info("metrics: last successful backup seeded from Temporal", "tasks", len(last))
	}
	return nil
}
