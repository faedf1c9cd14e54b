// Package cifs is the CIFS backend: a directory in an SMB2/3 share (Windows
// file servers, Samba, NAS appliances), through github.com/cloudsoda/go-smb2
// (the maintained line of hirochachacha/go-smb2).
//
// Writes go to "<name>.kbr-partial-<random>", a name of their own (two
// attempts at one name never share a file), are flushed to disk on Commit
// and then renamed into place with "replace if exists", which replaces an
// existing file atomically. A partial file that a killed worker leaves is
// hidden from List and found by ListPartial.
//
// Signing (target.signing): with "auto", the default, messages are signed
// where MS-SMB2 says they must be: when the server requires signing (and
// the tree connect, always); otherwise they are not, as smbclient and the
// Windows client do, and the SHA-256 of every backup file in its manifest
// guards the data end to end. With "required" every request and answer is
// signed and checked, and a session that cannot sign (a guest or anonymous
// logon) is refused. What signing costs: on SMB 3 go-smb2 signs with
// AES-CMAC computed a byte at a time in Go (about 400 MB/s on one core); on
// SMB 2.1 with HMAC-SHA256, which Go computes with the CPU's SHA
// instructions, several times faster. Sessions therefore use SMB 2.1 where
// the server allows it (see dial): the dialect costs nothing where nothing
// is signed, and takes a third of the CPU where everything is (measured per
// 256 MiB on this project's machines: about 0.2 s of CPU unsigned, 0.4 s
// signed on SMB 2.1, 1.05 s signed on SMB 3.1.1; BenchmarkWrite and
// BenchmarkRead). What remains where a server requires both signing and SMB
// 3: SMB 3.1.1 can sign with AES-128-GMAC (smbclient and Windows negotiate
// it, and it runs on the CPU's AES and carry-less multiply instructions),
// but go-smb2 offers no signing-capabilities context, so such a server gets
// the byte-at-a-time AES-CMAC, about 300 MB/s per core.
//
// Throughput: go-smb2 sends one request per call and waits for its answer.
// A file is written and read in 1 MiB requests, inFlight of them at once,
// spread over dataSessions SMB sessions (TCP connections), each with its
// own handle on the file: the round trips overlap, the signing (where there
// is any) of different sessions runs on different cores, and the server
// serves each connection in its own process. Memory per write or read:
// (inFlight+1) × 1 MiB. Files of one chunk use only the main session.
//
// The main SMB session (one TCP connection, NTLM authentication, one tree
// connect to the share) carries every operation but directory reads and
// the extra handles of large reads and writes: SMB2 multiplexes requests by
// message id and go-smb2 serialises sending and dispatches replies, so the
// session is shared by concurrent operations. Directory reads get a
// session of their own, one read at a time: go-smb2 asks for a directory
// listing as large as the server allows, and when concurrent reads and
// writes hold most of the session's credits the server can refuse it. A
// session whose connection failed is replaced by the next operation.
// Requests are not cancelled mid-flight by a context (a cancelled request
// would leave its handle open on the server); contexts are checked between
// requests, the first failed request of a write or read stops it from
// sending more, and TCP keepalives end connections to a server that
// vanished.
//
// Errors name the target; logon failures, access denied, a missing share,
// missing files, a full disk and a failed signature check are permanent,
// connection failures are not.
package cifs

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
	"sync/atomic"
	"time"

	"github.com/cloudsoda/go-smb2"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/internal/dirtree"
)

// Type is the MRS path type of this backend (target.type).
const Type = "CIFS"

// DefaultPort is the SMB port used when target.port is 0.
const DefaultPort = 445

// The values of target.signing.
const (
	// SigningAuto signs where the server requires it (the default).
	SigningAuto = "auto"
	// SigningRequired signs every message and refuses a session that
	// cannot sign.
	SigningRequired = "required"
)

const (
	// chunk is the size of one read or write request (go-smb2 caps
	// requests at 1 MiB, what Windows accepts).
	chunk = 1 << 20
	// inFlight is how many chunk requests one write or read keeps in
	// flight at once.
	inFlight = 4
	// dataSessions is how many SMB sessions (TCP connections) carry the
	// chunks of one large write or read: the main one and extra ones.
	dataSessions = 2
	// dialTimeout bounds the TCP connect, negotiation, logon and tree connect.
	dialTimeout = 20 * time.Second
	// opTimeout bounds one metadata request (stat, rename, directory read).
	opTimeout = 2 * time.Minute
	// cleanupTimeout bounds the removal of a partial file after Abort or a
	// failed Commit, which runs whatever the caller's context.
	cleanupTimeout = 30 * time.Second
)

