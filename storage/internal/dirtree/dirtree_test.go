package dirtree

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kbr-project/kbr/storage"
)

// osReadDir reads a real directory tree, as the LocalDir backend does.
func osReadDir(root string) ReadDir {
	return func(_ context.Context, dir string) ([]Entry, error) {
		des, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			return nil, err
		}
		var out []Entry
		for _, d := range des {
			fi, err := d.Info()
			if err != nil {
				continue
			}
			out = append(out, Entry{Name: d.Name(), Dir: d.IsDir(), Regular: fi.Mode().IsRegular(), Size: fi.Size(), ModTime: fi.ModTime()})
		}
		return out, nil
	}
}

// TestList guards against the prefix walk listing partial files as
// committed (or missing those of older kbr versions), names that only look
// like the prefix, or what is not a plain file.
func TestList(t *testing.T) {
	root := t.TempDir()
	files := []string{"a/b/seg", "a/b/seg.kbr-partial-0123abcd", "a/b/old.kbr-partial", "a/bc/x", "a/c", "top"}
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("top", filepath.Join(root, "a/link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix  string
		partial bool
		want    []string
	}{
		{"", false, []string{"a/b/seg", "a/bc/x", "a/c", "top"}},
		{"a/b", false, []string{"a/b/seg", "a/bc/x"}},
		{"a/b/", false, []string{"a/b/seg"}},
		{"a/b/se", false, []string{"a/b/seg"}},
		{"missing/", false, nil},
		{"", true, []string{"a/b/old.kbr-partial", "a/b/seg.kbr-partial-0123abcd"}},
		{"a/b/seg", true, []string{"a/b/seg.kbr-partial-0123abcd"}},
	} {
		got, err := List(context.Background(), osReadDir(root), c.prefix, c.partial)
		if err != nil {
			t.Fatalf("List(%q, %v): %v", c.prefix, c.partial, err)
		}
		var names []string
		for _, f := range got {
			names = append(names, f.Name)
			if f.Size != int64(len(f.Name)) || time.Since(f.ModTime) > time.Hour {
				t.Errorf("List(%q): %+v, want size %d and a recent time", c.prefix, f, len(f.Name))
			}
		}
		if !slices.Equal(names, c.want) {
			t.Errorf("List(%q, partial %v) = %v, want %v", c.prefix, c.partial, names, c.want)
		}
	}
	if _, err := List(context.Background(), osReadDir(root), "../x", false); !errors.Is(err, storage.ErrBadName) {
		t.Errorf("List(../x) = %v, want ErrBadName", err)
	}
}

// TestMkdirAll guards against a creator that fails when another made the
// directory first, or that accepts a file where a directory should be.
func TestMkdirAll(t *testing.T) {
	root := t.TempDir()
	mkdir := func(d string) error { return os.Mkdir(d, 0o755) }
	isDir := func(d string) (bool, error) {
		fi, err := os.Stat(d)
		if err != nil {
			return false, err
		}
		return fi.IsDir(), nil
	}
	d := filepath.Join(root, "a/b/c")
	for range 2 { // the second time, everything exists
		if err := MkdirAll(d, mkdir, isDir); err != nil {
			t.Fatalf("MkdirAll(%s): %v", d, err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := MkdirAll(filepath.Join(root, "f"), mkdir, isDir)
	if err == nil || !storage.IsPermanent(err) {
		t.Errorf("MkdirAll over a file = %v, want a permanent error", err)
	}
	if err := MkdirAll(filepath.Join(root, "f/g"), mkdir, isDir); err == nil {
		t.Errorf("MkdirAll under a file succeeded")
	}
	if IgnoreMissing(&fs.PathError{Op: "remove", Path: "x", Err: fs.ErrNotExist}) != nil {
		t.Errorf("IgnoreMissing kept a not-exist error")
	}
}
