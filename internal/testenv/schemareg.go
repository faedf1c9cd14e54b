package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Registries are the test stack's two Schema Registries (Apicurio Registry
// 2.4, deploy/services/schemaregistry.sh): their Confluent-compatible base
// URLs.
type Registries struct {
	Source, Target string
}

// SchemaRegistries starts the registries unless they run (the first time on
// a machine this builds the registry: minutes), restarts the target and,
// with fresh, the source so each is empty, and holds a lock until the test
// ends so that no other test restarts them meanwhile. It fails the test
// when they cannot be started; it never skips.
func (e Env) SchemaRegistries(t testing.TB, fresh bool) Registries {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "deploy", "services", "schemaregistry.sh")
	dir := filepath.Join(e.StackDir, "schemaregistry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".tests.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	run := func(args ...string) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "KBR_STACK_DIR="+e.StackDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("testenv: %s %v: %v\n%s", script, args, err, out)
		}
	}
	run("up")
	run("restart", "target")
	if fresh {
		run("restart", "source")
	}
	envFile := filepath.Join(e.StackDir, "services", "schemaregistry.env")
	return Registries{Source: readVar(t, envFile, "KBR_SCHEMAREG_SOURCE_URL"), Target: readVar(t, envFile, "KBR_SCHEMAREG_TARGET_URL")}
}

func readVar(t testing.TB, path, key string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && k == key {
			return v
		}
	}
	t.Fatalf("testenv: %s lacks %s", path, key)
	return ""
}
