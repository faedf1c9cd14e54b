package obs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/storagetest"
)

func validTarget() storage.Target {
	return storage.Target{
		Type: "OBS", Endpoint: "https://obs.cn-north-4.myhuaweicloud.com", Bucket: "kbr-backup",
		AccessKey: secret.Ref{Env: "AK"}, SecretKey: secret.Ref{File: "/etc/kbr/sk"}, Path: "kafka/prod",
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(*storage.Target)
		param string // "" = valid
	}{
		{"valid", func(*storage.Target) {}, ""},
		{"http with port", func(t *storage.Target) { t.Endpoint = "http://127.0.0.1:9000" }, ""},
		{"trailing slash", func(t *storage.Target) { t.Endpoint = "http://minio:9000/" }, ""},
		{"no endpoint", func(t *storage.Target) { t.Endpoint = "" }, "target.endpoint"},
		{"no scheme", func(t *storage.Target) { t.Endpoint = "obs.example.com" }, "target.endpoint"},
		{"ftp", func(t *storage.Target) { t.Endpoint = "ftp://obs.example.com" }, "target.endpoint"},
		{"endpoint path", func(t *storage.Target) { t.Endpoint = "https://obs.example.com/bucket" }, "target.endpoint"},
		{"endpoint user", func(t *storage.Target) { t.Endpoint = "https://ak:sk@obs.example.com" }, "target.endpoint"},
		{"bad port", func(t *storage.Target) { t.Endpoint = "http://h:99999" }, "target.endpoint"},
		{"no bucket", func(t *storage.Target) { t.Bucket = "" }, "target.bucket"},
		{"short bucket", func(t *storage.Target) { t.Bucket = "ab" }, "target.bucket"},
		{"long bucket", func(t *storage.Target) { t.Bucket = strings.Repeat("a", 64) }, "target.bucket"},
		{"upper bucket", func(t *storage.Target) { t.Bucket = "Kbr-Backup" }, "target.bucket"},
		{"underscore bucket", func(t *storage.Target) { t.Bucket = "kbr_backup" }, "target.bucket"},
		{"dash first", func(t *storage.Target) { t.Bucket = "-kbr" }, "target.bucket"},
		{"dot last", func(t *storage.Target) { t.Bucket = "kbr." }, "target.bucket"},
		{"double dot", func(t *storage.Target) { t.Bucket = "kbr..b" }, "target.bucket"},
		{"ip bucket", func(t *storage.Target) { t.Bucket = "192.168.1.10" }, "target.bucket"},
		{"xn-- bucket", func(t *storage.Target) { t.Bucket = "xn--kbr" }, "target.bucket"},
		{"dotted bucket ok", func(t *storage.Target) { t.Bucket = "kbr.backup.prod" }, ""},
		{"63 chars ok", func(t *storage.Target) { t.Bucket = strings.Repeat("a", 63) }, ""},
		{"no access key", func(t *storage.Target) { t.AccessKey = secret.Ref{} }, "target.access_key"},
		{"no secret key", func(t *storage.Target) { t.SecretKey = secret.Ref{} }, "target.secret_key"},
		{"both refs", func(t *storage.Target) { t.SecretKey = secret.Ref{Env: "X", File: "/y"} }, "target.secret_key"},
		{"path climbs", func(t *storage.Target) { t.Path = "a/../../b" }, "target.path"},
		{"path backslash", func(t *storage.Target) { t.Path = `a\b` }, "target.path"},
		{"ca with http", func(t *storage.Target) { t.Endpoint = "http://h:9000"; t.CAFile = "/ca.pem" }, "target.ca_file"},
		{"ca with https", func(t *storage.Target) { t.CAFile = "/ca.pem" }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tgt := validTarget()
			c.edit(&tgt)
			err := reg.Validate(tgt) // through the registry, as config does
			if c.param == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var pe *storage.ParamError
			if !errors.As(err, &pe) || pe.Param != c.param {
				t.Fatalf("Validate = %v, want a ParamError on %s", err, c.param)
			}
		})
	}
}

