package nfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/storage"
)

func TestValidate(t *testing.T) {
	ok := storage.Target{Type: "NFS", Server: "nas01", SharePath: "/srv/backup", MountPoint: "/mnt/kbr", Path: "kafka"}
	for _, c := range []struct {
		name  string
		edit  func(*storage.Target)
		param string
	}{
		{"valid", func(*storage.Target) {}, ""},
		{"ipv4", func(t *storage.Target) { t.Server = "10.0.0.5" }, ""},
		{"ipv6 bracketed", func(t *storage.Target) { t.Server = "[fd00::5]" }, ""},
		{"ipv6 bare", func(t *storage.Target) { t.Server = "fd00::5" }, "target.server"},
		{"no server", func(t *storage.Target) { t.Server = "" }, "target.server"},
		{"server with space", func(t *storage.Target) { t.Server = "nas 01" }, "target.server"},
		{"server option-like", func(t *storage.Target) { t.Server = "-oX" }, "target.server"},
		{"no share", func(t *storage.Target) { t.SharePath = "" }, "target.share_path"},
		{"share root", func(t *storage.Target) { t.SharePath = "/" }, "target.share_path"},
		{"share root dotted", func(t *storage.Target) { t.SharePath = "/./" }, "target.share_path"},
		{"share relative", func(t *storage.Target) { t.SharePath = "srv/backup" }, "target.share_path"},
		{"share climbs", func(t *storage.Target) { t.SharePath = "/srv/../etc" }, "target.share_path"},
		{"no mount point", func(t *storage.Target) { t.MountPoint = "" }, "target.mount_point"},
		{"relative mount point", func(t *storage.Target) { t.MountPoint = "mnt" }, "target.mount_point"},
		{"mount point root", func(t *storage.Target) { t.MountPoint = "/" }, "target.mount_point"},
		{"path climbs", func(t *storage.Target) { t.Path = "../etc" }, "target.path"},
		{"bad mount command", func(t *storage.Target) { t.MountCommand = `mount "unterminated` }, "target.mount_command"},
		{"bad unmount command", func(t *storage.Target) { t.UnmountCommand = `umount 'x` }, "target.unmount_command"},
		{"custom commands", func(t *storage.Target) {
			t.MountCommand = "mount -t nfs4 -o vers=4.1 {server}:{share} {mount_point}"
			t.UnmountCommand = "umount -l {mount_point}"
		}, ""},
		{"existing mount", func(t *storage.Target) { *t = storage.Target{Type: "NFS", ExistingMount: true, MountPoint: "/mnt/nas"} }, ""},
		{"existing mount, share root ignored", func(t *storage.Target) { t.ExistingMount = true; t.SharePath = "/" }, ""},
		{"existing mount without mount point", func(t *storage.Target) { *t = storage.Target{Type: "NFS", ExistingMount: true} }, "target.mount_point"},
		{"existing mount with mount command", func(t *storage.Target) { t.ExistingMount = true; t.MountCommand = "mount x" }, "target.mount_command"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tgt := ok
			c.edit(&tgt)
			err := reg.Validate(tgt)
			if c.param == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var pe *storage.ParamError
			if !errors.As(err, &pe) || pe.Param != c.param {
				t.Fatalf("Validate = %v, want a ParamError on %s", err, c.param)
			}
		})
	}
}

