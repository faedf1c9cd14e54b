// Package systemd holds kbr's systemd units and the test that checks them.
package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/internal/config"
)

// installedBinary is where the units expect kbr.
const installedBinary = "/usr/local/bin/kbr"

// Each unit passes `systemd-analyze verify` without a single warning (an
// unknown or misspelt key is only a warning to systemd, and a unit that
// silently drops a hardening option is worse than one that fails; the
// first version put StartLimitIntervalSec in [Service]), its exposure by
// `systemd-analyze security` stays at 2.0 or below, and its
// ExecStart, with the example environment file's values, is a command line
// the real kbr accepts.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: run deploy/packages.sh systemd (make test does)")
	}
	dir := t.TempDir()
	kbr := filepath.Join(dir, "kbr")
	build := exec.Command("go", "build", "-o", kbr, "../../cmd/kbr")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kbr: %v\n%s", err, out)
	}
	for _, u := range []struct{ unit, env, cmd string }{
		{"kbr-worker.service", "worker.env.example", "worker"},
		{"kbr-agent.service", "agent.env.example", "agent"},
	} {
		t.Run(u.unit, func(t *testing.T) {
			data, err := os.ReadFile(u.unit)
			if err != nil {
				t.Fatal(err)
			}
			// verify checks that ExecStart is executable: point it at the
			// binary just built, and change nothing else.
			unit := filepath.Join(dir, u.unit)
			if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), installedBinary, kbr)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(analyze, "verify", "--man=no", "--generators=no", unit).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Fatalf("systemd-analyze verify %s: %v\n%s", u.unit, err, out)
			}
			// Exposure 2.0 or less on systemd's 0-10 scale (it takes tenths).
			if out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", unit).CombinedOutput(); err != nil {
				t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v):\n%s", u.unit, err, lastLines(string(out), 3))
			}
			for _, key := range []string{"User=kbr", "EnvironmentFile=", "Restart=", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="} {
				if !strings.Contains(string(data), "\n"+key) {
					t.Errorf("%s has no %s", u.unit, key)
				}
			}
			args := execStart(t, string(data), readEnv(t, u.env))
			if args[0] != installedBinary || args[1] != u.cmd {
				t.Fatalf("ExecStart runs %v, want %s %s", args, installedBinary, u.cmd)
			}
			// --help after the unit's flags: kbr parses them all first, so an
			// unknown or malformed flag fails here.
			cmd := exec.Command(kbr, append(args[1:], "--help")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s's ExecStart %v: kbr refuses it: %v\n%s", u.unit, args, err, out)
			}
		})
	}
	// The agent's example config loads and validates as kbr agent loads it.
	a, err := config.LoadAgent("agent.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	a.ApplyDefaults()
	if err := a.Validate(); err != nil {
		t.Errorf("agent.yaml.example: %v", err)
	}
}

// readEnv reads an EnvironmentFile (KEY=value lines).
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=value", path, line)
		}
		env[k] = v
	}
	return env
}

// execStart is the unit's ExecStart split as systemd splits it: an unbraced
// $VAR as its own word becomes the variable's value split at whitespace.
func execStart(t *testing.T, unit string, env map[string]string) []string {
	t.Helper()
	for _, line := range strings.Split(unit, "\n") {
		v, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			continue
		}
		var args []string
		for _, w := range strings.Fields(v) {
			if name, ok := strings.CutPrefix(w, "$"); ok {
				args = append(args, strings.Fields(env[name])...)
				continue
			}
			args = append(args, w)
		}
		return args
	}
	t.Fatal("no ExecStart")
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
