// Package hdfs is the LocalHDFS and RemoteHDFS backend: a directory in HDFS,
// spoken to natively (Hadoop RPC and the DataNode transfer protocol) through
// github.com/colinmarc/hdfs/v2, with no Hadoop installation on the worker.
//
// RemoteHDFS names its NameNodes (one, or the two of an HA pair); LocalHDFS
// may leave them out and take those of its name service (default hacluster)
// from the Hadoop client configuration of the worker (HADOOP_CONF_DIR, else
// $HADOOP_HOME/etc/hadoop, else /etc/hadoop/conf). With two NameNodes the
// client uses whichever answers and is active: a NameNode that refuses the
// connection or answers StandbyException is skipped for 5 s.
//
// Writes go to "<name>.kbr-partial-<random>", a name of their own (two
// attempts at one name never share a file); Commit closes it (which waits
// until the DataNode pipeline has acknowledged every packet and the NameNode
// has completed the file) and renames it over the name with
// rename2(OVERWRITE), which replaces an existing file atomically. A partial
// file that a killed worker leaves (and the "<name>.kbr-partial" of kbr
// versions before) is hidden from List and found by ListPartial, for a prune
// to remove. Authentication is the user name (simple) or Kerberos with a
// keytab.
package hdfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gohdfs "github.com/colinmarc/hdfs/v2"
	krbclient "github.com/jcmturner/gokrb5/v8/client"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/internal/dirtree"
)

// Defaults of the knobs tests turn.
const (
	// defaultPoolSize is the most NameNode connections one backend opens.
	// colinmarc/hdfs sends one call at a time per connection, so concurrent
	// writers of small files wait for each other's round trips; the pool
	// grows only while every connection is busy.
	defaultPoolSize    = 16
	defaultDialTimeout = 5 * time.Second
	// defaultIOTimeout bounds one blocking call on a NameNode or DataNode
	// connection; a server silent for longer is treated as gone.
	defaultIOTimeout = 2 * time.Minute
	// defaultReconnectWait is how long an operation waits for a NameNode
	// that accepts connections again (colinmarc/hdfs rests an address 5 s
	// after a failure) before it reports the failure.
	defaultReconnectWait = 8 * time.Second
)

// The MRS path types of this backend (target.type).
const (
	// LocalType is the HDFS of the cluster's own site: its NameNodes may
	// come from the worker's Hadoop configuration.
	LocalType = "LocalHDFS"
	// RemoteType is another cluster's HDFS, whose NameNodes the target
	// names.
	RemoteType = "RemoteHDFS"
)

// options are the knobs tests turn; Open uses the defaults.
type options struct {
	poolSize      int
	dialTimeout   time.Duration
	ioTimeout     time.Duration
	reconnectWait time.Duration
	blockSize     int64 // 0: the NameNode's default
}

func defaultOptions() options {
	return options{
		poolSize:      defaultPoolSize,
		dialTimeout:   defaultDialTimeout,
		ioTimeout:     defaultIOTimeout,
		reconnectWait: defaultReconnectWait,
	}
}

// Backend is an HDFS directory. It is safe for concurrent use.
type Backend struct {
	typ       string
	root      string
	nameNodes []string
	user      string
	desc      string
	opts      options
	newClient func() (*gohdfs.Client, error)

	replication int
	blockSize   int64

	mu      sync.Mutex
	clients []*pooled // at least one; grows up to opts.poolSize
	growing bool      // a client is being connected
	closed  bool
}

// pooled is a client of the pool and how many operations use it.
type pooled struct {
	c    *gohdfs.Client
	busy atomic.Int32
}

var _ storage.Backend = (*Backend)(nil)

// New connects to the target's NameNode(s) and creates the target
// directory if it does not exist. A target without a type is RemoteHDFS.
func New(ctx context.Context, t storage.Target) (*Backend, error) {
	return open(ctx, t, defaultOptions())
}

