package sftp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

	"github.com/kbr-project/kbr/internal/secret"
	"github.com/kbr-project/kbr/internal/testenv"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/all"
	kbrsftp "github.com/kbr-project/kbr/storage/sftp"
	"github.com/kbr-project/kbr/storage/storagetest"
)

// server is the SFTP server of the test stack (deploy/services/sftp.sh).
type server struct {
	host              string
	port              int
	user              string
	passwordFile      string
	keyFile           string
	knownHost         string
	root              string
	stopCmd, startCmd string
}

func loadServer(t *testing.T) server {
	t.Helper()
	env := testenv.Load(t)
	get := func(k string) string {
		v := env.Vars[k]
		if v == "" {
			t.Fatalf("%s lacks %s: the SFTP test server is not set up; run `make stack-up`", testenv.EnvFile, k)
		}
		return v
	}
	addr := get("KBR_SFTP_ADDR")
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("KBR_SFTP_ADDR=%q: %v", addr, err)
	}
	port, _ := strconv.Atoi(portStr)
	s := server{
		host: host, port: port,
		user:         get("KBR_SFTP_USER"),
		passwordFile: get("KBR_SFTP_PASSWORD_FILE"),
		keyFile:      get("KBR_SFTP_KEY_FILE"),
		knownHost:    get("KBR_SFTP_KNOWN_HOST"),
		root:         get("KBR_SFTP_ROOT"),
		stopCmd:      get("KBR_SFTP_STOP"),
		startCmd:     get("KBR_SFTP_START"),
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the SFTP test server at %s does not answer (%v); run `make stack-up`", addr, err)
	}
	c.Close()
	lockServer(t, filepath.Join(env.StackDir, "sftp", "tests.lock"), "SFTP")
	return s
}

// lockServer holds an exclusive lock on the test server until t ends: the
// server-stop check of one test run would otherwise break the connections
// of another run (two developers, or `go test ./...` twice, on one stack).
func lockServer(t *testing.T, lockFile, what string) {
	t.Helper()
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
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

// target is a key-authenticated target on dir.
func (s server) target(dir string) storage.Target {
	return storage.Target{
		Type: kbrsftp.Type, Server: s.host, Port: s.port, User: s.user,
		PrivateKey: secret.Ref{File: s.keyFile}, KnownHostKey: s.knownHost, Path: dir,
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

// scratch returns a fresh directory on the server for this test, removed
// (through SFTP, like everything else) when it ends.
func (s server) scratch(t *testing.T) string {
	t.Helper()
	dir := path.Join(s.root, "test-"+randHex())
	t.Cleanup(func() { s.removeAll(t, dir) })
	return dir
}

func randHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// removeAll deletes dir recursively with 16 concurrent removals.
func (s server) removeAll(t *testing.T, dir string) {
	t.Helper()
	b, err := kbrsftp.New(context.Background(), s.target(s.root))
	if err != nil {
		t.Errorf("cleanup of %s: %v", dir, err)
		return
	}
	defer b.Close()
	c := kbrsftp.RawClient(b)
	if c == nil {
		t.Errorf("cleanup of %s: no connection", dir)
		return
	}
	var files, dirs []string
	w := c.Walk(dir)
	for w.Step() {
		if w.Err() != nil {
			continue
		}
		if w.Stat().IsDir() {
			dirs = append(dirs, w.Path())
		} else {
			files = append(files, w.Path())
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(files)); i = next.Add(1) - 1 {
				c.Remove(files[i])
			}
		}()
	}
	wg.Wait()
	for i := len(dirs) - 1; i >= 0; i-- {
		c.RemoveDirectory(dirs[i])
	}
}

// TestConformance runs the storage conformance suite against the stack's
// OpenSSH server; roots are siblings under one scratch directory.
func TestConformance(t *testing.T) {
	s := loadServer(t)
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
			tg.PrivateKey = secret.Ref{}
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
