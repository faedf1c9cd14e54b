package cifs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudsoda/go-smb2"

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/all"
	"github.com/kbr-project/kbr/storage/cifs"
	"github.com/kbr-project/kbr/storage/storagetest"
)

// server is a Samba server of the test stack (deploy/services/cifs.sh):
// the default one, or the one with `server signing = mandatory`.
type server struct {
	host              string
	port              int
	user              string
	passwordFile      string
	share             string
	stopCmd, startCmd string
	conf              string // its smb.conf, for smbstatus
}

// loadServer is the default server (signing only when the client asks).
func loadServer(t testing.TB) server { return loadInstance(t, "KBR_CIFS_") }

// loadSignedServer is the server that requires signing.
func loadSignedServer(t testing.TB) server { return loadInstance(t, "KBR_CIFS_SIGNED_") }

func loadInstance(t testing.TB, prefix string) server {
	t.Helper()
	env := testenv.Load(t)
	get := func(k string) string {
		v := env.Vars[k]
		if v == "" {
			t.Fatalf("%s lacks %s: the CIFS test server is not set up; run `make stack-up`", testenv.EnvFile, k)
		}
		return v
	}
	addr := get(prefix + "ADDR")
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%sADDR=%q: %v", prefix, addr, err)
	}
	port, _ := strconv.Atoi(portStr)
	s := server{
		host: host, port: port,
		user:         get("KBR_CIFS_USER"),
		passwordFile: get("KBR_CIFS_PASSWORD_FILE"),
		share:        get(prefix + "SHARE"),
		stopCmd:      get(prefix + "STOP"),
		startCmd:     get(prefix + "START"),
		conf:         filepath.Join(env.StackDir, "cifs", "smb.conf"),
	}
	if prefix == "KBR_CIFS_SIGNED_" {
		s.conf = filepath.Join(env.StackDir, "cifs", "signed", "smb.conf")
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the CIFS test server at %s does not answer (%v); run `make stack-up`", addr, err)
	}
	c.Close()
	lockServer(t, filepath.Join(env.StackDir, "cifs", "tests.lock"), "CIFS")
	return s
}

// lockServer holds an exclusive lock on the test server until t ends: the
// server-stop check of one test run would otherwise break the connections
// of another run (two developers, or `go test ./...` twice, on one stack).
// One lock serves both servers of the stack; a test that uses both holds
// it once (a second flock of the same file by this process would wait for
// the first).
func lockServer(t testing.TB, lockFile, what string) {
	t.Helper()
	held.Lock()
	defer held.Unlock()
	if held.refs > 0 {
		held.refs++
		t.Cleanup(releaseServer)
		return
	}
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("lock the %s test server: %v; run `make stack-up`", what, err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for said := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("lock %s: %v (another test run has been using the %s test server for too long)", lockFile, err, what)
		}
		if !said {
			t.Logf("waiting for another test run to finish with the %s test server (%s)", what, lockFile)
			said = true
		}
		time.Sleep(time.Second)
	}
	held.f, held.refs = f, 1
	t.Cleanup(releaseServer)
}

var held struct {
	sync.Mutex
	f    *os.File
	refs int
}

func releaseServer() {
	held.Lock()
	defer held.Unlock()
	if held.refs--; held.refs == 0 {
		held.f.Close() // closing releases the lock
	}
}

func (s server) target(dir string) storage.Target {
	return storage.Target{
		Type: cifs.Type, Server: s.host, Port: s.port, User: s.user,
		Password: secret.Ref{File: s.passwordFile}, Share: s.share, Path: dir,
	}
}

func run(t *testing.T, command string) {
	t.Helper()
	f := strings.Fields(command)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
}

// scratch returns a fresh directory in the share for this test, removed
// (through SMB) when it ends.
func (s server) scratch(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	dir := "test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		be, err := cifs.New(context.Background(), s.target("/"))
		if err != nil {
			t.Errorf("cleanup of %s: %v", dir, err)
			return
		}
		defer be.Close()
		if err := removeAll(cifs.RawShare(be), dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup of %s: %v", dir, err)
		}
	})
	return dir
}

// removeAll deletes dir recursively: files with 16 concurrent removals
// (go-smb2's RemoveAll takes one round trip after another), then the
// directories, deepest first.
func removeAll(sh *smb2.Share, dir string) error {
	var files, dirs []string
	var walk func(d string) error
	walk = func(d string) error {
		dirs = append(dirs, d)
		entries, err := sh.ReadDir(d)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() {
				if err := walk(d + "/" + e.Name()); err != nil {
					return err
				}
			} else {
				files = append(files, d+"/"+e.Name())
			}
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(files)); i = next.Add(1) - 1 {
				if err := sh.Remove(files[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := sh.Remove(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// TestConformance runs the storage conformance suite against the stack's
// default Samba server; roots are siblings under one scratch directory.
func TestConformance(t *testing.T) { conformance(t, loadServer(t)) }

// TestConformanceSigningMandatory runs it against the server that requires
// signing: every message signed both ways (go-smb2 v1.1.0 failed the 2 GiB
// streaming write there).
func TestConformanceSigningMandatory(t *testing.T) { conformance(t, loadSignedServer(t)) }

func conformance(t *testing.T, s server) {
	parent := s.scratch(t)
	var n atomic.Int64
	storagetest.Run(t, storagetest.Harness{
		New: func(t *testing.T) storage.Backend {
			b, err := all.Registry().Open(t.Context(), s.target(path.Join(parent, fmt.Sprintf("r%03d", n.Add(1)))))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		WrongCredentials: func(t *testing.T) storage.Backend {
			pw := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(pw, []byte("not-the-password\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			tg := s.target(parent)
			tg.Password = secret.Ref{File: pw}
			b, err := all.Registry().Open(t.Context(), tg)
			if err != nil {
				return storagetest.OpenFailed(tg, err)
			}
			return b
		},
		StopServer:  func(t *testing.T) { run(t, s.stopCmd) },
		StartServer: func(t *testing.T) { run(t, s.startCmd) },
		FreeSpace:   true,
		Dirs:        true,
		Partial:     true,
	})
}
