package workflows

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
)

// StepKRaftLog is the backup step of the kraft_log data source, between
// the metadata snapshot and the consumer offsets.
const StepKRaftLog = "KRaft metadata log"

// kraftAgentWait is how long a backup waits for a controller's agent to
// pick up its copy before it counts as missing.
const kraftAgentWait = time.Minute

// kraftLog copies every controller's metadata log into the recovery point,
// each through the agent on its host (which writes the files to the target
// itself), and lists them in the manifest. The copies must all carry the
// cluster's id.
func (w *backup) kraftLog(ctx workflow.Context, cfg config.Backup, pre activities.PreflightReport, m *backupset.Manifest) (string, error) {
	if !cfg.Has(config.SourceKRaftLog) {
		return "", skip("not a chosen data source")
	}
	dir := backupset.KRaftLogDir(pre.TaskDir, m.KafkaVersion, m.ExecutedAt)
	ctrls := cfg.Cluster.Controllers
	futures := make([]workflow.Future, len(ctrls))
	for i, c := range ctrls {
		in := activities.KRaftCopyInput{Host: c.Host, Node: c.ID, Target: cfg.Target, Dir: backupset.KRaftNodeDir(dir, c.ID)}
		futures[i] = workflow.ExecuteActivity(agentOpts(ctx, c.Host, kraftAgentWait, time.Hour, 3), ag.CopyKRaftLog, in)
	}
	var errs []string
	nodes := make([]backupset.KRaftNode, 0, len(ctrls))
	for i, c := range ctrls {
		var n backupset.KRaftNode
		if err := futures[i].Get(ctx, &n); err != nil {
			errs = append(errs, agentError("node", c, err, kraftAgentWait))
			continue
		}
		if n.ClusterID != pre.ClusterID && pre.ClusterID != "" {
			errs = append(errs, fmt.Sprintf("node %d (host %s): its metadata log dir says cluster.id=%s, the cluster reports %s: is it this cluster's controller?", c.ID, c.Host, n.ClusterID, pre.ClusterID))
		}
		nodes = append(nodes, n)
	}
	if len(errs) > 0 {
		return "", temporal.NewNonRetryableApplicationError(strings.Join(errs, "\n"), names.ErrStepFailed, nil)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node < nodes[j].Node })
	m.KRaftLog = nodes
	var parts []string
	for _, n := range nodes {
		s := fmt.Sprintf("node %d up to offset %d", n.Node, n.EndOffset)
		if n.Snapshot != nil {
			s += fmt.Sprintf(" (snapshot %d)", n.Snapshot.EndOffset)
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%d controllers: %s", len(nodes), strings.Join(parts, ", ")), nil
}
