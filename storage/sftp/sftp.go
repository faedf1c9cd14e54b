// Package sftp is the SFTP backend: a directory on an SSH server, through
// github.com/pkg/sftp over golang.org/x/crypto/ssh.
//
// The server's host key is pinned by target.known_host_key; any other key,
// or none configured, is refused (permanently): a backup tool that accepts
// whatever key it is shown sends the cluster's data to whoever answers.
//
// Writes go to "<name>.kbr-partial-<random>", a name of their own (two
// attempts at one name never share a file), streamed through pkg/sftp's
// File.ReadFrom, which keeps up to 64 write requests of 32 KiB in flight
// (2 MiB), are fsynced when the server offers fsync@openssh.com, and are
// published on Commit by posix-rename@openssh.com, which replaces an
// existing file atomically; servers without it get a plain rename, after
// removing the old file when one is in the way (a reader may then briefly
// see no file, never a partial one). A partial file that a killed worker
// leaves is hidden from List and found by ListPartial.
//
// Reads stream through pkg/sftp's File.WriteTo, which keeps up to 64 read
// requests of 32 KiB in flight, in a goroutine that runs up to 4 MiB ahead
// of the reader: a Read never waits for a round trip the read-ahead
// already made, and the requests go on while the reader is busy.
//
// One SSH connection carries every operation (SFTP requests are
// multiplexed); it is dialled on New, checked by keepalives, and dialled
// again by the next operation once it has failed. Errors name the target;
// authentication failures, a wrong host key, missing files, permission
// denied and a full disk are permanent, connection failures are not.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/internal/ahead"
	"github.com/kbr-project/kbr/storage/internal/dirtree"
)

// Type is the MRS path type of this backend (target.type).
const Type = "SFTP"

// DefaultPort is the SSH port used when target.port is 0.
const DefaultPort = 22

const (
	// minFree is the free space below which a failed write is reported
	// as "no space left" (permanently).
	minFree = 2 << 20
	// dialTimeout bounds the TCP connect and the SSH handshake.
	dialTimeout = 20 * time.Second
	// A keepalive every keepaliveInterval, unanswered for keepaliveTimeout,
	// closes the connection: operations then fail instead of hanging on a
	// peer that vanished without a reset.
	keepaliveInterval = 15 * time.Second
	keepaliveTimeout  = 30 * time.Second
	// cleanupTimeout bounds the removal of a partial file after Abort or a
	// failed Commit, which runs whatever the caller's context.
	cleanupTimeout = 30 * time.Second
	// maxInFlight is how many 32 KiB requests a read or write keeps in
	// flight (pkg/sftp's default): 2 MiB of buffers per open file.
	maxInFlight = 64
)

// Backend is an SFTP target.
type Backend struct {
	desc   string // the target as Target.String shows it, for errors and logs
	addr   string // host:port
	server string
	root   string // remote directory, cleaned
	config *ssh.ClientConfig
	known  ssh.PublicKey // nil when target.known_host_key is empty: every key is refused

	mu     sync.Mutex
	cur    *conn
	closed bool
}

var _ storage.Backend = (*Backend)(nil)

// conn is one SSH connection with its SFTP session.
type conn struct {
	ssh         *ssh.Client
	sftp        *pkgsftp.Client
	done        chan struct{} // closed once the connection is gone
	closeOnce   sync.Once
	posixRename bool
	statvfs     bool
	fsync       bool
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.sftp.Close()
		c.ssh.Close()
	})
}