// NTSTATUS codes (MS-ERREF) that go-smb2 does not map to fs errors.
const (
	statusSharingViolation     = 0xC0000043
	statusQuotaExceeded        = 0xC0000044
	statusDeletePending        = 0xC0000056
	statusNoSuchUser           = 0xC0000064
	statusWrongPassword        = 0xC000006A
	statusLogonFailure         = 0xC000006D
	statusAccountRestriction   = 0xC000006E
	statusPasswordExpired      = 0xC0000071
	statusAccountDisabled      = 0xC0000072
	statusDiskFull             = 0xC000007F
	statusFileIsADirectory     = 0xC00000BA
	statusNetworkNameDeleted   = 0xC00000C9
	statusBadNetworkName       = 0xC00000CC
	statusNotADirectory        = 0xC0000103
	statusAccountExpired       = 0xC0000193
	statusUserSessionDeleted   = 0xC0000203
	statusPasswordMustChange   = 0xC0000224
	statusAccountLockedOut     = 0xC0000234
	statusNetworkSessionExpiry = 0xC000035C
	statusObjectNameInvalid    = 0xC0000033
	statusObjectPathSyntaxBad  = 0xC000003B
)

// Backend is a CIFS target.
type Backend struct {
	desc     string // the target as Target.String shows it
	addr     string // host:port
	server   string
	share    string
	unc      string // \\server\share, for messages
	root     string // directory in the share, slash-separated, "" for the share's root
	user     string
	domain   string
	password string
	// signRequired: target.signing is "required".
	signRequired bool

	mu     sync.Mutex
	main   *session                   // everything but directory reads
	extra  [dataSessions - 1]*session // more handles for large reads and writes
	dirs   *session                   // directory reads, one at a time (dirsMu)
	closed bool

	dirsMu sync.Mutex

	// smb3: the server refused SMB 2.1 (see dial).
	smb3 atomic.Bool
}

var _ storage.Backend = (*Backend)(nil)

// session is one TCP connection with its SMB session and tree connect.
type session struct {
	tcp       net.Conn
	s         *smb2.Session
	share     *smb2.Share
	mu        sync.Mutex
	dead      bool
	closeOnce sync.Once
}

func (s *session) isDead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dead
}

func (s *session) close() {
	s.mu.Lock()
	wasDead := s.dead
	s.dead = true
	s.mu.Unlock()
	s.closeOnce.Do(func() {
		if !wasDead {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.share.WithContext(ctx).Umount()
			cancel()
		}
		// No Logoff: a request still in flight on the connection (a read
		// ahead or a chunk of a write whose caller closes the backend)
		// would race it (go-smb2 v1.1.0 panicked there). Closing the
		// connection ends the session on the server, and in-flight
		// requests fail with a transport error.
		s.tcp.Close()
	})
}

