package hostops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Default service commands: a systemd unit called kafka.
const (
	DefaultStopCommand  = "systemctl stop kafka"
	DefaultStartCommand = "systemctl start kafka"
)

// CommandError is a stop or start command that ran and failed. Retrying
// the same command rarely helps (a unit that does not exist, a broker that
// dies at start), so callers treat it as permanent and show its output.
type CommandError struct {
	Command  string
	ExitCode int
	Output   string
	Err      error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("command %q failed: %v", e.Command, e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += "\n" + out
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// maxOutput bounds the output kept from a command (its tail).
const maxOutput = 8 << 10

// RunCommand runs command through /bin/sh -c, bounded by timeout, and
// returns its combined output (the last 8 KiB). The command runs in its own
// process group, which is killed when the time is up.
func RunCommand(ctx context.Context, command string, timeout time.Duration) (string, error) {
	if strings.TrimSpace(command) == "" {
		return "", errors.New("no command given")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		return "", &CommandError{Command: command, ExitCode: -1, Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			code := -1
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			return out.String(), &CommandError{Command: command, ExitCode: code, Output: out.String(), Err: err}
		}
		return out.String(), nil
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), &CommandError{Command: command, ExitCode: -1, Output: out.String(),
			Err: fmt.Errorf("did not finish within %s: %w", timeout, context.Cause(ctx))}
	}
}

type tailBuffer struct{ b bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b.Write(p)
	if t.b.Len() > 2*maxOutput {
		keep := t.b.Bytes()[t.b.Len()-maxOutput:]
		t.b = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	b := t.b.Bytes()
	if len(b) > maxOutput {
		b = b[len(b)-maxOutput:]
	}
	return string(b)
}

// PortAnswers reports whether something accepts TCP connections on addr.
func PortAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// WaitPort waits until addr answers (up true) or stops answering (up
// false), polling until timeout.
func WaitPort(ctx context.Context, addr string, up bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if PortAnswers(addr) == up {
			return nil
		}
		if time.Now().After(deadline) {
			state := "answer"
			if !up {
				state = "stop answering"
			}
			return fmt.Errorf("%s did not %s within %s", addr, state, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ListenerPID returns the pid of the process listening on the TCP port,
// found through /proc (0 when none is found or /proc cannot tell, for
// example for another user's process without the right to read its fds).
func ListenerPID(port int) int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			if i < 0 {
				continue
			}
			p, err := strconv.ParseInt(fs[1][i+1:], 16, 32)
			if err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, err := os.ReadDir(filepath.Join(p, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(p, "fd", fd.Name()))
			if err == nil && inodes[link] {
				pid, _ := strconv.Atoi(filepath.Base(p))
				return pid
			}
		}
	}
	return 0
}

// ProcessAlive reports whether pid runs (zombies count as gone).
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the command name in parentheses.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// Service stops and starts one broker with its configured commands.
type Service struct {
	StopCommand  string
	StartCommand string
	// Addr is the broker's listener (host:port) that tells whether it runs.
	Addr string
	// StopTimeout and StartTimeout bound the command plus the wait.
	StopTimeout  time.Duration
	StartTimeout time.Duration
}

// StopResult says what Stop did.
type StopResult struct {
	// AlreadyStopped: nothing listened and the command was not needed.
	AlreadyStopped bool   `json:"already_stopped,omitempty"`
	PID            int    `json:"pid,omitempty"`
	Output         string `json:"output,omitempty"`
	Took           string `json:"took"`
}

// Stop runs the stop command and waits until the broker's process is gone
// and its port no longer answers. A broker that is not listening is left
// alone (stopping is idempotent: a retried step stops nothing twice).
func (s Service) Stop(ctx context.Context) (StopResult, error) {
	start := time.Now()
	port := portOf(s.Addr)
	pid := ListenerPID(port)
	res := StopResult{PID: pid}
	if pid == 0 && !PortAnswers(s.Addr) {
		res.AlreadyStopped = true
		res.Took = time.Since(start).Round(time.Millisecond).String()
		return res, nil
	}
	out, err := RunCommand(ctx, orDefault(s.StopCommand, DefaultStopCommand), s.StopTimeout)
	res.Output = out
	if err != nil {
		return res, err
	}
	deadline := start.Add(s.StopTimeout)
	for ProcessAlive(pid) || PortAnswers(s.Addr) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("broker on %s (pid %d) still running %s after the stop command", s.Addr, pid, s.StopTimeout)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	res.Took = time.Since(start).Round(time.Millisecond).String()
	return res, nil
}

// StartResult says what Start did.
type StartResult struct {
	AlreadyRunning bool   `json:"already_running,omitempty"`
	Output         string `json:"output,omitempty"`
	Took           string `json:"took"`
}

// Start runs the start command and waits until the broker's port answers.
// A broker already listening is left alone.
func (s Service) Start(ctx context.Context) (StartResult, error) {
	start := time.Now()
	var res StartResult
	if PortAnswers(s.Addr) {
		res.AlreadyRunning = true
		res.Took = time.Since(start).Round(time.Millisecond).String()
		return res, nil
	}
	out, err := RunCommand(ctx, orDefault(s.StartCommand, DefaultStartCommand), s.StartTimeout)
	res.Output = out
	if err != nil {
		return res, err
	}
	left := s.StartTimeout - time.Since(start)
	if err := WaitPort(ctx, s.Addr, true, max(left, time.Second)); err != nil {
		return res, fmt.Errorf("after the start command: %w", err)
	}
	res.Took = time.Since(start).Round(time.Millisecond).String()
	return res, nil
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// DiskFree is the free space of one log dir's file system.
type DiskFree struct {
	Dir   string `json:"dir"`
	Free  uint64 `json:"free"`
	Total uint64 `json:"total"`
	Error string `json:"error,omitempty"`
}

// FreeDisk measures the file system of each dir (space available to
// unprivileged users, as Kafka would see it).
func FreeDisk(dirs []string) []DiskFree {
	out := make([]DiskFree, len(dirs))
	for i, d := range dirs {
		out[i].Dir = d
		var st syscall.Statfs_t
		if err := syscall.Statfs(d, &st); err != nil {
			out[i].Error = err.Error()
			continue
		}
		out[i].Free = st.Bavail * uint64(st.Bsize)
		out[i].Total = st.Blocks * uint64(st.Bsize)
	}
	return out
}

// KafkaVersionFromLibs finds the Kafka release in a libs directory from the
// broker jar's name (kafka_2.13-3.9.1.jar, else kafka-clients-3.9.1.jar);
// "" when there is none.
func KafkaVersionFromLibs(dir string) string {
	for _, pat := range []string{"kafka_*-*.jar", "kafka-clients-*.jar"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range m {
			base := strings.TrimSuffix(filepath.Base(f), ".jar")
			if strings.Contains(base, "-sources") || strings.Contains(base, "-test") || strings.Contains(base, "-javadoc") {
				continue
			}
			if i := strings.LastIndexByte(base, '-'); i >= 0 {
				return base[i+1:]
			}
		}
	}
	return ""
}
