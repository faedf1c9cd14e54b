// Package dirtree is what the file-like backends (LocalDir, CIFS, SFTP,
// HDFS) share about a directory tree under a root: mapping names to paths,
// the prefix walk behind List and ListPartial, and creating directories.
// Each backend supplies the one or two calls that differ (read a
// directory, make one), over its own client.
package dirtree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kbr-project/kbr/storage"
)

// Entry is one entry of a directory as a backend reads it.
type Entry struct {
	Name    string // base name
	Dir     bool
	Regular bool // a plain file (not a link, device, socket...)
	Size    int64
	ModTime time.Time
}

// ReadDir lists the directory dir, a slash-separated path relative to the
// root ("" for the root itself). A directory that does not exist, or a
// name that is not a directory, fails with an error wrapping
// fs.ErrNotExist: there is nothing under it.
type ReadDir func(ctx context.Context, dir string) ([]Entry, error)

// Join maps a backend-relative name to its path under root (slash
// separated): the name cleaned (storage.CleanName), and root/name.
func Join(root, name string) (clean, full string, err error) {
	clean, err = storage.CleanName(name)
	if err != nil {
		return "", "", err
	}
	return clean, path.Join(root, clean), nil
}

// JoinNew is Join for a name about to be created: it also refuses the
// names of partial writes, which List would never show.
func JoinNew(target, root, name string) (clean, full string, err error) {
	clean, full, err = Join(root, name)
	if err != nil {
		return "", "", err
	}
	if storage.IsPartial(clean) {
		return "", "", storage.Permanent(fmt.Errorf("%s: create %q: %w: %s names are reserved for partial writes", target, clean, storage.ErrBadName, storage.PartialMarker))
	}
	return clean, full, nil
}

// CheckPrefix refuses a list prefix that climbs out of the root.
func CheckPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	_, err := storage.CleanName(strings.TrimSuffix(prefix, "/"))
	return err
}

// List returns the regular files whose names start with prefix,
// recursively, sorted by name: committed files, or with partial only the
// temporary files of writes (storage.IsPartial, which knows the names of
// every kbr version). It reads only the directories that can hold such
// names, starting at the deepest one the prefix names.
func List(ctx context.Context, readDir ReadDir, prefix string, partial bool) ([]storage.FileInfo, error) {
	if err := CheckPrefix(prefix); err != nil {
		return nil, err
	}
	start := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = prefix[:i]
	}
	var out []storage.FileInfo
	var walk func(rel string) error
	walk = func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := readDir(ctx, rel)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // no such directory: nothing under it
			}
			return err
		}
		for _, e := range entries {
			name := e.Name
			if rel != "" {
				name = rel + "/" + name
			}
			switch {
			case e.Dir:
				// Descend only where names can still match the prefix.
				if strings.HasPrefix(name+"/", prefix) || strings.HasPrefix(prefix, name+"/") {
					if err := walk(name); err != nil {
						return err
					}
				}
			case e.Regular && storage.IsPartial(name) == partial && strings.HasPrefix(name, prefix):
				out = append(out, storage.FileInfo{Name: name, Size: e.Size, ModTime: e.ModTime})
			}
		}
		return nil
	}
	if err := walk(start); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// MkdirAll creates dir and its parents (slash-separated paths as the
// backend's client takes them), tolerating concurrent creators. mkdir
// creates one directory whose parent exists; isDir tells whether a path is
// a directory, failing with an error wrapping fs.ErrNotExist when nothing
// is there.
func MkdirAll(dir string, mkdir func(string) error, isDir func(string) (bool, error)) error {
	if dir == "" || dir == "." || dir == "/" {
		return nil
	}
	err := mkdir(dir)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		// Already there (ours or a concurrent creator's), something else
		// is, or (servers that answer only "failure") the parent is
		// missing: what is there now decides.
		ok, serr := isDir(dir)
		switch {
		case serr == nil && ok:
			return nil
		case serr == nil:
			return storage.Permanent(fmt.Errorf("%s exists and is not a directory", dir))
		case !errors.Is(serr, fs.ErrNotExist):
			return err
		}
	}
	if err := MkdirAll(path.Dir(dir), mkdir, isDir); err != nil {
		return err
	}
	if err := mkdir(dir); err != nil {
		if ok, serr := isDir(dir); serr == nil && ok {
			return nil
		}
		return err
	}
	return nil
}

// IgnoreMissing drops an error that says the name does not exist: a delete
// of a missing name succeeds.
func IgnoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
