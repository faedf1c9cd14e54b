package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/errtext"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/workflows"
)

// live adds what the running work units heartbeated (in the child
// workflows the progress names) to the workflow's progress, so the CLI
// shows bytes moving inside units, not only finished ones.
func live(ctx context.Context, cl client.Client, id string, p *workflows.Progress) {
	dc := converter.GetDefaultDataConverter()
	for _, child := range p.Running {
		d, err := cl.DescribeWorkflowExecution(ctx, child, "")
		if err != nil {
			continue
		}
		for _, pa := range d.GetPendingActivities() {
			hb := pa.GetHeartbeatDetails()
			if hb == nil || len(hb.Payloads) == 0 {
				continue
			}
			switch pa.GetActivityType().GetName() {
			case "ExportUnit":
				var b activities.ExportBeat
				if dc.FromPayload(hb.Payloads[0], &b) == nil {
					p.RecordsDone += b.Records
					p.BytesDone += b.Bytes
					p.PartitionsDone += b.Done
				}
			case "ImportUnit":
				var n int64
				if dc.FromPayload(hb.Payloads[0], &n) == nil {
					p.RecordsDone += n
				}
			}
		}
	}
}

// watch follows a run until it ends, printing steps and progress to
// stderr, and returns the run's last progress and its error. On a terminal
// a long step shows a progress bar (percent, rate, ETA) that redraws in
// place; otherwise a plain line every 5 s.
func watch(ctx context.Context, cl client.Client, run client.WorkflowRun, quiet bool, out io.Writer) (workflows.Progress, error) {
	tty := isTTY(out)
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
				if line := barLine(p, running, termWidth(out)); line != "" {
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
			line += "  " + firstLine(errtext.Clean(s.Detail))
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

// failureText is the run's error as an operator reads it: one line, each
// message of Temporal's nested wrappers once (errtext.Line).
func failureText(err error) string { return errtext.Line(err) }

// startAndWatch starts a workflow and follows it (unless --detach), then
// reads its result into result. It returns the run, nil when it could not
// start.
func startAndWatch(ctx context.Context, cl client.Client, s streams, opts client.StartWorkflowOptions, wf string, input any, o startOpts, result any) (client.WorkflowRun, error) {
	opts.TaskQueue = names.TaskQueue
	opts.WorkflowIDConflictPolicy = enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL
	run, err := cl.ExecuteWorkflow(ctx, opts, wf, input)
	if err != nil {
		return nil, withCode(exitFailed, fmt.Errorf("start %s: %w", wf, err))
	}
	if !o.json {
		fmt.Fprintf(s.err, "%s started: workflow id %s, run id %s\n", wf, run.GetID(), run.GetRunID())
	}
	return run, follow(ctx, cl, s, run, wf, o, result)
}

// follow prints a started run's ids and returns with --detach, else
// watches it to its end and reads its result into result.
func follow(ctx context.Context, cl client.Client, s streams, run client.WorkflowRun, wf string, o startOpts, result any) error {
	if o.detach {
		return o.print(s.out, map[string]string{"workflow_id": run.GetID(), "run_id": run.GetRunID()}, func() {
			fmt.Fprintln(s.out, run.GetID())
		})
	}
	if p, err := watch(ctx, cl, run, o.json, s.err); err != nil {
		return runFailed(s, wf, run, p, err, o.json)
	}
	if err := run.Get(ctx, result); err != nil {
		return withCode(exitFailed, err)
	}
	return nil
}

// runFailed is a failed run's error, one line: the run, the step that
// failed and the cause, then the run's ids. With --json the
// machine-readable result goes to stdout first.
func runFailed(s streams, wf string, run client.WorkflowRun, p workflows.Progress, err error, jsonOut bool) error {
	f := &failure{what: runName(wf), step: failedStep(p), msg: failureText(err), id: run.GetID(), runID: run.GetRunID()}
	if jsonOut {
		_ = printJSON(s.out, map[string]any{"workflow_id": run.GetID(), "status": names.StatusFailed, "error": f.ledByStep()})
	}
	return withCode(exitFailed, f)
}

// failure is a run that ended failed.
type failure struct {
	what, step string
	msg        string // errtext.Line of the run's error
	id, runID  string
}

// Error is one line: the run, the step and the cause first, the ids last.
func (f *failure) Error() string {
	head := f.what + " failed"
	cause := f.msg
	if f.step != "" {
		head += fmt.Sprintf(" at step %q", f.step)
		// The cause often starts with the step's name already.
		cause = strings.TrimPrefix(cause, f.step+": ")
	}
	return fmt.Sprintf("%s: %s (workflow id %s, run id %s)", head, cause, f.id, f.runID)
}

// ledByStep is the cause led by the failed step unless it names it (the
// error of --json).
func (f *failure) ledByStep() string {
	if f.step != "" && !strings.Contains(f.msg, f.step) {
		return "step " + f.step + ": " + f.msg
	}
	return f.msg
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

func workflowID(kind, cluster string, now time.Time) string {
	return fmt.Sprintf("%s-%s-%s", kind, cluster, now.UTC().Format("20060102T150405.000Z"))
}
