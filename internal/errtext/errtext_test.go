package errtext

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/temporal"
)

var fc = temporal.GetDefaultFailureConverter()

// overWire is what the client sees of an error an activity or workflow
// returned: the failure converter's round trip, as on the server.
func overWire(err error) error { return fc.FailureToError(fc.ErrorToFailure(err)) }

// activityFailed is the ActivityError a workflow gets when activity typ
// returned cause.
func activityFailed(typ string, cause error) error {
	f := &failurepb.Failure{Message: "activity error", Cause: fc.ErrorToFailure(cause),
		FailureInfo: &failurepb.Failure_ActivityFailureInfo{ActivityFailureInfo: &failurepb.ActivityFailureInfo{
			ScheduledEventId: 30, StartedEventId: 31, Identity: "4242@kbr-host@", ActivityType: &commonpb.ActivityType{Name: typ},
			RetryState: enumspb.RETRY_STATE_NON_RETRYABLE_FAILURE}}}
	return fc.FailureToError(f)
}

func childFailed(typ string, cause error) error {
	f := &failurepb.Failure{Message: "child workflow execution error", Cause: fc.ErrorToFailure(cause),
		FailureInfo: &failurepb.Failure_ChildWorkflowExecutionFailureInfo{ChildWorkflowExecutionFailureInfo: &failurepb.ChildWorkflowExecutionFailureInfo{
			Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: "verify-rp-1", RunId: "r-1"},
			WorkflowType: &commonpb.WorkflowType{Name: typ}, InitiatedEventId: 7, StartedEventId: 8}}}
	return fc.FailureToError(f)
}

// workflowFailed is what run.Get returns: the SDK's WorkflowExecutionError
// cannot be built outside it, so its text is wrapped around the cause.
func workflowFailed(typ string, cause error) error {
	return fmt.Errorf("workflow execution error (type: %s, workflowID: backup-zk-20261203T101010.000Z, runID: 0193-run): %w", typ, overWire(cause))
}

// TestLine guards the error the issue shows: a backup whose kept manifest
// is 0 bytes failed with one message repeated through five nested
// wrappers, and the CLI printed only the innermost "unexpected end of
// JSON input", naming no step and no file. Line keeps each message once,
// outermost first, with the step, the file and the cause.
func TestLine(t *testing.T) {
	t.Parallel()
	const manifest = "orders_20261201T000000Z/3.9_manifest_20261202T000000Z.json"
	// The activity side: loadManifest's error, made permanent.
	cause := fmt.Errorf("retention: kept recovery point %s unreadable, nothing deleted: %w", manifest,
		fmt.Errorf("manifest %s: %w", manifest, errors.New("the file is empty (0 bytes): it was not written to the end")))
	permanent := temporal.NewNonRetryableApplicationError(cause.Error(), "StoragePermanent", cause)
	prune := activityFailed("PruneTask", permanent)
	// The workflow side wraps the activity error, as BackupWorkflow does.
	wf := fmt.Errorf("recovery point %s written, but retention failed: %w", manifest, prune)

	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("boom"), "boom"},
		{"the 0-byte manifest", workflowFailed("BackupWorkflow", wf),
			"recovery point " + manifest + " written, but retention failed: retention: kept recovery point " + manifest +
				" unreadable, nothing deleted: manifest " + manifest + ": the file is empty (0 bytes): it was not written to the end"},
		{"activity error only", prune,
			"retention: kept recovery point " + manifest + " unreadable, nothing deleted: manifest " + manifest + ": the file is empty (0 bytes): it was not written to the end"},
		{"a workflow's own refusal, a list", workflowFailed("MetadataRestoreWorkflow",
			temporal.NewNonRetryableApplicationError("preflight: refused before anything was stopped:\n  - no agent answered for host zk3 within 15s\n  - broker 2 has Kafka 3.8.1", "PreflightFailed", nil)),
			"preflight: refused before anything was stopped: no agent answered for host zk3 within 15s; broker 2 has Kafka 3.8.1"},
		{"a message that does not repeat its cause", workflowFailed("RestoreWorkflow",
			temporal.NewNonRetryableApplicationError("restore orders[2]", "Restore", errors.New("NOT_LEADER_FOR_PARTITION"))),
			"restore orders[2]: NOT_LEADER_FOR_PARTITION"},
		{"a child workflow", workflowFailed("TaskRun", childFailed("VerifyWorkflow",
			activityFailed("ResolveRecoveryPoint", temporal.NewNonRetryableApplicationError("damaged: t/3.9_offsets_x.json: size 3, manifest says 9", "ChecksumMismatch", nil)))),
			"damaged: t/3.9_offsets_x.json: size 3, manifest says 9"},
		{"a timeout", workflowFailed("BackupWorkflow", activityFailed("ExportPartition", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil))),
			"Test timeout"},
		{"canceled", workflowFailed("BackupWorkflow", temporal.NewCanceledError()), "canceled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := Line(c.err)
			if got != c.want {
				t.Errorf("Line:\n got %q\nwant %q\n(Error() was %q)", got, c.want, fmt.Sprint(c.err))
			}
			for _, noise := range []string{"activity error", "workflow execution error", "retryable:", "scheduledEventID", "\n", "wrapError"} {
				if strings.Contains(got, noise) {
					t.Errorf("Line %q holds %q", got, noise)
				}
			}
			if c.err != nil && strings.Count(got, "the file is empty") > 1 {
				t.Errorf("Line %q repeats its cause", got)
			}
		})
	}
}

// TestClean: the text of a step's detail (a workflow-side err.Error())
// loses Temporal's wrapper text and repeated segments.
func TestClean(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"kept 2, deleted 1", "kept 2, deleted 1"},
		{"activity error (type: PruneTask, scheduledEventID: 30, startedEventID: 31, identity: 4242@kbr-host@): retention: x (type: StoragePermanent, retryable: false): retention: x",
			"retention: x"},
		{"start Kafka: start Kafka: zk2 start fails once, on purpose", "start Kafka: zk2 start fails once, on purpose"},
		{"refused:\n  - a\n  - b", "refused: a; b"},
		{"child workflow execution error (type: VerifyWorkflow, workflowID: v, runID: r, initiatedEventID: 7, startedEventID: 8): damaged", "damaged"},
	} {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
