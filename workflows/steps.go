package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
)

// skip is returned by a step that does not apply, with why.
type skip string

func (s skip) Error() string { return string(s) }

// run runs one named step: started, then done with fn's detail, skipped,
// or failed with fn's error, which it returns naming the step.
func (t *tracker) run(name string, fn func() (string, error)) error {
	t.start(name)
	detail, err := fn()
	var sk skip
	switch {
	case errors.As(err, &sk):
		t.skip(name, string(sk))
		t.details()
		return nil
	case err != nil:
		t.fail(name, err)
		return stepError(name, err)
	}
	t.done(name, detail)
	return nil
}

// stepError names the failed step in front of the innermost cause, keeping
// the cause's type so that callers (and the CLI) tell failures apart.
func stepError(name string, err error) error {
	typ := names.ErrStepFailed
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() != "" {
		typ = app.Type()
	}
	return temporal.NewNonRetryableApplicationError(name+": "+errText(err), typ, nil)
}

// fanOut runs jobs 0..n-1, at most window at once. start launches job i;
// done takes its result. After the first error no job starts, the running
// ones are waited for, and that error is returned. stop, checked after each
// job ends, ends the fan-out early once the running jobs are done (next
// says where it stopped). wait, if set, adds channels (signals) to the
// selector the fan-out waits on.
func fanOut(ctx workflow.Context, n, window int, start func(i int) workflow.Future,
	done func(i int, f workflow.Future) error, stop func() bool, wait func(workflow.Selector)) (next int, err error) {
	window = max(1, window)
	sel := workflow.NewSelector(ctx)
	if wait != nil {
		wait(sel)
	}
	running := 0
	stopped := false
	for next < n || running > 0 {
		for err == nil && !stopped && running < window && next < n {
			i := next
			next++
			running++
			sel.AddFuture(start(i), func(f workflow.Future) {
				running--
				if e := done(i, f); e != nil && err == nil {
					err = e
				}
				if stop != nil && stop() {
					stopped = true
				}
			})
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	return next, err
}

// normalizeBackup gives a backup config its defaults and validates it, in
// a local activity: the result is recorded, so a changed default never
// changes the commands of a run in flight.
func normalizeBackup(ctx workflow.Context, cfg config.Backup) (config.Backup, error) {
	var out config.Backup
	err := workflow.ExecuteLocalActivity(localOpts(ctx, time.Minute, 1), a.NormalizeBackup, cfg).Get(ctx, &out)
	return out, err
}

func normalizeRestore(ctx workflow.Context, cfg config.Restore) (config.Restore, error) {
	var out config.Restore
	err := workflow.ExecuteLocalActivity(localOpts(ctx, time.Minute, 1), a.NormalizeRestore, cfg).Get(ctx, &out)
	return out, err
}

// pin writes a run's pin of the recovery point it reads (see
// activities.Pin); unpin removes it when the run has succeeded.
func pin(ctx workflow.Context, src config.Source, kind string) error {
	in := activities.PinInput{Target: src.Target, Manifest: src.RecoveryPoint, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Kind: kind}
	return workflow.ExecuteActivity(shortOpts(ctx, 2*time.Minute, 10), a.PinRecoveryPoint, in).Get(ctx, nil)
}

func unpin(ctx workflow.Context, src config.Source, kind string) {
	in := activities.PinInput{Target: src.Target, Manifest: src.RecoveryPoint, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Kind: kind}
	if err := workflow.ExecuteActivity(shortOpts(ctx, 2*time.Minute, 10), a.UnpinRecoveryPoint, in).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("the recovery point stays pinned", "error", err)
	}
}

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// resumable runs the named steps of a restore that a retry resumes (the
// ZooKeeper and the KRaft metadata restores): a step a previous run
// completed is reported and skipped; a step that fails fails the run with
// its name and innermost cause; a step that succeeds is recorded in the
// run's memo (names.MemoResume) with the state later steps need, which
// `kbr restore retry` hands to the next run.
type resumable struct {
	t     *tracker
	steps []string // in order
	done  map[string]bool
	run0  string // the run that completed the steps in done
	// memo is what the memo records after a step, from the run's id and
	// the steps done so far, in order.
	memo func(runID string, done []string) any
}

func newResumable(t *tracker, steps []string, fromRun string, done []string, memo func(string, []string) any) *resumable {
	r := &resumable{t: t, steps: steps, done: map[string]bool{}, run0: fromRun, memo: memo}
	for _, s := range done {
		r.done[s] = true
	}
	return r
}

// step runs one step unless a previous run completed it, and records it
// for a retry once done.
func (r *resumable) step(ctx workflow.Context, name string, fn func() (string, error)) error {
	if r.done[name] {
		r.t.done(name, "completed by run "+r.run0+", not repeated")
		return nil
	}
	if err := r.t.run(name, fn); err != nil {
		return err
	}
	r.done[name] = true
	var done []string
	for _, s := range r.steps {
		if r.done[s] {
			done = append(done, s)
		}
	}
	return workflow.UpsertMemo(ctx, map[string]any{names.MemoResume: r.memo(workflow.GetInfo(ctx).WorkflowExecution.RunID, done)})
}
