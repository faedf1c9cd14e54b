package e2e

import (
	"bytes"
	"os"
	"testing"
)

// TestReleaseBinaryHasNoFaultHooks guards the hole where the fault hook
// KBR_FAULT_PRUNE_EXIT was compiled into the binary users run, and any
// value of it made a worker exit in the middle of a prune. The hooks live
// behind the kbrfault build tag: the release build does not even hold the
// variable's name, and the test build does (so this check can fail).
func TestReleaseBinaryHasNoFaultHooks(t *testing.T) {
	release, err := os.ReadFile(h.bin)
	if err != nil {
		t.Fatal(err)
	}
	fault, err := os.ReadFile(h.faultBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, hook := range []string{"KBR_FAULT_PRUNE_EXIT", "KBR_FAULT_PREPARE_EXIT"} {
		if bytes.Contains(release, []byte(hook)) {
			t.Errorf("the release build of kbr holds the fault hook %s", hook)
		}
		if !bytes.Contains(fault, []byte(hook)) {
			t.Errorf("the kbrfault build holds no %s: this check would pass whatever the release build holds", hook)
		}
	}
}