// TestOpenThroughRegistry: storage.Open knows the path type (any case), and
// New refuses an invalid target permanently, naming the parameter.
func TestOpenThroughRegistry(t *testing.T) {
	e := loadOBS(t)
	tgt := e.target(runPrefix + "/registry")
	tgt.Type = "obs"
	b, err := reg.Open(t.Context(), tgt)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, ok := b.(*Backend); !ok {
		t.Fatalf("storage.Open returned %T", b)
	}
	tgt.Bucket = "Bad_Bucket"
	_, err = reg.Open(t.Context(), tgt)
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "target.bucket") {
		t.Fatalf("Open with a bad bucket = %v; want a permanent error naming target.bucket", err)
	}
	tgt = e.target("x")
	tgt.AccessKey = secret.Ref{Env: "KBR_OBS_TEST_UNSET_VARIABLE"}
	_, err = reg.Open(t.Context(), tgt)
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "target.access_key") {
		t.Fatalf("Open with an unset key variable = %v; want a permanent error naming target.access_key", err)
	}
}

// TestSecretsNeverShown: neither String nor any error carries a key.
func TestSecretsNeverShown(t *testing.T) {
	e := loadOBS(t)
	ak, sk := readFile(t, e.AccessKeyFile), readFile(t, e.SecretKeyFile)
	b := newTestBackend(t, e, "secrets")
	wrongSK := "wrong-" + sk
	f := filepath.Join(t.TempDir(), "sk")
	os.WriteFile(f, []byte(wrongSK), 0o600)
	tgt := e.target(runPrefix + "/secrets")
	tgt.SecretKey = secret.Ref{File: f}
	wb, err := New(t.Context(), tgt)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	texts = append(texts, b.String(), wb.String(), fmt.Sprintf("%v %+v", b, tgt))
	_, err = wb.Stat(t.Context(), "x")
	texts = append(texts, fmt.Sprint(err))
	_, err = wb.List(t.Context(), "")
	texts = append(texts, fmt.Sprint(err))
	_, err = storage.WriteFile(t.Context(), wb, "x", strings.NewReader("x"))
	texts = append(texts, fmt.Sprint(err))
	for _, s := range texts {
		if strings.Contains(s, sk) || strings.Contains(s, wrongSK) {
			t.Errorf("a secret key shows in %q", s)
		}
		if strings.Contains(s, ak) {
			t.Errorf("the access key shows in %q", s)
		}
	}
}

// TestMultipartStreaming: a file larger than a part goes out as a multipart
// upload while it is written (the upload exists before Commit, the object
// does not), and after Commit the object is whole and no upload is left.
func TestMultipartStreaming(t *testing.T) {
	e := loadOBS(t)
	b := newTestBackend(t, e, "multipart")
	ctx := t.Context()
	const name, size = "seg/00000000000000000000.seg", 23<<20 + 4321
	key := b.Root() + name

	want := sha256.New()
	src := io.TeeReader(storagetest.Stream(name, size), want)
	w, err := b.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	// 12 MiB in odd chunks: past the single-PUT buffer and two parts.
	if _, err := io.CopyBuffer(w, io.LimitReader(src, 12<<20), make([]byte, 77777)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(incompleteUploads(t, e, key)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload in progress after writing 12 MiB: the writer buffers instead of streaming")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := b.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat before Commit = %v, want ErrNotFound", err)
	}
	if _, err := io.Copy(w, src); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	fi, err := b.Stat(ctx, name)
	if err != nil || fi.Size != size {
		t.Fatalf("Stat after Commit = %+v, %v; want size %d", fi, err, size)
	}
	got := sha256.New()
	rc, err := b.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(got, rc)
	rc.Close()
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("read back differs")
	}
	if ids := incompleteUploads(t, e, key); len(ids) != 0 {
		t.Fatalf("incomplete uploads left after Commit: %v", ids)
	}
	oi, err := e.admin(t).StatObject(ctx, e.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A multipart ETag ends in -<parts>: 23 MiB in 5 MiB parts is 5 parts.
	if !strings.HasSuffix(oi.ETag, fmt.Sprintf("-%d", (size+DefaultPartSize-1)/DefaultPartSize)) {
		t.Errorf("ETag %q: not the multipart upload of %d-byte parts expected", oi.ETag, DefaultPartSize)
	}
}

