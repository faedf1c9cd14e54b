package tasks

import (
	"context"
	"strings"
	"time"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/localdir"
)

// Default task, as MRS creates one for a new cluster: hourly, full,
// metadata only, to LocalDir, keeping 168 copies (a week).
const (
	DefaultTaskPeriod    = time.Hour
	DefaultTaskMaxCopies = 168
)

// DefaultTaskName is the default task of a cluster.
func DefaultTaskName(cluster string) string {
	n := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, cluster)
	n = strings.TrimLeft(n, ".-")
	if len(n) > 56 {
		n = n[:56]
	}
	return n + "-default"
}

// DefaultTask is the default task of a cluster: its first run at the next
// whole hour after now.
func DefaultTask(c config.Cluster, localDir string, now time.Time) config.Task {
	return config.Task{
		Name: DefaultTaskName(c.Name), Mode: config.ModePeriodic,
		StartTime: now.UTC().Truncate(time.Hour).Add(time.Hour),
		Period:    config.Duration(DefaultTaskPeriod),
		Backup: config.Backup{
			Cluster: c, DataSources: []string{config.SourceMetadata},
			Target:    storage.Target{Type: localdir.Type, Path: localDir},
			Policy:    config.PolicyFull,
			MaxCopies: DefaultTaskMaxCopies,
		},
	}
}

// Register records a cluster: the first time a cluster is seen (no task
// backs it up yet) its default task is created. It returns the default task,
// or nil when the cluster already had tasks.
func (m *Manager) Register(ctx context.Context, c config.Cluster, localDir string) (*Info, error) {
	c.ApplyDefaults()
	if err := c.Validate("cluster"); err != nil {
		return nil, bad("%v", err)
	}
	all, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range all {
		if t.Cluster.Name == c.Name {
			return nil, nil
		}
	}
	return m.Create(ctx, DefaultTask(c, localDir, m.now()))
}