func open(ctx context.Context, t storage.Target, o options) (*Backend, error) {
	typ := t.Type
	if typ == "" {
		typ = RemoteType
	}
	if err := validate(typ, t); err != nil {
		return nil, storage.Permanent(fmt.Errorf("target.%w", err))
	}
	nns, err := resolveNameNodes(typ, t)
	if err != nil {
		return nil, err
	}
	var (
		krb     *krbclient.Client
		spn     string
		hdfsUsr string
	)
	if t.Kerberos != nil {
		krb, spn, err = kerberosClient(t.Kerberos)
		if err != nil {
			return nil, err
		}
		hdfsUsr = krb.Credentials.UserName()
	} else if hdfsUsr, err = hdfsUser(t); err != nil {
		return nil, err
	}
	if o.poolSize < 1 {
		o.poolSize = 1
	}
	b := &Backend{
		typ:       typ,
		root:      cleanRoot(t.Path),
		nameNodes: nns,
		user:      hdfsUsr,
		opts:      o,
		blockSize: o.blockSize,
	}
	b.desc = fmt.Sprintf("%s:%s@%s:%s", typ, hdfsUsr, strings.Join(nns, ","), b.root)
	nnDialer := &net.Dialer{Timeout: o.dialTimeout, KeepAlive: 30 * time.Second}
	dnDialer := &net.Dialer{Timeout: o.dialTimeout, KeepAlive: 30 * time.Second}
	copts := gohdfs.ClientOptions{
		Addresses: nns,
		User:      hdfsUsr,
		NamenodeDialFunc: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nnDialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &rpcConn{Conn: c, timeout: o.ioTimeout}, nil
		},
		DatanodeDialFunc:             dnDialer.DialContext,
		KerberosClient:               krb,
		KerberosServicePrincipleName: spn,
	}
	b.newClient = func() (*gohdfs.Client, error) {
		c, err := gohdfs.NewClient(copts)
		if err != nil {
			return nil, err
		}
		// Fetch the server defaults once: colinmarc/hdfs caches them in the
		// client unguarded, so the first fetch must not race between writers.
		if _, err := c.ServerDefaults(); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *gohdfs.Client
	err = b.retry(ctx, func() error {
		var err error
		c, err = b.newClient()
		return err
	})
	if err != nil {
		return nil, b.classify("connect", "", err)
	}
	b.clients = []*pooled{{c: c}}
	defs, err := c.ServerDefaults()
	if err != nil {
		b.Close()
		return nil, b.classify("connect", "", err)
	}
	b.replication = max(defs.Replication, 1)
	if b.blockSize <= 0 {
		b.blockSize = defs.BlockSize
	}
	if b.blockSize <= 0 {
		b.blockSize = 128 << 20
	}
	err = b.retry(ctx, func() error { return c.MkdirAll(b.root, 0o755) })
	if err != nil {
		b.Close()
		return nil, b.classify("create target directory", b.root, err)
	}
	return b, nil
}

func (b *Backend) String() string { return b.desc }

// Root is the target directory.
func (b *Backend) Root() string { return b.root }

// Close closes every NameNode connection; open reads and writes fail after it.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var first error
	for _, p := range b.clients {
		if err := p.c.Close(); err != nil && first == nil {
			first = err
		}
	}
	b.clients = nil
	return first
}

var errClosed = errors.New("backend closed")

// acquire returns the least busy client of the pool. While every client is
// busy and the pool is not full it connects one more (outside the lock, one
// at a time); if that fails, the least busy client serves. release it when
// the operation ends.
func (b *Backend) acquire() (*pooled, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, storage.Permanent(fmt.Errorf("%s: %w", b.desc, errClosed))
	}
	best := b.clients[0]
	for _, p := range b.clients[1:] {
		if p.busy.Load() < best.busy.Load() {
			best = p
		}
	}
	grow := best.busy.Load() > 0 && len(b.clients) < b.opts.poolSize && !b.growing
	if grow {
		b.growing = true
	}
	best.busy.Add(1)
	b.mu.Unlock()
	if !grow {
		return best, nil
	}
	c, err := b.newClient()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.growing = false
	switch {
	case err != nil:
	case b.closed:
		c.Close()
	default:
		p := &pooled{c: c}
		p.busy.Add(1)
		b.clients = append(b.clients, p)
		best.release()
		best = p
	}
	return best, nil
}

