package tasks

import (
	"testing"
	"time"

	"github.com/kbr-project/kbr/internal/config"
)

func TestSpecPutsAnIntervalOnTheStartTime(t *testing.T) {
	start := time.Date(2026, 11, 22, 10, 17, 30, 0, time.UTC)
	s := spec(config.Task{Mode: config.ModePeriodic, StartTime: start, Period: config.Duration(time.Hour)})
	if len(s.Intervals) != 1 || s.Intervals[0].Every != time.Hour || !s.StartAt.Equal(start) {
		t.Fatalf("spec %+v", s)
	}
	// Interval times are epoch + offset + n*every: start must be one of them.
	if d := time.Duration(start.UnixNano()) - s.Intervals[0].Offset; d%time.Hour != 0 {
		t.Errorf("offset %s does not land on %s", s.Intervals[0].Offset, start)
	}
	if m := spec(config.Task{Mode: config.ModeManual}); len(m.Intervals)+len(m.Calendars)+len(m.CronExpressions) != 0 {
		t.Errorf("manual task has a schedule spec: %+v", m)
	}
}

func TestDefaultTask(t *testing.T) {
	c := config.Cluster{Name: "prod_eu/1", BootstrapServers: []string{"k:9092"}}
	task := DefaultTask(c, "/var/kbr/LocalBackup", time.Date(2026, 11, 22, 10, 17, 30, 0, time.UTC))
	task.ApplyDefaults()
	if err := task.Validate(); err != nil {
		t.Fatal(err)
	}
	if task.Name != "prod-eu-1-default" || !task.StartTime.Equal(time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)) ||
		task.MaxCopies != 168 || task.Period.D() != time.Hour || len(task.DataSources) != 1 {
		t.Errorf("default task %+v", task)
	}
}
