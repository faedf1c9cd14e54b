package localdir

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/storage"
)

func TestContract(t *testing.T) {
	ctx := context.Background()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Nothing is visible before Commit; Abort leaves nothing.
	w, err := d.Create(ctx, "a/b/file")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello"))
	if _, err := d.Stat(ctx, "a/b/file"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("uncommitted file visible: %v", err)
	}
	if fs, _ := d.List(ctx, ""); len(fs) != 0 {
		t.Errorf("partial write listed: %v", fs)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	rc, err := d.Open(ctx, "a/b/file")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Errorf("read %q, want hello", b)
	}
	w, _ = d.Create(ctx, "a/aborted")
	w.Write([]byte("x"))
	w.Abort()
	entries, _ := os.ReadDir(filepath.Join(d.Root(), "a"))
	for _, e := range entries {
		if strings.Contains(e.Name(), "aborted") {
			t.Errorf("aborted write left %s", e.Name())
		}
	}
	// List by prefix, sorted.
	storage.WriteFile(ctx, d, "a/b/file2", strings.NewReader("2"))
	storage.WriteFile(ctx, d, "c", strings.NewReader("3"))
	fs, err := d.List(ctx, "a/b/")
	if err != nil || len(fs) != 2 || fs[0].Name != "a/b/file" || fs[1].Name != "a/b/file2" {
		t.Errorf("List(a/b/) = %v, %v", fs, err)
	}
	// Delete is idempotent.
	if err := d.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "c"); err != nil {
		t.Errorf("second delete: %v", err)
	}
	// Names escaping the root are refused, permanently.
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", ""} {
		if _, err := d.Create(ctx, bad); err == nil || !storage.IsPermanent(err) {
			t.Errorf("Create(%q) = %v, want a permanent bad-name error", bad, err)
		}
	}
	if free, err := d.FreeSpace(ctx); err != nil || free == 0 {
		t.Errorf("FreeSpace = %d, %v", free, err)
	}
	// A missing file is a permanent not-found.
	if _, err := d.Open(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) || !storage.IsPermanent(err) {
		t.Errorf("Open(nope) = %v", err)
	}
}

// The directories RemoveEmptyDirs reports removed are gone from the disk,
// the stop directory and a directory with a foreign file stay, and RemoveDir
// never removes a file.
func TestRemoveEmptyDirsOnDisk(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"task/rp1/t/p0.seg", "task/rp1/t/p1.seg", "task/rp2/p0.seg"} {
		w, err := d.Create(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "task/rp2/operator-notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	gone := []string{"task/rp1/t/p0.seg", "task/rp1/t/p1.seg", "task/rp2/p0.seg"}
	for _, n := range gone {
		if err := d.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	removed, left, err := storage.RemoveEmptyDirs(ctx, d, gone, "task/")
	if err != nil || removed != 2 || left != 1 {
		t.Fatalf("RemoveEmptyDirs = %d, %d, %v; want 2 removed (rp1/t, rp1), 1 left (rp2)", removed, left, err)
	}
	for p, want := range map[string]bool{"task": true, "task/rp1": false, "task/rp1/t": false, "task/rp2/operator-notes.txt": true} {
		if _, err := os.Stat(filepath.Join(root, p)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", p, err == nil, want)
		}
	}
	if err := d.RemoveDir(ctx, "task/rp2/operator-notes.txt"); err == nil {
		t.Errorf("RemoveDir of a file succeeded")
	}
	if _, err := os.Stat(filepath.Join(root, "task/rp2/operator-notes.txt")); err != nil {
		t.Errorf("RemoveDir of a file removed it: %v", err)
	}
}
