package activities

import (
	"context"

	"github.com/kbr-project/kbr/internal/config"
)

// NormalizeBackup gives a backup its defaults and validates it. Workflows
// run it first, as a local activity, so the config a run follows is
// recorded in its history: a default changed by an upgrade never changes
// the commands of a run in flight.
func (a *Activities) NormalizeBackup(ctx context.Context, cfg config.Backup) (config.Backup, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, badInput("%v", err)
	}
	return cfg, nil
}

// NormalizeRestore is NormalizeBackup for restores.
func (a *Activities) NormalizeRestore(ctx context.Context, cfg config.Restore) (config.Restore, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, badInput("%v", err)
	}
	return cfg, nil
}
