// Package obs is the OBS backend: S3-compatible object storage (Huawei OBS,
// AWS S3, MinIO) through the minio-go client.
//
// Files are objects under the key prefix target.path in target.bucket.
// Writes stream: the first MiB is buffered in memory; a file that ends
// within it is sent with a single PUT, a larger one goes out as a multipart
// upload fed through an io.Pipe into minio-go's PutObject, 5 MiB parts with
// four in flight (minio-go's ConcurrentStreamParts: one part buffer per
// thread, allocated once), so a write holds about 21 MiB whatever the
// file's size, and reading the next part overlaps sending the previous
// ones. In both cases the
// object becomes visible only when the PUT or CompleteMultipartUpload
// succeeds, which Commit waits for: that is the atomic publish. Abort
// cancels the upload; minio-go then aborts the multipart upload, and the
// writer removes any incomplete upload of the key that is left. A retried
// Create of a name that goes multipart first removes incomplete uploads of
// that key left by a crashed attempt. Buckets should still carry a lifecycle
// rule that aborts incomplete multipart uploads after a few days, for
// uploads whose names are never written again.
//
// Reads run up to 4 MiB ahead of the reader (a goroutine copies the
// response body into an ahead.Pipe), so the download goes on while the
// reader hashes or decompresses.
//
// Object stores do not report free space: FreeSpace returns ErrUnsupported.
package obs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/internal/ahead"
)

// Type is the MRS path type of this backend (target.type).
const Type = "OBS"

// DefaultPartSize is the multipart part size: S3's smallest. minio-go holds
// one part in memory per thread, so it sets the memory of a write; at S3's
// 10,000 parts it also caps the object size at 48.8 GiB (kdata rolls
// segments long before). Measured on a 2 GiB file: 16 MiB parts added
// 45-50 MiB of RSS (the Go heap doubles its live size before collecting),
// 8 MiB parts about 30 MiB (63 MiB under the race detector), 5 MiB parts
// about 20 MiB (44 MiB under the race detector); the suite allows 64 MiB.
const DefaultPartSize = 5 << 20

// DefaultSinglePutMax is the largest file sent with a single PUT (buffered
// whole); larger files stream as multipart uploads. Most backup files are
// either small (manifests, metadata archives) or large (segments).
const DefaultSinglePutMax = 1 << 20

// DefaultThreads is how many parts are in flight at once. One part at a
// time left the connection idle while the next part was read and signed
// (0.64x of minio-go's own PutObject); four keep it busy. Memory: threads ×
// DefaultPartSize, 20 MiB, in one allocation per write.
const DefaultThreads = 4

// clientRetries is how often minio-go retries one request (connection
// errors, 5xx, SlowDown) before the error reaches the caller, whose own
// retry (the Temporal activity's) takes over.
const clientRetries = 5

// abortCleanupTimeout bounds the clean-up of incomplete uploads.
const abortCleanupTimeout = 30 * time.Second

// Backend is an OBS (S3-compatible) target.
type Backend struct {
	client    *minio.Client
	transport *http.Transport
	target    storage.Target
	bucket    string
	root      string // key prefix: "" or "dir/sub/"
	partSize  int64
	// singlePutMax: a file up to this size is buffered and sent with one
	// PUT; a larger one streams as a multipart upload.
	singlePutMax int64
	// bucketSeen: the bucket was seen to exist (see notFound).
	bucketSeen atomic.Bool
	// threads: parts uploaded at once (each needs a part buffer); with
	// more than one, reading the next part overlaps sending the last.
	threads uint
}

var _ storage.Backend = (*Backend)(nil)

// New opens the target without touching the network: wrong credentials, a
// missing bucket or an unreachable endpoint show in the first operation.
func New(ctx context.Context, t storage.Target) (*Backend, error) {
	return newBackend(ctx, t, hooks{})
}

// hooks let tests reach a virtual-hosted endpoint whose bucket subdomain
// does not resolve here, and watch the requests.
type hooks struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	wrap func(http.RoundTripper) http.RoundTripper
}