func (c *conn) dead() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// New opens the target: it resolves the secrets, connects, checks the host
// key, logs in and creates the remote directory if needed.
func New(ctx context.Context, t storage.Target) (*Backend, error) {
	if err := validateConnection(t); err != nil {
		return nil, storage.Permanent(fmt.Errorf("%s: %w", t, err))
	}
	port := t.Port
	if port == 0 {
		port = DefaultPort
	}
	server := strings.Trim(t.Server, "[]")
	b := &Backend{
		desc:   t.String(),
		addr:   net.JoinHostPort(server, strconv.Itoa(port)),
		server: server,
		root:   path.Clean(t.Path),
	}
	if strings.TrimSpace(t.KnownHostKey) != "" {
		k, err := ParseKnownHostKey(t.KnownHostKey)
		if err != nil {
			return nil, storage.Permanent(fmt.Errorf("%s: %w", t, &storage.ParamError{Param: "target.known_host_key", Msg: err.Error()}))
		}
		b.known = k
	}
	var auth []ssh.AuthMethod
	if t.PrivateKey.IsSet() {
		pem, err := t.PrivateKey.Resolve("target.private_key")
		if err != nil {
			return nil, storage.Permanent(fmt.Errorf("%s: %w", t, err))
		}
		signer, err := ssh.ParsePrivateKey([]byte(pem + "\n"))
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, storage.Permanent(fmt.Errorf("%s: target.private_key (%s) is protected by a passphrase, which kbr cannot give: use a key without one", t, t.PrivateKey))
		case err != nil:
			return nil, storage.Permanent(fmt.Errorf("%s: target.private_key (%s): %w", t, t.PrivateKey, err))
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if t.Password.IsSet() {
		pw, err := t.Password.Resolve("target.password")
		if err != nil {
			return nil, storage.Permanent(fmt.Errorf("%s: %w", t, err))
		}
		auth = append(auth, ssh.Password(pw),
			// Servers that take passwords only through PAM ask this way.
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	b.config = &ssh.ClientConfig{
		User:          t.User,
		Auth:          auth,
		Timeout:       dialTimeout,
		ClientVersion: "SSH-2.0-kbr",
	}
	if b.known != nil {
		b.config.HostKeyAlgorithms = hostKeyAlgorithms(b.known)
	}

	c, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.mkdirAll(c, b.root); err != nil {
		b.Close()
		return nil, b.classify(c, "create root directory", b.root, err)
	}
	return b, nil
}

func (b *Backend) String() string { return b.desc }

// Close closes the connection; the backend cannot be used afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.cur != nil {
		b.cur.close()
		b.cur = nil
	}
	return nil
}

// get returns the live connection, dialling a new one if there is none.
func (b *Backend) get(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", b.desc, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, storage.Permanent(fmt.Errorf("%s: backend is closed", b.desc))
	}
	if b.cur != nil {
		if !b.cur.dead() {
			return b.cur, nil
		}
		b.cur.close()
		b.cur = nil
	}
	c, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	b.cur = c
	return c, nil
}

// drop discards c if it is still the current connection.
func (b *Backend) drop(c *conn) {
	b.mu.Lock()
	if b.cur == c {
		b.cur = nil
	}
	b.mu.Unlock()
	c.close()
}

func (b *Backend) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: connect to %s: %w", b.desc, b.addr, err)
	}
	deadline := time.Now().Add(dialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var mismatch error
	cfg := *b.config
	cfg.HostKeyCallback = func(_ string, _ net.Addr, key ssh.PublicKey) error {
		if b.known != nil && key.Type() == b.known.Type() && string(key.Marshal()) == string(b.known.Marshal()) {
			return nil
		}
		mismatch = b.hostKeyError(key)
		return mismatch
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, b.addr, &cfg)
	if err != nil {
		nc.Close()
		switch {
		case mismatch != nil:
			return nil, mismatch
		case strings.Contains(err.Error(), "no common algorithm for host key"):
			// The server has no key of the pinned type: it is not the pinned key.
			return nil, storage.Permanent(fmt.Errorf("%s: host key of %s does not match target.known_host_key: the server has no %s key (%v)", b.desc, b.server, b.known.Type(), err))
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, storage.Permanent(fmt.Errorf("%s: authentication failed for user %q at %s: %w", b.desc, cfg.User, b.addr, err))
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%s: connect to %s: %w", b.desc, b.addr, ctx.Err())
		}
		return nil, fmt.Errorf("%s: SSH handshake with %s: %w", b.desc, b.addr, err)
	}
	nc.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	s, err := pkgsftp.NewClient(client,
		pkgsftp.UseConcurrentWrites(true), pkgsftp.UseConcurrentReads(true),
		pkgsftp.MaxConcurrentRequestsPerFile(maxInFlight), pkgsftp.UseFstat(true))
	if err != nil {
		client.Close()
		if strings.Contains(err.Error(), "subsystem request failed") {
			return nil, storage.Permanent(fmt.Errorf("%s: %s refuses the sftp subsystem for %q (permission denied or SFTP disabled): %w", b.desc, b.addr, cfg.User, err))
		}
		return nil, fmt.Errorf("%s: start SFTP session: %w", b.desc, err)
	}
	c := &conn{ssh: client, sftp: s, done: make(chan struct{})}
	_, c.posixRename = s.HasExtension("posix-rename@openssh.com")
	_, c.statvfs = s.HasExtension("statvfs@openssh.com")
	_, c.fsync = s.HasExtension("fsync@openssh.com")
	var once sync.Once
	gone := func() { once.Do(func() { close(c.done) }) }
	go func() { client.Wait(); gone() }()
	go func() { s.Wait(); gone() }()
	go keepalive(c)
	return c, nil
}

