// Package storage is the one interface every backup target implements, and the
// Registry type that maps a path type (LocalDir, LocalHDFS, ...) to its
// backend (storage/all builds the one that links every backend).
//
// Contract, for every backend:
//   - Names are slash-separated paths relative to the backend's root. A name
//     that is absolute or climbs out with ".." is refused with ErrBadName.
//   - Writes stream: Create returns a Writer; nothing is visible under the name
//     until Commit returns nil. Abort, or a crash, leaves nothing visible. A
//     retried Create of the same name replaces any leftover partial write.
//   - Reads stream: Open returns the committed bytes; a missing name returns an
//     error for which errors.Is(err, ErrNotFound) holds. OpenRange (see
//     RangeOpener) returns a part of them.
//   - Delete of a missing name succeeds.
//   - Errors that retrying cannot fix (auth, permission, no space, not found,
//     bad name) are wrapped with Permanent; everything else may be retried.
package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kbr-project/kbr/internal/secret"
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
	// ErrBadRange: a range read asked for bytes the file does not have
	// (see RangeOpener), or for a negative offset or length.
	ErrBadRange = errors.New("range outside the file")
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
	return errors.As(err, &p) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadName) || errors.Is(err, ErrBadRange)
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

// Target selects and configures a backend: Type is the MRS path type and the
// other fields its parameters (see DESIGN.md). Secrets appear only as
// references (secret.Ref), resolved by the worker that opens the backend,
// so a Target can sit in a workflow input and its history.
type Target struct {
	Type string `json:"type" yaml:"type"`
	// Path is the directory under which backups go: a local directory
	// (LocalDir), the directory under the mount point (NFS), the HDFS path
	// (LocalHDFS, RemoteHDFS), the directory inside the share (CIFS), the
	// remote directory (SFTP), or the key prefix in the bucket (OBS).
	Path string `json:"path" yaml:"path"`

	// Server is the NFS, CIFS or SFTP server's host name or address.
	Server string `json:"server,omitempty" yaml:"server,omitempty"`
	// Port of the CIFS (default 445) or SFTP (default 22) server.
	Port int `json:"port,omitempty" yaml:"port,omitempty"`
	// User is the CIFS, SFTP or HDFS user name.
	User string `json:"user,omitempty" yaml:"user,omitempty"`
	// Password for CIFS or SFTP.
	Password secret.Ref `json:"password,omitzero" yaml:"password,omitempty"`

	// HDFS (LocalHDFS, RemoteHDFS).
	NameService string    `json:"name_service,omitempty" yaml:"name_service,omitempty"` // default hacluster
	NameNodes   []string  `json:"name_nodes,omitempty" yaml:"name_nodes,omitempty"`     // host:port, one or an HA pair
	Kerberos    *Kerberos `json:"kerberos,omitempty" yaml:"kerberos,omitempty"`

	// NFS: SharePath is the server's exported path; MountPoint the local
	// directory it is mounted on. With ExistingMount the mount is the
	// operator's and kbr neither mounts nor unmounts.
	SharePath      string `json:"share_path,omitempty" yaml:"share_path,omitempty"`
	MountPoint     string `json:"mount_point,omitempty" yaml:"mount_point,omitempty"`
	ExistingMount  bool   `json:"existing_mount,omitempty" yaml:"existing_mount,omitempty"`
	MountCommand   string `json:"mount_command,omitempty" yaml:"mount_command,omitempty"`
	UnmountCommand string `json:"unmount_command,omitempty" yaml:"unmount_command,omitempty"`
	// Share is the CIFS share name.
	Share string `json:"share,omitempty" yaml:"share,omitempty"`
	// Signing is the CIFS signing policy: "auto" (the default: SMB
	// messages are signed when the server requires it) or "required"
	// (always signed; a server or session that cannot sign is refused).
	Signing string `json:"signing,omitempty" yaml:"signing,omitempty"`

	// SFTP: PrivateKey is the client key; KnownHostKey the server's public
	// key as a known_hosts or authorized_keys line; an unknown or changed
	// host key is refused.
	PrivateKey   secret.Ref `json:"private_key,omitzero" yaml:"private_key,omitempty"`
	KnownHostKey string     `json:"known_host_key,omitempty" yaml:"known_host_key,omitempty"`

	// OBS (S3-compatible): endpoint URL, bucket, region, keys, addressing.
	Endpoint  string     `json:"endpoint,omitempty" yaml:"endpoint,omitempty"`
	Bucket    string     `json:"bucket,omitempty" yaml:"bucket,omitempty"`
	Region    string     `json:"region,omitempty" yaml:"region,omitempty"`
	AccessKey secret.Ref `json:"access_key,omitzero" yaml:"access_key,omitempty"`
	SecretKey secret.Ref `json:"secret_key,omitzero" yaml:"secret_key,omitempty"`
	PathStyle bool       `json:"path_style,omitempty" yaml:"path_style,omitempty"`
	CAFile    string     `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
}

// Kerberos for a secured HDFS.
type Kerberos struct {
	Principal        string `json:"principal" yaml:"principal"`
	Keytab           string `json:"keytab" yaml:"keytab"` // a file on the worker
	Krb5Conf         string `json:"krb5_conf,omitempty" yaml:"krb5_conf,omitempty"`
	ServicePrincipal string `json:"service_principal,omitempty" yaml:"service_principal,omitempty"` // default nn/_HOST
}

func (t Target) String() string {
	switch {
	case t.Endpoint != "" || t.Bucket != "":
		return fmt.Sprintf("%s:%s/%s/%s", t.Type, t.Endpoint, t.Bucket, t.Path)
	case t.Server != "":
		host := t.Server
		if t.Port != 0 {
			host = net.JoinHostPort(strings.Trim(t.Server, "[]"), strconv.Itoa(t.Port))
		}
		switch {
		case t.Share != "":
			// CIFS: user@server[:port]/share:path
			return fmt.Sprintf("%s:%s@%s/%s:%s", t.Type, t.User, host, t.Share, t.Path)
		case t.SharePath != "":
			// NFS: server:share_path, then the path under the mount
			return fmt.Sprintf("%s:%s:%s:%s", t.Type, host, t.SharePath, t.Path)
		}
		return fmt.Sprintf("%s:%s@%s:%s", t.Type, t.User, host, t.Path)
	case len(t.NameNodes) > 0:
		return fmt.Sprintf("%s:%s%s", t.Type, strings.Join(t.NameNodes, ","), t.Path)
	}
	return t.Type + ":" + t.Path
}

// PartialMarker is in the name of every temporary file a write goes to
// before it is published: "<name>.kbr-partial-<random>" (backends that
// rename into place), or "<name>.kbr-partial" (written by older kbr
// versions). List never shows them.
const PartialMarker = ".kbr-partial"

// PartialName returns a temporary name for one write of name, unique to
// that write, so that concurrent attempts at the same name (a retried
// activity whose first attempt still runs) never write into each other's
// file.
func PartialName(name string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return name + PartialMarker + "-" + hex.EncodeToString(b[:])
}

// IsPartial reports whether name (a path or a base name) is a temporary
// name that PartialName, or the older fixed suffix, makes.
func IsPartial(name string) bool {
	base := path.Base(name)
	if strings.HasSuffix(base, PartialMarker) {
		return true
	}
	i := strings.LastIndex(base, PartialMarker+"-")
	if i < 0 {
		return false
	}
	suffix := base[i+len(PartialMarker)+1:]
	if suffix == "" {
		return false
	}
	for _, c := range suffix {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// PartialLister is implemented by backends whose writes go to temporary
// files that a killed worker or a lost connection can leave behind. List
// hides them; a prune finds them here (their ModTime tells how old they
// are: a write in progress keeps touching its file) and removes them with
// Delete.
type PartialLister interface {
	// ListPartial returns every temporary file whose name starts with
	// prefix, recursively, sorted by name.
	ListPartial(ctx context.Context, prefix string) ([]FileInfo, error)
}

// ListPartial lists b's leftover temporary files under prefix; it fails
// with a permanent error wrapping ErrUnsupported when b does not implement
// PartialLister. Decorators (storage/decorate) pass it through.
func ListPartial(ctx context.Context, b Backend, prefix string) ([]FileInfo, error) {
	pl, ok := b.(PartialLister)
	if !ok {
		return nil, Permanent(fmt.Errorf("%s: list partial files: %w", b, ErrUnsupported))
	}
	return pl.ListPartial(ctx, prefix)
}

// DirRemover is implemented by backends with real directories, which
// writes create and deleting the files leaves behind.
type DirRemover interface {
	// RemoveDir removes the directory name if it is empty. A missing
	// directory is not an error; a non-empty one is (and stays).
	RemoveDir(ctx context.Context, name string) error
}

// RemoveDir removes the empty directory name on b; it fails with a
// permanent error wrapping ErrUnsupported when b has no directories (does
// not implement DirRemover). Decorators (storage/decorate) pass it through.
func RemoveDir(ctx context.Context, b Backend, name string) error {
	dr, ok := b.(DirRemover)
	if !ok {
		return Permanent(fmt.Errorf("%s: remove directory: %w", b, ErrUnsupported))
	}
	return dr.RemoveDir(ctx, name)
}

// RemoveEmptyDirs removes the directories that held the files named (just
// deleted), deepest first, up to but not including the directory stop (""
// for the target's root). A directory that still holds anything stays:
// its removal fails and is counted in left, never reported as an error.
// Backends without directories (object stores) have nothing to remove.
func RemoveEmptyDirs(ctx context.Context, b Backend, files []string, stop string) (removed, left int, err error) {
	if _, ok := b.(DirRemover); !ok {
		return 0, 0, nil
	}
	stop = strings.TrimSuffix(stop, "/")
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f); d != "." && d != "/" && (stop == "" || strings.HasPrefix(d, stop+"/")); d = path.Dir(d) {
			dirs[d] = true
		}
	}
	ordered := make([]string, 0, len(dirs))
	for d := range dirs {
		ordered = append(ordered, d)
	}
	// Deepest first, so a parent is tried after its children.
	sort.Slice(ordered, func(i, j int) bool {
		if di, dj := strings.Count(ordered[i], "/"), strings.Count(ordered[j], "/"); di != dj {
			return di > dj
		}
		return ordered[i] < ordered[j]
	})
	for _, d := range ordered {
		if err := ctx.Err(); err != nil {
			return removed, left, err
		}
		switch err := RemoveDir(ctx, b, d); {
		case err == nil:
			removed++
		case errors.Is(err, ErrUnsupported):
			// A decorated backend without directories.
			return removed, left, nil
		default:
			left++
		}
	}
	return removed, left, nil
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
