package config

import (
	"fmt"
	"time"

	"github.com/kbr-project/kbr/internal/backupset"
)

// Task modes.
const (
	ModePeriodic = "periodic"
	ModeManual   = "manual"
)

// Task limits, as MRS has them.
const (
	MinPeriod       = 120 * time.Second
	DefaultMaxTasks = 100
)

// Task is the document of `kbr task create|update -f`: a backup (cluster,
// data sources, topics, path type, policy, max copies) plus when it runs.
// Each run is a BackupWorkflow whose input is the task's Backup.
type Task struct {
	Name string `yaml:"name" json:"name"`
	// Mode: periodic (start_time and period) or manual (runs on `kbr task run` only).
	Mode      string    `yaml:"mode" json:"mode"`
	StartTime time.Time `yaml:"start_time,omitempty" json:"start_time,omitempty"`
	// Period between runs, at least 120s ("6h", "1d").
	Period Duration `yaml:"period,omitempty" json:"period,omitempty"`
	// Backup holds everything a run needs; its `task` field is the name.
	Backup `yaml:",inline"`
}

// LoadTask reads, defaults and validates a task file.
func LoadTask(path string) (*Task, error) {
	var t Task
	if err := decodeFile(path, &t); err != nil {
		return nil, err
	}
	t.ApplyDefaults()
	absLocal(&t.Target)
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// ApplyDefaults fills what the operator left out.
func (t *Task) ApplyDefaults() {
	if t.Backup.Task == "" {
		t.Backup.Task = t.Name
	}
	if t.Mode == "" {
		t.Mode = ModeManual
		if t.Period != 0 {
			t.Mode = ModePeriodic
		}
	}
	t.Backup.ApplyDefaults()
}

// Validate checks a task without touching anything outside it.
func (t *Task) Validate() error {
	if t.Name == "" {
		return fieldErr("name", "required")
	}
	if err := backupset.ValidTaskName(t.Name); err != nil {
		return fieldErr("name", "%v", err)
	}
	if t.Backup.Task != t.Name {
		return fieldErr("task", "%q differs from name %q: leave it out", t.Backup.Task, t.Name)
	}
	switch t.Mode {
	case ModePeriodic:
		if t.Period == 0 {
			return fieldErr("period", "required for a periodic task (at least 120s, e.g. 1h or 1d)")
		}
		if t.Period.D() < MinPeriod {
			return fieldErr("period", "%s is under the minimum of 120s", t.Period.D())
		}
		if t.Period.D()%time.Second != 0 {
			return fieldErr("period", "%s: use whole seconds", t.Period.D())
		}
	case ModeManual:
		if t.Period != 0 || !t.StartTime.IsZero() {
			return fieldErr("mode", "a manual task takes no period or start_time")
		}
	default:
		return fieldErr("mode", "%q: want periodic or manual", t.Mode)
	}
	if t.MaxCopies < 1 {
		return fieldErr("max_copies", "%d: a task keeps at least 1 recovery point (max_copies 1..10000)", t.MaxCopies)
	}
	return t.Backup.Validate()
}

// Run is the backup a run of the task performs, its folder fixed by the
// task's creation time.
func (t *Task) Run(created time.Time) Backup {
	b := t.Backup
	c := created.UTC().Truncate(time.Second)
	b.TaskCreated = &c
	return b
}

// LoadCluster reads and validates a cluster file (the fields of a
// backup config's `cluster:` block).
func LoadCluster(path string) (*Cluster, error) {
	var c Cluster
	if err := decodeFile(path, &c); err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	if err := c.Validate("cluster"); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}
