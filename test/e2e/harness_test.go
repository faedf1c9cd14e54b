// Package e2e drives the kbr binary end to end: a real kbr server (embedded
// Temporal on SQLite), separate kbr worker processes, and the real Kafka and
// ZooKeeper stack of deploy/stack.sh.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kbr-project/kbr/internal/testenv"
)

var h *harness

type harness struct {
	bin string // the release build of kbr
	// faultBin is kbr built with -tags kbrfault (its fault-injection
	// hooks), for the tests that need them; see faultBinary.
	faultBin  string
	faultOnce sync.Once
	faultErr  error
	dir       string
	address   string
	// metrics is where the worker serves its metrics (host:port).
	metrics string
	server  *exec.Cmd
	worker  *exec.Cmd
	logs    *os.File
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return 1, err
	}
	dir, err := os.MkdirTemp("", "kbr-e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	h = &harness{dir: dir, bin: filepath.Join(dir, "kbr")}
	build := exec.Command("go", "build", "-o", h.bin, "./cmd/kbr")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("build kbr: %v\n%s", err, out)
	}
	if h.logs, err = os.Create(filepath.Join(dir, "processes.log")); err != nil {
		return 1, err
	}
	port, err := freePort()
	if err != nil {
		return 1, err
	}
	h.address = fmt.Sprintf("127.0.0.1:%d", port)
	if port, err = freePort(); err != nil {
		return 1, err
	}
	h.metrics = fmt.Sprintf("127.0.0.1:%d", port)
	if err := h.startServer(); err != nil {
		return 1, err
	}
	h.startWorker()
	code := m.Run()
	h.stopWorker(syscall.SIGTERM)
	h.stopServer(syscall.SIGTERM)
	if code != 0 {
		h.dumpLogs()
	}
	return code, nil
}

func (h *harness) start(args ...string) *exec.Cmd { return h.startWithEnv(nil, args...) }

// faultBinary builds, once, kbr with -tags kbrfault: the fault-injection
// hooks (activities/fault_kbrfault.go) that the release binary h.bin lacks.
func (h *harness) faultBinary(t *testing.T) string {
	t.Helper()
	h.faultOnce.Do(func() {
		root, err := testenv.RepoRoot()
		if err != nil {
			h.faultErr = err
			return
		}
		bin := filepath.Join(h.dir, "kbr-fault")
		build := exec.Command("go", "build", "-tags", "kbrfault", "-o", bin, "./cmd/kbr")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			h.faultErr = fmt.Errorf("build kbr -tags kbrfault: %v\n%s", err, out)
			return
		}
		h.faultBin = bin
	})
	if h.faultErr != nil {
		t.Fatal(h.faultErr)
	}
	return h.faultBin
}

// startFaultWorker runs a worker of the kbrfault build with extra
// environment variables (the hooks it reads).
func (h *harness) startFaultWorker(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(h.faultBinary(t), "worker", "--address", h.address, "--log-level", "warn")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// startWithEnv starts kbr with extra environment variables.
func (h *harness) startWithEnv(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	return cmd
}

// startServer runs `kbr server --no-worker` on h.address and h.dir/data.
func (h *harness) startServer() error {
	_, port, _ := net.SplitHostPort(h.address)
	h.server = h.start("server", "--no-worker", "--data-dir", filepath.Join(h.dir, "data"), "--port", port, "--ui-port", "-1", "--metrics-addr", "off")
	if err := waitPort(h.address, 90*time.Second); err != nil {
		h.dumpLogs()
		return fmt.Errorf("kbr server: %w", err)
	}
	return nil
}

// stopServer stops the server with sig and waits for it.
func (h *harness) stopServer(sig syscall.Signal) {
	_ = h.server.Process.Signal(sig)
	_, _ = h.server.Process.Wait()
}

func (h *harness) startWorker() {
	h.worker = h.start("worker", "--address", h.address, "--log-level", "warn", "--metrics-addr", h.metrics)
}

func (h *harness) stopWorker(sig syscall.Signal) {
	if h.worker == nil {
		return
	}
	_ = h.worker.Process.Signal(sig)
	_, _ = h.worker.Process.Wait()
	h.worker = nil
}

func (h *harness) dumpLogs() {
	b, _ := os.ReadFile(h.logs.Name())
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	fmt.Fprintf(os.Stderr, "--- kbr server/worker log tail ---\n%s\n", b)
}

// result of one kbr command.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// kbr runs the CLI against the test server.
func kbr(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = append(os.Environ(), "KBR_ADDRESS="+h.address)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kbr %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("kbr %s: did not finish within %s\nstderr: %s", strings.Join(args, " "), timeout, r.stderr)
	}
	return r
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within %s", addr, d)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
