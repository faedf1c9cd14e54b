// Package storagetest is the conformance suite every storage backend runs
// against its real server: the contract written on storage.Backend, checked
// the way backups use it (large streams, many writers, cancelled and
// aborted writes, thousands of files, a server that goes away).
//
// A backend's test builds a Harness and calls Run:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, storagetest.Harness{
//			New:          func(t *testing.T) storage.Backend { ... a fresh, empty root ... },
//			StopServer:   func(t *testing.T) { ... },
//			StartServer:  func(t *testing.T) { ... },
//			FreeSpace:    true,
//		})
//	}
//
// The size of the big-file check is KBR_STORAGETEST_BIG when set (bytes, or
// with a unit: 256MiB, 2GiB), else Harness.BigFileBytes, else 2 GiB.
package storagetest

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/storage"
)

// BigEnv names the environment variable that sets the big-file size.
const BigEnv = "KBR_STORAGETEST_BIG"

// DefaultBigFileBytes is the big-file size when neither BigEnv nor
// Harness.BigFileBytes says otherwise.
const DefaultBigFileBytes = 2 << 30

// Harness connects the suite to one backend and its server.
type Harness struct {
	// New returns a backend on a fresh, empty root: a unique directory or
	// prefix per call, removed by a t.Cleanup the function registers. Roots
	// of successive calls should be siblings (dir/a, dir/b): the bad-name
	// check then also proves that "../b/x" written through a does not land
	// in b. The suite closes the backend.
	New func(t *testing.T) storage.Backend
	// WrongCredentials returns a backend on the same server opened with a
	// wrong password or key; nil when the path type has no credentials.
	// When opening itself fails, return OpenFailed(target, err): the open
	// error is then what the suite checks. Every operation must then fail
	// permanently with a message that holds the backend's String() and
	// says "authentication" or "permission".
	WrongCredentials func(t *testing.T) storage.Backend
	// StopServer and StartServer stop the real server (every connection
	// to it dies) and start it again; each returns once that is done. Nil
	// only for a target without a server (LocalDir).
	StopServer, StartServer func(t *testing.T)
	// FreeSpace says the target reports free space; otherwise FreeSpace
	// must fail with an error wrapping storage.ErrUnsupported.
	FreeSpace bool
	// Dirs says the target has real directories: it implements
	// storage.DirRemover. Otherwise storage.RemoveDir must fail with an
	// error wrapping storage.ErrUnsupported.
	Dirs bool
	// Partial says writes go to temporary files that a killed worker can
	// leave behind: the backend implements storage.PartialLister.
	// Otherwise storage.ListPartial must fail with an error wrapping
	// storage.ErrUnsupported.
	Partial bool
	// BigFileBytes is the size of the big-file check (default 2 GiB);
	// KBR_STORAGETEST_BIG overrides it.
	BigFileBytes int64
}

// Run runs every check as a subtest of t, one after the other (the memory
// figures of the big-file check are only meaningful on a quiet process).
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("storagetest: Harness.New is nil")
	}
	if (h.StopServer == nil) != (h.StartServer == nil) {
		t.Fatal("storagetest: give both Harness.StopServer and Harness.StartServer, or neither")
	}
	big, err := bigFileBytes(h.BigFileBytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("BigFileStreaming", func(t *testing.T) { testBigFile(t, h, big) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, h) })
	t.Run("AbortLeavesNothing", func(t *testing.T) { testAbort(t, h) })
	t.Run("CancelledContextLeavesNothing", func(t *testing.T) { testCancelledContext(t, h) })
	t.Run("AtomicPublish", func(t *testing.T) { testAtomicPublish(t, h) })
	t.Run("OverwriteReplaces", func(t *testing.T) { testOverwrite(t, h) })
	t.Run("ListPrefix10k", func(t *testing.T) { testListPrefix(t, h) })
	t.Run("DeleteIdempotent", func(t *testing.T) { testDelete(t, h) })
	t.Run("RemoveEmptyDirs", func(t *testing.T) { testRemoveEmptyDirs(t, h) })
	t.Run("ListPartial", func(t *testing.T) { testListPartial(t, h) })
	t.Run("OpenRange", func(t *testing.T) { testOpenRange(t, h) })
	t.Run("BadNames", func(t *testing.T) { testBadNames(t, h) })
	t.Run("WrongCredentials", func(t *testing.T) { testWrongCredentials(t, h) })
	t.Run("FreeSpace", func(t *testing.T) { testFreeSpace(t, h) })
	t.Run("ServerStopIsRetryable", func(t *testing.T) { testServerStop(t, h) })
}

func bigFileBytes(harness int64) (int64, error) {
	if s := strings.TrimSpace(os.Getenv(BigEnv)); s != "" {
		n, err := ParseSize(s)
		if err != nil {
			return 0, fmt.Errorf("storagetest: %s=%q: %w", BigEnv, s, err)
		}
		return n, nil
	}
	if harness > 0 {
		return harness, nil
	}
	return DefaultBigFileBytes, nil
}

// ParseSize reads a byte count: "1048576", "64KiB", "256MiB", "2GiB" (also
// KB/MB/GB, powers of ten, and a bare K/M/G as binary).
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
	}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(num), strings.ToUpper(u.suffix)) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive size: %q", s)
	}
	return n * mult, nil
}

// OpenFailed is for Harness.WrongCredentials when opening the backend
// already fails: a backend whose every operation returns err, and whose
// String is the target's.
func OpenFailed(t storage.Target, err error) storage.Backend {
	return failed{target: t.String(), err: err}
}

type failed struct {
	target string
	err    error
}

func (f failed) Create(context.Context, string) (storage.Writer, error) { return nil, f.err }
func (f failed) Open(context.Context, string) (io.ReadCloser, error)    { return nil, f.err }
func (f failed) Stat(context.Context, string) (storage.FileInfo, error) {
	return storage.FileInfo{}, f.err
}
func (f failed) List(context.Context, string) ([]storage.FileInfo, error) { return nil, f.err }
func (f failed) Delete(context.Context, string) error                     { return f.err }
func (f failed) FreeSpace(context.Context) (uint64, error)                { return 0, f.err }
func (f failed) Close() error                                             { return nil }
func (f failed) String() string                                           { return f.target }

var _ storage.Backend = failed{}
