package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// inlineSecret is the value the tests write where a secret reference
// belongs; no three characters of it in a row may appear in an error.
const inlineSecret = "Qz9Vw7Kx4Jm2Yq8Zp3"

// leaks reports the first 3-character window of inlineSecret found in msg.
func leaks(msg string) string {
	for i := 0; i+3 <= len(inlineSecret); i++ {
		if w := inlineSecret[i : i+3]; strings.Contains(msg, w) {
			return w
		}
	}
	return ""
}

// secretFields is every field that holds a secret.Ref, as a backup config
// spells it, with a target block that needs it.
var secretFields = []struct {
	field string // as the error must name it
	doc   func(v string) string
}{
	{"target.password", func(v string) string {
		return "cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget:\n  type: CIFS\n  path: p\n  server: s\n  user: u\n  share: sh\n  password: " + v + "\n"
	}},
	{"target.private_key", func(v string) string {
		return "cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget:\n  type: SFTP\n  path: /p\n  server: s\n  user: u\n  known_host_key: k\n  private_key: " + v + "\n"
	}},
	{"target.access_key", func(v string) string {
		return "cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget:\n  type: OBS\n  path: p\n  endpoint: http://s\n  bucket: b\n  access_key: " + v + "\n  secret_key: {env: S}\n"
	}},
	{"target.secret_key", func(v string) string {
		return "cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget:\n  type: OBS\n  path: p\n  endpoint: http://s\n  bucket: b\n  access_key: {env: A}\n  secret_key: " + v + "\n"
	}},
	{"cluster.sasl.password", func(v string) string {
		return "cluster:\n  name: c\n  bootstrap_servers: [\"h:1\"]\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: " + v + "\n" +
			"target: {type: LocalDir, path: /b}\n"
	}},
	{"schema_registry.basic_auth.password", func(v string) string {
		return "cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget: {type: LocalDir, path: /b}\ndata_sources: [schemas]\n" +
			"schema_registry:\n  url: http://sr:8081\n  basic_auth:\n    username: u\n    password: " + v + "\n"
	}},
	{"schema_registry.bearer_token", func(v string) string {
		return "cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget: {type: LocalDir, path: /b}\ndata_sources: [schemas]\n" +
			"schema_registry:\n  url: http://sr:8081\n  bearer_token: " + v + "\n"
	}},
}

// inlineForms are the ways an operator writes a value where a reference
// belongs: plain, quoted, a number, a list, a block scalar, flow JSON.
var inlineForms = map[string]string{
	"plain":        inlineSecret,
	"quoted":       `"` + inlineSecret + `"`,
	"single":       `'` + inlineSecret + `'`,
	"number":       "9876543210987",
	"list":         "[" + inlineSecret + "]",
	"block":        "|\n        " + inlineSecret + "\n        second line",
	"ref with val": "{env: X, value: " + inlineSecret + "}",
}