// TestAbortMultipartLeavesNoUpload: an aborted multipart write leaves neither
// an object nor an incomplete upload (whose parts would cost storage).
func TestAbortMultipartLeavesNoUpload(t *testing.T) {
	e := loadOBS(t)
	b := newTestBackend(t, e, "abort")
	ctx := t.Context()
	const name = "big/aborted"
	key := b.Root() + name
	w, err := b.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, storagetest.Stream("a", 13<<20)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(incompleteUploads(t, e, key)) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload in progress")
		}
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if ids := incompleteUploads(t, e, key); len(ids) != 0 {
		t.Errorf("incomplete uploads left after Abort: %v", ids)
	}
	if _, err := b.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after Abort = %v, want ErrNotFound", err)
	}
	if err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

// TestRetryRemovesCrashedUpload: an incomplete upload left by a crashed
// attempt (no Abort ever ran) is removed by the retried write of the name.
func TestRetryRemovesCrashedUpload(t *testing.T) {
	e := loadOBS(t)
	b := newTestBackend(t, e, "crashed")
	ctx := t.Context()
	const name = "seg/crashed"
	key := b.Root() + name
	core := minio.Core{Client: e.admin(t)}
	id, err := core.NewMultipartUpload(ctx, e.Bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("x"), 5<<20)
	if _, err := core.PutObjectPart(ctx, e.Bucket, key, id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	if ids := incompleteUploads(t, e, key); len(ids) != 1 {
		t.Fatalf("set-up: incomplete uploads = %v", ids)
	}
	if _, err := storage.WriteFile(ctx, b, name, storagetest.Stream("retry", 7<<20)); err != nil {
		t.Fatal(err)
	}
	if ids := incompleteUploads(t, e, key); len(ids) != 0 {
		t.Errorf("the crashed attempt's upload is still there: %v", ids)
	}
	if fi, err := b.Stat(ctx, name); err != nil || fi.Size != 7<<20 {
		t.Errorf("Stat = %+v, %v", fi, err)
	}
}

// roundTrip exercises one backend: a small and a multipart file, list, read, delete.
func roundTrip(t *testing.T, b storage.Backend) {
	t.Helper()
	ctx := t.Context()
	small := []byte("small file")
	if _, err := storage.WriteFile(ctx, b, "d/small", bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 11<<20+1)
	rand.Read(big)
	if _, err := storage.WriteFile(ctx, b, "d/big", bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	fs, err := b.List(ctx, "d/")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Name != "d/big" || fs[0].Size != int64(len(big)) || fs[1].Name != "d/small" {
		t.Fatalf("List = %+v", fs)
	}
	for name, want := range map[string][]byte{"d/small": small, "d/big": big} {
		rc, err := b.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %s: %d bytes, %v", name, len(got), err)
		}
	}
	for _, n := range []string{"d/small", "d/big"} {
		if err := b.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAddressing: path-style requests name the bucket in the path;
// virtual-hosted ones in the host (<bucket>.localhost, MINIO_DOMAIN=localhost
// on the stack's MinIO). <bucket>.localhost does not resolve on every
// machine (glibc without nss-myhostname, Go's own resolver): then the
// backend must fail permanently with a hint, and the virtual-hosted round
// trip goes through a dialer that sends *.localhost to 127.0.0.1.
func TestAddressing(t *testing.T) {
	e := loadOBS(t)
	if e.VHostEndpoint == "" {
		t.Fatal("KBR_OBS_VHOST_ENDPOINT missing from stack.env; run `make stack-up`")
	}
	t.Run("path-style", func(t *testing.T) {
		rec := &hostRecorder{}
		tgt := e.target(runPrefix + "/path-style/" + randName(4))
		b, err := newBackend(t.Context(), tgt, hooks{wrap: func(rt http.RoundTripper) http.RoundTripper { rec.rt = rt; return rec }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cleanPrefix(t, e, b.Root()) })
		roundTrip(t, b)
		u, _ := url.Parse(e.Endpoint)
		for _, r := range rec.requests() {
			if !strings.HasPrefix(r, u.Host+" /"+e.Bucket) {
				t.Fatalf("path-style request %q: want host %s and path /%s/...", r, u.Host, e.Bucket)
			}
		}
	})
	t.Run("virtual-hosted", func(t *testing.T) {
		u, _ := url.Parse(e.VHostEndpoint)
		vhost := e.Bucket + "." + u.Hostname()
		tgt := e.target(runPrefix + "/vhost/" + randName(4))
		tgt.Endpoint = e.VHostEndpoint
		tgt.PathStyle = false

		_, lookupErr := net.LookupHost(vhost)
		t.Logf("%s resolves here: %v (%v)", vhost, lookupErr == nil, lookupErr)
		plain, err := New(t.Context(), tgt)
		if err != nil {
			t.Fatal(err)
		}
		_, err = plain.List(t.Context(), "")
		if lookupErr != nil {
			if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "path_style") {
				t.Errorf("virtual-hosted List with an unresolvable %s = %v; want a permanent error that suggests path_style", vhost, err)
			}
		} else if err != nil {
			t.Errorf("virtual-hosted List: %v", err)
		}

		rec := &hostRecorder{}
		var d net.Dialer
		b, err := newBackend(t.Context(), tgt, hooks{
			dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, _ := net.SplitHostPort(addr)
				if strings.HasSuffix(host, ".localhost") {
					addr = net.JoinHostPort("127.0.0.1", port)
				}
				return d.DialContext(ctx, network, addr)
			},
			wrap: func(rt http.RoundTripper) http.RoundTripper { rec.rt = rt; return rec },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cleanPrefix(t, e, b.Root()) })
		roundTrip(t, b)
		reqs := rec.requests()
		for _, r := range reqs {
			if !strings.HasPrefix(r, vhost+":"+u.Port()+" /") || strings.HasPrefix(r, vhost+":"+u.Port()+" /"+e.Bucket+"/") {
				t.Fatalf("virtual-hosted request %q: want host %s:%s and the key in the path", r, vhost, u.Port())
			}
		}
		t.Logf("%d virtual-hosted requests, e.g. %q", len(reqs), reqs[0])
	})
}

// TestHTTPSWithCAFile: an https endpoint signed by a private CA works with
// target.ca_file and fails permanently without it. A TLS proxy in front of
// the stack's MinIO stands in for an https OBS endpoint (it keeps the Host
// header, which the request signature covers).
func TestHTTPSWithCAFile(t *testing.T) {
	e := loadOBS(t)
	caPEM, cert := testCA(t)
	upstream, _ := url.Parse(e.Endpoint)
	proxy := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Host = r.In.Host
		},
	})
	proxy.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	proxy.StartTLS()
	defer proxy.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, caPEM, 0o644)

	tgt := e.target(runPrefix + "/https/" + randName(4))
	tgt.Endpoint = proxy.URL // https://127.0.0.1:PORT
	tgt.CAFile = caFile
	b, err := New(t.Context(), tgt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanPrefix(t, e, b.Root()) })
	roundTrip(t, b)

	tgt.CAFile = ""
	nb, err := New(t.Context(), tgt)
	if err != nil {
		t.Fatal(err)
	}
	_, err = nb.Stat(t.Context(), "x")
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("Stat over https with an unknown CA = %v; want a permanent error naming target.ca_file", err)
	}
	t.Logf("without ca_file: %v", err)

	tgt.CAFile = filepath.Join(t.TempDir(), "none.pem")
	os.WriteFile(tgt.CAFile, []byte("not a certificate"), 0o644)
	if _, err := New(t.Context(), tgt); !storage.IsPermanent(err) || !strings.Contains(err.Error(), "target.ca_file") {
		t.Fatalf("New with a ca_file holding no certificate = %v", err)
	}
}