func (b *Backend) hostKeyError(key ssh.PublicKey) error {
	offered := fmt.Sprintf("%s %s", key.Type(), ssh.FingerprintSHA256(key))
	if b.known == nil {
		return storage.Permanent(fmt.Errorf("%s: host key of %s does not match target.known_host_key, which is empty: the server offers %s %s; check it out of band and set it as target.known_host_key",
			b.desc, b.server, offered, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))))
	}
	return storage.Permanent(fmt.Errorf("%s: host key of %s does not match target.known_host_key: the server offers %s, the target expects %s %s (the key changed, or this is another server)",
		b.desc, b.server, offered, b.known.Type(), ssh.FingerprintSHA256(b.known)))
}

// keepalive closes c when the server stops answering.
func keepalive(c *conn) {
	tick := time.NewTicker(keepaliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			res <- err
		}()
		select {
		case err := <-res:
			if err != nil {
				c.close()
				return
			}
		case <-time.After(keepaliveTimeout):
			c.close()
			return
		case <-c.done:
			return
		}
	}
}

// full maps a backend-relative name to its remote path.
func (b *Backend) full(name string) (clean, remote string, err error) {
	return dirtree.Join(b.root, name)
}

// isConnErr reports whether err means the connection is gone.
func isConnErr(err error) bool {
	return errors.Is(err, pkgsftp.ErrSSHFxConnectionLost) || errors.Is(err, pkgsftp.ErrSSHFxNoConnection) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// classify names the target and operation in err and marks what retrying
// cannot fix as permanent. A connection error also drops c, so that the
// next operation dials again.
func (b *Backend) classify(c *conn, op, name string, err error) error {
	if err == nil {
		return nil
	}
	if storage.IsPermanent(err) {
		return err
	}
	what := fmt.Sprintf("%s: %s %s", b.desc, op, name)
	var se *pkgsftp.StatusError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return storage.Permanent(fmt.Errorf("%s: %w: %w", what, storage.ErrNotFound, err))
	case errors.Is(err, fs.ErrPermission):
		return storage.Permanent(fmt.Errorf("%s: permission denied: %w", what, err))
	case errors.Is(err, pkgsftp.ErrSSHFxOpUnsupported),
		errors.As(err, &se) && se.FxCode() == pkgsftp.ErrSSHFxOpUnsupported:
		return storage.Permanent(fmt.Errorf("%s: not supported by the server: %w", what, err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	}
	if c != nil && (isConnErr(err) || c.dead()) {
		b.drop(c)
		return fmt.Errorf("%s: connection to %s lost: %w", what, b.addr, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// mkdirAll creates dir and its parents, tolerating concurrent creators.
func (b *Backend) mkdirAll(c *conn, dir string) error {
	return dirtree.MkdirAll(dir, c.sftp.Mkdir, func(d string) (bool, error) {
		fi, err := c.sftp.Stat(d)
		if err != nil {
			return false, err
		}
		return fi.IsDir(), nil
	})
}

func (b *Backend) Create(ctx context.Context, name string) (storage.Writer, error) {
	clean, remote, err := dirtree.JoinNew(b.desc, b.root, name)
	if err != nil {
		return nil, err
	}
	c, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	tmp := storage.PartialName(remote)
	const flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	f, err := c.sftp.OpenFile(tmp, flags)
	if errors.Is(err, fs.ErrNotExist) {
		if err = b.mkdirAll(c, path.Dir(tmp)); err == nil {
			f, err = c.sftp.OpenFile(tmp, flags)
		}
	}
	if err != nil {
		return nil, b.classify(c, "create", clean, err)
	}
	pr, pw := io.Pipe()
	w := &writer{b: b, c: c, f: f, ctx: ctx, name: clean, tmp: tmp, final: remote, pw: pw, sent: make(chan struct{})}
	go func() {
		// ReadFrom pipelines write requests for as long as the pipe
		// delivers data; on a failed request it stops reading, and the
		// pipe then fails the Write that feeds it.
		_, w.sendErr = f.ReadFromWithConcurrency(pr, maxInFlight)
		if w.sendErr != nil {
			pr.CloseWithError(w.sendErr)
		} else {
			pr.Close()
		}
		close(w.sent)
	}()
	return w, nil
}

// writer is one write; like an *os.File it is used by one goroutine. Its
// bytes go through a pipe to a goroutine running File.ReadFrom.
type writer struct {
	b          *Backend
	c          *conn
	f          *pkgsftp.File
	ctx        context.Context
	name       string
	tmp, final string
	pw         *io.PipeWriter
	sent       chan struct{} // closed when ReadFrom has returned
	sendErr    error         // ReadFrom's error, set before sent closes
	err        error         // the first failure; the write cannot be committed after it
	done       bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("%s: write %s: already committed or aborted", w.b.desc, w.name)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		return 0, w.fail(err)
	}
	n, err := w.pw.Write(p)
	if err != nil {
		<-w.sent
		if w.sendErr != nil {
			err = w.sendErr
		}
		return n, w.fail(err)
	}
	return n, nil
}

// finish ends the stream and waits for the last write request's answer.
func (w *writer) finish(cause error) error {
	if cause != nil {
		w.pw.CloseWithError(cause)
	} else {
		w.pw.Close()
	}
	<-w.sent
	return w.sendErr
}

// fail records the write's first error, classified. SFTP reports a full
// disk as a generic failure: a generic write failure with no space left on
// the server's file system is reported as what it is.
func (w *writer) fail(err error) error {
	if w.err != nil {
		return w.err
	}
	var se *pkgsftp.StatusError
	if errors.As(err, &se) && se.FxCode() == pkgsftp.ErrSSHFxFailure && w.c.statvfs {
		if st, serr := w.c.sftp.StatVFS(path.Dir(w.final)); serr == nil && st.Bavail*blockSize(st) < minFree {
			err = storage.Permanent(fmt.Errorf("%s: write %s: no space left on %s (%d bytes free): %w", w.b.desc, w.name, w.b.server, st.Bavail*blockSize(st), err))
		}
	}
	w.err = w.b.classify(w.c, "write", w.name, err)
	return w.err
}

func (w *writer) Commit() error {
	if w.done {
		return fmt.Errorf("%s: commit %s: already committed or aborted", w.b.desc, w.name)
	}
	w.done = true
	var cause error
	if w.err != nil {
		cause = w.err
	} else if err := w.ctx.Err(); err != nil {
		cause = err
	}
	if err := w.finish(cause); err != nil && w.err == nil {
		w.fail(err)
	}
	if w.err == nil && cause != nil {
		w.fail(cause)
	}
	if w.err == nil && w.c.fsync {
		if err := w.f.Sync(); err != nil {
			w.fail(err)
		}
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.fail(err)
	}
	if w.err != nil {
		w.cleanup()
		return w.err
	}
	if err := w.publish(); err != nil {
		err = w.b.classify(w.c, "publish", w.name, err)
		w.cleanup()
		return err
	}
	return nil
}

// publish renames the partial file over the final name.
func (w *writer) publish() error {
	s := w.c.sftp
	if w.c.posixRename {
		err := s.PosixRename(w.tmp, w.final)
		if err == nil || !errors.Is(err, pkgsftp.ErrSSHFxOpUnsupported) {
			return err
		}
	}
	// Plain SFTP rename refuses to replace: remove what is in the way.
	if err := s.Rename(w.tmp, w.final); err == nil {
		return nil
	}
	if err := s.Remove(w.final); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.Rename(w.tmp, w.final)
}

var errAborted = errors.New("write aborted")

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.finish(errAborted)
	w.f.Close()
	return w.cleanup()
}

// cleanup removes the partial file, on a fresh connection if need be and
// whatever the caller's context: a cancelled write must not leave it.
func (w *writer) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	c, err := w.b.get(ctx)
	if err != nil {
		return err
	}
	if err := c.sftp.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return w.b.classify(c, "remove partial", w.name, err)
	}
	return nil
}

func (b *Backend) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	clean, remote, err := b.full(name)
	if err != nil {
		return nil, err
	}
	c, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	f, err := c.sftp.Open(remote)
	if err != nil {
		return nil, b.classify(c, "open", clean, err)
	}
	return &reader{b: b, c: c, f: f, ctx: ctx, name: clean}, nil
}

