// Package testenv gives tests the addresses and control commands of the real local test stack
// (ZooKeeper, a ZooKeeper-mode Kafka 3.9 cluster and a KRaft Kafka 4.x node) that
// `make stack-up` (deploy/stack.sh up) starts and describes in deploy/local/stack.env.
//
// Tests that need the stack call Load; when the stack has never been started, or is not
// answering, the test fails (it is never skipped): the stack is a requirement, not an option.
package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EnvFile is the path of the stack description, relative to the repository root.
const EnvFile = "deploy/local/stack.env"

// Env describes the running stack.
type Env struct {
	ZKConnect       string   // "127.0.0.1:12181", without chroot
	ZKChroot        string   // "/kafka39": chroot of the ZooKeeper-mode cluster
	ZKModeBootstrap []string // brokers of the ZooKeeper-mode cluster
	KRaftBootstrap  []string // the KRaft node
	ZKModeVersion   string   // "3.9.1"
	KRaftVersion    string   // "4.1.1"
	StackDir        string   // absolute path of deploy/local

	// Vars holds every KEY=value line of stack.env, including keys without a field here.
	Vars map[string]string

	t testing.TB
}

// BrokerEnv describes one broker process of the stack.
type BrokerEnv struct {
	Name       string // zk1, zk2, zk3 or kraft1
	ID         string // broker.id / node.id
	Addr       string // host:port of its PLAINTEXT listener
	Properties string // absolute path of its server.properties
	LogDirs    []string
	Stop       string // shell command that stops it and returns once the process is gone
	Start      string // shell command that starts it and returns once it is registered
}

// Broker returns the broker called name (zk1, zk2, zk3 or kraft1, any case). An unknown name
// fails the test that loaded the Env.
func (e Env) Broker(name string) BrokerEnv {
	n := strings.ToUpper(name)
	prefix := "KBR_BROKER_" + n + "_"
	b := BrokerEnv{
		Name:       strings.ToLower(name),
		ID:         e.Vars[prefix+"ID"],
		Addr:       e.Vars[prefix+"ADDR"],
		Properties: e.Vars[prefix+"PROPERTIES"],
		LogDirs:    splitList(e.Vars[prefix+"LOG_DIRS"]),
		Stop:       e.Vars[prefix+"STOP"],
		Start:      e.Vars[prefix+"START"],
	}
	if b.Properties == "" || b.Stop == "" || b.Start == "" {
		msg := fmt.Sprintf("testenv: no broker %q in %s (known: zk1 zk2 zk3 kraft1)", name, EnvFile)
		if e.t == nil {
			panic(msg)
		}
		e.t.Helper()
		e.t.Fatalf("%s", msg)
	}
	return b
}

// StopBroker runs the broker's Stop command and fails the test if it fails.
func (e Env) StopBroker(name string) { e.run(e.Broker(name).Stop) }

// StartBroker runs the broker's Start command and fails the test if it fails.
func (e Env) StartBroker(name string) { e.run(e.Broker(name).Start) }

func (e Env) run(command string) {
	if e.t != nil {
		e.t.Helper()
	}
	// Values are plain "path arg arg" strings written by stack.sh; no shell quoting needed.
	f := strings.Fields(command)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("testenv: %s: %v\n%s", command, err, out)
		if e.t == nil {
			panic(msg)
		}
		e.t.Fatalf("%s", msg)
	}
}

// Load reads deploy/local/stack.env from the repository root and checks that the stack answers.
// It fails the test (never skips) when the stack has not been started.
func Load(t testing.TB) Env {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	path := filepath.Join(root, EnvFile)
	env, err := LoadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("testenv: %s does not exist: the local Kafka/ZooKeeper stack is not set up; run `make stack-up` first", path)
	}
	if err != nil {
		t.Fatalf("testenv: %v; run `make stack-up` first", err)
	}
	env.t = t
	for _, c := range []struct {
		what  string
		addrs []string
	}{
		{"ZooKeeper", []string{env.ZKConnect}},
		{"ZooKeeper-mode Kafka", env.ZKModeBootstrap},
		{"KRaft Kafka", env.KRaftBootstrap},
	} {
		if !anyAnswers(c.addrs) {
			t.Fatalf("testenv: %s at %s does not answer (stack stopped?); run `make stack-up` first",
				c.what, strings.Join(c.addrs, ","))
		}
	}
	return env
}

// LoadFile parses a stack.env file without checking the stack. Values are taken verbatim after
// the first '='; surrounding single or double quotes are removed if present.
func LoadFile(path string) (Env, error) {
	f, err := os.Open(path)
	if err != nil {
		return Env{}, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vars[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		return Env{}, fmt.Errorf("reading %s: %w", path, err)
	}
	env := Env{
		ZKConnect:       vars["KBR_ZK_CONNECT"],
		ZKChroot:        vars["KBR_ZK_CHROOT"],
		ZKModeBootstrap: splitList(vars["KBR_ZKMODE_BOOTSTRAP"]),
		KRaftBootstrap:  splitList(vars["KBR_KRAFT_BOOTSTRAP"]),
		ZKModeVersion:   vars["KBR_ZKMODE_VERSION"],
		KRaftVersion:    vars["KBR_KRAFT_VERSION"],
		StackDir:        vars["KBR_STACK_DIR"],
		Vars:            vars,
	}
	var missing []string
	for k, v := range map[string]string{
		"KBR_ZK_CONNECT":       env.ZKConnect,
		"KBR_ZKMODE_BOOTSTRAP": vars["KBR_ZKMODE_BOOTSTRAP"],
		"KBR_KRAFT_BOOTSTRAP":  vars["KBR_KRAFT_BOOTSTRAP"],
		"KBR_STACK_DIR":        env.StackDir,
	} {
		if v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return Env{}, fmt.Errorf("%s lacks %s", path, strings.Join(missing, ", "))
	}
	return env, nil
}

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}

func anyAnswers(addrs []string) bool {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err == nil {
			c.Close()
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}
