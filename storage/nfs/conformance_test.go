package nfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/storagetest"
)

// TestConformance runs the storage conformance suite on the stack's NFS:
// in mode "server" through a real NFS mount the backend makes itself (and
// the server is stopped and restarted), in mode "existing-mount" (this
// sandbox: the kernel has no NFS client, see KBR_NFS_MOUNT_ERROR) on the
// stand-in bind mount, where there is no server to stop.
func TestConformance(t *testing.T) {
	e := loadNFS(t)
	t.Logf("NFS mode %s%s", e.Mode, map[bool]string{true: " (" + e.MountError + ")"}[e.MountError != ""])
	group := "conformance-" + randName(4)
	h := storagetest.Harness{
		New: func(t *testing.T) storage.Backend {
			rel := group + "/" + randName(6)
			tgt := e.target(rel)
			b, err := New(t.Context(), tgt)
			if err != nil {
				t.Fatalf("New(%+v): %v", tgt, err)
			}
			// Runs after the suite's Close: in mode server the share is
			// unmounted by then, so clean through the server's directory.
			root := b.Root()
			if e.Mode == "server" {
				root = filepath.Join(e.ExportDir, filepath.FromSlash(rel))
			}
			t.Cleanup(func() { os.RemoveAll(root) })
			return b
		},
		FreeSpace: true,
		Dirs:      true,
		Partial:   true,
	}
	if e.Mode == "server" {
		h.StopServer = func(t *testing.T) { runCmd(t, e.Stop) }
		h.StartServer = func(t *testing.T) { runCmd(t, e.Start) }
	}
	storagetest.Run(t, h)
	if e.Mode == "existing-mount" {
		os.Remove(filepath.Join(e.ExistingDir, group))
	} else {
		os.Remove(filepath.Join(e.ExportDir, group))
	}
}
