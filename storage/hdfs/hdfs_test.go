package hdfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"strings"
	"testing"
	"time"

	gohdfs "github.com/colinmarc/hdfs/v2"

	"github.com/kbr-project/kbr/storage"
)

// pseudo returns size reproducible pseudo-random bytes, generated on the fly.
func pseudo(seed uint64, size int64) io.Reader {
	return io.LimitReader(&chachaReader{r: rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})}, size)
}

type chachaReader struct{ r *rand.ChaCha8 }

func (c *chachaReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func readAll(t *testing.T, b storage.Backend, name string) []byte {
	t.Helper()
	rc, err := b.Open(ctxT(t), name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return got
}

// TestRegistered: both path types open through the registry, and the
// validator runs for both.
func TestRegistered(t *testing.T) {
	e := loadHDFS(t)
	root := e.freshRoot(t)
	for _, typ := range []string{"RemoteHDFS", "LocalHDFS", "remotehdfs"} {
		tgt := e.target(root)
		tgt.Type = typ
		if err := reg.Validate(tgt); err != nil {
			t.Errorf("Validate(%s): %v", typ, err)
		}
		b, err := reg.Open(ctxT(t), tgt)
		if err != nil {
			t.Fatalf("reg.Open(%s): %v", typ, err)
		}
		if !strings.HasPrefix(b.String(), typ+":") || !strings.HasSuffix(b.String(), ":"+root) {
			t.Errorf("String() = %q, want %s:...:%s", b, typ, root)
		}
		b.Close()
	}
}

// TestBasics: the contract on the real HDFS, step by step.
func TestBasics(t *testing.T) {
	e := loadHDFS(t)
	b := e.newBackend(t)
	ctx := ctxT(t)

	w, err := b.Create(ctx, "a/b/file")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello"))
	if _, err := b.Stat(ctx, "a/b/file"); !errors.Is(err, storage.ErrNotFound) || !storage.IsPermanent(err) {
		t.Errorf("uncommitted file: Stat = %v, want a permanent ErrNotFound", err)
	}
	if fs, err := b.List(ctx, ""); err != nil || len(fs) != 0 {
		t.Errorf("partial write listed: %v, %v", fs, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
	if got := readAll(t, b, "a/b/file"); string(got) != "hello" {
		t.Errorf("read %q", got)
	}
	fi, err := b.Stat(ctx, "a/b/file")
	if err != nil || fi.Size != 5 || fi.Name != "a/b/file" || time.Since(fi.ModTime) > time.Hour {
		t.Errorf("Stat = %+v, %v", fi, err)
	}
	// A directory is not a committed file.
	if _, err := b.Stat(ctx, "a/b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(dir) = %v, want ErrNotFound", err)
	}
	if _, err := b.Open(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open(dir) = %v, want ErrNotFound", err)
	}
	// Overwrite: the second commit replaces the first, atomically (rename2 OVERWRITE).
	if _, err := storage.WriteFile(ctx, b, "a/b/file", strings.NewReader("replaced, longer")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b, "a/b/file"); string(got) != "replaced, longer" {
		t.Errorf("after overwrite read %q", got)
	}
	// A leftover partial (crashed writer) does not block a new write, and
	// two attempts at one name write files of their own: each Commit
	// publishes exactly its own bytes, the later one last (the contract of
	// every file-like backend, one partial-file scheme for all).
	w1, err := b.Create(ctx, "left")
	if err != nil {
		t.Fatal(err)
	}
	w1.Write([]byte("the first attempt"))
	w2, err := b.Create(ctx, "left")
	if err != nil {
		t.Fatalf("Create over a leftover partial: %v", err)
	}
	w2.Write([]byte("second"))
	if p, err := b.ListPartial(ctx, "left"); err != nil || len(p) != 2 {
		t.Errorf("ListPartial during two attempts = %v, %v; want two partial files", p, err)
	}
	if err := w2.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b, "left"); string(got) != "second" {
		t.Errorf("read %q, want second", got)
	}
	if err := w1.Commit(); err != nil {
		t.Errorf("the first attempt's Commit: %v", err)
	}
	if got := readAll(t, b, "left"); string(got) != "the first attempt" {
		t.Errorf("after the first attempt's commit read %q, want its bytes", got)
	}
	if p, err := b.ListPartial(ctx, ""); err != nil || len(p) != 0 {
		t.Errorf("ListPartial after both commits = %v, %v; want nothing", p, err)
	}
	// Listing, names, deletes.
	for _, n := range []string{"c/1", "c/2", "c/d/3", "cc"} {
		if _, err := storage.WriteFile(ctx, b, n, strings.NewReader(n)); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	fs, err := b.List(ctx, "c")
	for _, f := range fs {
		names = append(names, f.Name)
	}
	if err != nil || strings.Join(names, " ") != "c/1 c/2 c/d/3 cc" {
		t.Errorf("List(c) = %v, %v", names, err)
	}
	if fs, err := b.List(ctx, "left/"); err != nil || len(fs) != 0 {
		t.Errorf("List(file/) = %v, %v; want nothing", fs, err)
	}
	for _, bad := range []string{"x:y", "a.kbr-partial", ".", "../x"} {
		if _, err := b.Create(ctx, bad); !errors.Is(err, storage.ErrBadName) || !storage.IsPermanent(err) {
			t.Errorf("Create(%q) = %v, want a permanent ErrBadName", bad, err)
		}
	}
	if err := b.Delete(ctx, "c/1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "c/1"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := b.Open(ctx, "c/1"); !errors.Is(err, storage.ErrNotFound) || !storage.IsPermanent(err) {
		t.Errorf("Open(deleted) = %v, want a permanent ErrNotFound", err)
	}
	free, err := b.FreeSpace(ctx)
	if err != nil || free < 1<<30 {
		t.Errorf("FreeSpace = %d, %v", free, err)
	}
	t.Logf("%s: %d GiB free", b, free>>30)
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.Stat(ctx, "left"); err == nil {
		t.Error("Stat after Close succeeded")
	}
}

// TestMultiBlock streams a file across many HDFS blocks (1 MiB blocks, 40
// MiB plus a partial chunk) in uneven writes and reads it back byte-exact.
func TestMultiBlock(t *testing.T) {
	e := loadHDFS(t)
	o := defaultOptions()
	o.blockSize = 1 << 20
	b := e.openBackend(t, e.target(e.freshRoot(t)), o)
	ctx := ctxT(t)
	const size = 40<<20 + 777
	w, err := b.Create(ctx, "multi/block.bin")
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	src := io.TeeReader(pseudo(1, size), want)
	buf := make([]byte, 3<<20)
	for chunk := 1; ; chunk = chunk*3 + 1 {
		n, err := io.ReadFull(src, buf[:min(chunk, len(buf))])
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				t.Fatal(werr)
			}
		}
		if err != nil {
			break
		}
		if chunk > len(buf) {
			chunk = 1
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Open(ctx, "multi/block.bin")
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	rc.Close()
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("read back differs")
	}
	// The file really has 41 blocks.
	c, err := gohdfs.NewClient(gohdfs.ClientOptions{Addresses: []string{e.NameNode}, User: e.User})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fr, err := c.Open(path.Join(b.Root(), "multi/block.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	if bs := fr.Stat().(*gohdfs.FileInfo).Sys().(*gohdfs.FileStatus).GetBlocksize(); bs != 1<<20 {
		t.Errorf("block size %d, want 1 MiB", bs)
	}
}

// TestPermissionDenied: HDFS permissions are on; the unprivileged user may
// not write to / (owned by the superuser). The error is permanent and says so.
func TestPermissionDenied(t *testing.T) {
	e := loadHDFS(t)
	ctx := ctxT(t)
	// Opening a root the user may not create fails at once.
	_, err := New(ctx, e.target("/kbr-denied-"+randHex(3)))
	if err == nil || !storage.IsPermanent(err) || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Open on a root the user cannot create = %v; want a permanent permission error", err)
	}
	// A root that exists but is not writable: / itself.
	b := e.openBackend(t, e.target("/"), defaultOptions())
	_, err = storage.WriteFile(ctx, b, "kbr-denied-file", strings.NewReader("x"))
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), b.String()) {
		t.Errorf("write to / as %s = %v; want a permanent permission error naming the target", e.User, err)
	}
	t.Logf("message: %v", err)
}

