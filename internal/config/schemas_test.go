package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The schemas data source and the restore's schema_registry and
// schema_ids: each mistake is refused naming its field, before anything
// runs; credentials never ride in the URL (it is logged).
func TestSchemasConfig(t *testing.T) {
	t.Parallel()
	backup := "cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget: {type: LocalDir, path: /b}\n"
	restore := "cluster: {name: c, bootstrap_servers: [\"h:1\"]}\nsource: {target: {type: LocalDir, path: /b}, recovery_point: latest}\n"
	for _, c := range []struct {
		name, doc, want string
		isRestore       bool
	}{
		{"backup ok", backup + "data_sources: [topicdata, schemas]\nschema_registry: {url: http://sr:8081, basic_auth: {username: u, password: {env: P}}}\n", "", false},
		{"no registry", backup + "data_sources: [schemas]\n", "schema_registry: required", false},
		{"registry without source", backup + "schema_registry: {url: http://sr:8081}\n", `"schemas" is not among data_sources`, false},
		{"no url", backup + "data_sources: [schemas]\nschema_registry: {timeout: 5s}\n", "schema_registry.url", false},
		{"bad scheme", backup + "data_sources: [schemas]\nschema_registry: {url: ftp://sr}\n", "schema_registry.url", false},
		{"credentials in url", backup + "data_sources: [schemas]\nschema_registry: {url: \"http://u:hunter2@sr:8081\"}\n", "must not carry credentials", false},
		{"tls on http", backup + "data_sources: [schemas]\nschema_registry: {url: http://sr, tls: {ca_file: /ca}}\n", "schema_registry.tls", false},
		{"both auths", backup + "data_sources: [schemas]\nschema_registry: {url: http://sr, basic_auth: {username: u, password: {env: P}}, bearer_token: {env: T}}\n", "not both", false},
		{"no username", backup + "data_sources: [schemas]\nschema_registry: {url: http://sr, basic_auth: {password: {env: P}}}\n", "schema_registry.basic_auth.username", false},
		{"no password", backup + "data_sources: [schemas]\nschema_registry: {url: http://sr, basic_auth: {username: u}}\n", "schema_registry.basic_auth.password", false},
		{"restore ok", restore + "schema_registry: {url: https://sr:8081, bearer_token: {file: /t}}\nschema_ids: remap\n", "", true},
		{"remap without registry", restore + "schema_ids: remap\n", "schema_ids", true},
		{"bad schema_ids", restore + "schema_registry: {url: http://sr}\nschema_ids: rewrite\n", `"rewrite": want keep or remap`, true},
		{"include_deleted on restore", restore + "schema_registry: {url: http://sr, include_deleted: true}\n", "schema_registry.include_deleted", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(p, []byte(c.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			if c.isRestore {
				_, err = LoadRestore(p)
			} else {
				_, err = LoadBackup(p)
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("got %v, want it accepted", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error with %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("the error shows the URL's password: %v", err)
			}
		})
	}
}

// An internal topic named literally in topics.include (the registry's
// _schemas, restored byte for byte with the data) is backed up; a
// pattern still leaves internal topics out.
func TestTopicFilterNamesInternalTopics(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		include []string
		topic   string
		want    bool
	}{
		{[]string{"_schemas"}, "_schemas", true},
		{[]string{"_schemas", "orders"}, "orders", true},
		{[]string{".*"}, "_schemas", false},
		{[]string{"_sch.*"}, "_schemas", false},
		{nil, "_schemas", false},
		{nil, "__consumer_offsets", false},
		{[]string{"__consumer_offsets"}, "__consumer_offsets", true},
	} {
		match, err := TopicFilter{Include: c.include}.Compile()
		if err != nil {
			t.Fatal(err)
		}
		if got := match(c.topic); got != c.want {
			t.Errorf("include %q: %s matched %v, want %v", c.include, c.topic, got, c.want)
		}
	}
}