func (p *pooled) release() { p.busy.Add(-1) }

// retry runs fn, and runs it again while colinmarc/hdfs has no NameNode
// connection but a NameNode accepts connections (it rests an address for 5 s
// after a failure, so the first calls after a NameNode restart would fail),
// for up to reconnectWait. When no NameNode accepts connections the failure
// is reported at once.
func (b *Backend) retry(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(b.opts.reconnectWait)
	for {
		err := fn()
		if err == nil || !unavailable(err) || time.Now().After(deadline) || !b.nameNodeListening(ctx) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// nameNodeListening reports whether any NameNode accepts a TCP connection.
func (b *Backend) nameNodeListening(ctx context.Context) bool {
	d := net.Dialer{Timeout: min(b.opts.dialTimeout, 2*time.Second)}
	for _, a := range b.nameNodes {
		if c, err := d.DialContext(ctx, "tcp", a); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

func (b *Backend) classify(op, name string, err error) error { return classify(b.desc, op, name, err) }

// abs maps a backend-relative name to its HDFS path. Besides storage.CleanName
// it refuses names HDFS cannot hold (':') and the root itself.
func (b *Backend) abs(name string) (string, string, error) {
	clean, full, err := dirtree.Join(b.root, name)
	if err != nil {
		return "", "", err
	}
	if strings.Contains(clean, ":") {
		return "", "", storage.Permanent(fmt.Errorf("%w: %q: HDFS names cannot contain ':'", storage.ErrBadName, name))
	}
	if clean == "." {
		return "", "", storage.Permanent(fmt.Errorf("%w: %q names the target root", storage.ErrBadName, name))
	}
	return clean, full, nil
}

// absNew is abs for a name to create: the names of partial writes are
// reserved.
func (b *Backend) absNew(name string) (string, string, error) {
	if _, _, err := dirtree.JoinNew(b.desc, b.root, name); err != nil {
		return "", "", err
	}
	return b.abs(name)
}

// deadline is the I/O deadline of one blocking call: the context's, or the
// I/O timeout from now, whichever comes first.
func (b *Backend) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(b.opts.ioTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// ---------------------------------------------------------------------------
// writes

type writer struct {
	b          *Backend
	p          *pooled // released when the write ends
	c          *gohdfs.Client
	ctx        context.Context
	fw         *gohdfs.FileWriter
	name       string
	tmp, final string
	blockSize  int64
	n          int64
	rolledAt   int64 // the offset of the last block boundary the file was reopened at
	err        error // the first failed Write; Commit refuses after it
	closed     bool  // fw closed
	done       bool
}

func (b *Backend) Create(ctx context.Context, name string) (storage.Writer, error) {
	clean, final, err := b.absNew(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: create %s: %w", b.desc, clean, err)
	}
	p, err := b.acquire()
	if err != nil {
		return nil, err
	}
	c := p.c
	tmp := storage.PartialName(final)
	var fw *gohdfs.FileWriter
	create := func() error {
		var err error
		fw, err = c.CreateFile(tmp, b.replication, b.blockSize, 0o644)
		return err
	}
	err = b.retry(ctx, create)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// The directory does not exist yet (the common case costs no mkdir).
		err = b.retry(ctx, func() error { return c.MkdirAll(path.Dir(final), 0o755) })
		if err == nil {
			err = b.retry(ctx, create)
		}
	}
	if err != nil {
		p.release()
		return nil, b.classify("create", clean, err)
	}
	return &writer{b: b, p: p, c: c, ctx: ctx, fw: fw, name: clean, tmp: tmp, final: final, blockSize: b.blockSize}, nil
}

// removeFile removes a file or an empty directory; a missing one is not an
// error.
func removeFile(c *gohdfs.Client, p string) error { return dirtree.IgnoreMissing(c.Remove(p)) }

var errEnded = errors.New("write already ended")

// Write streams p into the current block. At a block boundary the file is
// closed and reopened for append before the next byte: colinmarc/hdfs asks
// for the next block as soon as one is full, and a NameNode that has not yet
// heard from the DataNodes about the block before refuses that with
// NotReplicatedYetException, after which that client cannot continue the
// file. Closing waits for the blocks like Hadoop's own client does (retrying
// "complete"), and the append then starts the next block cleanly.
func (w *writer) Write(p []byte) (int, error) {
	switch {
	case w.done:
		return 0, fmt.Errorf("%s: write %s: %w", w.b.desc, w.name, errEnded)
	case w.err != nil:
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		if err := w.ctx.Err(); err != nil {
			w.err = fmt.Errorf("%s: write %s: %w", w.b.desc, w.name, err)
			return written, w.err
		}
		if w.n > 0 && w.n%w.blockSize == 0 && w.rolledAt != w.n {
			if err := w.roll(); err != nil {
				w.err = w.b.classify("write (next block)", w.name, err)
				return written, w.err
			}
			w.rolledAt = w.n
		}
		chunk := p[:min(int64(len(p)), w.blockSize-w.n%w.blockSize)]
		// The deadline covers this call only: between calls the DataNode
		// connection's acknowledgement reader must not time out.
		w.fw.SetDeadline(w.b.deadline(w.ctx))
		k, err := w.fw.Write(chunk)
		w.fw.SetDeadline(time.Time{})
		w.n += int64(k)
		written += k
		if err != nil {
			w.err = w.b.classify("write", w.name, err)
			return written, w.err
		}
		p = p[k:]
	}
	return written, nil
}

// roll closes the file at a block boundary and reopens it for append.
func (w *writer) roll() error {
	if err := w.close(); err != nil {
		return err
	}
	var fw *gohdfs.FileWriter
	err := w.b.retry(w.ctx, func() error {
		var err error
		fw, err = w.c.Append(w.tmp)
		return err
	})
	if err != nil {
		return err
	}
	w.fw, w.closed = fw, false
	return nil
}

func (w *writer) Commit() error {
	if w.done {
		return fmt.Errorf("%s: commit %s: %w", w.b.desc, w.name, errEnded)
	}
	w.done = true
	defer w.p.release()
	if w.err != nil {
		w.cleanup()
		return fmt.Errorf("%s: commit %s: an earlier write failed: %w", w.b.desc, w.name, w.err)
	}
	if err := w.ctx.Err(); err != nil {
		w.cleanup()
		return fmt.Errorf("%s: commit %s: %w", w.b.desc, w.name, err)
	}
	if err := w.close(); err != nil {
		w.cleanup()
		return w.b.classify("commit (close)", w.name, err)
	}
	err := w.b.retry(w.ctx, func() error { return w.c.Rename(w.tmp, w.final) })
	if err != nil && w.published() {
		// The rename went through but its answer was lost.
		err = nil
	}
	if err != nil {
		w.cleanup()
		return w.b.classify("commit (rename)", w.name, err)
	}
	return nil
}

// close closes the HDFS file: flushes, waits for the pipeline's
// acknowledgements and has the NameNode complete the file, retrying while
// the NameNode has not yet heard of the last block from the DataNodes (as
// Hadoop's client does).
func (w *writer) close() error {
	w.closed = true
	w.fw.SetDeadline(w.b.deadline(w.ctx))
	err := w.fw.Close()
	for wait := 5 * time.Millisecond; err != nil && gohdfs.IsErrReplicating(err) && wait < 10*time.Second; wait *= 2 {
		select {
		case <-w.ctx.Done():
			return w.ctx.Err()
		case <-time.After(wait):
		}
		err = w.fw.Close()
	}
	return err
}

// published reports whether the final name holds this write and the partial is gone.
func (w *writer) published() bool {
	fi, err := w.c.Stat(w.final)
	if err != nil || fi.IsDir() || fi.Size() != w.n {
		return false
	}
	_, err = w.c.Stat(w.tmp)
	return errors.Is(err, fs.ErrNotExist)
}

// cleanup removes the partial file, then releases the DataNode connection.
// It does not use the write's context: an abort after a cancellation must
// still clean up.
func (w *writer) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), w.b.opts.reconnectWait+w.b.opts.dialTimeout)
	defer cancel()
	err := w.b.retry(ctx, func() error { return removeFile(w.c, w.tmp) })
	if !w.closed {
		w.closed = true
		w.fw.SetDeadline(time.Now().Add(10 * time.Second))
		w.fw.Close() // fails (the file is gone); it only closes the pipeline
	}
	if err != nil {
		return w.b.classify("abort (remove partial)", w.name, err)
	}
	return nil
}

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.p.release()
	return w.cleanup()
}

