package nfs

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
)

// nfsEnv is what deploy/services/nfs.sh set up: mode "server" (an NFS server
// the kernel client mounts) or "existing-mount" (no kernel NFS client here:
// a bind mount stands in for the operator's mount).
type nfsEnv struct {
	Mode                                string
	Server, Share, MountPoint, MountCmd string
	Stop, Start                         string
	ExistingDir, MountError, Dir        string
	ExportDir                           string // mode server: the server's exported directory
}

func loadNFS(t testing.TB) nfsEnv {
	t.Helper()
	v := testenv.Load(t).Vars
	e := nfsEnv{
		Mode: v["KBR_NFS_MODE"], Server: v["KBR_NFS_SERVER"], Share: v["KBR_NFS_SHARE"],
		MountPoint: v["KBR_NFS_MOUNT_POINT"], MountCmd: v["KBR_NFS_MOUNT_COMMAND"],
		Stop: v["KBR_NFS_STOP"], Start: v["KBR_NFS_START"],
		ExistingDir: v["KBR_NFS_EXISTING_DIR"], MountError: v["KBR_NFS_MOUNT_ERROR"], Dir: v["KBR_NFS_DIR"],
		ExportDir: v["KBR_NFS_EXPORT_DIR"],
	}
	switch e.Mode {
	case "server":
		if e.Server == "" || e.Share == "" || e.MountPoint == "" || e.MountCmd == "" {
			t.Fatalf("nfs: %s says mode server but lacks KBR_NFS_SERVER/SHARE/MOUNT_POINT/MOUNT_COMMAND; run `make stack-up`", testenv.EnvFile)
		}
	case "existing-mount":
		if e.ExistingDir == "" {
			t.Fatalf("nfs: %s says mode existing-mount but lacks KBR_NFS_EXISTING_DIR; run `make stack-up`", testenv.EnvFile)
		}
		if m, err := findMount(e.ExistingDir); err != nil || m == nil {
			t.Fatalf("nfs: %s is not mounted (%v); run `make stack-up`", e.ExistingDir, err)
		}
	default:
		t.Fatalf("nfs: %s has no KBR_NFS_MODE (NFS is not part of the running stack); run `make stack-up`", testenv.EnvFile)
	}
	return e
}

func randName(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// target is the stack's NFS target with path under it.
func (e nfsEnv) target(path string) storage.Target {
	if e.Mode == "server" {
		return storage.Target{Type: Type, Server: e.Server, SharePath: e.Share, MountPoint: e.MountPoint, MountCommand: e.MountCmd, Path: path}
	}
	return storage.Target{Type: Type, ExistingMount: true, MountPoint: e.ExistingDir, Path: path}
}

func runCmd(t testing.TB, command string) {
	t.Helper()
	f := strings.Fields(command)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
}

// bindMount mounts src on dst for the test and unmounts it at the end.
func bindMount(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("mount", "--bind", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind %s %s: %v: %s (the NFS tests need root: CAP_SYS_ADMIN)", src, dst, err, out)
	}
	t.Cleanup(func() {
		if m, _ := findMount(dst); m != nil {
			exec.Command("umount", dst).Run()
		}
	})
}

// mountDirs makes a "share" (the directory a bind mount stands in for the
// server's export with) and an empty mount point.
func mountDirs(t testing.TB) (share, mp string) {
	t.Helper()
	d := t.TempDir()
	share, mp = filepath.Join(d, "share"), filepath.Join(d, "mnt")
	for _, p := range []string{share, mp} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return share, mp
}
