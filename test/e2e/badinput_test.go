package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kbr-project/kbr/internal/testenv"
)

type badCase struct {
	name     string
	config   func(target string) string
	target   string // default: a fresh dir that must stay absent
	code     int
	contains []string
	absent   []string // must not be printed (parts of an inline secret)
	within   time.Duration
}

// Bad input is refused with a message naming the field or target, and no
// file is written anywhere under the target.
func TestBadInput(t *testing.T) {
	env := testenv.Load(t)
	good := func(target string) string {
		return `
cluster:
  name: zkmode
  bootstrap_servers: ` + quoteList(env.ZKModeBootstrap) + `
target: {type: LocalDir, path: ` + target + `}
options: {min_free_bytes: 1GiB}
`
	}
	notDir := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []badCase{
		{name: "malformed YAML", config: func(string) string { return "cluster: [unclosed\n  name: x\n" }, code: 2,
			contains: []string{"backup.yaml", "line"}},
		{name: "unknown field", config: func(tg string) string { return good(tg) + "retention_days: 3\n" }, code: 2,
			contains: []string{"backup.yaml", "retention_days", "not found"}},
		{name: "missing bootstrap servers", config: func(tg string) string {
			return "cluster: {name: x}\ntarget: {type: LocalDir, path: " + tg + "}\n"
		}, code: 2, contains: []string{"cluster.bootstrap_servers", "required"}},
		{name: "unknown path type", config: func(tg string) string {
			return strings.Replace(good(tg), "type: LocalDir", "type: Floppy", 1)
		}, code: 2, contains: []string{"target.type", "Floppy"}},
		{name: "unreachable broker", config: func(tg string) string {
			return strings.Replace(good(tg), quoteList(env.ZKModeBootstrap), `["127.0.0.1:1"]`, 1) + "  \n"
		}, code: 1, contains: []string{"cluster.bootstrap_servers", "127.0.0.1:1", "no broker reachable"}, within: 90 * time.Second},
		{name: "target not writable", config: good, target: filepath.Join(notDir, "backups"), code: 1,
			contains: []string{"target", "not a directory"}},
		{name: "free space below minimum", config: func(tg string) string {
			return strings.Replace(good(tg), "min_free_bytes: 1GiB", "min_free_bytes: 900PiB", 1)
		}, code: 1, contains: []string{"below the minimum", "options.min_free_bytes"}},
	}
	// An inline secret is refused naming the field and printing none of
	// it: yaml.v3's own error quoted its first characters ("hunter2...").
	const inline = "Qz9Vw7Kx4Jm2Yq8Zp3"
	var windows []string
	for i := 0; i+3 <= len(inline); i++ {
		windows = append(windows, inline[i:i+3])
	}
	for _, f := range []struct{ field, target string }{
		{"target.password", "{type: CIFS, path: p, server: s, user: u, share: sh, password: " + inline + "}"},
		{"target.private_key", "{type: SFTP, path: /p, server: s, user: u, known_host_key: k, private_key: " + inline + "}"},
		{"target.access_key", "{type: OBS, path: p, endpoint: 'http://s', bucket: b, access_key: " + inline + ", secret_key: {env: S}}"},
		{"target.secret_key", "{type: OBS, path: p, endpoint: 'http://s', bucket: b, access_key: {env: A}, secret_key: '" + inline + "'}"},
	} {
		target := f.target
		cases = append(cases, badCase{name: "inline secret " + f.field, config: func(tg string) string {
			return strings.Replace(good(tg), "{type: LocalDir, path: "+tg+"}", target, 1)
		}, code: 2, contains: []string{"backup.yaml", f.field, "{env: NAME} or {file: PATH}"}, absent: windows})
	}
	cases = append(cases, badCase{name: "inline secret cluster.sasl.password", config: func(tg string) string {
		return strings.Replace(good(tg), "  name: zkmode\n", "  name: zkmode\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: \""+inline+"\"\n", 1)
	}, code: 2, contains: []string{"backup.yaml", "cluster.sasl.password", "{env: NAME} or {file: PATH}"}, absent: windows})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == "" {
				target = filepath.Join(t.TempDir(), "backups")
			}
			cfg := writeFile(t, "backup.yaml", tc.config(target))
			limit := tc.within
			if limit == 0 {
				limit = time.Minute
			}
			r := kbr(t, limit, "backup", "run", "-f", cfg)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, tc.code, r.stderr)
			}
			for _, s := range tc.contains {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("error does not mention %q:\n%s", s, r.stderr)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(r.stdout+r.stderr, s) {
					t.Errorf("the output shows %q, part of an inline secret:\n%s%s", s, r.stdout, r.stderr)
				}
			}
			if _, err := os.Stat(target); err == nil {
				entries, _ := os.ReadDir(target)
				t.Errorf("target %s exists after a refused backup (%d entries)", target, len(entries))
			}
		})
	}
}