// ---------------------------------------------------------------------------
// reads and metadata

type reader struct {
	b    *Backend
	ctx  context.Context
	fr   *gohdfs.FileReader
	name string
}

func (r *reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: read %s: %w", r.b.desc, r.name, err)
	}
	r.fr.SetDeadline(r.b.deadline(r.ctx))
	n, err := r.fr.Read(p)
	if err != nil && err != io.EOF {
		return n, r.b.classify("read", r.name, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.fr.Close() }

func (b *Backend) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	clean, full, err := b.abs(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: open %s: %w", b.desc, clean, err)
	}
	p, err := b.acquire()
	if err != nil {
		return nil, err
	}
	defer p.release()
	c := p.c
	var fr *gohdfs.FileReader
	err = b.retry(ctx, func() error {
		var err error
		fr, err = c.Open(full)
		return err
	})
	if err != nil {
		return nil, b.classify("open", clean, err)
	}
	if fr.Stat().IsDir() {
		fr.Close()
		return nil, b.classify("open", clean, &os.PathError{Op: "open", Path: full, Err: errIsDir})
	}
	return &reader{b: b, ctx: ctx, fr: fr, name: clean}, nil
}

// OpenRange reads length bytes (-1: to the end) of name from offset on
// (storage.RangeOpener): a seek on the file reader, which then reads from
// the DataNode holding that block. The size the NameNode reported on open
// decides whether the range lies within the file.
func (b *Backend) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.CheckRange(name, offset, length); err != nil {
		return nil, err
	}
	rc, err := b.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	r := rc.(*reader)
	size := r.fr.Stat().Size()
	if offset > size || (length >= 0 && offset+length > size) {
		r.Close()
		return nil, storage.RangeError(b.desc, r.name, offset, length, size)
	}
	if _, err := r.fr.Seek(offset, io.SeekStart); err != nil {
		r.Close()
		return nil, b.classify("seek", r.name, err)
	}
	if length < 0 {
		length = size - offset
	}
	return &storage.LimitedReader{R: r, N: length, OnShort: func() error {
		return storage.RangeError(b.desc, r.name, offset, length, -1)
	}}, nil
}