// TestShareRootRefused: opening a target whose share is / fails permanently
// before anything runs, naming target.share_path.
func TestShareRootRefused(t *testing.T) {
	_, mp := mountDirs(t)
	_, err := reg.Open(t.Context(), storage.Target{Type: "nfs", Server: "nas", SharePath: "/", MountPoint: mp, MountCommand: "false"})
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "target.share_path") {
		t.Fatalf("Open with share_path / = %v; want a permanent error naming target.share_path", err)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"{server}": "nas 1", "{share}": "/srv/my share", "{mount_point}": "/mnt/a b"}
	for _, c := range []struct {
		in   string
		want []string
	}{
		{DefaultMountCommand, []string{"mount", "-t", "nfs", "-o", "nolock,soft,timeo=100", "nas 1:/srv/my share", "/mnt/a b"}},
		{DefaultUnmountCommand, []string{"umount", "/mnt/a b"}},
		{`sudo -n mount -o 'a b' "x\"y" z\ w {mount_point}`, []string{"sudo", "-n", "mount", "-o", "a b", `x"y`, "z w", "/mnt/a b"}},
		{`  spaced   out  `, []string{"spaced", "out"}},
		{`''`, []string{""}},
		{`echo $HOME;rm -rf / {share}`, []string{"echo", "$HOME;rm", "-rf", "/", "/srv/my share"}}, // no shell: nothing expands
	} {
		got, err := expand(c.in, vars)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "   ", `a "b`, `a 'b`, `a \`} {
		if _, err := expand(bad, vars); err == nil {
			t.Errorf("expand(%q) succeeded", bad)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/mnt/a\040b`: "/mnt/a b", `/x\011y\134z`: "/x\ty\\z", `/plain`: "/plain", `/odd\04`: `/odd\04`, `/n\999`: `/n\999`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExistingMount: a mount point is used as it is and never unmounted; a
// bare directory or a missing one is refused.
func TestExistingMount(t *testing.T) {
	share, mp := mountDirs(t)
	ctx := t.Context()

	_, err := New(ctx, storage.Target{Type: "NFS", ExistingMount: true, MountPoint: mp})
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "not a mount point") {
		t.Fatalf("existing_mount on a bare directory = %v; want a permanent 'not a mount point'", err)
	}
	_, err = New(ctx, storage.Target{Type: "NFS", ExistingMount: true, MountPoint: filepath.Join(mp, "missing")})
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("existing_mount on a missing directory = %v", err)
	}

	bindMount(t, share, mp)
	b, err := New(ctx, storage.Target{Type: "NFS", ExistingMount: true, MountPoint: mp, Path: "/backups/kafka/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.WriteFile(ctx, b, "a/f", strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(share, "backups/kafka/a/f")); err != nil || string(got) != "data" {
		t.Fatalf("file on the share: %q, %v", got, err)
	}
	if !strings.HasSuffix(b.String(), ":"+filepath.Join(mp, "backups/kafka")) || !strings.Contains(b.String(), "existing mount") {
		t.Errorf("String() = %q", b)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if m, _ := findMount(mp); m == nil {
		t.Fatal("Close unmounted an existing mount")
	}
	if _, err := b.Stat(ctx, "a/f"); err == nil || !storage.IsPermanent(err) {
		t.Errorf("Stat after Close = %v; want a permanent error", err)
	}

	// A mount that goes away under an open backend: writes are refused
	// rather than landing on the local disk beneath the mount point.
	b2, err := New(ctx, storage.Target{Type: "NFS", ExistingMount: true, MountPoint: mp})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	runCmd(t, "umount "+mp)
	_, err = b2.Create(ctx, "x")
	if err == nil || !strings.Contains(err.Error(), "no longer mounted") {
		t.Fatalf("Create after the mount went away = %v", err)
	}
	if entries, _ := os.ReadDir(mp); len(entries) != 0 {
		t.Fatalf("something was written under the bare mount point: %v", entries)
	}
}

// TestMountMode: kbr runs the mount command (here a bind mount of a local
// directory, which stands in for the server's export: the mount-management
// path is the same), shares the mount between backends of the process, and
// unmounts it when the last one closes.
func TestMountMode(t *testing.T) {
	share, mp := mountDirs(t)
	ctx := t.Context()
	tgt := storage.Target{
		Type: "NFS", Server: "localhost", SharePath: share, MountPoint: mp, Path: "kafka",
		MountCommand: "mount --bind {share} {mount_point}",
	}
	b1, err := New(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b1.Close() })
	if m, _ := findMount(mp); m == nil {
		t.Fatal("not mounted after New")
	}
	if _, err := storage.WriteFile(ctx, b1, "x/1", strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	b2, err := New(ctx, tgt) // a second activity on the same worker
	if err != nil {
		t.Fatalf("second backend on the same mount: %v", err)
	}
	t.Cleanup(func() { b2.Close() })
	if fi, err := b2.Stat(ctx, "x/1"); err != nil || fi.Size != 3 {
		t.Fatalf("Stat through the second backend: %+v, %v", fi, err)
	}
	if !strings.Contains(b1.String(), "localhost:"+share) || !strings.Contains(b1.String(), "mounted by kbr") {
		t.Errorf("String() = %q", b1)
	}

	other := tgt
	other.SharePath = share + "-other"
	if _, err := New(ctx, other); err == nil || !strings.Contains(err.Error(), "in use by this process") {
		t.Errorf("a different share on the same mount point = %v", err)
	}

	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	if m, _ := findMount(mp); m == nil {
		t.Fatal("unmounted while the second backend still uses the mount")
	}
	if err := b1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	if m, _ := findMount(mp); m != nil {
		t.Fatalf("still mounted after the last Close: %+v", m)
	}
	if got, err := os.ReadFile(filepath.Join(share, "kafka/x/1")); err != nil || string(got) != "one" {
		t.Fatalf("file on the share: %q, %v", got, err)
	}
	if entries, _ := os.ReadDir(mp); len(entries) != 0 {
		t.Fatalf("the mount point is not empty after unmounting: %v", entries)
	}

	// Opened again after the unmount: mounts again.
	b3, err := New(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b3.Stat(ctx, "x/1"); err != nil {
		t.Fatal(err)
	}
	if err := b3.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMountPointRefused: kbr mounts only on an empty directory nobody has
// mounted anything on.
func TestMountPointRefused(t *testing.T) {
	share, mp := mountDirs(t)
	ctx := t.Context()
	tgt := storage.Target{Type: "NFS", Server: "localhost", SharePath: share, MountPoint: mp, MountCommand: "mount --bind {share} {mount_point}"}

	os.WriteFile(filepath.Join(mp, "stray"), []byte("x"), 0o644)
	_, err := New(ctx, tgt)
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("mount on a non-empty directory = %v", err)
	}
	os.Remove(filepath.Join(mp, "stray"))

	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "operator's"), nil, 0o644)
	bindMount(t, other, mp)
	_, err = New(ctx, tgt)
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "already mounted") || !strings.Contains(err.Error(), "existing_mount") {
		t.Fatalf("mount on a mounted directory = %v", err)
	}
	if _, err := os.Stat(filepath.Join(mp, "operator's")); err != nil {
		t.Fatalf("the operator's mount was touched: %v", err)
	}

	// A missing mount point is created.
	tgt.MountPoint = filepath.Join(t.TempDir(), "new", "mnt")
	b, err := New(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMountCommandFailures: a missing program and a refused mount are
// permanent and say what ran; a command that "succeeds" without mounting
// is caught.
func TestMountCommandFailures(t *testing.T) {
	share, mp := mountDirs(t)
	ctx := t.Context()
	tgt := storage.Target{Type: "NFS", Server: "localhost", SharePath: share, MountPoint: mp}

	tgt.MountCommand = "/nonexistent/mount.kbr {mount_point}"
	_, err := New(ctx, tgt)
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "/nonexistent/mount.kbr "+mp) {
		t.Errorf("missing mount program = %v", err)
	}

	tgt.MountCommand = "true {mount_point}"
	_, err = New(ctx, tgt)
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "not a mount point") {
		t.Errorf("a mount command that mounts nothing = %v", err)
	}

	tgt.MountCommand = "mount --bind {share}/missing {mount_point}"
	_, err = New(ctx, tgt)
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "mount --bind "+share+"/missing "+mp) {
		t.Errorf("a refused mount = %v", err)
	}
	if m, _ := findMount(mp); m != nil {
		t.Errorf("mounted after failures: %+v", m)
	}

	// Unmount failure is reported by Close.
	tgt.MountCommand = "mount --bind {share} {mount_point}"
	tgt.UnmountCommand = "false {mount_point}"
	b, err := New(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err == nil || !strings.Contains(err.Error(), "unmount") {
		t.Errorf("Close with a failing unmount command = %v", err)
	}
	runCmd(t, "umount "+mp)
}

