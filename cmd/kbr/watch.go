package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// live adds what running activities heartbeated to the workflow's progress,
// so the CLI shows bytes moving inside partitions, not only finished ones.
func live(ctx context.Context, cl client.Client, id string, p *workflows.Progress) {
	d, err := cl.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return
	}
	dc := converter.GetDefaultDataConverter()
	for _, pa := range d.GetPendingActivities() {
		hb := pa.GetHeartbeatDetails()
		if hb == nil || len(hb.Payloads) == 0 {
			continue
		}
		switch pa.GetActivityType().GetName() {
		case "ExportPartition":
			var ep activities.ExportProgress
			if dc.FromPayload(hb.Payloads[0], &ep) == nil {
				p.RecordsDone += ep.Records
				p.BytesDone += ep.Bytes
			}
		case "RestorePartition":
			var n int64
			if dc.FromPayload(hb.Payloads[0], &n) == nil {
				p.RecordsDone += n
			}
		}
	}
}

// watch follows a run until it ends, printing steps and progress to
// stderr, and returns the run's last progress and its error. On a terminal
// a long step shows a progress bar (percent, rate, ETA) that redraws in
// place; otherwise a plain line every 5 s.
func watch(ctx context.Context, cl client.Client, run client.WorkflowRun, quiet bool) (workflows.Progress, error) {
	out := io.Writer(os.Stderr)
	tty := isTTY(os.Stderr)
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, nil) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastStep, lastLine, lastWait := "", time.Time{}, ""
	start := time.Now()
	var last workflows.Progress
	barShown := false
	for {
		select {
		case err := <-done:
			if p, ok := query(ctx, cl, run.GetID()); ok {
				last = p
				if !quiet {
					printSteps(out, p, &lastStep, tty)
				}
			}
			if !quiet && tty && barShown {
				fmt.Fprint(out, "\r\033[K")
			}
			return last, err
		case <-tick.C:
			p, ok := query(ctx, cl, run.GetID())
			if !ok {
				continue
			}
			last = p
			if quiet {
				continue
			}
			if printSteps(out, p, &lastStep, tty) {
				barShown = false
			}
			if p.Waiting != lastWait {
				lastWait = p.Waiting
				if p.Waiting != "" {
					if barShown {
						fmt.Fprint(out, "\r\033[K")
						barShown = false
					}
					fmt.Fprintln(out, "  "+p.Waiting)
				}
			}
			if p.PartitionsTotal == 0 {
				continue
			}
			live(ctx, cl, run.GetID(), &p)
			if tty {
				running := time.Since(start)
				if s := p.Current(); s != nil && !s.StartedAt.IsZero() {
					running = time.Since(s.StartedAt)
				}
				if line := barLine(p, running, termWidth(os.Stderr)); line != "" {
					fmt.Fprintf(out, "\r\033[K%s", line)
					barShown = true
				}
			} else if time.Since(lastLine) >= 5*time.Second {
				fmt.Fprintln(out, progressLine(p, time.Since(start)))
				lastLine = time.Now()
			}
		}
	}
}

func query(ctx context.Context, cl client.Client, id string) (workflows.Progress, bool) {
	var p workflows.Progress
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := cl.QueryWorkflow(qctx, id, "", names.QueryProgress)
	if err != nil || v.Get(&p) != nil {
		return p, false
	}
	return p, true
}

