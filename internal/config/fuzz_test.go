package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzConfigLoaders feeds one document to every loader of an operator's
// file (backup, restore, metadata restore, logical restore, task, cluster,
// agent) and to the JSON decoding of every workflow input (it runs from
// `make fuzz` for a few seconds, and on its committed corpus in
// testdata/fuzz with every `go test`). Properties: no panic; no allocation
// far beyond the document (YAML aliases must not expand it); a document a
// loader accepts passes Validate again and has no negative size; an
// accepted LocalDir path is absolute; and an inline secret written under a
// secret field's key (password, private_key, access_key, secret_key)
// never appears in an error.
func FuzzConfigLoaders(f *testing.F) {
	for _, seed := range []string{
		"cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget: {type: LocalDir, path: /b}\noptions: {segment_bytes: 64MiB, min_free_bytes: 1GiB}\n",
		"cluster: {name: c, bootstrap_servers: [\"h:1\"], zookeeper: {connect: [\"z:2181\"], chroot: /kafka}}\nsource: {target: {type: LocalDir, path: rel}, recovery_point: latest}\nbrokers: [{id: 1, host: b1}]\n",
		"name: t\nmode: periodic\nperiod: 1d\nmax_copies: 3\ncluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget: {type: LocalDir, path: /b}\n",
		"host: b1\nserver_properties: /etc/kafka/server.properties\nlistener: 127.0.0.1:9092\n",
		"name: c\nbootstrap_servers: [\"h:1\"]\nsasl: {mechanism: PLAIN, username: u, password: {env: P}}\n",
		`{"cluster":{"name":"c","bootstrap_servers":["h:1"]},"source":{"target":{"type":"LocalDir","path":"/b"},"recovery_point":"latest"},"acls":"none"}`,
		"cluster: {name: c, bootstrap_servers: [\"h:1\"], sasl: {mechanism: PLAIN, username: u, password: " + inlineSecret + "}}\ntarget: {type: LocalDir, path: /b}\n",
		"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n",
		"options: {segment_bytes: NaN}\n",
		"cluster: {name: c, bootstrap_servers: [\"h:1\"]}\ntarget: {type: LocalDir, path: /b}\noptions: {throttle_bytes_per_second: NaN}\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var errs []error
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if b, err := LoadBackup(p); err == nil {
			checkBackup(t, b)
		} else {
			errs = append(errs, err)
		}
		if r, err := LoadRestore(p); err == nil {
			if err := r.Validate(); err != nil {
				t.Errorf("an accepted restore fails Validate: %v", err)
			}
			checkLocal(t, r.Source.Target.Type, r.Source.Target.Path)
		} else {
			errs = append(errs, err)
		}
		if r, err := LoadMetadataRestore(p); err == nil {
			if err := r.Validate(); err != nil {
				t.Errorf("an accepted metadata restore fails Validate: %v", err)
			}
		} else {
			errs = append(errs, err)
		}
		if r, err := LoadLogicalRestore(p); err == nil {
			if err := r.Validate(); err != nil {
				t.Errorf("an accepted logical restore fails Validate: %v", err)
			}
		} else {
			errs = append(errs, err)
		}
		if tk, err := LoadTask(p); err == nil {
			if err := tk.Validate(); err != nil {
				t.Errorf("an accepted task fails Validate: %v", err)
			}
			checkBackup(t, &tk.Backup)
		} else {
			errs = append(errs, err)
		}
		if c, err := LoadCluster(p); err == nil {
			if err := c.Validate("cluster"); err != nil {
				t.Errorf("an accepted cluster fails Validate: %v", err)
			}
		} else {
			errs = append(errs, err)
		}
		if _, err := LoadAgent(p); err != nil {
			errs = append(errs, err)
		}
		// The workflow inputs: the same documents as JSON.
		for _, v := range []any{&Backup{}, &Restore{}, &MetadataRestore{}, &LogicalRestore{}, &Task{}, &Agent{}} {
			if err := json.Unmarshal(data, v); err != nil {
				errs = append(errs, err)
			}
		}
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(32<<20+2048*len(data)); got > limit {
			t.Errorf("loading %d bytes allocated %d, more than %d", len(data), got, limit)
		}
		if secretUnderSecretKey(data) {
			for _, err := range errs {
				if leaks(err.Error()) != "" {
					t.Errorf("an error shows part of an inline secret: %v", err)
				}
			}
		}
	})
}

func checkBackup(t *testing.T, b *Backup) {
	t.Helper()
	if err := b.Validate(); err != nil {
		t.Errorf("an accepted backup fails Validate: %v", err)
	}
	o := b.Options
	if o.SegmentBytes < 0 || o.Bandwidth < 0 || o.FetchMaxBytes < 0 || o.ThrottleBytesPerSecond < 0 || (o.MinFreeBytes != nil && *o.MinFreeBytes < 0) {
		t.Errorf("an accepted backup has a negative size: %+v", o)
	}
	checkLocal(t, b.Target.Type, b.Target.Path)
}

func checkLocal(t *testing.T, typ, path string) {
	t.Helper()
	if strings.EqualFold(typ, "LocalDir") && !filepath.IsAbs(path) {
		t.Errorf("an accepted LocalDir path %q is not absolute", path)
	}
}

// secretUnderSecretKey tells a document that holds inlineSecret as the
// value of a key that, wherever it is valid, is a secret reference.
func secretUnderSecretKey(data []byte) bool {
	if !strings.Contains(string(data), inlineSecret) {
		return false
	}
	var doc any
	if yaml.Unmarshal(data, &doc) != nil {
		return false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch k {
				case "password", "private_key", "access_key", "secret_key":
					if s, ok := x.(string); ok && strings.Contains(s, inlineSecret) {
						return true
					}
				}
				if walk(x) {
					return true
				}
			}
		case []any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	return walk(doc)
}