// testCA makes a CA and a server certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kbr test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestErrorClassification: real MinIO answers for a missing bucket and a
// missing key; a fake S3 for the server-side conditions MinIO will not
// produce on demand (503 SlowDown, 500, 403 AccessDenied).
func TestErrorClassification(t *testing.T) {
	e := loadOBS(t)
	ctx := t.Context()

	tgt := e.target("x")
	tgt.Bucket = "kbr-no-such-bucket-" + randName(3)
	nb, _ := New(ctx, tgt)
	_, err := nb.List(ctx, "")
	if !storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "target.bucket") || !strings.Contains(err.Error(), nb.String()) {
		t.Errorf("List on a missing bucket = %v; want permanent, not ErrNotFound, naming target.bucket and the target", err)
	}
	_, err = storage.WriteFile(ctx, nb, "f", strings.NewReader("x"))
	if !storage.IsPermanent(err) || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("write to a missing bucket = %v; want a permanent NoSuchBucket", err)
	}
	// A HEAD answer has no body: without a check a missing bucket would
	// read as a missing object, and a restore would think its backup gone.
	_, err = nb.Stat(ctx, "manifest.json")
	if !storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "no such bucket") {
		t.Errorf("Stat on a missing bucket = %v; want a permanent no-such-bucket error, not ErrNotFound", err)
	}
	_, err = nb.Open(ctx, "manifest.json")
	if !storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open on a missing bucket = %v; want a permanent error, not ErrNotFound", err)
	}

	b := newTestBackend(t, e, "errors")
	if _, err := b.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) || !storage.IsPermanent(err) {
		t.Errorf("Stat(missing) = %v; want ErrNotFound", err)
	}
	if _, err := b.Open(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open(missing) = %v; want ErrNotFound", err)
	}
	if _, err := b.Stat(ctx, "."); !errors.Is(err, storage.ErrBadName) {
		t.Errorf("Stat(.) = %v; want ErrBadName", err)
	}
	if _, err := b.FreeSpace(ctx); !errors.Is(err, storage.ErrUnsupported) {
		t.Errorf("FreeSpace = %v; want ErrUnsupported", err)
	}

	// Nothing listens on a freshly closed port: connection refused.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	tgt = e.target("x")
	tgt.Endpoint = "http://" + addr
	rb, _ := New(ctx, tgt)
	if _, err := rb.Stat(ctx, "x"); err == nil || storage.IsPermanent(err) {
		t.Errorf("Stat with connection refused = %v; want a retryable error", err)
	}

	for _, c := range []struct {
		status    int
		code      string
		permanent bool
	}{
		{503, "SlowDown", false},
		{503, "ServiceUnavailable", false},
		{500, "InternalError", false},
		{403, "AccessDenied", true},
		{403, "InvalidAccessKeyId", true},
		{400, "InvalidArgument", true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(c.status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>fake %s</Message><RequestId>1</RequestId></Error>`, c.code, c.code)
		}))
		tgt := e.target("x")
		tgt.Endpoint = srv.URL
		fb, _ := New(ctx, tgt)
		_, lerr := fb.List(ctx, "")
		_, werr := storage.WriteFile(ctx, fb, "f", strings.NewReader("x"))
		srv.Close()
		for op, err := range map[string]error{"List": lerr, "write": werr} {
			if err == nil || storage.IsPermanent(err) != c.permanent || !strings.Contains(err.Error(), c.code) {
				t.Errorf("%s on %d %s = %v; want permanent=%v naming %s", op, c.status, c.code, err, c.permanent, c.code)
			}
		}
	}
}

// TestListSkipsDirectoryMarkers: "folder" objects some consoles create
// (zero-byte keys ending in /) are not files.
func TestListSkipsDirectoryMarkers(t *testing.T) {
	e := loadOBS(t)
	b := newTestBackend(t, e, "markers")
	ctx := t.Context()
	if _, err := e.admin(t).PutObject(ctx, e.Bucket, b.Root()+"dir/", bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.WriteFile(ctx, b, "dir/f", strings.NewReader("f")); err != nil {
		t.Fatal(err)
	}
	fs, err := b.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Name != "dir/f" {
		t.Fatalf("List = %+v, want just dir/f", fs)
	}
}
