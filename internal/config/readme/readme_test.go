// Package readme checks README.md's examples against the real loaders.
package readme_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/all"
)

// Every backend, as cmd/kbr registers them, so every path type of the
// examples is known.
func TestMain(m *testing.M) {
	config.UseStorage(all.Registry())
	os.Exit(m.Run())
}

// example is one YAML or JSON example of README.md.
type example struct {
	kind string // what the marker or the --type says it is
	text string
	line int
}

var (
	markerRE = regexp.MustCompile(`^<!-- example: ([a-z-]+)`)
	typeRE   = regexp.MustCompile(`--type (\w+)`)
	inputRE  = regexp.MustCompile(`--input '([^']*)'`)
)

// readmeExamples finds every ```yaml block (each preceded by a marker
// comment naming its kind) and every --input '...' of a ```sh block (its
// kind is the command's --type).
func readmeExamples(t *testing.T) []example {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out []example
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, "```") || l == "```" {
			continue
		}
		lang := strings.TrimPrefix(l, "```")
		start := i
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		switch lang {
		case "yaml", "yml":
			kind := ""
			if start > 0 {
				if m := markerRE.FindStringSubmatch(lines[start-1]); m != nil {
					kind = m[1]
				}
			}
			if kind == "" {
				t.Errorf("README.md:%d: a yaml block without a <!-- example: KIND --> comment before it: the test cannot check it", start+1)
			}
			out = append(out, example{kind: kind, text: strings.Join(body, "\n"), line: start + 2})
		case "sh", "bash":
			// Commands continue over lines ending in a backslash.
			cmd := strings.ReplaceAll(strings.Join(body, "\n"), "\\\n", " ")
			for _, c := range strings.Split(cmd, "\n") {
				in := inputRE.FindStringSubmatch(c)
				if in == nil {
					continue
				}
				ty := typeRE.FindStringSubmatch(c)
				if ty == nil {
					t.Errorf("README.md:%d: --input without --type", start+1)
					continue
				}
				out = append(out, example{kind: ty[1], text: in[1], line: start + 1})
			}
		}
	}
	return out
}

// Every YAML and JSON example of README.md loads through the loaders the
// CLI uses (strict: an unknown or misspelt field is an error) and passes
// their validation; the workflows' JSON inputs decode into their input
// types with no unknown field. The task example once said username, key
// and known_hosts where SFTP takes user, private_key and known_host_key.
func TestREADMEExamplesLoad(t *testing.T) {
	exs := readmeExamples(t)
	seen := map[string]int{}
	for _, ex := range exs {
		seen[ex.kind]++
		var err error
		switch ex.kind {
		case "backup":
			_, err = config.LoadBackup(writeTemp(t, ex.text))
		case "task":
			_, err = config.LoadTask(writeTemp(t, ex.text))
		case "restore":
			_, err = config.LoadRestore(writeTemp(t, ex.text))
		case "metadata-restore":
			_, err = config.LoadMetadataRestore(writeTemp(t, ex.text))
		case "logical-restore":
			_, err = config.LoadLogicalRestore(writeTemp(t, ex.text))
		case "kraft-restore":
			_, err = config.LoadKRaftRestore(writeTemp(t, ex.text))
		case "schemas-restore":
			_, err = config.LoadSchemasRestore(writeTemp(t, ex.text))
		case "agent":
			_, err = config.LoadAgent(writeTemp(t, ex.text))
		case "targets":
			err = loadTargets(t, ex.text)
		case names.BackupWorkflow:
			var b config.Backup
			if err = strictJSON(ex.text, &b); err == nil {
				b.ApplyDefaults()
				err = b.Validate()
			}
		case names.RestoreWorkflow:
			var r config.Restore
			if err = strictJSON(ex.text, &r); err == nil {
				r.ApplyDefaults()
				err = r.Validate()
			}
		case names.MetadataRestoreWorkflow:
			// The input is the config document (plus resume, on a retry).
			var in config.MetadataRestore
			if err = strictJSON(ex.text, &in); err == nil {
				in.ApplyDefaults()
				err = in.Validate()
			}
		default:
			t.Errorf("README.md:%d: example of unknown kind %q", ex.line, ex.kind)
			continue
		}
		if err != nil {
			t.Errorf("README.md:%d: the %s example does not load: %v", ex.line, ex.kind, err)
		}
	}
	for _, k := range []string{"backup", "task", "targets", "restore", "metadata-restore", "logical-restore",
		names.BackupWorkflow, names.RestoreWorkflow, names.MetadataRestoreWorkflow} {
		if seen[k] == 0 {
			t.Errorf("README.md has no %s example any more (or the test no longer finds it)", k)
		}
	}
}

func writeTemp(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "example.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func strictJSON(text string, v any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// loadTargets checks a block of `target: {...}` documents, one per line
// that starts with "target:" (and its indented continuation lines).
func loadTargets(t *testing.T, text string) error {
	t.Helper()
	var docs []string
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "target:"):
			docs = append(docs, l)
		case strings.HasPrefix(strings.TrimSpace(l), "#"), strings.TrimSpace(l) == "":
		case len(docs) > 0 && strings.HasPrefix(l, " "):
			docs[len(docs)-1] += "\n" + l
		default:
			t.Errorf("targets example: stray line %q", l)
		}
	}
	if len(docs) < 6 {
		t.Errorf("targets example: %d targets found, want every path type", len(docs))
	}
	for _, d := range docs {
		var doc struct {
			Target storage.Target `yaml:"target"`
		}
		dec := yaml.NewDecoder(bytes.NewReader([]byte(d)))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			return err
		}
		if err := config.ValidateTarget("target", doc.Target); err != nil {
			return err
		}
	}
	return nil
}