func newBackend(ctx context.Context, t storage.Target, h hooks) (*Backend, error) {
	if err := Validate(t); err != nil {
		return nil, storage.Permanent(err)
	}
	u, _ := url.Parse(t.Endpoint) // Validate parsed it
	ak, err := t.AccessKey.Resolve("target.access_key")
	if err != nil {
		return nil, storage.Permanent(err)
	}
	sk, err := t.SecretKey.Resolve("target.secret_key")
	if err != nil {
		return nil, storage.Permanent(err)
	}
	secure := u.Scheme == "https"
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("%s: transport: %w", t, err)
	}
	if secure && t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, storage.Permanent(fmt.Errorf("target.ca_file: %w", err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, storage.Permanent(&storage.ParamError{Param: "target.ca_file", Msg: fmt.Sprintf("%s holds no PEM certificate", t.CAFile)})
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if h.dial != nil {
		tr.DialContext = h.dial
	}
	var rt http.RoundTripper = tr
	if h.wrap != nil {
		rt = h.wrap(tr)
	}
	lookup := minio.BucketLookupDNS
	if t.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(ak, sk, ""),
		Secure:       secure,
		Transport:    rt,
		Region:       t.Region,
		BucketLookup: lookup,
		MaxRetries:   clientRetries,
	})
	if err != nil {
		return nil, storage.Permanent(fmt.Errorf("%s: %w", t, err))
	}
	c.SetAppInfo("kbr", "1")
	return &Backend{
		client:       c,
		transport:    tr,
		target:       t,
		bucket:       t.Bucket,
		root:         rootPrefix(t.Path),
		partSize:     DefaultPartSize,
		singlePutMax: DefaultSinglePutMax,
		threads:      DefaultThreads,
	}, nil
}

// rootPrefix turns target.path into a key prefix: "" or "a/b/".
func rootPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	p = path.Clean(p)
	if p == "." {
		return ""
	}
	return p + "/"
}

func (b *Backend) String() string { return b.target.String() }

// Close drops idle connections.
func (b *Backend) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

// Bucket and Root describe where the files go: keys are Root()+name.
func (b *Backend) Bucket() string { return b.bucket }
func (b *Backend) Root() string   { return b.root }

func (b *Backend) key(name string) (string, string, error) {
	clean, err := storage.CleanName(name)
	if err != nil {
		return "", "", err
	}
	if clean == "." {
		return "", "", storage.Permanent(fmt.Errorf("%w: %q names the target root", storage.ErrBadName, name))
	}
	return b.root + clean, clean, nil
}

// ---------------------------------------------------------------------------
// errors

// permanentCodes are S3 error codes that retrying cannot fix: what went
// wrong, and the parameter to check.
var permanentCodes = map[string]string{
	"InvalidAccessKeyId":           "authentication failed (check target.access_key)",
	"SignatureDoesNotMatch":        "authentication failed (check target.secret_key)",
	"InvalidToken":                 "authentication failed (check target.access_key and target.secret_key)",
	"AccessDenied":                 "permission denied (check target.access_key, target.secret_key and the key's rights on target.bucket)",
	"AllAccessDisabled":            "permission denied (all access to target.bucket is disabled)",
	"AccountProblem":               "permission denied (the account is blocked)",
	"NoSuchBucket":                 "no such bucket (check target.bucket; kbr does not create buckets)",
	"InvalidBucketName":            "bad bucket name (check target.bucket)",
	"AuthorizationHeaderMalformed": "authentication failed (check target.region)",
	"InvalidRegion":                "wrong region (check target.region)",
	"PermanentRedirect":            "wrong endpoint or region (check target.endpoint and target.region)",
	"RequestTimeTooSkewed":         "authentication failed: the worker's clock differs too much from the server's",
	"EntityTooLarge":               "the file is larger than the target accepts",
	"QuotaExceeded":                "the bucket's quota is used up",
	"XMinioStorageFull":            "the server's disks are full",
}