// TestKernelNFSMount: the default mount command against the stack's server.
// In mode "server" it mounts for real; in mode "existing-mount" the machine
// cannot mount NFS and the backend must say so, permanently, with mount's
// own message, and leave the mount point as it was.
func TestKernelNFSMount(t *testing.T) {
	e := loadNFS(t)
	_, mp := mountDirs(t)
	if e.Mode == "server" {
		tgt := storage.Target{Type: "NFS", Server: e.Server, SharePath: e.Share, MountPoint: mp, MountCommand: e.MountCmd, Path: "kernel-mount-" + randName(3)}
		b, err := New(t.Context(), tgt)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := findMount(mp)
		if m == nil || !strings.HasPrefix(m.fsType, "nfs") {
			t.Fatalf("mount = %+v, want an nfs mount", m)
		}
		if _, err := storage.WriteFile(t.Context(), b, "f", strings.NewReader("over nfs")); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(e.ExportDir, tgt.Path))
		return
	}
	// No server runs in this mode: any address gives the kernel's answer
	// before the network is used.
	tgt := storage.Target{Type: "NFS", Server: "127.0.0.1", SharePath: "/kbr", MountPoint: mp}
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	_, err := New(ctx, tgt)
	if err == nil {
		t.Fatal("mounting NFS succeeded although the stack found the kernel cannot: rerun `deploy/services/nfs.sh probe`")
	}
	t.Logf("default mount command: %v", err)
	if !strings.Contains(err.Error(), "mount -t nfs -o nolock,soft,timeo=100 127.0.0.1:/kbr "+mp) {
		t.Errorf("the error does not show the command: %v", err)
	}
	if strings.Contains(e.MountError, "No such device") && (!strings.Contains(err.Error(), "No such device") || !storage.IsPermanent(err)) {
		t.Errorf("want a permanent error with mount's 'No such device', got %v", err)
	}
	if m, _ := findMount(mp); m != nil {
		t.Errorf("mounted: %+v", m)
	}
}
