package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kbr-project/kbr/storage"
)

// maxAddedRSS is what streaming a file of any size may add to the process.
// Under the race detector, whose shadow memory grows with the heap, the
// limit is four times as high: still far below any file-sized buffer.
var maxAddedRSS int64 = 64 << 20

func init() {
	if raceEnabled {
		maxAddedRSS *= 4
	}
}

// testBigFile guards against backends that buffer whole files (a 2 GiB
// segment then costs 2 GiB of RAM, or fails), and against corruption in long
// streams (chunk boundaries, offsets past 4 GiB of protocol fields, concurrent
// request reordering): the file goes out and comes back streaming and must
// hash the same, and the process may not grow by 64 MiB or more doing it.
func testBigFile(t *testing.T, h Harness, size int64) {
	b := newBackend(t, h)
	// No deadline but the test binary's: under the race detector or on a
	// slow target 2 GiB may take longer than any one operation should.
	ctx := t.Context()
	const name = "big/segment.bin"

	want := sha256.New()
	rss := startRSS(t)
	start := time.Now()
	w, err := b.Create(ctx, name)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	n, err := io.Copy(w, io.TeeReader(Stream("big", size), want))
	if err != nil {
		w.Abort()
		t.Fatalf("write: %v after %d bytes", err, n)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	writeTime := time.Since(start)
	writeRSS := rss.added()

	fi, err := b.Stat(ctx, name)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if fi.Size != size {
		t.Errorf("Stat size = %d, want %d", fi.Size, size)
	}

	got := sha256.New()
	rss = startRSS(t)
	start = time.Now()
	rc, err := b.Open(ctx, name)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	m, err := io.Copy(got, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	readTime := time.Since(start)
	readRSS := rss.added()
	if err != nil {
		t.Fatalf("read back: %v after %d bytes", err, m)
	}
	if m != size {
		t.Errorf("read back %d bytes, want %d", m, size)
	}
	if g, w := sumOf(got), sumOf(want); g != w {
		t.Errorf("read back SHA-256 %s, want %s", g, w)
	}
	t.Logf("%s: %d MiB written in %v (%.0f MB/s, +%.1f MiB RSS), read in %v (%.0f MB/s, +%.1f MiB RSS)",
		b, size>>20, writeTime.Round(time.Millisecond), mbps(size, writeTime), float64(writeRSS)/(1<<20),
		readTime.Round(time.Millisecond), mbps(size, readTime), float64(readRSS)/(1<<20))
	if raceEnabled {
		t.Logf("race detector on: RSS limit %d MiB", maxAddedRSS>>20)
	}
	if writeRSS >= maxAddedRSS {
		t.Errorf("writing %d MiB added %d MiB of RSS, want < %d MiB", size>>20, writeRSS>>20, maxAddedRSS>>20)
	}
	if readRSS >= maxAddedRSS {
		t.Errorf("reading %d MiB added %d MiB of RSS, want < %d MiB", size>>20, readRSS>>20, maxAddedRSS>>20)
	}
	if err := b.Delete(ctx, name); err != nil {
		t.Errorf("Delete: %v", err)
	}
}

// testConcurrentWriters guards against state shared between writes on one
// backend (one connection, one buffer, one "current file"): eight writers
// interleave uneven chunks, and each file must come back with exactly its own
// bytes; then eight readers do the same at once.
func testConcurrentWriters(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := opCtx(t)
	const writers, size = 8, 3<<20 + 12345
	name := func(i int) string { return fmt.Sprintf("w/%d/file-%d", i%2, i) }
	want := make([]string, writers)
	err := forEach(writers, writers, func(i int) error {
		data := content(name(i), size)
		want[i] = sum(data)
		w, err := b.Create(ctx, name(i))
		if err != nil {
			return fmt.Errorf("Create %s: %w", name(i), err)
		}
		for off, chunk := 0, 1000+i*7919; off < len(data); chunk = chunk*3/2 + 1 {
			// uneven, growing chunks cross any internal buffer size
			end := min(off+chunk, len(data))
			if _, err := w.Write(data[off:end]); err != nil {
				w.Abort()
				return fmt.Errorf("write %s: %w", name(i), err)
			}
			off = end
		}
		return w.Commit()
	})
	if err != nil {
		t.Fatal(err)
	}
	err = forEach(writers, writers, func(i int) error {
		got, err := tryRead(ctx, b, name(i))
		if err != nil {
			return err
		}
		if len(got) != size || sum(got) != want[i] {
			return fmt.Errorf("%s: read %d bytes (sum %s), want %d bytes (sum %s)", name(i), len(got), sum(got), size, want[i])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := b.List(ctx, "w/")
	if err != nil {
		t.Fatal(err)
	}
	var wantNames []string
	for i := range writers {
		wantNames = append(wantNames, name(i))
	}
	sort.Strings(wantNames)
	if !slices.Equal(names(fs), wantNames) {
		t.Errorf("List(w/) = %v, want %v", names(fs), wantNames)
	}
	for _, f := range fs {
		if f.Size != size {
			t.Errorf("List: %s has size %d, want %d", f.Name, f.Size, size)
		}
	}
}

// testAbort guards against aborted writes that stay visible (a half segment a
// restore would read), that leave a partial a later write appends to, or that
// a Commit after Abort still publishes.
func testAbort(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := opCtx(t)

	w, err := b.Create(ctx, "a/b/aborted")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content("aborted", 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	mustBeGone(t, b, "a/b/aborted", "after Abort")
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v, want nil (Abort after the end of a write is a no-op)", err)
	}
	if err := w.Commit(); err == nil {
		t.Errorf("Commit after Abort succeeded, want an error")
	}
	mustBeGone(t, b, "a/b/aborted", "after Commit following Abort")

	// An abort before any byte, in a directory that did not exist.
	w, err = b.Create(ctx, "a/new/dir/empty")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	mustBeGone(t, b, "a/new/dir/empty", "after Abort of an empty write")

	// The retry of the aborted write holds exactly its own bytes.
	small := []byte("the retried write")
	write(t, b, "a/b/aborted", small)
	if got := read(t, b, "a/b/aborted"); !bytes.Equal(got, small) {
		t.Errorf("after retry read %d bytes %q..., want %q", len(got), got[:min(len(got), 40)], small)
	}

	// An empty file is a file.
	write(t, b, "a/empty", nil)
	if fi, err := b.Stat(ctx, "a/empty"); err != nil || fi.Size != 0 {
		t.Errorf("Stat(a/empty) = %+v, %v; want size 0", fi, err)
	}
}

// testCancelledContext guards against a write whose context is cancelled
// (worker shutdown, activity timeout) leaving a file behind: either the
// backend stops writing and then refuses to commit the prefix it has, or the
// caller aborts, and the abort must clean up although the context it started
// with is gone. The backend must also stay usable afterwards (a cancelled
// request must not poison a shared connection).
func testCancelledContext(t *testing.T, h Harness) {
	b := newBackend(t, h)
	const name = "c/cancelled"

	ctx, cancel := context.WithCancel(t.Context())
	w, err := b.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content("before-cancel", 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	// The caller's source sees the cancellation first, as WriteFile's would.
	var werr error
	for i := 0; i < 8 && werr == nil; i++ {
		_, werr = w.Write(content("after-cancel", 256<<10))
	}
	if werr != nil {
		t.Logf("Write after cancel: %v", werr)
		if err := w.Commit(); err == nil {
			t.Errorf("Commit after a failed Write succeeded: the backend published a truncated file")
		}
	}
	if err := w.Abort(); err != nil && werr == nil {
		t.Errorf("Abort after cancel: %v", err)
	}
	mustBeGone(t, b, name, "after a cancelled write")

	// A Create on a cancelled context either fails or writes nothing visible.
	if w, err := b.Create(ctx, "c/late"); err == nil {
		w.Write([]byte("x"))
		w.Abort()
	}
	mustBeGone(t, b, "c/late", "after a write started on a cancelled context")

	// The backend still works.
	data := content("after", 100<<10)
	write(t, b, "c/after", data)
	if got := read(t, b, "c/after"); !bytes.Equal(got, data) {
		t.Errorf("after a cancelled write, read %d bytes (sum %s), want %d (sum %s)", len(got), sum(got), len(data), sum(data))
	}
	write(t, b, name, []byte("ok"))
	if got := read(t, b, name); string(got) != "ok" {
		t.Errorf("rewrite of the cancelled name read %q, want %q", got, "ok")
	}
}

// testAtomicPublish guards against writing in place or publishing before
// the data is complete: a reader polling while a slow write runs must see
// the file absent or whole, never a prefix, and whole as soon as Commit
// returns.
func testAtomicPublish(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := opCtx(t)
	const name, size, chunk = "p/manifest.json", 8 << 20, 64 << 10
	data := content("atomic", size)
	want := sum(data)

	var committed atomic.Bool
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			w, err := b.Create(ctx, name)
			if err != nil {
				return err
			}
			for off := 0; off < size; off += chunk {
				if _, err := w.Write(data[off : off+chunk]); err != nil {
					w.Abort()
					return err
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := w.Commit(); err != nil {
				return err
			}
			committed.Store(true)
			return nil
		}()
	}()

	var absent, whole int
	var writeErr error
	done := false
	for !done || whole < 3 {
		if !done {
			select {
			case writeErr = <-errc:
				done = true
				if writeErr != nil {
					t.Fatalf("slow write: %v", writeErr)
				}
			default:
			}
		}
		wasCommitted := committed.Load()
		fi, err := b.Stat(ctx, name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if wasCommitted {
				t.Fatalf("Stat after Commit returned: %v", err)
			}
			absent++
		case err != nil:
			t.Fatalf("Stat during write: %v", err)
		case fi.Size != size:
			t.Fatalf("Stat during write saw %d of %d bytes: a partial file is visible", fi.Size, size)
		}
		fs, err := b.List(ctx, "p/")
		if err != nil {
			t.Fatalf("List during write: %v", err)
		}
		for _, f := range fs {
			if f.Name != name || f.Size != size {
				t.Fatalf("List during write shows %s with %d bytes; want nothing or %s with %d", f.Name, f.Size, name, size)
			}
		}
		got, err := tryRead(ctx, b, name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if wasCommitted {
				t.Fatalf("Open after Commit returned: %v", err)
			}
			absent++
		case err != nil:
			t.Fatalf("read during write: %v", err)
		case len(got) != size || sum(got) != want:
			t.Fatalf("read during write got %d bytes (sum %s), want nothing or %d (sum %s)", len(got), sum(got), size, want)
		default:
			whole++
		}
		time.Sleep(10 * time.Millisecond)
	}
	if absent == 0 {
		t.Errorf("never observed the file absent during the write: the check proved nothing")
	}
	t.Logf("%d polls saw nothing, %d the whole file", absent, whole)
}

// testOverwrite guards against a second write of a name that fails
// because the first is in the way (plain SFTP and SMB renames refuse to
// replace), or that leaves the first one's tail behind a shorter file.
func testOverwrite(t *testing.T, h Harness) {
	b := newBackend(t, h)
	long, short := content("first", 300<<10), []byte("second, shorter")
	write(t, b, "o/manifest", long)
	write(t, b, "o/manifest", short)
	if got := read(t, b, "o/manifest"); !bytes.Equal(got, short) {
		t.Errorf("after overwrite read %d bytes %.40q, want %q", len(got), got, short)
	}
	if fi, err := b.Stat(opCtx(t), "o/manifest"); err != nil || fi.Size != int64(len(short)) {
		t.Errorf("after overwrite Stat = %+v, %v; want size %d", fi, err, len(short))
	}
	fs, err := b.List(opCtx(t), "o/")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(fs); !slices.Equal(got, []string{"o/manifest"}) {
		t.Errorf("after overwrite List(o/) = %v, want [o/manifest]", got)
	}
}

// testListPrefix guards against listings that are truncated (servers page
// directory reads), unsorted, treat the prefix as a directory only
// ("many/05/0051" must match files, not just a folder), leak partial files,
// or take a directory walk per file: 10,000 files in 100 directories.
func testListPrefix(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := opCtx(t)
	const n = 10000
	name := func(i int) string { return fmt.Sprintf("many/%02d/%05d", i/100, i) }
	decoys := []string{"man", "many0", "many-x/y", "manyy/z", "zz/many/1"}

	start := time.Now()
	err := forEach(n+len(decoys), 16, func(i int) error {
		nm := ""
		if i < n {
			nm = name(i)
		} else {
			nm = decoys[i-n]
		}
		_, err := storage.WriteFile(ctx, b, nm, strings.NewReader(nm))
		return err
	})
	if err != nil {
		t.Fatalf("writing %d files: %v", n, err)
	}
	wrote := time.Since(start)

	all := make([]string, 0, n+len(decoys))
	for i := range n {
		all = append(all, name(i))
	}
	all = append(all, decoys...)
	sort.Strings(all)
	filter := func(prefix string) []string {
		var out []string
		for _, s := range all {
			if strings.HasPrefix(s, prefix) {
				out = append(out, s)
			}
		}
		return out
	}

	start = time.Now()
	for _, prefix := range []string{"many/", "", "many", "many/05/", "many/05/0051", "many/0", "many/99/09999", "nothing/", "many/05/0051x", "zz/"} {
		fs, err := b.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		got, want := names(fs), filter(prefix)
		if !slices.Equal(got, want) {
			t.Errorf("List(%q) returned %d names, want %d; first difference: %s", prefix, len(got), len(want), firstDiff(got, want))
			continue
		}
		for _, f := range fs {
			if f.Size != int64(len(f.Name)) {
				t.Errorf("List(%q): %s has size %d, want %d", prefix, f.Name, f.Size, len(f.Name))
				break
			}
			if f.ModTime.IsZero() {
				t.Errorf("List(%q): %s has no modification time", prefix, f.Name)
				break
			}
		}
	}
	t.Logf("%s: wrote %d files in %v (16 writers), ten listings in %v", b, n+len(decoys), wrote.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("at %d got %q, want %q", i, g, w)
		}
	}
	return "none"
}

// testDelete guards against Delete failing on a missing file (prune and
// retried deletes would then fail forever) and against deleting more than the
// name (a prefix, a sibling).
func testDelete(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := opCtx(t)
	for _, n := range []string{"d/x", "d/xy", "d/x2/z"} {
		write(t, b, n, []byte(n))
	}
	for i := range 2 {
		if err := b.Delete(ctx, "d/x"); err != nil {
			t.Fatalf("Delete #%d of d/x: %v", i+1, err)
		}
	}
	mustBeGone(t, b, "d/x", "after Delete")
	fs, err := b.List(ctx, "d/")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(fs), []string{"d/x2/z", "d/xy"}; !slices.Equal(got, want) {
		t.Errorf("after Delete(d/x), List(d/) = %v, want %v", got, want)
	}
	for _, n := range []string{"never-written", "no/such/dir/file"} {
		if err := b.Delete(ctx, n); err != nil {
			t.Errorf("Delete(%s) of a missing file: %v, want nil", n, err)
		}
	}
}

// testRemoveEmptyDirs: the directories deleted files leave empty go, up to
// the stop directory; one that still holds a file stays, with the file; a
// write into a removed directory works again.
func testRemoveEmptyDirs(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := opCtx(t)
	gone := []string{"r/a/b/f1", "r/a/b/f2", "r/c/f3"}
	for _, n := range append([]string{"r/a/keep"}, gone...) {
		write(t, b, n, []byte(n))
	}
	for _, n := range gone {
		if err := b.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	removed, left, err := storage.RemoveEmptyDirs(ctx, b, gone, "r")
	if err != nil {
		t.Fatalf("RemoveEmptyDirs: %v", err)
	}
	if _, isDirs := b.(storage.DirRemover); isDirs != h.Dirs {
		t.Fatalf("Harness.Dirs is %v, the backend implements storage.DirRemover: %v", h.Dirs, isDirs)
	}
	if h.Dirs {
		// r/a/b and r/c removed; r/a holds keep; r itself is the stop.
		if removed != 2 || left != 1 {
			t.Errorf("RemoveEmptyDirs = %d removed, %d left; want 2 and 1 (r/a holds a file)", removed, left)
		}
		if err := storage.RemoveDir(ctx, b, "r/a"); err == nil {
			t.Errorf("RemoveDir(r/a) of a directory holding r/a/keep: nil error")
		}
		if err := storage.RemoveDir(ctx, b, "r/no-such-dir"); err != nil {
			t.Errorf("RemoveDir of a missing directory: %v, want nil", err)
		}
	} else {
		if removed != 0 || left != 0 {
			t.Errorf("RemoveEmptyDirs on a target without directories = %d removed, %d left", removed, left)
		}
		if err := storage.RemoveDir(ctx, b, "r/a"); !errors.Is(err, storage.ErrUnsupported) {
			t.Errorf("RemoveDir on a target without directories: %v, want storage.ErrUnsupported", err)
		}
	}
	fs, err := b.List(ctx, "r/")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(fs); !slices.Equal(got, []string{"r/a/keep"}) {
		t.Errorf("after RemoveEmptyDirs, List(r/) = %v, want [r/a/keep]", got)
	}
	if got := read(t, b, "r/a/keep"); string(got) != "r/a/keep" {
		t.Errorf("r/a/keep reads %q", got)
	}
	write(t, b, "r/a/b/again", []byte("again"))
	if got := read(t, b, "r/a/b/again"); string(got) != "again" {
		t.Errorf("a write into a removed directory reads back %q", got)
	}
}

// testListPartial guards against leftovers that no prune can find: the
// temporary file of a write that has not ended (or never will: a killed
// worker) is listed by ListPartial, with a recent ModTime for the prune to
// judge its age by, and never by List; a committed or aborted write leaves
// nothing for ListPartial.
func testListPartial(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := opCtx(t)
	_, isPL := b.(storage.PartialLister)
	if isPL != h.Partial {
		t.Fatalf("Harness.Partial is %v, the backend implements storage.PartialLister: %v", h.Partial, isPL)
	}
	if !h.Partial {
		if _, err := storage.ListPartial(ctx, b, ""); !errors.Is(err, storage.ErrUnsupported) {
			t.Errorf("ListPartial on a target without partial files: %v, want storage.ErrUnsupported", err)
		}
		return
	}
	write(t, b, "lp/done", content("done", 1000))
	if p, err := storage.ListPartial(ctx, b, ""); err != nil || len(p) != 0 {
		t.Fatalf("ListPartial after a committed write = %v, %v; want nothing", names(p), err)
	}
	w, err := b.Create(ctx, "lp/sub/open")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(content("open", 3<<20)); err != nil {
		t.Fatal(err)
	}
	p, err := storage.ListPartial(ctx, b, "lp/")
	if err != nil {
		t.Fatalf("ListPartial during a write: %v", err)
	}
	if len(p) != 1 || !storage.IsPartial(p[0].Name) || !strings.HasPrefix(p[0].Name, "lp/sub/open"+storage.PartialMarker) {
		t.Fatalf("ListPartial(lp/) during a write of lp/sub/open = %v; want its one temporary file lp/sub/open%s...", names(p), storage.PartialMarker)
	}
	if age := time.Since(p[0].ModTime); age > 10*time.Minute || age < -10*time.Minute {
		t.Errorf("the partial file's ModTime is %v, %v from now; want about now", p[0].ModTime, age)
	}
	for prefix, want := range map[string]int{"": 1, "lp/sub/open": 1, "lp/sub/": 1, "lp/other": 0, "lp/sub/openX": 0} {
		if p, err := storage.ListPartial(ctx, b, prefix); err != nil || len(p) != want {
			t.Errorf("ListPartial(%q) = %v, %v; want %d file(s)", prefix, names(p), err, want)
		}
	}
	fs, err := b.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(fs); !slices.Equal(got, []string{"lp/done"}) {
		t.Errorf("List during a write = %v, want [lp/done]", got)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if p, err := storage.ListPartial(ctx, b, ""); err != nil || len(p) != 0 {
		t.Errorf("ListPartial after Abort = %v, %v; want nothing", names(p), err)
	}
}

// testOpenRange guards against range reads (the data path reads chunks of
// pack files) that return other bytes than the file holds at that offset,
// run past the range, or quietly return less when the file is shorter than
// the range; ranges cross the 1 MiB request size of the backends that
// chunk, and several are read at once.
func testOpenRange(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := opCtx(t)
	if _, ok := b.(storage.RangeOpener); !ok {
		t.Errorf("the backend does not implement storage.RangeOpener: range reads would read the file from its start")
	}
	const size = 3<<20 + 4321
	data := content("range", size)
	write(t, b, "r/pack", data)
	readRange := func(off, n int64) ([]byte, error) {
		rc, err := storage.OpenRange(ctx, b, "r/pack", off, n)
		if err != nil {
			return nil, err
		}
		got, err := io.ReadAll(rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		return got, err
	}
	ranges := []struct{ off, n int64 }{
		{0, 10}, {0, -1}, {0, size}, {1, 100}, {1<<20 - 3, 7}, {1 << 20, 1 << 20}, {1<<20 + 17, 2<<20 + 5},
		{size - 100, 100}, {size - 1, 1}, {size - 1, -1}, {5, 0}, {size, 0}, {size, -1}, {2 << 20, -1},
	}
	for _, r := range ranges {
		got, err := readRange(r.off, r.n)
		end := int64(size)
		if r.n >= 0 {
			end = r.off + r.n
		}
		want := data[r.off:end]
		if err != nil {
			t.Errorf("OpenRange(%d, %d): %v", r.off, r.n, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("OpenRange(%d, %d) read %d bytes (sum %s), want %d (sum %s)", r.off, r.n, len(got), sum(got), len(want), sum(want))
		}
	}
	for _, r := range []struct{ off, n int64 }{{size + 1, -1}, {size + 1, 0}, {size - 10, 11}, {0, size + 1}, {size + 100, 5}, {-1, 5}, {0, -2}} {
		_, err := readRange(r.off, r.n)
		if !errors.Is(err, storage.ErrBadRange) || !storage.IsPermanent(err) {
			t.Errorf("OpenRange(%d, %d) of a %d-byte file: %v; want a permanent storage.ErrBadRange", r.off, r.n, size, err)
		}
	}
	if rc, err := storage.OpenRange(ctx, b, "r/missing", 0, 10); !errors.Is(err, storage.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("OpenRange of a missing file: %v, want storage.ErrNotFound", err)
	}
	// Several chunks read at once, as a restore reads a pack.
	err := forEach(16, 8, func(i int) error {
		off := int64(i) * (size / 16)
		n := int64(size / 16)
		got, err := readRange(off, n)
		if err != nil {
			return fmt.Errorf("OpenRange(%d, %d): %w", off, n, err)
		}
		if !bytes.Equal(got, data[off:off+n]) {
			return fmt.Errorf("OpenRange(%d, %d) read other bytes (sum %s, want %s)", off, n, sum(got), sum(data[off:off+n]))
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// testBadNames guards against path traversal: a name from a manifest or a
// topic must never reach outside the root, whatever the server would allow.
// Names climbing out are aimed at a sibling root, which must stay empty.
func testBadNames(t *testing.T, h Harness) {
	b := newBackend(t, h)
	sibling := newBackend(t, h)
	ctx := opCtx(t)
	sibRoot := rootOf(sibling)
	sib := path.Base(sibRoot)
	bad := []string{
		"", "..", "../x", "../../x", "a/../../x", "a/../x", "a/..", "/x", "/etc/passwd", `a\..\..\x`,
		"../" + sib + "/escaped", "a/../../" + sib + "/escaped",
	}
	if strings.HasPrefix(sibRoot, "/") {
		bad = append(bad, sibRoot+"/escaped-absolute")
	}
	check := func(op, name string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s(%q) succeeded, want a permanent ErrBadName", op, name)
		} else if !storage.IsPermanent(err) || !errors.Is(err, storage.ErrBadName) {
			t.Errorf("%s(%q) = %v; want a permanent ErrBadName", op, name, err)
		}
	}
	for _, name := range bad {
		w, err := b.Create(ctx, name)
		check("Create", name, err)
		if err == nil {
			w.Write([]byte("escaped"))
			w.Commit()
		}
		_, err = b.Stat(ctx, name)
		check("Stat", name, err)
		rc, err := b.Open(ctx, name)
		check("Open", name, err)
		if err == nil {
			rc.Close()
		}
		check("Delete", name, b.Delete(ctx, name))
	}
	for _, prefix := range []string{"../", "../" + sib, "a/../../", "/"} {
		_, err := b.List(ctx, prefix)
		check("List", prefix, err)
	}
	for _, x := range []storage.Backend{b, sibling} {
		fs, err := x.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) > 0 {
			t.Errorf("%s holds %v after only refused writes", x, names(fs))
		}
	}
}

// testWrongCredentials guards against auth failures that are retried for
// hours (they must be permanent) or reported as something else ("not found",
// "EOF"): the operator must read which target and that it is authentication.
func testWrongCredentials(t *testing.T, h Harness) {
	if h.WrongCredentials == nil {
		t.Log("this path type has no credentials")
		return
	}
	b := h.WrongCredentials(t)
	if b == nil {
		t.Fatal("Harness.WrongCredentials returned nil")
	}
	defer b.Close()
	ctx := opCtx(t)
	check := func(op string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s with wrong credentials succeeded", op)
			return
		}
		msg := err.Error()
		low := strings.ToLower(msg)
		if !storage.IsPermanent(err) {
			t.Errorf("%s with wrong credentials: %v; want a permanent error", op, err)
		}
		if errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s with wrong credentials claims not found: %v", op, err)
		}
		if !strings.Contains(low, "authentication") && !strings.Contains(low, "permission") {
			t.Errorf("%s with wrong credentials: %q does not say authentication or permission", op, msg)
		}
		if !strings.Contains(msg, b.String()) {
			t.Errorf("%s with wrong credentials: %q does not name the target %s", op, msg, b)
		}
	}
	_, err := b.Stat(ctx, "x")
	check("Stat", err)
	_, err = b.List(ctx, "")
	check("List", err)
	rc, err := b.Open(ctx, "x")
	if err == nil {
		rc.Close()
	}
	check("Open", err)
	w, err := b.Create(ctx, "x")
	if err == nil {
		// A backend may only learn at the first write or the commit.
		if _, err = w.Write([]byte("x")); err == nil {
			err = w.Commit()
		} else {
			w.Abort()
		}
	}
	check("Create+Commit", err)
	check("Delete", b.Delete(ctx, "x"))
	t.Logf("message: %v", err)
}

// testFreeSpace guards against preflight checks that believe a full target
// is empty (0 read as "unknown") or fail on targets that cannot tell.
func testFreeSpace(t *testing.T, h Harness) {
	b := newBackend(t, h)
	free, err := b.FreeSpace(opCtx(t))
	if !h.FreeSpace {
		if !errors.Is(err, storage.ErrUnsupported) {
			t.Errorf("FreeSpace = %d, %v; want an error wrapping storage.ErrUnsupported", free, err)
		}
		return
	}
	if err != nil || free == 0 {
		t.Fatalf("FreeSpace = %d, %v; want > 0", free, err)
	}
	t.Logf("%s: %d MiB free", b, free>>20)
}

// testServerStop guards against the two ways a backend mishandles a server
// that goes away: errors marked permanent (the backup fails for good on a
// restart of the server), or "not found" (a restore decides the backup is
// gone) — and against backends that never reconnect, or whose leftover
// partial write is appended to by the retried write.
func testServerStop(t *testing.T, h Harness) {
	if h.StopServer == nil {
		t.Log("no server to stop (LocalDir)")
		return
	}
	b := newBackend(t, h)
	ctx := opCtx(t)
	before := content("before-stop", 10<<10)
	write(t, b, "s/before", before)
	pending, err := b.Create(ctx, "s/interrupted")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pending.Write(content("interrupted", 1<<20)); err != nil {
		t.Fatal(err)
	}

	h.StopServer(t)
	running := false
	t.Cleanup(func() {
		if !running {
			h.StartServer(t)
		}
	})

	const limit = 90 * time.Second
	check := func(op string, fn func() error) {
		t.Helper()
		var err error
		took := callWithin(t, limit, op+" with the server stopped", func() { err = fn() })
		switch {
		case err == nil:
			t.Errorf("%s with the server stopped succeeded", op)
		case storage.IsPermanent(err):
			t.Errorf("%s with the server stopped: %v; want a retryable (not permanent) error", op, err)
		case errors.Is(err, storage.ErrNotFound):
			t.Errorf("%s with the server stopped claims not found: %v", op, err)
		default:
			t.Logf("%s: %v (after %v)", op, err, took.Round(time.Millisecond))
		}
	}
	check("Write+Commit of a write started before the stop", func() error {
		_, err := pending.Write(content("interrupted-2", 1<<20))
		if err == nil {
			err = pending.Commit()
		}
		if err != nil {
			pending.Abort()
		}
		return err
	})
	check("Stat of an existing file", func() error { _, err := b.Stat(ctx, "s/before"); return err })
	check("Stat of a missing file", func() error { _, err := b.Stat(ctx, "s/missing"); return err })
	check("Open", func() error {
		rc, err := b.Open(ctx, "s/before")
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		return err
	})
	check("List", func() error { _, err := b.List(ctx, "s/"); return err })
	check("Create+Write+Commit", func() error {
		_, err := storage.WriteFile(ctx, b, "s/new", bytes.NewReader(content("new", 1<<20)))
		return err
	})
	check("Delete", func() error { return b.Delete(ctx, "s/before") })
	if h.FreeSpace {
		check("FreeSpace", func() error { _, err := b.FreeSpace(ctx); return err })
	}

	h.StartServer(t)
	running = true

	// The same backend works again at once: it reconnects by itself.
	if got := read(t, b, "s/before"); !bytes.Equal(got, before) {
		t.Errorf("after restart read %d bytes, want %d", len(got), len(before))
	}
	retried := []byte("the retried write is all there is")
	write(t, b, "s/interrupted", retried)
	if got := read(t, b, "s/interrupted"); !bytes.Equal(got, retried) {
		t.Errorf("retried write after restart reads %d bytes %.40q, want %q", len(got), got, retried)
	}
	fs, err := b.List(ctx, "s/")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(fs), []string{"s/before", "s/interrupted"}; !slices.Equal(got, want) {
		t.Errorf("after restart List(s/) = %v, want %v", got, want)
	}
	// Concurrent use right after a reconnect.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nm := fmt.Sprintf("s/after-%d", i)
			if _, err := storage.WriteFile(ctx, b, nm, strings.NewReader(nm)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("write after restart: %v", err)
	}
}
