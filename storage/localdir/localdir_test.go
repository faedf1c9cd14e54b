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
