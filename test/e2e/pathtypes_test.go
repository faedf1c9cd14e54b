package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
)

// pathType is one backup target the round trip runs on.
type pathType struct {
	name    string
	target  storage.Target
	secrets []string // values that must never appear in logs or histories
}

// pathTypes lists every path type with its real server from the stack.
func pathTypes(t *testing.T, env testenv.Env) []pathType {
	t.Helper()
	return []pathType{
		{name: "LocalDir", target: storage.Target{Type: "LocalDir", Path: filepath.Join(t.TempDir(), "backups")}},
	}
}

// need returns a stack.env value or fails the test.
func need(t *testing.T, env testenv.Env, key string) string {
	t.Helper()
	v := env.Vars[key]
	if v == "" {
		t.Fatalf("%s missing from deploy/local/stack.env: run `make stack-up`", key)
	}
	return v
}

// fileSecret reads a secret the stack wrote to a file.
func fileSecret(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\r\n")
}

// assertNoSecrets scans the server and worker logs and the histories of
// the given workflows for every secret value.
func assertNoSecrets(t *testing.T, secrets []string, workflowIDs ...string) {
	t.Helper()
	logs, err := os.ReadFile(h.logs.Name())
	if err != nil {
		t.Fatal(err)
	}
	c := temporalClient(t)
	for _, id := range workflowIDs {
		hist := &historypb.History{}
		it := c.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			hist.Events = append(hist.Events, ev)
		}
		data, _ := protojson.Marshal(hist)
		if len(hist.Events) == 0 {
			t.Fatalf("history of %s is empty", id)
		}
		for _, s := range secrets {
			if len(s) < 4 {
				t.Fatalf("test secret %q too short to scan for", s)
			}
			if strings.Contains(string(data), s) {
				t.Errorf("a secret appears in the history of %s", id)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(string(logs), s) {
			t.Errorf("a secret appears in the kbr server/worker log")
		}
	}
}