// TestInlineSecretRefusedWithoutItsValue guards the leak where
// `password: hunter2secret` was refused with "cannot unmarshal !!str
// `hunter2...`": the first characters of the secret in the error, which
// the CLI prints. Every secret field, in YAML and in JSON (a config file
// may be either), is refused naming the field and none of the value.
func TestInlineSecretRefusedWithoutItsValue(t *testing.T) {
	dir := t.TempDir()
	for _, f := range secretFields {
		for form, v := range inlineForms {
			t.Run(f.field+"/"+form, func(t *testing.T) {
				p := filepath.Join(dir, strings.ReplaceAll(f.field+"-"+form, " ", "_")+".yaml")
				if err := os.WriteFile(p, []byte(f.doc(v)), 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := LoadBackup(p)
				if err == nil {
					t.Fatal("an inline secret was accepted")
				}
				msg := err.Error()
				if w := leaks(msg); w != "" || strings.Contains(msg, "987654") || strings.Contains(msg, "second line") {
					t.Errorf("the error shows part of the value (%q): %s", w, msg)
				}
				want := f.field
				if form == "ref with val" {
					want = f.field + ".value" // an unknown key is named; its value is not shown
				}
				if !strings.Contains(msg, want) || !strings.Contains(msg, "{env: NAME} or {file: PATH}") && form != "ref with val" {
					t.Errorf("error %q: want it to name %s and say how to give a reference", msg, want)
				}
			})
		}
	}
	// The same documents as JSON (YAML reads JSON; operators write either).
	for _, f := range secretFields {
		t.Run(f.field+"/json", func(t *testing.T) {
			js := yamlToJSON(t, f.doc(`"`+inlineSecret+`"`))
			p := filepath.Join(dir, strings.ReplaceAll(f.field, ".", "_")+".json")
			if err := os.WriteFile(p, js, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadBackup(p)
			if err == nil || !strings.Contains(err.Error(), f.field) || leaks(err.Error()) != "" {
				t.Errorf("JSON config: err %v; want it to name %s and none of the value", err, f.field)
			}
		})
	}
}

// TestInlineSecretRefusedInWorkflowInput: a workflow started from the
// temporal CLI or the Web UI takes the same document as JSON, decoded
// with encoding/json; an inline secret there is refused the same way.
func TestInlineSecretRefusedInWorkflowInput(t *testing.T) {
	for _, f := range secretFields {
		for _, v := range []string{`"` + inlineSecret + `"`, "98765432109876", `["` + inlineSecret + `"]`, `true`} {
			js := yamlToJSON(t, f.doc(`{env: PLACEHOLDER}`))
			js = []byte(strings.Replace(string(js), `{"env":"PLACEHOLDER"}`, v, 1))
			var b Backup
			err := json.Unmarshal(js, &b)
			if err == nil {
				t.Errorf("%s = %s accepted in a JSON input", f.field, v)
				continue
			}
			if !strings.Contains(err.Error(), f.field) || leaks(err.Error()) != "" || strings.Contains(err.Error(), "987654") {
				t.Errorf("%s = %s: error %q; want it to name the field and none of the value", f.field, v, err)
			}
		}
	}
	// References still decode, and null stays unset.
	var b Backup
	if err := json.Unmarshal([]byte(`{"target":{"type":"CIFS","password":{"file":"/p"}},"cluster":{"sasl":{"password":null}}}`), &b); err != nil {
		t.Fatal(err)
	}
	if b.Target.Password.File != "/p" || b.Cluster.SASL.Password.IsSet() {
		t.Errorf("decoded %+v %+v", b.Target.Password, b.Cluster.SASL.Password)
	}
}

// TestSecretReferencesStillLoad: env and file references load as before,
// and an unknown key is still refused.
func TestSecretReferencesStillLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ok.yaml")
	os.WriteFile(p, []byte(secretFields[0].doc("{file: /etc/kbr/cifs}")), 0o600)
	var b Backup
	if err := decodeFile(p, &b); err != nil {
		t.Fatal(err)
	}
	if b.Target.Password.File != "/etc/kbr/cifs" {
		t.Errorf("password = %+v", b.Target.Password)
	}
	os.WriteFile(p, []byte(secretFields[0].doc("~")), 0o600)
	if err := decodeFile(p, &Backup{}); err != nil {
		t.Errorf("password: ~ (null, no reference): %v", err)
	}
	p2 := filepath.Join(dir, "sasl.yaml")
	os.WriteFile(p2, []byte(secretFields[4].doc("\n      env: KBR_PW")), 0o600)
	if b, err := LoadBackup(p2); err != nil || b.Cluster.SASL.Password.Env != "KBR_PW" {
		t.Errorf("block mapping reference: %+v, %v", b, err)
	}
	os.WriteFile(p2, []byte(secretFields[4].doc("{env: [A]}")), 0o600)
	if _, err := LoadBackup(p2); err == nil || !strings.Contains(err.Error(), "cluster.sasl.password.env") {
		t.Errorf("env: [A]: %v, want an error naming cluster.sasl.password.env", err)
	}
}

func yamlToJSON(t *testing.T, doc string) []byte {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