// classify turns a minio-go error into one naming the target, marked
// permanent when retrying cannot fix it. Secrets never appear in it:
// minio-go's errors carry codes, keys and bucket names only.
func (b *Backend) classify(op, name string, err error) error {
	if err == nil {
		return nil
	}
	what := op
	if name != "" {
		what = op + " " + name
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %s: %w", b, what, err)
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case er.Code == "NoSuchKey" || er.Code == "NoSuchObject" || (er.Code == "" && er.StatusCode == http.StatusNotFound && name != ""):
			return storage.Permanent(fmt.Errorf("%w: %s: %s", storage.ErrNotFound, b, what))
		case permanentCodes[er.Code] != "":
			return storage.Permanent(fmt.Errorf("%s: %s: %s: %s: %s", b, what, permanentCodes[er.Code], er.Code, er.Message))
		case er.Code == "SlowDown" || er.Code == "SlowDownWrite" || er.Code == "SlowDownRead" ||
			er.Code == "RequestTimeout" || er.Code == "InternalError" || er.Code == "ServiceUnavailable" ||
			er.Code == "Throttling" || er.Code == "ThrottlingException" || er.Code == "RequestLimitExceeded" ||
			er.Code == "ExpiredToken" || er.StatusCode >= 500 || er.StatusCode == http.StatusRequestTimeout ||
			er.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%s: %s: %s: %s (HTTP %d, retryable)", b, what, er.Code, er.Message, er.StatusCode)
		case er.StatusCode == http.StatusForbidden:
			return storage.Permanent(fmt.Errorf("%s: %s: permission denied or authentication failed (check target.access_key, target.secret_key and the key's rights): %s: %s", b, what, er.Code, er.Message))
		case er.StatusCode >= 400 && er.StatusCode < 500:
			return storage.Permanent(fmt.Errorf("%s: %s: %s: %s (HTTP %d)", b, what, er.Code, er.Message, er.StatusCode))
		case er.StatusCode == 0 && (er.Code == "InvalidArgument" || er.Code == "EntityTooLarge"):
			// minio-go's own argument checks.
			return storage.Permanent(fmt.Errorf("%s: %s: %s", b, what, er.Message))
		}
		return fmt.Errorf("%s: %s: %w", b, what, err)
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr):
		return storage.Permanent(fmt.Errorf("%s: %s: TLS: %w (check target.endpoint and target.ca_file)", b, what, err))
	case errors.As(err, &recErr), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return storage.Permanent(fmt.Errorf("%s: %s: %w (target.endpoint says https but the server speaks http)", b, what, err))
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		hint := "check target.endpoint"
		if !b.target.PathStyle {
			hint = "virtual-hosted addressing needs " + b.bucket + ".<endpoint host> to resolve; check target.endpoint or set target.path_style"
		}
		return storage.Permanent(fmt.Errorf("%s: %s: %w (%s)", b, what, err, hint))
	}
	// Connection refused or reset, timeouts, temporary DNS failures: retryable.
	return fmt.Errorf("%s: %s: %w", b, what, err)
}

// ---------------------------------------------------------------------------
// reads

// Open streams a committed object. A missing object is reported here, not at
// the first Read.
func (b *Backend) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	key, clean, err := b.key(name)
	if err != nil {
		return nil, err
	}
	// Close cancels rctx: it ends a download the read-ahead is waiting on.
	rctx, cancel := context.WithCancel(ctx)
	obj, err := b.client.GetObject(rctx, b.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		cancel()
		return nil, b.notFound(ctx, b.classify("open", clean, err))
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		cancel()
		return nil, b.notFound(ctx, b.classify("open", clean, err))
	}
	return &reader{obj: obj, b: b, ctx: ctx, cancel: cancel, name: clean}, nil
}