// OpenRange reads length bytes (-1: to the end) of name from offset on
// (storage.RangeOpener): the open handle's size (fstat) decides whether
// the range lies within the file, and the range is read with ReadAt calls
// of rangeBuf, which pkg/sftp splits into concurrent requests.
func (b *Backend) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.CheckRange(name, offset, length); err != nil {
		return nil, err
	}
	rc, err := b.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	r := rc.(*reader)
	fi, err := r.f.Stat()
	if err != nil {
		r.Close()
		return nil, b.classify(r.c, "stat", r.name, err)
	}
	size := fi.Size()
	if offset > size || (length >= 0 && offset+length > size) {
		r.Close()
		return nil, storage.RangeError(b.desc, r.name, offset, length, size)
	}
	if length < 0 {
		length = size - offset
	}
	r.section = io.NewSectionReader(r.f, offset, length)
	r.offset, r.length = offset, length
	return r, nil
}

var _ storage.RangeOpener = (*Backend)(nil)

// rangeBuf is the size of one ReadAt of a range read.
const rangeBuf = 1 << 20

// reader streams a file: on the first Read a goroutine starts File.WriteTo
// (maxInFlight read requests in flight) into an ahead.Pipe, which lets it
// run up to 4 MiB ahead of the reader.
type reader struct {
	b    *Backend
	c    *conn
	f    *pkgsftp.File
	ctx  context.Context
	name string

	ahead   *ahead.Pipe
	fetched chan struct{} // closed when the WriteTo goroutine has returned
	err     error         // the first error Read returned

	// section is the range of a range read (nil: the whole file).
	section        *io.SectionReader
	offset, length int64
}

