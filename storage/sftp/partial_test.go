package sftp_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/sftp"
)

// TestConcurrentAttemptsOfOneName guards against two attempts at one name
// (a retried activity whose first attempt still runs) writing into one
// temporary file: each publishes exactly its own bytes, and a write that
// never ends leaves a partial file that List hides and ListPartial finds.
func TestConcurrentAttemptsOfOneName(t *testing.T) {
	s := loadServer(t)
	root := s.scratch(t)
	b, err := sftp.New(t.Context(), s.target(root))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	first, second := bytes.Repeat([]byte("first "), 500_000), bytes.Repeat([]byte("2nd"), 100_000)
	w1, err := b.Create(ctx, "seg/a")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := b.Create(ctx, "seg/a")
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(first); off += 64 << 10 {
		if _, err := w1.Write(first[off:min(off+64<<10, len(first))]); err != nil {
			t.Fatal(err)
		}
		if off < len(second) {
			if _, err := w2.Write(second[off:min(off+64<<10, len(second))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if p, err := b.ListPartial(ctx, "seg/"); err != nil || len(p) != 2 {
		t.Errorf("ListPartial during two writes = %v, %v; want two partial files", p, err)
	}
	if err := w2.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b, "seg/a"); !bytes.Equal(got, second) {
		t.Errorf("after the second attempt's Commit read %d bytes, want its %d", len(got), len(second))
	}
	if err := w1.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b, "seg/a"); !bytes.Equal(got, first) {
		t.Errorf("after the first attempt's Commit read %d bytes, want its %d", len(got), len(first))
	}

	// A write that never ends (its worker killed: the connection goes
	// without Commit or Abort) leaves a partial file, hidden from List,
	// found by ListPartial and removed by Delete.
	dead, err := sftp.New(ctx, s.target(root))
	if err != nil {
		t.Fatal(err)
	}
	w3, err := dead.Create(ctx, "seg/c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w3.Write(bytes.Repeat([]byte("c"), 3<<20)); err != nil {
		t.Fatal(err)
	}
	dead.Close()
	files, err := b.List(ctx, "seg/")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if storage.IsPartial(f.Name) {
			t.Errorf("List shows the partial file %s", f.Name)
		}
	}
	p, err := b.ListPartial(ctx, "seg/")
	if err != nil || len(p) != 1 || p[0].Size == 0 || !storage.IsPartial(p[0].Name) {
		t.Fatalf("ListPartial = %v, %v; want the one partial file of seg/c", p, err)
	}
	if err := b.Delete(ctx, p[0].Name); err != nil {
		t.Errorf("Delete(%s): %v", p[0].Name, err)
	}
	if p, err := b.ListPartial(ctx, ""); err != nil || len(p) != 0 {
		t.Errorf("ListPartial after Delete = %v, %v; want nothing", p, err)
	}
	if _, err := b.Create(ctx, p[0].Name); err == nil {
		t.Errorf("Create(%s) of a partial file's name succeeded, want ErrBadName", p[0].Name)
	}
}

func readAll(t *testing.T, b storage.Backend, name string) []byte {
	t.Helper()
	rc, err := b.Open(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
