// Package nfs is the NFS backend, the MRS way: the server's shared path is
// mounted on a local mount point before the run and unmounted after it, or
// an existing mount is used. The files themselves are handled by the LocalDir
// backend on <mount point>/<target.path>, so writes are published the same
// way (a "<name>.kbr-partial-<random>" file renamed into place after an
// fsync).
//
// Mount mode (existing_mount false): opening the backend runs the mount
// command (default DefaultMountCommand) with {server}, {share} and
// {mount_point} replaced, without a shell; Close runs the unmount command
// (default DefaultUnmountCommand). Backends of one process that share a mount
// point share the mount: the first opened mounts, the last closed unmounts.
// The mount point must be an empty directory that is not mounted (it is
// created when missing); one that is already mounted by someone else is
// refused, since unmounting it later would pull the ground from under its
// owner.
//
// Existing-mount mode (existing_mount true): the operator's mount is used and
// never unmounted; the mount point must be a mount point (an entry of
// /proc/self/mountinfo), not merely a directory, because writing into the
// bare directory of a dropped mount would fill the local disk unnoticed.
//
// Every Create checks that the mount point is still mounted, for the same
// reason.
package nfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/localdir"
)

// Type is the MRS path type of this backend (target.type).
const Type = "NFS"

const (
	// DefaultMountCommand mounts the share; nolock because the backup
	// never locks files, soft with timeo=100 (10 s) so a dead server makes
	// I/O fail (and the activity retry) rather than hang forever.
	DefaultMountCommand = "mount -t nfs -o nolock,soft,timeo=100 {server}:{share} {mount_point}"
	// DefaultUnmountCommand unmounts it.
	DefaultUnmountCommand = "umount {mount_point}"
)

// commandTimeout bounds one mount or unmount command.
const commandTimeout = 3 * time.Minute

// Backend is an NFS target: LocalDir on the mounted share.
type Backend struct {
	*localdir.Dir
	target     storage.Target
	mountPoint string
	mount      *mountRef // nil with existing_mount

	mu     sync.Mutex
	closed bool
}

var _ storage.Backend = (*Backend)(nil)

// New mounts the share (unless target.existing_mount) and opens
// <mount_point>/<path>.
func New(ctx context.Context, t storage.Target) (*Backend, error) {
	if err := Validate(t); err != nil {
		return nil, storage.Permanent(err)
	}
	mp := filepath.Clean(t.MountPoint)
	b := &Backend{target: t, mountPoint: mp}
	if t.ExistingMount {
		st, err := os.Stat(mp)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point %s does not exist (with existing_mount the share must be mounted there before the run)", b, mp))
		case err != nil:
			return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point: %w", b, err))
		case !st.IsDir():
			return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point %s is not a directory", b, mp))
		}
		m, err := findMount(mp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b, err)
		}
		if m == nil {
			return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point %s is a directory but not a mount point (with existing_mount the share must be mounted there; writing into the bare directory would fill the local disk)", b, mp))
		}
	} else {
		ref, err := acquire(ctx, t, mp)
		if err != nil {
			return nil, err
		}
		b.mount = ref
	}
	dir, err := localdir.New(filepath.Join(mp, filepath.FromSlash(relPath(t.Path))))
	if err != nil {
		if b.mount != nil {
			_ = b.mount.release()
		}
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	b.Dir = dir
	return b, nil
}

// relPath is target.path relative to the mount point ("" for its root).
func relPath(p string) string {
	p = strings.Trim(filepath.ToSlash(p), "/")
	if p == "" || p == "." {
		return ""
	}
	return filepath.ToSlash(filepath.Clean(p))
}

// String names the share, the mount point and, after the last colon, the
// directory the files go to.
func (b *Backend) String() string {
	t := b.target
	root := filepath.Join(b.mountPoint, filepath.FromSlash(relPath(t.Path)))
	if t.ExistingMount {
		return fmt.Sprintf("NFS(existing mount on %s):%s", b.mountPoint, root)
	}
	return fmt.Sprintf("NFS(%s:%s on %s, mounted by kbr):%s", t.Server, t.SharePath, b.mountPoint, root)
}

// Close unmounts what this backend mounted (the last backend of the process
// on that mount point unmounts). Operations after Close fail.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.mount == nil {
		return nil
	}
	if err := b.mount.release(); err != nil {
		return fmt.Errorf("%s: %w", b, err)
	}
	return nil
}

func (b *Backend) check() error {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return storage.Permanent(fmt.Errorf("%s: backend is closed", b))
	}
	return nil
}

// Create checks that the share is still mounted before it writes.
func (b *Backend) Create(ctx context.Context, name string) (storage.Writer, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	m, err := findMount(b.mountPoint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%s: %s is no longer mounted; refusing to write to the local disk beneath it", b, b.mountPoint)
	}
	return b.Dir.Create(ctx, name)
}

func (b *Backend) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.Dir.Open(ctx, name)
}

// OpenRange is LocalDir's seek on the mounted share (storage.RangeOpener).
func (b *Backend) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.Dir.OpenRange(ctx, name, offset, length)
}

// ListPartial lists the temporary files of unfinished writes
// (storage.PartialLister), for a prune to remove.
func (b *Backend) ListPartial(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.Dir.ListPartial(ctx, prefix)
}

// RemoveDir removes an empty directory (storage.DirRemover).
func (b *Backend) RemoveDir(ctx context.Context, name string) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.Dir.RemoveDir(ctx, name)
}