var (
	_ storage.RangeOpener   = (*Backend)(nil)
	_ storage.PartialLister = (*Backend)(nil)
)

// errIsDir: a directory is not a committed file, so it is "not found".
var errIsDir = fmt.Errorf("is a directory: %w", fs.ErrNotExist)

func (b *Backend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	clean, full, err := b.abs(name)
	if err != nil {
		return storage.FileInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.FileInfo{}, fmt.Errorf("%s: stat %s: %w", b.desc, clean, err)
	}
	p, err := b.acquire()
	if err != nil {
		return storage.FileInfo{}, err
	}
	defer p.release()
	c := p.c
	var fi os.FileInfo
	err = b.retry(ctx, func() error {
		var err error
		fi, err = c.Stat(full)
		return err
	})
	if err == nil && fi.IsDir() {
		err = &os.PathError{Op: "stat", Path: full, Err: errIsDir}
	}
	if err != nil {
		return storage.FileInfo{}, b.classify("stat", clean, err)
	}
	return storage.FileInfo{Name: clean, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List walks only the directories that can hold names with the prefix.
func (b *Backend) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	return b.list(ctx, prefix, false)
}

// ListPartial lists the partial files of writes that never ended (a killed
// worker, a lost connection), for a prune to remove with Delete.
func (b *Backend) ListPartial(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	return b.list(ctx, prefix, true)
}

func (b *Backend) list(ctx context.Context, prefix string, partial bool) ([]storage.FileInfo, error) {
	if err := dirtree.CheckPrefix(prefix); err != nil {
		return nil, err
	}
	p, err := b.acquire()
	if err != nil {
		return nil, err
	}
	defer p.release()
	c := p.c
	out, err := dirtree.List(ctx, func(ctx context.Context, dir string) ([]dirtree.Entry, error) {
		full := path.Join(b.root, dir)
		var fis []os.FileInfo
		err := b.retry(ctx, func() error {
			var err error
			fis, err = c.ReadDir(full)
			return err
		})
		if err != nil {
			// Nothing was ever written there, or it names a file.
			fi, serr := c.Stat(full)
			if errors.Is(serr, fs.ErrNotExist) || (serr == nil && !fi.IsDir()) {
				return nil, fs.ErrNotExist
			}
			return nil, fmt.Errorf("list %s: %w", full, err)
		}
		entries := make([]dirtree.Entry, len(fis))
		for i, e := range fis {
			entries[i] = dirtree.Entry{Name: e.Name(), Dir: e.IsDir(), Regular: !e.IsDir(), Size: e.Size(), ModTime: e.ModTime()}
		}
		return entries, nil
	}, prefix, partial)
	if err != nil {
		return nil, b.classify("list", fmt.Sprintf("%q", prefix), err)
	}
	return out, nil
}

func (b *Backend) Delete(ctx context.Context, name string) error {
	return b.remove(ctx, "delete", name)
}

// remove deletes a file or an empty directory (a non-recursive delete,
// which the NameNode refuses for a directory that is not empty).
func (b *Backend) remove(ctx context.Context, op, name string) error {
	clean, full, err := b.abs(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s %s: %w", b.desc, op, clean, err)
	}
	p, err := b.acquire()
	if err != nil {
		return err
	}
	defer p.release()
	c := p.c
	return b.classify(op, clean, b.retry(ctx, func() error { return removeFile(c, full) }))
}

// RemoveDir removes an empty directory (storage.DirRemover); the NameNode
// refuses a non-recursive delete of one that is not empty.
func (b *Backend) RemoveDir(ctx context.Context, name string) error {
	return b.remove(ctx, "remove directory", name)
}

var _ storage.DirRemover = (*Backend)(nil)

// FreeSpace is what the DataNodes have left divided by the replication new
// files get, and no more than the space quota of the target directory leaves.
func (b *Backend) FreeSpace(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: free space: %w", b.desc, err)
	}
	p, err := b.acquire()
	if err != nil {
		return 0, err
	}
	defer p.release()
	c := p.c
	var st gohdfs.FsInfo
	err = b.retry(ctx, func() error {
		var err error
		st, err = c.StatFs()
		return err
	})
	if err != nil {
		return 0, b.classify("free space", "", err)
	}
	raw := st.Remaining
	var cs *gohdfs.ContentSummary
	err = b.retry(ctx, func() error {
		var err error
		cs, err = c.GetContentSummary(b.root)
		return err
	})
	if err != nil {
		return 0, b.classify("free space (quota)", b.root, err)
	}
	if q := cs.SpaceQuota(); q >= 0 {
		left := q - cs.SizeAfterReplication()
		raw = min(raw, uint64(max(left, 0)))
	}
	return raw / uint64(b.replication), nil
}

// rpcConn bounds every read of a NameNode response: a NameNode that does not
// answer within the timeout is treated as gone, and the connection is closed
// so the client reconnects instead of reading a late answer as the next one.
type rpcConn struct {
	net.Conn
	timeout time.Duration
}

func (c *rpcConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Read(p)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.Conn.Close()
		}
	}
	return n, err
}

func (c *rpcConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}
