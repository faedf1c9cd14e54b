// Package storage is the one interface every backup target implements, and the
// registry that maps a path type (LocalDir, LocalHDFS, ...) to its backend.
//
// Contract, for every backend:
//   - Names are slash-separated paths relative to the backend's root. A name
//     that is absolute or climbs out with ".." is refused with ErrBadName.
//   - Writes stream: Create returns a Writer; nothing is visible under the name
//     until Commit returns nil. Abort, or a crash, leaves nothing visible. A
//     retried Create of the same name replaces any leftover partial write.
//   - Reads stream: Open returns the committed bytes; a missing name returns an
//     error for which errors.Is(err, ErrNotFound) holds.
//   - Delete of a missing name succeeds.
//   - Errors that retrying cannot fix (auth, permission, no space, not found,
//     bad name) are wrapped with Permanent; everything else may be retried.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Backend is a backup target.
type Backend interface {
	// Create starts a write of name. The data becomes visible only on Commit.
	Create(ctx context.Context, name string) (Writer, error)
	// Open reads a committed file.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Stat describes a committed file.
	Stat(ctx context.Context, name string) (FileInfo, error)
	// List returns every committed file whose name starts with prefix,
	// recursively, sorted by name. Partial writes are never listed.
	List(ctx context.Context, prefix string) ([]FileInfo, error)
	// Delete removes a file; a missing file is not an error.
	Delete(ctx context.Context, name string) error
	// FreeSpace reports the bytes available to new files, or an error
	// wrapping ErrUnsupported when the target cannot tell.
	FreeSpace(ctx context.Context) (uint64, error)
	// Close releases connections.
	Close() error
	// String describes the target for logs, without secrets.
	String() string
}

// Writer is an open write. Exactly one of Commit or Abort ends it.
type Writer interface {
	io.Writer
	Commit() error
	Abort() error
}

// FileInfo describes a committed file.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

var (
	ErrNotFound    = errors.New("not found")
	ErrBadName     = errors.New("bad file name")
	ErrUnsupported = errors.New("not supported by this target")
)

// PermanentError marks an error that retrying will not fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as permanent; nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	var p *PermanentError
	if errors.As(err, &p) {
		return err
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err (or what it wraps) was marked permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadName)
}

// CleanName validates a backend-relative name and returns it cleaned.
func CleanName(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") {
		return "", Permanent(fmt.Errorf("%w: %q must be a relative slash-separated path", ErrBadName, name))
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", Permanent(fmt.Errorf("%w: %q climbs out of the target root", ErrBadName, name))
		}
	}
	return path.Clean(name), nil
}

// Target selects and configures a backend. Type is the MRS path type; the
// other fields are the parameters of that type (see DESIGN.md). Secrets are
// never stored here, only references to them.
type Target struct {
	Type string `json:"type" yaml:"type"`
	// Path is the directory (LocalDir, NFS mount, HDFS, SFTP) or prefix (OBS).
	Path string `json:"path" yaml:"path"`
}

func (t Target) String() string { return t.Type + ":" + t.Path }

// Factory opens a backend for a target.
type Factory func(ctx context.Context, t Target) (Backend, error)

var (
	regMu    sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a path type available; backends call it from init.
func Register(pathType string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[strings.ToLower(pathType)] = f
}

// Types lists the registered path types.
func Types() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var out []string
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Open returns the backend for t.
func Open(ctx context.Context, t Target) (Backend, error) {
	regMu.RLock()
	f, ok := registry[strings.ToLower(t.Type)]
	regMu.RUnlock()
	if !ok {
		return nil, Permanent(fmt.Errorf("target.type: unknown path type %q (known: %s)", t.Type, strings.Join(Types(), ", ")))
	}
	return f(ctx, t)
}

// WriteFile writes r to name and commits it, aborting on any error.
func WriteFile(ctx context.Context, b Backend, name string, r io.Reader) (int64, error) {
	w, err := b.Create(ctx, name)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, r)
	if err != nil {
		_ = w.Abort()
		return n, fmt.Errorf("write %s: %w", name, err)
	}
	return n, w.Commit()
}