var (
	_ storage.RangeOpener   = (*Backend)(nil)
	_ storage.PartialLister = (*Backend)(nil)
	_ storage.DirRemover    = (*Backend)(nil)
)

func (b *Backend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if err := b.check(); err != nil {
		return storage.FileInfo{}, err
	}
	return b.Dir.Stat(ctx, name)
}

func (b *Backend) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.Dir.List(ctx, prefix)
}

func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := b.check(); err != nil {
		return err
	}
	return b.Dir.Delete(ctx, name)
}

// FreeSpace is what the NFS server reports for the share (statfs).
func (b *Backend) FreeSpace(ctx context.Context) (uint64, error) {
	if err := b.check(); err != nil {
		return 0, err
	}
	return b.Dir.FreeSpace(ctx)
}

// ---------------------------------------------------------------------------
// mounting

// mountRef is one process-wide mount, shared by the backends that use it.
type mountRef struct {
	mountPoint string
	source     string // server:share, to tell a conflicting target
	unmount    []string
	refs       int
}

var (
	mountsMu sync.Mutex
	mounts   = map[string]*mountRef{}
)

// acquire mounts t's share on mp, or shares this process' mount of it.
func acquire(ctx context.Context, t storage.Target, mp string) (*mountRef, error) {
	name := "NFS:" + t.Server + ":" + t.SharePath + " on " + mp
	mountsMu.Lock()
	defer mountsMu.Unlock()
	source := t.Server + ":" + t.SharePath
	if m := mounts[mp]; m != nil {
		if m.source != source {
			return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point %s is in use by this process for %s", name, mp, m.source))
		}
		m.refs++
		return m, nil
	}
	vars := map[string]string{"{server}": t.Server, "{share}": t.SharePath, "{mount_point}": mp}
	mountCmd, err := expand(orDefault(t.MountCommand, DefaultMountCommand), vars)
	if err != nil {
		return nil, storage.Permanent(&storage.ParamError{Param: "target.mount_command", Msg: err.Error()})
	}
	unmountCmd, err := expand(orDefault(t.UnmountCommand, DefaultUnmountCommand), vars)
	if err != nil {
		return nil, storage.Permanent(&storage.ParamError{Param: "target.unmount_command", Msg: err.Error()})
	}

	// The mount point: created when missing; else an empty directory that
	// nothing is mounted on.
	if existing, err := findMount(mp); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	} else if existing != nil {
		return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point %s is already mounted (%s %s); unmount it, or set existing_mount to use that mount", name, mp, existing.fsType, existing.source))
	}
	if err := os.MkdirAll(mp, 0o750); err != nil {
		return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point: %w", name, err))
	}
	entries, err := os.ReadDir(mp)
	if err != nil {
		return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point: %w", name, err))
	}
	if len(entries) > 0 {
		return nil, storage.Permanent(fmt.Errorf("%s: target.mount_point %s is not empty (%d entries, e.g. %q); kbr mounts only on an empty directory", name, mp, len(entries), entries[0].Name()))
	}

	if err := run(ctx, mountCmd); err != nil {
		return nil, fmt.Errorf("%s: mount: %w", name, err)
	}
	if m, err := findMount(mp); err != nil || m == nil {
		if err == nil {
			err = storage.Permanent(fmt.Errorf("the mount command succeeded but %s is not a mount point (check target.mount_command)", mp))
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ref := &mountRef{mountPoint: mp, source: source, unmount: unmountCmd, refs: 1}
	mounts[mp] = ref
	return ref, nil
}

// release drops one reference; the last one unmounts.
func (m *mountRef) release() error {
	mountsMu.Lock()
	defer mountsMu.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	delete(mounts, m.mountPoint)
	// Files may be closing on the server still: retry a busy unmount briefly.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		err = run(ctx, m.unmount)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", m.mountPoint, err)
	}
	if still, ferr := findMount(m.mountPoint); ferr == nil && still != nil {
		return fmt.Errorf("unmount %s: the unmount command succeeded but it is still mounted (%s)", m.mountPoint, still.source)
	}
	return nil
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// run executes argv without a shell. A missing program or a refusal is
// permanent; other failures (a server that does not answer) may be retried.
func run(ctx context.Context, argv []string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	full := fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	if msg != "" {
		full = fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return storage.Permanent(full)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w (timed out)", full)
	}
	if permanentMountFailure(msg) {
		return storage.Permanent(full)
	}
	return full
}

// permanentMountFailure recognises mount and umount messages that no retry
// fixes; a server that does not answer (timed out, refused, unreachable) is
// left retryable.
func permanentMountFailure(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{
		"no such device", // no NFS support in the kernel
		"access denied", "permission denied", "operation not permitted", "must be superuser", "only root",
		"no such file or directory", "not a directory", "bad option", "wrong fs type",
		"unknown filesystem type", "does not exist", "not mounted",
	} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// mount table

type mountEntry struct{ mountPoint, fsType, source string }

// findMount returns the mount whose mount point is dir (symlinks resolved),
// or nil when dir is not a mount point.
func findMount(dir string) (*mountEntry, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var found *mountEntry
	for _, line := range strings.Split(string(data), "\n") {
		// id parent major:minor root mount-point options [optional...] - fstype source super-options
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		if unescapeMountinfo(f[4]) != real {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(f) {
			continue
		}
		// The last entry for a mount point is the one on top.
		found = &mountEntry{mountPoint: real, fsType: f[sep+1], source: unescapeMountinfo(f[sep+2])}
	}
	return found, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space, ...) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return 0, false
		}
		v = v*8 + int(s[i]-'0')
	}
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}