// printSteps prints the steps when they changed since last, and says so.
func printSteps(out io.Writer, p workflows.Progress, last *string, tty bool) bool {
	var b strings.Builder
	for _, s := range p.Steps {
		if s.Status == "pending" {
			continue
		}
		b.WriteString(s.Name + "=" + s.Status + ";")
	}
	if b.String() == *last {
		return false
	}
	*last = b.String()
	if tty {
		fmt.Fprint(out, "\r\033[K")
	}
	for _, s := range p.Steps {
		if s.Status == "pending" {
			continue
		}
		line := fmt.Sprintf("  %-22s %s", s.Name, s.Status)
		if s.Detail != "" {
			line += "  " + firstLine(s.Detail)
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out, "  --")
	return true
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func progressLine(p workflows.Progress, elapsed time.Duration) string {
	mb := float64(p.BytesDone) / 1e6
	rate := mb / max(elapsed.Seconds(), 1)
	s := fmt.Sprintf("  partitions %d/%d  records %d", p.PartitionsDone, p.PartitionsTotal, p.RecordsDone)
	if p.RecordsTotal > 0 {
		s += fmt.Sprintf("/%d", p.RecordsTotal)
	}
	if p.BytesDone > 0 {
		s += fmt.Sprintf("  %.1f MB  %.1f MB/s", mb, rate)
	}
	if p.EstimatedBytes > 0 {
		s += fmt.Sprintf("  (estimate %.1f MB)", float64(p.EstimatedBytes)/1e6)
	}
	return s + fmt.Sprintf("  %s", elapsed.Round(time.Second))
}

// failureText is the run's error as an operator reads it: the innermost
// application error's message.
func failureText(err error) string {
	var appErr *temporal.ApplicationError
	msg := err.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.As(e, &appErr) {
			msg = appErr.Message()
		}
	}
	return msg
}

// startAndWatch starts a workflow and follows it.
func startAndWatch(ctx context.Context, cl client.Client, opts client.StartWorkflowOptions, wf string, input any, jsonOut, detach bool, result any) error {
	opts.TaskQueue = names.TaskQueue
	opts.WorkflowIDConflictPolicy = enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL
	run, err := cl.ExecuteWorkflow(ctx, opts, wf, input)
	if err != nil {
		return withCode(exitFailed, fmt.Errorf("start %s: %w", wf, err))
	}
	if !jsonOut {
		fmt.Fprintf(os.Stderr, "%s started: workflow id %s, run id %s\n", wf, run.GetID(), run.GetRunID())
	}
	if detach {
		return printJSONOr(jsonOut, map[string]string{"workflow_id": run.GetID(), "run_id": run.GetRunID()}, func() {
			fmt.Println(run.GetID())
		})
	}
	if p, err := watch(ctx, cl, run, jsonOut); err != nil {
		return runFailed(wf, run, p, err, jsonOut)
	}
	if err := run.Get(ctx, result); err != nil {
		return withCode(exitFailed, err)
	}
	return nil
}

// runFailed is a failed run's error: its first line names the run, the
// step that failed and the cause; the run's ids and the whole message
// follow. With --json the machine-readable result goes to stdout first.
func runFailed(wf string, run client.WorkflowRun, p workflows.Progress, err error, jsonOut bool) error {
	msg := failureText(err)
	if jsonOut {
		_ = printJSON(map[string]any{"workflow_id": run.GetID(), "status": names.StatusFailed, "error": msg})
	}
	return withCode(exitFailed, &failure{what: runName(wf), step: failedStep(p), msg: msg, id: run.GetID(), runID: run.GetRunID()})
}

// failure is a run that ended failed.
type failure struct {
	what, step, msg, id, runID string
}

func (f *failure) Error() string {
	cause := firstLine(strings.TrimSpace(f.msg))
	// The cause often starts with the step's name already.
	if f.step != "" {
		cause = strings.TrimPrefix(cause, f.step+": ")
	}
	head := f.what + " failed"
	if f.step != "" {
		head += fmt.Sprintf(" at step %q", f.step)
	}
	s := head + ": " + strings.TrimSuffix(cause, " …") + fmt.Sprintf("\n  workflow id %s, run id %s", f.id, f.runID)
	if strings.Contains(strings.TrimSpace(f.msg), "\n") {
		s += "\n" + f.msg
	}
	return s
}

// failedStep is the step the progress shows failed, or "".
func failedStep(p workflows.Progress) string {
	for _, s := range p.Steps {
		if s.Status == "failed" {
			return s.Name
		}
	}
	return ""
}

// runName is how an error names a run of a workflow type.
func runName(wf string) string {
	switch k := names.KindOf(wf); k {
	case "":
		return wf
	default:
		return strings.ReplaceAll(k, "-", " ")
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printJSONOr(jsonOut bool, v any, text func()) error {
	if jsonOut {
		return printJSON(v)
	}
	text()
	return nil
}

func workflowID(kind, cluster string, now time.Time) string {
	return fmt.Sprintf("%s-%s-%s", kind, cluster, now.UTC().Format("20060102T150405.000Z"))
}