// fetch copies the file, or its range, to w: with concurrent requests.
func (r *reader) fetch(w io.Writer) (int64, error) {
	if r.section == nil {
		return r.f.WriteTo(w)
	}
	n, err := io.CopyBuffer(w, r.section, make([]byte, rangeBuf))
	if err == nil && n < r.length {
		// The file shrank under the read.
		err = storage.RangeError(r.b.desc, r.name, r.offset, r.length, -1)
	}
	return n, err
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := r.ctx.Err(); err != nil {
		r.err = r.b.classify(r.c, "read", r.name, err)
		return 0, r.err
	}
	if r.ahead == nil {
		q := ahead.New()
		r.ahead, r.fetched = q, make(chan struct{})
		go func() {
			defer close(r.fetched)
			_, err := r.fetch(q)
			q.CloseWrite(err)
		}()
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.ahead.Read(r.ctx, p)
	if err != nil && err != io.EOF {
		err = r.b.classify(r.c, "read", r.name, err)
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

// WriteTo reads with concurrent requests (io.Copy uses it).
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	if r.ahead != nil {
		// Read was called: go on from where the read-ahead is.
		return io.Copy(w, struct{ io.Reader }{r})
	}
	if err := r.ctx.Err(); err != nil {
		return 0, r.b.classify(r.c, "read", r.name, err)
	}
	n, err := r.fetch(w)
	return n, r.b.classify(r.c, "read", r.name, err)
}

func (r *reader) Close() error {
	if r.ahead != nil {
		r.ahead.Close() // ends a WriteTo waiting for a free buffer
		<-r.fetched
	}
	if err := r.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) && !r.c.dead() {
		return r.b.classify(r.c, "close", r.name, err)
	}
	return nil
}

func (b *Backend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	clean, remote, err := b.full(name)
	if err != nil {
		return storage.FileInfo{}, err
	}
	c, err := b.get(ctx)
	if err != nil {
		return storage.FileInfo{}, err
	}
	fi, err := c.sftp.Stat(remote)
	if err != nil {
		return storage.FileInfo{}, b.classify(c, "stat", clean, err)
	}
	if !fi.Mode().IsRegular() {
		return storage.FileInfo{}, storage.Permanent(fmt.Errorf("%s: stat %s: %w: it is a %s", b.desc, clean, storage.ErrNotFound, fi.Mode().Type()))
	}
	return storage.FileInfo{Name: clean, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (b *Backend) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	return b.list(ctx, prefix, false)
}

// ListPartial lists the partial files of writes that never ended (a killed
// worker, a lost connection), for a prune to remove with Delete.
func (b *Backend) ListPartial(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	return b.list(ctx, prefix, true)
}

var _ storage.PartialLister = (*Backend)(nil)

// list lists committed files, or with partial only partial ones.
func (b *Backend) list(ctx context.Context, prefix string, partial bool) ([]storage.FileInfo, error) {
	if err := dirtree.CheckPrefix(prefix); err != nil {
		return nil, err
	}
	c, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	out, err := dirtree.List(ctx, func(_ context.Context, dir string) ([]dirtree.Entry, error) {
		fis, err := c.sftp.ReadDir(path.Join(b.root, dir))
		if err != nil {
			return nil, err
		}
		entries := make([]dirtree.Entry, len(fis))
		for i, e := range fis {
			entries[i] = dirtree.Entry{Name: e.Name(), Dir: e.IsDir(), Regular: e.Mode().IsRegular(), Size: e.Size(), ModTime: e.ModTime()}
		}
		return entries, nil
	}, prefix, partial)
	if err != nil {
		return nil, b.classify(c, "list", strconv.Quote(prefix), err)
	}
	return out, nil
}

func (b *Backend) Delete(ctx context.Context, name string) error {
	return b.remove(ctx, "delete", name, (*pkgsftp.Client).Remove)
}

// remove runs rm (REMOVE or RMDIR) on name; a missing one is not an error.
func (b *Backend) remove(ctx context.Context, op, name string, rm func(*pkgsftp.Client, string) error) error {
	clean, remote, err := b.full(name)
	if err != nil {
		return err
	}
	c, err := b.get(ctx)
	if err != nil {
		return err
	}
	return b.classify(c, op, clean, dirtree.IgnoreMissing(rm(c.sftp, remote)))
}

// RemoveDir removes an empty directory (storage.DirRemover); the server
// refuses a directory that is not empty.
func (b *Backend) RemoveDir(ctx context.Context, name string) error {
	return b.remove(ctx, "remove directory", name, (*pkgsftp.Client).RemoveDirectory)
}

var _ storage.DirRemover = (*Backend)(nil)

// FreeSpace asks the server's statvfs@openssh.com extension.
func (b *Backend) FreeSpace(ctx context.Context) (uint64, error) {
	c, err := b.get(ctx)
	if err != nil {
		return 0, err
	}
	if !c.statvfs {
		return 0, storage.Permanent(fmt.Errorf("%s: free space: the server lacks statvfs@openssh.com: %w", b.desc, storage.ErrUnsupported))
	}
	st, err := c.sftp.StatVFS(b.root)
	if err != nil {
		return 0, b.classify(c, "free space of", b.root, err)
	}
	return st.Bavail * blockSize(st), nil
}

func blockSize(st *pkgsftp.StatVFS) uint64 {
	if st.Frsize > 0 {
		return st.Frsize
	}
	return st.Bsize
}