// New opens the target: it resolves the password, connects, logs on,
// connects to the share and creates the directory if needed.
func New(ctx context.Context, t storage.Target) (*Backend, error) {
	if err := Validate(t); err != nil {
		return nil, storage.Permanent(fmt.Errorf("%s: %w", t, err))
	}
	pw, err := t.Password.Resolve("target.password")
	if err != nil {
		return nil, storage.Permanent(fmt.Errorf("%s: %w", t, err))
	}
	port := t.Port
	if port == 0 {
		port = DefaultPort
	}
	server := strings.Trim(t.Server, "[]")
	b := &Backend{
		desc:     t.String(),
		addr:     net.JoinHostPort(server, strconv.Itoa(port)),
		server:   server,
		share:    t.Share,
		unc:      `\\` + server + `\` + t.Share,
		root:     cleanRoot(t.Path),
		user:     t.User,
		password: pw,
		// Validate accepts only "", auto and required.
		signRequired: strings.EqualFold(t.Signing, SigningRequired),
	}
	if d, u, ok := strings.Cut(t.User, `\`); ok {
		b.domain, b.user = d, u
	}
	s, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.mkdirAll(s, b.root); err != nil {
		b.Close()
		return nil, b.classify(s, "create directory", b.root, err)
	}
	return b, nil
}

// cleanRoot turns target.path into a share-relative slash path.
func cleanRoot(p string) string {
	return strings.Trim(path.Clean("/"+strings.ReplaceAll(p, `\`, "/")), "/")
}

func (b *Backend) String() string { return b.desc }

// Close ends the session; the backend cannot be used afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	slots := []**session{&b.main, &b.dirs}
	for i := range b.extra {
		slots = append(slots, &b.extra[i])
	}
	for _, s := range slots {
		if *s != nil {
			(*s).close()
			*s = nil
		}
	}
	return nil
}

// get returns the live main session, opening a new one if there is none.
func (b *Backend) get(ctx context.Context) (*session, error) { return b.getIn(ctx, &b.main) }

// getDirs returns the session for directory reads; hold dirsMu while using it.
func (b *Backend) getDirs(ctx context.Context) (*session, error) { return b.getIn(ctx, &b.dirs) }

func (b *Backend) getIn(ctx context.Context, slot **session) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", b.desc, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, storage.Permanent(fmt.Errorf("%s: backend is closed", b.desc))
	}
	if *slot != nil {
		if !(*slot).isDead() {
			return *slot, nil
		}
		(*slot).close()
		*slot = nil
	}
	s, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	*slot = s
	return s, nil
}

// drop discards s: the next operation opens a new session.
func (b *Backend) drop(s *session) {
	b.mu.Lock()
	if b.main == s {
		b.main = nil
	}
	if b.dirs == s {
		b.dirs = nil
	}
	for i := range b.extra {
		if b.extra[i] == s {
			b.extra[i] = nil
		}
	}
	b.mu.Unlock()
	s.mu.Lock()
	s.dead = true
	s.mu.Unlock()
	s.close()
}

// dialectSMB21 is SMB 2.1 (MS-SMB2's dialect revision 0x0210).
const dialectSMB21 = 0x0210

// preferSMB21 makes sessions try SMB 2.1 first (see dial); benchmarks turn
// it off to measure SMB 3.1.1.
var preferSMB21 = true

// dial opens a session: SMB 2.1 first, then, when the server refuses it
// (SMB 2 switched off, or a share that requires encryption, which needs SMB
// 3), whatever dialect the server prefers, and that for every later
// session of this backend. Where messages are signed (the server requires
// it, or target.signing is required) SMB 2.1 signs with HMAC-SHA256, which
// Go and servers compute with the CPU's SHA instructions, where SMB 3 signs
// with AES-CMAC, which go-smb2 computes a byte at a time in Go: reads and
// writes on SMB 3 then cost about four times the CPU. Where nothing is
// signed the dialect makes no difference to the data path.
func (b *Backend) dial(ctx context.Context) (*session, error) {
	if b.smb3.Load() || !preferSMB21 {
		s, _, err := b.dialWith(ctx, 0)
		return s, err
	}
	s, retry, err := b.dialWith(ctx, dialectSMB21)
	if err == nil || !retry {
		return s, err
	}
	s, _, err3 := b.dialWith(ctx, 0)
	if err3 != nil {
		return nil, err3
	}
	b.smb3.Store(true)
	return s, nil
}

// dialWith opens a session with the dialect (0: the server's choice);
// retry says that another dialect may succeed where this one failed.
func (b *Backend) dialWith(ctx context.Context, dialect uint16) (_ *session, retry bool, _ error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	d := net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}}
	tcp, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, false, fmt.Errorf("%s: connect to %s: %w", b.desc, b.addr, err)
	}
	dialer := &smb2.Dialer{
		Negotiator: smb2.Negotiator{SpecifiedDialect: dialect, RequireMessageSigning: b.signRequired},
		Initiator:  &smb2.NTLMInitiator{User: b.user, Password: b.password, Domain: b.domain},
	}
	s, err := dialer.DialConn(ctx, tcp, b.addr)
	if err != nil {
		tcp.Close()
		// (go-smb2 turns STATUS_ACCESS_DENIED into fs.ErrPermission.)
		switch {
		case isAuthError(err) || errors.Is(err, fs.ErrPermission):
			return nil, false, storage.Permanent(fmt.Errorf("%s: authentication failed for user %q at %s: %w", b.desc, b.userName(), b.addr, err))
		case isUnsignableSession(err):
			return nil, false, storage.Permanent(fmt.Errorf("%s: %s: %s logged user %q on as a guest or anonymously, and such a session cannot sign: %w",
				b.desc, b.signingWhy(), b.addr, b.userName(), err))
		}
		return nil, ctx.Err() == nil, fmt.Errorf("%s: SMB logon at %s: %w", b.desc, b.addr, err)
	}
	share, err := s.WithContext(ctx).Mount(b.share)
	if err != nil {
		s.WithContext(ctx).Logoff()
		tcp.Close()
		switch {
		case hasStatus(err, statusBadNetworkName):
			return nil, false, storage.Permanent(fmt.Errorf("%s: %s has no share %q: %w", b.desc, b.server, b.share, err))
		case errors.Is(err, fs.ErrPermission), isAuthError(err):
			// Also what a share that requires encryption answers below SMB 3.
			return nil, dialect != 0, storage.Permanent(fmt.Errorf("%s: permission denied: user %q may not connect to %s: %w", b.desc, b.userName(), b.unc, err))
		}
		return nil, false, fmt.Errorf("%s: connect to %s: %w", b.desc, b.unc, err)
	}
	return &session{tcp: tcp, s: s, share: share}, false, nil
}

func (b *Backend) signingName() string {
	if b.signRequired {
		return SigningRequired
	}
	return SigningAuto
}

// signingWhy says why the session must sign, for errors.
func (b *Backend) signingWhy() string {
	if b.signRequired {
		return "target.signing is required"
	}
	return "the server requires signing"
}

// isUnsignableSession: go-smb2 refused a guest or anonymous session where
// signing is required (such a session has no key to sign with).
func isUnsignableSession(err error) bool {
	var ie *smb2.InvalidResponseError
	return errors.As(err, &ie) && (strings.Contains(ie.Message, "guest") || strings.Contains(ie.Message, "anonymous"))
}

// isBadSignature: an answer failed its signature check: tampered with on
// the way, or a server that does not sign what it must.
func isBadSignature(err error) bool {
	var ie *smb2.InvalidResponseError
	return errors.As(err, &ie) && strings.Contains(ie.Message, "signature")
}

func (b *Backend) userName() string {
	if b.domain != "" {
		return b.domain + `\` + b.user
	}
	return b.user
}

func status(err error) uint32 {
	var re *smb2.ResponseError
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}

func hasStatus(err error, codes ...uint32) bool {
	st := status(err)
	for _, c := range codes {
		if st == c {
			return true
		}
	}
	return false
}

func isAuthError(err error) bool {
	return hasStatus(err, statusLogonFailure, statusWrongPassword, statusNoSuchUser, statusAccountRestriction,
		statusAccountDisabled, statusAccountExpired, statusAccountLockedOut, statusPasswordExpired, statusPasswordMustChange)
}

// isSessionError reports whether err means the session cannot be used any
// more: the connection failed, or the server forgot the session or share.
func isSessionError(err error) bool {
	var te *smb2.TransportError
	var ie *smb2.InvalidResponseError
	return errors.As(err, &te) || errors.As(err, &ie) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		hasStatus(err, statusNetworkNameDeleted, statusUserSessionDeleted, statusNetworkSessionExpiry)
}

// classify names the target and operation in err and marks what retrying
// cannot fix as permanent; a session error also drops s.
func (b *Backend) classify(s *session, op, name string, err error) error {
	if err == nil || storage.IsPermanent(err) {
		return err
	}
	what := fmt.Sprintf("%s: %s %s", b.desc, op, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return storage.Permanent(fmt.Errorf("%s: %w: %w", what, storage.ErrNotFound, err))
	case errors.Is(err, fs.ErrPermission):
		return storage.Permanent(fmt.Errorf("%s: permission denied (user %q on %s): %w", what, b.userName(), b.unc, err))
	case hasStatus(err, statusDiskFull, statusQuotaExceeded):
		return storage.Permanent(fmt.Errorf("%s: no space left on %s: %w", what, b.unc, err))
	case hasStatus(err, statusObjectNameInvalid):
		return storage.Permanent(fmt.Errorf("%s: %w: the server refuses the name: %w", what, storage.ErrBadName, err))
	case hasStatus(err, statusFileIsADirectory, statusNotADirectory, statusObjectPathSyntaxBad):
		return storage.Permanent(fmt.Errorf("%s: %w", what, err))
	case isAuthError(err):
		return storage.Permanent(fmt.Errorf("%s: authentication failed for user %q: %w", what, b.userName(), err))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	case isBadSignature(err):
		if s != nil {
			b.drop(s)
		}
		return storage.Permanent(fmt.Errorf("%s: an answer from %s failed its signature check (target.signing %s; tampered with on the way, or a server that does not sign): %w",
			what, b.addr, b.signingName(), err))
	}
	if s != nil && isSessionError(err) {
		b.drop(s)
		return fmt.Errorf("%s: connection to %s lost: %w", what, b.addr, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// op returns the share for one metadata request, bounded by opTimeout
// rather than by the caller's context (see the package comment).
func (s *session) op() (*smb2.Share, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	return s.share.WithContext(ctx), cancel
}

// sharingRetries bounds how long an open, rename or delete waits out a
// sharing violation: another handle on the file whose share mode excludes
// ours. It lasts for the blink of a rename (the renaming handle is open
// until the rename completes) or for as long as a reader reads.
const sharingRetries = 8

// shared runs fn again while it fails with a sharing violation, waiting
// 5 ms, 10 ms, ... (1.3 s in all); the last error stays retryable.
func shared(fn func() error) error {
	wait := 5 * time.Millisecond
	for i := 0; ; i++ {
		err := fn()
		if i == sharingRetries || !hasStatus(err, statusSharingViolation, statusDeletePending) {
			return err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

// full maps a backend-relative name to its share path.
func (b *Backend) full(name string) (clean, remote string, err error) {
	return dirtree.Join(b.root, name)
}

// mkdirAll creates dir and its parents, tolerating concurrent creators.
func (b *Backend) mkdirAll(s *session, dir string) error {
	sh, cancel := s.op()
	defer cancel()
	return dirtree.MkdirAll(dir, func(d string) error { return sh.Mkdir(d, 0o750) }, func(d string) (bool, error) {
		fi, err := sh.Stat(d)
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
	s, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	tmp := storage.PartialName(remote)
	const flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	// The handle lives as long as the write: no deadline on its share.
	var f *smb2.File
	open := func() (err error) { f, err = s.share.OpenFile(tmp, flags, 0o640); return err }
	err = shared(open)
	if errors.Is(err, fs.ErrNotExist) {
		if err = b.mkdirAll(s, path.Dir(tmp)); err == nil {
			err = shared(open)
		}
	}
	if err != nil {
		return nil, b.classify(s, "create", clean, err)
	}
	w := &writer{b: b, ctx: ctx, name: clean, tmp: tmp, final: remote,
		handles: []handle{{s, f}}, slots: make(chan struct{}, inFlight), free: make(chan []byte, inFlight)}
	w.buf = make([]byte, 0, chunk)
	return w, nil
}

// handle is an open file on one session.
type handle struct {
	s *session
	f *smb2.File
}

// openExtra opens name on the extra sessions, for chunks in flight on more
// than one connection. It is best effort: a session that cannot be had or
// cannot open the file leaves the work to the handles there are.
func (b *Backend) openExtra(ctx context.Context, name string, flag int) []handle {
	var out []handle
	for i := range b.extra {
		s, err := b.getIn(ctx, &b.extra[i])
		if err != nil {
			continue
		}
		var f *smb2.File
		if err := shared(func() (err error) { f, err = s.share.OpenFile(name, flag, 0o640); return err }); err != nil {
			if isSessionError(err) {
				b.drop(s)
			}
			continue
		}
		out = append(out, handle{s, f})
	}
	return out
}

// writer is one write; like an *os.File it is used by one goroutine. Full
// chunks go out in goroutines, at most inFlight at once, round robin over
// the handles; the first failure stops the sending of more, and Commit
// waits for every chunk sent: it never publishes a file with a hole.
type writer struct {
	b          *Backend
	ctx        context.Context
	name       string
	tmp, final string
	handles    []handle // handles[0] on the main session created the file
	extraDone  bool     // the extra handles were opened (or tried)
	buf        []byte   // the chunk being filled
	off        int64    // offset of buf in the file
	next       int      // the handle for the next chunk
	slots      chan struct{}
	free       chan []byte // chunk buffers back from finished requests
	allocated  int
	wg         sync.WaitGroup
	mu         sync.Mutex
	sendErr    error // the first failed request, classified (mu)
	err        error // the first failure; the write cannot be committed after it
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
		return 0, w.fail(w.handles[0].s, err)
	}
	n := 0
	for len(p) > 0 {
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		n, p = n+k, p[k:]
		if len(w.buf) == cap(w.buf) {
			if err := w.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// send starts the write request of buf and gives the writer a free buffer.
func (w *writer) send() error {
	if err := w.failed(); err != nil {
		return err
	}
	if len(w.buf) == 0 {
		return nil
	}
	if !w.extraDone && len(w.buf) == chunk {
		// The file is at least a chunk long: worth more connections.
		w.extraDone = true
		w.handles = append(w.handles, w.b.openExtra(w.ctx, w.tmp, os.O_WRONLY)...)
	}
	h := w.handles[w.next%len(w.handles)]
	w.next++
	buf, off := w.buf, w.off
	w.off += int64(len(buf))
	w.slots <- struct{}{} // at most inFlight requests at once
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		// WriteAt with our own offset: the chunks of one file go out
		// concurrently over several handles.
		m, err := h.f.WriteAt(buf, off)
		if err == nil && m != len(buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.mu.Lock()
			if w.sendErr == nil {
				w.sendErr = w.b.classify(h.s, "write", w.name, err)
			}
			w.mu.Unlock()
		}
		w.free <- buf[:0]
		<-w.slots
	}()
	select {
	case w.buf = <-w.free:
	default:
		if w.allocated < inFlight {
			w.allocated++
			w.buf = make([]byte, 0, chunk)
		} else {
			w.buf = <-w.free
		}
	}
	return nil
}

// failed returns the first failed request's error, recorded as the write's.
func (w *writer) failed() error {
	if w.err != nil {
		return w.err
	}
	w.mu.Lock()
	err := w.sendErr
	w.mu.Unlock()
	if err != nil {
		w.err = err
	}
	return err
}

func (w *writer) fail(s *session, err error) error {
	if w.err == nil {
		w.err = w.b.classify(s, "write", w.name, err)
	}
	return w.err
}

// closeAll waits for the requests in flight and closes every handle; it
// returns the first close error.
func (w *writer) closeAll() error {
	w.wg.Wait()
	var first error
	for i := len(w.handles) - 1; i >= 0; i-- {
		h := w.handles[i]
		if err := h.f.Close(); err != nil && first == nil {
			first = w.b.classify(h.s, "close", w.name, err)
		}
	}
	w.buf = nil
	return first
}

func (w *writer) Commit() error {
	if w.done {
		return fmt.Errorf("%s: commit %s: already committed or aborted", w.b.desc, w.name)
	}
	w.done = true
	if w.err == nil {
		w.send()
	}
	w.wg.Wait()
	w.failed()
	if w.err == nil {
		if err := w.ctx.Err(); err != nil {
			w.fail(w.handles[0].s, err)
		}
	}
	if w.err == nil {
		// Flush every handle: each may have written through its own
		// server-side file descriptor.
		for _, h := range w.handles {
			if err := h.f.Sync(); err != nil {
				w.fail(h.s, err)
				break
			}
		}
	}
	if err := w.closeAll(); err != nil && w.err == nil {
		w.err = err
	}
	if w.err != nil {
		w.cleanup()
		return w.err
	}
	s := w.handles[0].s
	if err := w.publish(s); err != nil {
		err = w.b.classify(s, "publish", w.name, err)
		w.cleanup()
		return err
	}
	return nil
}

// publish renames the partial file to the final name. go-smb2 asks the
// server to replace a file already there; a server that still answers
// "exists" gets the old file removed first (a reader may then briefly see
// no file, never a partial one).
func (w *writer) publish(s *session) error {
	sh, cancel := s.op()
	defer cancel()
	rename := func() error { return sh.Rename(w.tmp, w.final) }
	err := shared(rename)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := shared(func() error { return sh.Remove(w.final) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return shared(rename)
}

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.closeAll()
	return w.cleanup()
}

// cleanup removes the partial file, on a new session if need be and
// whatever the caller's context: a cancelled write must not leave it.
func (w *writer) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	s, err := w.b.get(ctx)
	if err != nil {
		return err
	}
	if err := shared(func() error { return s.share.WithContext(ctx).Remove(w.tmp) }); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return w.b.classify(s, "remove partial", w.name, err)
	}
	return nil
}

func (b *Backend) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return b.open(ctx, name, 0, -1)
}

// OpenRange reads length bytes (-1: to the end) from offset on
// (storage.RangeOpener): the reader's requests start at offset and stop at
// the end of the range.
func (b *Backend) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.CheckRange(name, offset, length); err != nil {
		return nil, err
	}
	return b.open(ctx, name, offset, length)
}

var _ storage.RangeOpener = (*Backend)(nil)

func (b *Backend) open(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	clean, remote, err := b.full(name)
	if err != nil {
		return nil, err
	}
	s, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	var f *smb2.File
	if err := shared(func() (err error) { f, err = s.share.Open(remote); return err }); err != nil {
		return nil, b.classify(s, "open", clean, err)
	}
	r := &reader{b: b, ctx: ctx, name: clean, remote: remote, handles: []handle{{s, f}},
		offset: offset, length: length, next: offset, end: -1}
	if length >= 0 {
		r.end = offset + length
	}
	if length == 0 && offset > 0 {
		// Nothing to read, but the range must lie within the file: the
		// byte before it must be there.
		var one [1]byte
		if n, err := f.ReadAt(one[:], offset-1); n != 1 {
			f.Close()
			if err != nil && err != io.EOF {
				return nil, b.classify(s, "read", clean, err)
			}
			return nil, storage.RangeError(b.desc, clean, offset, length, -1)
		}
	}
	return r, nil
}

// reader streams a file, or a range of it. The first chunk is read alone;
// when it comes back full the file is read ahead, inFlight chunks at once,
// round robin over handles on the data sessions, and handed out in order;
// the first short chunk is the end of the file. (The size is not asked
// for: go-smb2's File.Stat asks for a reply as large as the server allows
// whatever credits it holds, and the server can refuse it while other
// transfers hold the session's credits.) A range ends where it ends; a
// file that ends before it is an ErrBadRange.
type reader struct {
	b       *Backend
	ctx     context.Context
	name    string
	remote  string
	handles []handle
	ramped  bool // a full chunk came back: read ahead on every handle

	offset, length int64 // the range asked for (length -1: to the end)
	end            int64 // offset+length, or -1 for the end of the file
	delivered      int64 // bytes handed out

	queue []*fetch // chunks requested, in file order
	next  int64    // offset of the next chunk to request
	turn  int      // the handle for the next request
	free  [][]byte // buffers of consumed chunks
	cur   []byte   // what is left of the chunk being consumed
	curF  *fetch   // its fetch, whose buffer goes back to free when consumed
	wg    sync.WaitGroup
	err   error // sticky: io.EOF or the first failure
}

// fetch is one chunk read in flight.
type fetch struct {
	buf  []byte // the request's size is len(buf)
	n    int
	err  error
	done chan struct{}
}

// fill requests chunks until enough are in flight: one until a full chunk
// came back, then inFlight; none past the end of the range.
func (r *reader) fill() {
	limit := 1
	if r.ramped {
		limit = inFlight
	}
	for len(r.queue) < limit && (r.end < 0 || r.next < r.end) {
		var buf []byte
		if k := len(r.free); k > 0 {
			buf, r.free = r.free[k-1], r.free[:k-1]
		} else {
			buf = make([]byte, chunk)
		}
		buf = buf[:chunk]
		if r.end >= 0 && r.end-r.next < chunk {
			buf = buf[:r.end-r.next]
		}
		ft := &fetch{buf: buf, done: make(chan struct{})}
		h := r.handles[r.turn%len(r.handles)]
		r.turn++
		off := r.next
		r.next += int64(len(buf))
		r.queue = append(r.queue, ft)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(ft.done)
			n, err := h.f.ReadAt(ft.buf, off)
			if n < 0 { // go-smb2 reports -1 with some errors
				n = 0
			}
			ft.n = n
			switch {
			case err == io.EOF:
				ft.err = io.EOF
			case err != nil:
				ft.err = r.b.classify(h.s, "read", r.name, err)
			}
		}()
	}
}

// chunkNext returns the next bytes of the file, valid until the next call.
func (r *reader) chunkNext() ([]byte, error) {
	if len(r.cur) > 0 {
		p := r.cur
		r.cur = nil
		return p, nil
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.curF != nil {
		r.free = append(r.free, r.curF.buf)
		r.curF = nil
	}
	if err := r.ctx.Err(); err != nil {
		r.err = r.b.classify(r.handles[0].s, "read", r.name, err)
		return nil, r.err
	}
	r.fill()
	if len(r.queue) == 0 {
		// The range is read.
		r.err = io.EOF
		return nil, r.err
	}
	ft := r.queue[0]
	select {
	case <-ft.done:
	case <-r.ctx.Done():
		r.err = r.b.classify(r.handles[0].s, "read", r.name, r.ctx.Err())
		return nil, r.err
	}
	r.queue = r.queue[1:]
	r.curF = ft
	switch {
	case ft.err != nil && ft.err != io.EOF:
		r.err = ft.err
	case ft.n < len(ft.buf):
		// The end of the file; chunks requested past it are dropped.
		r.err = io.EOF
		switch {
		case r.end >= 0:
			// It ends before the range does.
			r.err = storage.RangeError(r.b.desc, r.name, r.offset, r.length, -1)
		case r.delivered == 0 && ft.n == 0 && r.offset > 0:
			// Nothing from offset on: the file ends there, or before it.
			var one [1]byte
			h := r.handles[0]
			if n, err := h.f.ReadAt(one[:], r.offset-1); n != 1 {
				r.err = storage.RangeError(r.b.desc, r.name, r.offset, r.length, -1)
				if err != nil && err != io.EOF {
					r.err = r.b.classify(h.s, "read", r.name, err)
				}
			}
		}
	default:
		if !r.ramped && ft.n == chunk {
			// At least a chunk long: worth more connections.
			r.ramped = true
			r.handles = append(r.handles, r.b.openExtra(r.ctx, r.remote, os.O_RDONLY)...)
		}
		r.fill()
	}
	r.delivered += int64(ft.n)
	if ft.n > 0 {
		return ft.buf[:ft.n], nil
	}
	return nil, r.err
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(r.cur) == 0 {
		c, err := r.chunkNext()
		if err != nil {
			return 0, err
		}
		r.cur = c
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo hands out each chunk as it comes (io.Copy uses it).
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		c, err := r.chunkNext()
		if len(c) > 0 {
			m, werr := w.Write(c)
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (r *reader) Close() error {
	r.wg.Wait() // requests in flight end before their handles close
	r.queue, r.free, r.cur, r.curF = nil, nil, nil, nil
	var first error
	for i := len(r.handles) - 1; i >= 0; i-- {
		h := r.handles[i]
		if err := h.f.Close(); err != nil && first == nil && !h.s.isDead() && !isSessionError(err) {
			first = r.b.classify(h.s, "close", r.name, err)
		}
	}
	return first
}

func (b *Backend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	clean, remote, err := b.full(name)
	if err != nil {
		return storage.FileInfo{}, err
	}
	s, err := b.get(ctx)
	if err != nil {
		return storage.FileInfo{}, err
	}
	sh, cancel := s.op()
	defer cancel()
	fi, err := sh.Stat(remote)
	if err != nil {
		return storage.FileInfo{}, b.classify(s, "stat", clean, err)
	}
	if fi.IsDir() {
		return storage.FileInfo{}, storage.Permanent(fmt.Errorf("%s: stat %s: %w: it is a directory", b.desc, clean, storage.ErrNotFound))
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

// list lists committed files, or with partial only partial ones, on the
// session for directory reads.
func (b *Backend) list(ctx context.Context, prefix string, partial bool) ([]storage.FileInfo, error) {
	if err := dirtree.CheckPrefix(prefix); err != nil {
		return nil, err
	}
	b.dirsMu.Lock()
	defer b.dirsMu.Unlock()
	s, err := b.getDirs(ctx)
	if err != nil {
		return nil, err
	}
	out, err := dirtree.List(ctx, func(_ context.Context, dir string) ([]dirtree.Entry, error) {
		sh, cancel := s.op()
		defer cancel()
		fis, err := sh.ReadDir(path.Join(b.root, dir))
		if err != nil {
			return nil, err
		}
		entries := make([]dirtree.Entry, len(fis))
		for i, e := range fis {
			entries[i] = dirtree.Entry{Name: e.Name(), Dir: e.IsDir(), Regular: !e.IsDir(), Size: e.Size(), ModTime: e.ModTime()}
		}
		return entries, nil
	}, prefix, partial)
	if err != nil {
		return nil, b.classify(s, "list", strconv.Quote(prefix), err)
	}
	return out, nil
}

func (b *Backend) Delete(ctx context.Context, name string) error {
	return b.remove(ctx, "delete", name)
}

// remove removes a file, or an empty directory: SMB deletes either the
// same way, and refuses a directory that is not empty.
func (b *Backend) remove(ctx context.Context, op, name string) error {
	clean, remote, err := b.full(name)
	if err != nil {
		return err
	}
	s, err := b.get(ctx)
	if err != nil {
		return err
	}
	sh, cancel := s.op()
	defer cancel()
	return b.classify(s, op, clean, dirtree.IgnoreMissing(shared(func() error { return sh.Remove(remote) })))
}

// RemoveDir removes an empty directory (storage.DirRemover); the server
// refuses one that is not empty (STATUS_DIRECTORY_NOT_EMPTY).
func (b *Backend) RemoveDir(ctx context.Context, name string) error {
	return b.remove(ctx, "remove directory", name)
}

var _ storage.DirRemover = (*Backend)(nil)

// FreeSpace asks the share for the space available to this user.
func (b *Backend) FreeSpace(ctx context.Context) (uint64, error) {
	s, err := b.get(ctx)
	if err != nil {
		return 0, err
	}
	sh, cancel := s.op()
	defer cancel()
	st, err := sh.Statfs(b.root)
	if err != nil {
		return 0, b.classify(s, "free space of", b.unc, err)
	}
	// Allocation units available to the caller × sectors per unit × bytes per sector.
	return st.AvailableBlockCount() * st.FragmentSize() * st.BlockSize(), nil
}
