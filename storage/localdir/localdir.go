// Package localdir is the LocalDir backend: a directory on a local (or
// already mounted) file system. Writes go to "<name>.kbr-partial-<random>" and are
// renamed into place on Commit after an fsync, so a file is either complete
// or invisible; a retried write of the same name truncates the leftover.
package localdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/internal/dirtree"
)

// Type is the MRS path type of this backend (target.type).
const Type = "LocalDir"

// Dir is a LocalDir backend rooted at a directory.
type Dir struct{ root string }

var _ storage.Backend = (*Dir)(nil)

// New opens root, creating it if needed.
func New(root string) (*Dir, error) {
	if root == "" {
		return nil, storage.Permanent(errors.New("target.path: LocalDir needs a directory"))
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, storage.Permanent(fmt.Errorf("target.path %q: %w", root, err))
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, classify(fmt.Errorf("target.path %q: %w", abs, err))
	}
	return &Dir{root: abs}, nil
}

func (d *Dir) String() string { return "LocalDir:" + d.root }
func (d *Dir) Close() error   { return nil }

// Root is the absolute directory.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(name string) (string, error) {
	_, full, err := dirtree.Join(d.root, name)
	return full, err
}

// classify marks errors that retrying cannot fix as permanent.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return storage.Permanent(fmt.Errorf("%w: %w", storage.ErrNotFound, err))
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EROFS),
		errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return storage.Permanent(err)
	}
	return err
}

type writer struct {
	f          *os.File
	tmp, final string
	done       bool
}

func (d *Dir) Create(ctx context.Context, name string) (storage.Writer, error) {
	_, p, err := dirtree.JoinNew(d.String(), d.root, name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, classify(fmt.Errorf("create %s: %w", name, err))
	}
	tmp := storage.PartialName(p)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, classify(fmt.Errorf("create %s: %w", name, err))
	}
	return &writer{f: f, tmp: tmp, final: p}, nil
}

func (w *writer) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err != nil {
		return n, classify(fmt.Errorf("write %s: %w", w.final, err))
	}
	return n, nil
}

func (w *writer) Commit() error {
	if w.done {
		return errors.New("write already ended")
	}
	w.done = true
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		os.Remove(w.tmp)
		return classify(fmt.Errorf("sync %s: %w", w.final, err))
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.tmp)
		return classify(fmt.Errorf("close %s: %w", w.final, err))
	}
	if err := os.Rename(w.tmp, w.final); err != nil {
		os.Remove(w.tmp)
		return classify(fmt.Errorf("publish %s: %w", w.final, err))
	}
	return syncDir(filepath.Dir(w.final))
}

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return classify(err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return classify(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return classify(fmt.Errorf("sync dir %s: %w", dir, err))
	}
	return nil
}

func (d *Dir) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, classify(fmt.Errorf("open %s: %w", name, err))
	}
	return f, nil
}

// OpenRange reads length bytes (-1: to the end) of name from offset on
// (storage.RangeOpener): a seek. The file's size, from the open handle,
// decides whether the range lies within it.
func (d *Dir) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.CheckRange(name, offset, length); err != nil {
		return nil, err
	}
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, classify(fmt.Errorf("open %s: %w", name, err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, classify(fmt.Errorf("stat %s: %w", name, err))
	}
	size := st.Size()
	if offset > size || (length >= 0 && offset+length > size) {
		f.Close()
		return nil, storage.RangeError(d.String(), name, offset, length, size)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, classify(fmt.Errorf("seek %s to %d: %w", name, offset, err))
	}
	if length < 0 {
		length = size - offset
	}
	return &storage.LimitedReader{R: f, N: length, OnShort: func() error {
		// The file shrank under the read.
		return storage.RangeError(d.String(), name, offset, length, -1)
	}}, nil
}

var (
	_ storage.RangeOpener   = (*Dir)(nil)
	_ storage.PartialLister = (*Dir)(nil)
)

func (d *Dir) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	p, err := d.path(name)
	if err != nil {
		return storage.FileInfo{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return storage.FileInfo{}, classify(fmt.Errorf("stat %s: %w", name, err))
	}
	return storage.FileInfo{Name: name, Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (d *Dir) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	return d.list(ctx, prefix, false)
}

// ListPartial lists the temporary files of unfinished writes under prefix
// (storage.PartialLister), for a prune to remove.
func (d *Dir) ListPartial(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	return d.list(ctx, prefix, true)
}

func (d *Dir) list(ctx context.Context, prefix string, partial bool) ([]storage.FileInfo, error) {
	out, err := dirtree.List(ctx, d.readDir, prefix, partial)
	if err != nil {
		return nil, classify(fmt.Errorf("list %q: %w", prefix, err))
	}
	return out, nil
}

// readDir lists one directory for dirtree.List; a file where a directory
// was looked for has nothing under it.
func (d *Dir) readDir(_ context.Context, dir string) ([]dirtree.Entry, error) {
	des, err := os.ReadDir(filepath.Join(d.root, filepath.FromSlash(dir)))
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	out := make([]dirtree.Entry, 0, len(des))
	for _, e := range des {
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the directory was read
		}
		if err != nil {
			return nil, err
		}
		// Everything but a directory counts as a file, links included.
		out = append(out, dirtree.Entry{Name: e.Name(), Dir: e.IsDir(), Regular: !e.IsDir(), Size: info.Size(), ModTime: info.ModTime()})
	}
	return out, nil
}

func (d *Dir) Delete(ctx context.Context, name string) error {
	return d.remove("delete", name, os.Remove)
}

// remove runs rm (unlink or rmdir) on name; a missing one is not an error.
func (d *Dir) remove(op, name string, rm func(string) error) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := rm(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return classify(fmt.Errorf("%s %s: %w", op, name, err))
	}
	return nil
}

// RemoveDir removes an empty directory (storage.DirRemover); rmdir(2)
// refuses a file and a directory that is not empty.
func (d *Dir) RemoveDir(ctx context.Context, name string) error {
	return d.remove("remove directory", name, syscall.Rmdir)
}

var _ storage.DirRemover = (*Dir)(nil)

func (d *Dir) FreeSpace(ctx context.Context) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.root, &st); err != nil {
		return 0, classify(fmt.Errorf("statfs %s: %w", d.root, err))
	}
	return st.Bavail * uint64(st.Bsize), nil
}