// TestQuotaExceeded: a space quota on the target directory makes writes fail
// permanently (DSQuotaExceededException), and FreeSpace reports the quota.
func TestQuotaExceeded(t *testing.T) {
	e := loadHDFS(t)
	b := e.newBackend(t)
	ctx := ctxT(t)
	const quota = 64 << 20
	e.dfsAdmin(t, "-setSpaceQuota", fmt.Sprint(quota), b.Root())
	t.Cleanup(func() { e.dfsAdmin(t, "-clrSpaceQuota", b.Root()) })
	free, err := b.FreeSpace(ctx)
	if err != nil || free > quota {
		t.Errorf("FreeSpace under a %d byte quota = %d, %v", quota, free, err)
	}
	// A block is charged at its full size (128 MiB) when allocated: over the quota.
	_, err = storage.WriteFile(ctx, b, "q/over", strings.NewReader("more than the quota allows"))
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "DSQuotaExceededException") {
		t.Errorf("write over the quota = %v; want a permanent DSQuotaExceededException", err)
	}
	t.Logf("message: %v", err)
	if fs, err := b.List(ctx, ""); err != nil || len(fs) != 0 {
		t.Errorf("after the failed write List = %v, %v", fs, err)
	}
	// The name quota: the target directory itself counts, so 1 allows no file.
	e.dfsAdmin(t, "-setQuota", "1", b.Root())
	t.Cleanup(func() { e.dfsAdmin(t, "-clrQuota", b.Root()) })
	_, err = b.Create(ctx, "n")
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "NSQuotaExceededException") {
		t.Errorf("create over the name quota = %v; want a permanent NSQuotaExceededException", err)
	}
}