// OpenRange reads length bytes (-1: to the end) of name from offset on
// (storage.RangeOpener): one GET with a Range header, read ahead like
// Open's. A range the object does not hold fails with ErrBadRange: at once
// where the server refuses it (416, the offset past the end), else at the
// read that finds the object ending early. A zero-length range, and a range
// starting at the very end, only ask for the object's size (HEAD).
func (b *Backend) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.CheckRange(name, offset, length); err != nil {
		return nil, err
	}
	if offset == 0 && length < 0 {
		return b.Open(ctx, name)
	}
	key, clean, err := b.key(name)
	if err != nil {
		return nil, err
	}
	empty := func() (io.ReadCloser, error) {
		oi, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
		if err != nil {
			return nil, b.notFound(ctx, b.classify("open", clean, err))
		}
		if offset > oi.Size || (length > 0 && offset+length > oi.Size) {
			return nil, storage.RangeError(b.String(), clean, offset, length, oi.Size)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	if length == 0 {
		return empty()
	}
	var opts minio.GetObjectOptions
	end := int64(0) // "bytes=offset-": to the end
	if length > 0 {
		end = offset + length - 1
	}
	if err := opts.SetRange(offset, end); err != nil {
		return nil, storage.Permanent(fmt.Errorf("%s: read %s at %d, %d bytes: %w", b, clean, offset, length, err))
	}
	rctx, cancel := context.WithCancel(ctx)
	obj, err := b.client.GetObject(rctx, b.bucket, key, opts)
	if err == nil {
		_, err = obj.Stat()
		if err != nil {
			obj.Close()
		}
	}
	if err != nil {
		cancel()
		if minio.ToErrorResponse(err).Code == minio.InvalidRange {
			// The offset is at or past the end: at it, the rest is empty.
			if rc, eerr := empty(); eerr != nil || length < 0 {
				return rc, eerr
			}
			return nil, storage.RangeError(b.String(), clean, offset, length, -1)
		}
		return nil, b.notFound(ctx, b.classify("open", clean, err))
	}
	r := &reader{obj: obj, b: b, ctx: ctx, cancel: cancel, name: clean}
	if length < 0 {
		return r, nil
	}
	return &storage.LimitedReader{R: r, N: length, OnShort: func() error {
		return storage.RangeError(b.String(), clean, offset, length, -1)
	}}, nil
}

var _ storage.RangeOpener = (*Backend)(nil)

// notFound makes sure an ErrNotFound means the object, not the bucket: a
// HEAD answer has no body, and minio-go reports a missing bucket as
// NoSuchKey there. A restore must not conclude that a backup is gone when
// the bucket name is wrong. The bucket is checked once per backend.
func (b *Backend) notFound(ctx context.Context, err error) error {
	if !errors.Is(err, storage.ErrNotFound) || b.bucketSeen.Load() {
		return err
	}
	ok, berr := b.client.BucketExists(ctx, b.bucket)
	switch {
	case berr != nil:
		return b.classify("check bucket", "", berr)
	case !ok:
		return storage.Permanent(fmt.Errorf("%s: %s: %s", b, permanentCodes["NoSuchBucket"], b.bucket))
	}
	b.bucketSeen.Store(true)
	return err
}

// reader streams an object. On the first Read a goroutine starts copying
// the response body into an ahead.Pipe, up to 4 MiB ahead of the reader:
// the download goes on while the reader hashes or decompresses.
type reader struct {
	obj    *minio.Object
	b      *Backend
	ctx    context.Context
	cancel context.CancelFunc // of the download's context
	name   string

	ahead   *ahead.Pipe
	fetched chan struct{} // closed when the copying goroutine has returned
	err     error         // the first error Read returned
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.ahead == nil {
		q := ahead.New()
		r.ahead, r.fetched = q, make(chan struct{})
		go func() {
			defer close(r.fetched)
			_, err := io.Copy(q, struct{ io.Reader }{r.obj})
			q.CloseWrite(err)
		}()
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.ahead.Read(r.ctx, p)
	if err != nil && err != io.EOF {
		err = r.b.classify("read", r.name, err)
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

func (r *reader) Close() error {
	defer r.cancel()
	if r.ahead != nil {
		r.ahead.Close() // ends a copy waiting for a free buffer
		r.cancel()      // ends a copy waiting for the network
		<-r.fetched
	}
	return r.obj.Close()
}

func (b *Backend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	key, clean, err := b.key(name)
	if err != nil {
		return storage.FileInfo{}, err
	}
	oi, err := b.client.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return storage.FileInfo{}, b.notFound(ctx, b.classify("stat", clean, err))
	}
	return storage.FileInfo{Name: clean, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// List lists every object whose name starts with prefix (a plain string
// prefix, as S3 has it), recursively, sorted by name. "Directory" marker
// objects (keys ending in "/") are skipped.
func (b *Backend) List(ctx context.Context, prefix string) ([]storage.FileInfo, error) {
	if prefix != "" {
		if _, err := storage.CleanName(strings.TrimSuffix(prefix, "/")); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's lister if we return early
	var out []storage.FileInfo
	for oi := range b.client.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.root + prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, b.classify("list", fmt.Sprintf("%q", prefix), oi.Err)
		}
		if strings.HasSuffix(oi.Key, "/") || !strings.HasPrefix(oi.Key, b.root) {
			continue
		}
		out = append(out, storage.FileInfo{Name: oi.Key[len(b.root):], Size: oi.Size, ModTime: oi.LastModified})
	}
	if err := ctx.Err(); err != nil {
		return nil, b.classify("list", fmt.Sprintf("%q", prefix), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes an object; S3 answers a delete of a missing key with success.
func (b *Backend) Delete(ctx context.Context, name string) error {
	key, clean, err := b.key(name)
	if err != nil {
		return err
	}
	return b.classify("delete", clean, b.client.RemoveObject(ctx, b.bucket, key, minio.RemoveObjectOptions{}))
}

// FreeSpace: object stores do not tell.
func (b *Backend) FreeSpace(ctx context.Context) (uint64, error) {
	return 0, fmt.Errorf("%s: %w: object storage does not report free space", b, storage.ErrUnsupported)
}

// ---------------------------------------------------------------------------
// writes

var errAborted = errors.New("write aborted")

type writer struct {
	b         *Backend
	key, name string
	ctx       context.Context
	cancel    context.CancelFunc

	buf []byte // the first part, until it is full or the write ends

	// Once the first part is full: the upload runs in a goroutine reading pr.
	pw   *io.PipeWriter
	done chan struct{}
	err  error // the upload's result, set before done closes

	ended bool
}

// Create starts a write. Nothing goes to the server until a part is full or
// Commit is called; the object appears only when Commit returns nil.
func (b *Backend) Create(ctx context.Context, name string) (storage.Writer, error) {
	key, clean, err := b.key(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, b.classify("create", clean, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	return &writer{b: b, key: key, name: clean, ctx: wctx, cancel: cancel}, nil
}

func (b *Backend) putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(b.partSize),
		// One part in flight: minio-go then keeps a single part buffer
		// (putObjectMultipartStreamNoLength), whatever the object's size;
		// more: one buffer per thread (putObjectMultipartStreamParallel).
		NumThreads:            b.threads,
		ConcurrentStreamParts: b.threads > 1,
	}
}

func (w *writer) Write(p []byte) (int, error) {
	if w.ended {
		return 0, fmt.Errorf("%s: write %s: write already ended", w.b, w.name)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, w.b.classify("write", w.name, err)
	}
	if w.pw == nil {
		if int64(len(w.buf)+len(p)) <= w.b.singlePutMax {
			if w.buf == nil {
				w.buf = make([]byte, 0, min(int64(max(len(p), 64<<10)), w.b.singlePutMax))
			}
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.startMultipart()
	}
	n, err := w.pw.Write(p)
	if err != nil {
		<-w.done // the upload failed; its error is the one to report
		if w.err != nil {
			err = w.err
		}
		return n, err
	}
	return n, nil
}

// startMultipart starts the streaming upload, fed first with the buffered
// part, then with what Write passes through the pipe.
func (w *writer) startMultipart() {
	pr, pw := io.Pipe()
	w.pw = pw
	w.done = make(chan struct{})
	first := bytes.NewReader(w.buf)
	w.buf = nil // the MultiReader drops it once read
	go func() {
		defer close(w.done)
		// A crashed earlier attempt at this name may have left an
		// incomplete upload: remove it (best effort; a lifecycle rule
		// catches what this misses).
		_ = w.b.client.RemoveIncompleteUpload(w.ctx, w.b.bucket, w.key)
		_, err := w.b.client.PutObject(w.ctx, w.b.bucket, w.key, io.MultiReader(first, pr), -1, w.b.putOptions())
		if err != nil {
			w.err = w.b.classify("write", w.name, err)
			pr.CloseWithError(w.err)
			return
		}
		pr.Close()
	}()
}

// Commit ends the write and waits until the object is published.
func (w *writer) Commit() error {
	if w.ended {
		return fmt.Errorf("%s: commit %s: write already ended", w.b, w.name)
	}
	w.ended = true
	defer w.cancel()
	if w.pw == nil {
		// It fits one part: a single PUT, atomic by itself.
		_, err := w.b.client.PutObject(w.ctx, w.b.bucket, w.key, bytes.NewReader(w.buf), int64(len(w.buf)), w.b.putOptions())
		w.buf = nil
		return w.b.classify("commit", w.name, err)
	}
	w.pw.Close()
	<-w.done
	return w.err
}

// Abort cancels the upload; nothing becomes visible.
func (w *writer) Abort() error {
	if w.ended {
		return nil
	}
	w.ended = true
	w.buf = nil
	w.cancel()
	if w.pw == nil {
		return nil // nothing was sent
	}
	w.pw.CloseWithError(errAborted)
	<-w.done // PutObject fails: its reader never reached EOF
	// minio-go aborts the multipart upload of a failed PutObject; make sure
	// no incomplete upload of this key is left (best effort).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortCleanupTimeout)
	defer cancel()
	_ = w.b.client.RemoveIncompleteUpload(ctx, w.b.bucket, w.key)
	return nil
}
