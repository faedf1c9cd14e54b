//go:build kbrfault

package activities

import (
	"log/slog"
	"os"
)

// Fault injection for the e2e tests, compiled only into a kbr built with
// -tags kbrfault (the e2e harness builds one for the test that needs it);
// the release binary has none of it.

// FaultPruneExit, set in the environment of a worker built with the
// kbrfault tag, makes it exit in the middle of a prune (after the
// manifests, before the files).
const FaultPruneExit = "KBR_FAULT_PRUNE_EXIT"

func faultPruneExit(log *slog.Logger) {
	if os.Getenv(FaultPruneExit) == "" {
		return
	}
	// The worker dies with the manifests gone and their files still there.
	log.Error("fault injection: worker exits in the middle of a prune", "env", FaultPruneExit)
	os.Exit(3)
}

// FaultPrepareExit, set in the environment of a worker built with the
// kbrfault tag, makes it exit in the first attempt of PrepareImport right
// after it created the target topics, before it bookmarked them, as a
// worker lost or a heartbeat timed out there would.
const FaultPrepareExit = "KBR_FAULT_PREPARE_EXIT"

func faultPrepareExit(log interface{ Error(string, ...any) }, attempt int32) {
	if os.Getenv(FaultPrepareExit) == "" || attempt > 1 {
		return
	}
	log.Error("fault injection: worker exits while it creates a restore's topics", "env", FaultPrepareExit)
	os.Exit(3)
}