// TestSafeModeIsRetryable: a NameNode in safe mode refuses writes with a
// SafeModeException, which goes away by itself (startup) or by an operator:
// retryable. Reads still work.
func TestSafeModeIsRetryable(t *testing.T) {
	e := loadHDFS(t)
	b := e.newBackend(t)
	ctx := ctxT(t)
	if _, err := storage.WriteFile(ctx, b, "before", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	e.dfsAdmin(t, "-safemode", "enter")
	left := false
	t.Cleanup(func() {
		if !left {
			e.dfsAdmin(t, "-safemode", "leave")
		}
	})
	_, err := storage.WriteFile(ctx, b, "during", strings.NewReader("x"))
	if err == nil || storage.IsPermanent(err) || !strings.Contains(err.Error(), "SafeModeException") {
		t.Errorf("write in safe mode = %v; want a retryable SafeModeException", err)
	}
	t.Logf("message: %v", err)
	if got := readAll(t, b, "before"); string(got) != "x" {
		t.Errorf("read in safe mode: %q", got)
	}
	e.dfsAdmin(t, "-safemode", "leave")
	left = true
	if _, err := storage.WriteFile(ctx, b, "during", strings.NewReader("x")); err != nil {
		t.Errorf("write after safe mode: %v", err)
	}
}

// TestKerberosMissingKeytab: there is no KDC here, so only the configuration
// path is tested: a keytab that does not exist is a permanent error naming
// target.kerberos.keytab, found before any network traffic.
func TestKerberosMissingKeytab(t *testing.T) {
	tgt := storage.Target{
		Type: "RemoteHDFS", NameNodes: []string{"127.0.0.1:1"}, Path: "/kbr",
		Kerberos: &storage.Kerberos{Principal: "kbr@EXAMPLE.COM", Keytab: "/nonexistent/kbr.keytab"},
	}
	if err := reg.Validate(tgt); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	start := time.Now()
	_, err := reg.Open(context.Background(), tgt)
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "target.kerberos.keytab") ||
		!strings.Contains(err.Error(), "/nonexistent/kbr.keytab") || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open with a missing keytab = %v; want a permanent error naming target.kerberos.keytab", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v: the keytab must be checked before connecting", d)
	}
	t.Logf("message: %v", err)
}

// TestClosedBackend: operations after Close fail permanently instead of
// panicking on closed connections.
func TestClosedBackend(t *testing.T) {
	e := loadHDFS(t)
	b := e.newBackend(t)
	b.Close()
	if _, err := b.Create(context.Background(), "x"); err == nil || !storage.IsPermanent(err) {
		t.Errorf("Create after Close = %v", err)
	}
}

// TestOldPartialNames guards against leftovers of kbr versions that wrote
// "<name>.kbr-partial" (one fixed name per file) staying on the target
// forever: ListPartial finds them beside today's "<name>.kbr-partial-<hex>",
// List never shows them, and Delete removes them.
func TestOldPartialNames(t *testing.T) {
	e := loadHDFS(t)
	b := e.openBackend(t, e.target(e.freshRoot(t)), defaultOptions())
	ctx := ctxT(t)
	raw := b.clients[0].c
	for _, n := range []string{"d/seg.kbr-partial", "d/seg.kbr-partial-00112233aabbccdd"} {
		if err := raw.MkdirAll(path.Join(b.root, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := raw.Create(path.Join(b.root, n))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("left behind"))
		err = w.Close()
		for i := 0; i < 50 && gohdfs.IsErrReplicating(err); i++ {
			time.Sleep(100 * time.Millisecond)
			err = w.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := b.ListPartial(ctx, "d/")
	if err != nil || len(p) != 2 {
		t.Fatalf("ListPartial = %v, %v; want both leftovers", p, err)
	}
	if fs, err := b.List(ctx, ""); err != nil || len(fs) != 0 {
		t.Errorf("List = %v, %v; want nothing", fs, err)
	}
	for _, f := range p {
		if err := b.Delete(ctx, f.Name); err != nil {
			t.Errorf("Delete(%s): %v", f.Name, err)
		}
	}
	if p, err := b.ListPartial(ctx, ""); err != nil || len(p) != 0 {
		t.Errorf("ListPartial after Delete = %v, %v; want nothing", p, err)
	}
}
