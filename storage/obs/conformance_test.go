package obs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/storagetest"
)

// TestConformance runs the storage conformance suite against the stack's
// MinIO, path-style (virtual-hosted addressing has its own test), with the
// default part size. Roots are siblings under one prefix per run; the server
// check stops and restarts MinIO through KBR_OBS_STOP / KBR_OBS_START.
func TestConformance(t *testing.T) {
	e := loadOBS(t)
	group := "conformance-" + randName(4)
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Backend {
			return newTestBackend(t, e, group)
		},
		WrongCredentials: func(t *testing.T) storage.Backend {
			wrong := filepath.Join(t.TempDir(), "wrong-secret")
			if err := os.WriteFile(wrong, []byte("not-the-secret-key-0123456789\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			tgt := e.target(runPrefix + "/" + group + "/wrong-credentials")
			tgt.SecretKey = secret.Ref{File: wrong}
			b, err := New(context.Background(), tgt)
			if err != nil {
				return storagetest.OpenFailed(tgt, err)
			}
			return b
		},
		StopServer:  func(t *testing.T) { runCmd(t, e.Stop) },
		StartServer: func(t *testing.T) { runCmd(t, e.Start) },
		FreeSpace:   false,
	})
}
