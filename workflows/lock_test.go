package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kbr-project/kbr/internal/lock"
	"github.com/kbr-project/kbr/internal/names"
)

// A cluster's lock workflow carries KbrKind "lock" and its cluster, so the
// Web UI's saved views can leave the lock workflows out of the list of
// runs (every backup and restore starts one).
func TestLockWorkflowSetsItsKind(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ClusterLockWorkflow, workflow.RegisterOptions{Name: names.ClusterLockWorkflow})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: names.LockWorkflowID("prod-a")})
	var got temporal.SearchAttributes
	env.OnUpsertTypedSearchAttributes(mock.MatchedBy(func(sa temporal.SearchAttributes) bool {
		got = sa
		return true
	})).Return(nil)
	// Idle at once: the workflow ends after its first wake-up.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(names.SignalLockRelease, LockRelease{WorkflowID: "nobody"})
	}, time.Millisecond)
	env.ExecuteWorkflow(names.ClusterLockWorkflow, lock.State{})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if k, _ := got.GetKeyword(names.SAKind); k != names.KindLock {
		t.Errorf("KbrKind = %q, want %q", k, names.KindLock)
	}
	if c, _ := got.GetKeyword(names.SACluster); c != "prod-a" {
		t.Errorf("KbrCluster = %q, want prod-a", c)
	}
}
