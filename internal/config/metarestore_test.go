package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const metaRestoreYAML = `
cluster:
  name: prod
  bootstrap_servers: [127.0.0.1:9092]
  zookeeper: {connect: ["127.0.0.1:2181"], chroot: /kafka}
source:
  target: {type: LocalDir, path: /tmp}
  recovery_point: latest
brokers:
  - {id: 1, host: b1}
  - {id: 2, host: b2}
`

func TestLoadMetadataRestore(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte(metaRestoreYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadMetadataRestore(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.SafetyBackup.Task != "prod-before-restore" || r.Options.BatchSize != DefaultZKBatchSize || r.Options.AgentTimeout != DefaultAgentTimeout {
		t.Errorf("defaults: %+v %+v", r.SafetyBackup, r.Options)
	}
}

// TestMetadataRestoreValidate checks that every refusal names its field.
func TestMetadataRestoreValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		edit  func(*MetadataRestore)
		field string
	}{
		{"no zookeeper", func(r *MetadataRestore) { r.Cluster.ZooKeeper = nil }, "cluster.zookeeper"},
		{"no brokers", func(r *MetadataRestore) { r.Brokers = nil }, "brokers"},
		{"no host", func(r *MetadataRestore) { r.Brokers[1].Host = "" }, "brokers[1].host"},
		{"bad host", func(r *MetadataRestore) { r.Brokers[0].Host = "a b" }, "brokers[0].host"},
		{"duplicate id", func(r *MetadataRestore) { r.Brokers[1].ID = 1 }, "brokers[1].id"},
		{"duplicate host", func(r *MetadataRestore) { r.Brokers[1].Host = "b1" }, "brokers[1].host"},
		{"negative id", func(r *MetadataRestore) { r.Brokers[0].ID = -1 }, "brokers[0].id"},
		{"bad batch", func(r *MetadataRestore) { r.Options.BatchSize = 20000 }, "options.batch_size"},
		{"short timeout", func(r *MetadataRestore) { r.Options.AgentTimeout = 1 }, "options.agent_timeout"},
		{"bad task", func(r *MetadataRestore) { r.SafetyBackup.Task = "a_b" }, "safety_backup.task"},
		{"no recovery point", func(r *MetadataRestore) { r.Source.RecoveryPoint = "" }, "source.recovery_point"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := MetadataRestore{
				Cluster: Cluster{Name: "prod", BootstrapServers: []string{"127.0.0.1:9092"}, ZooKeeper: &ZooKeeper{Connect: []string{"127.0.0.1:2181"}, Chroot: "/k"}},
				Source:  Source{RecoveryPoint: "latest"},
				Brokers: []BrokerHost{{ID: 1, Host: "b1"}, {ID: 2, Host: "b2"}},
			}
			r.Source.Target.Type, r.Source.Target.Path = "LocalDir", "/tmp"
			r.ApplyDefaults()
			c.edit(&r)
			err := r.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), c.field+":") {
				t.Errorf("got %v, want an error on %s", err, c.field)
			}
		})
	}
}

func TestAgentConfig(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(p, []byte("host: b1\nserver_properties: /etc/kafka/server.properties\nlistener: 10.0.0.1:9092\nkafka_libs: /opt/kafka/libs\n"), 0o644)
	a, err := LoadAgent(p)
	if err != nil {
		t.Fatal(err)
	}
	a.ApplyDefaults()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("host: b1\nserver_propertes: /x\n"), 0o644)
	if _, err := LoadAgent(p); err == nil || !strings.Contains(err.Error(), "server_propertes") {
		t.Errorf("a misspelt key: %v", err)
	}
	for _, bad := range []Agent{{ServerProperties: "/x"}, {Host: "b1"}, {Host: "b1", ServerProperties: "/x", Listener: "nope"}} {
		bad.ApplyDefaults()
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestRestoreOptionsSpelling: the host-step options of both metadata
// restores are read at options' top level (the shared struct is inline),
// in YAML and in the workflow's JSON input alike.
func TestRestoreOptionsSpelling(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "r.yaml")
	doc := metaRestoreYAML + "options: {batch_size: 7, agent_timeout: 20s, stop_timeout: 2m, start_timeout: 4m, healthy_timeout: 9m}\n"
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadMetadataRestore(p)
	if err != nil {
		t.Fatal(err)
	}
	o := r.Options
	if o.BatchSize != 7 || o.AgentTimeout.D() != 20*time.Second || o.StopTimeout.D() != 2*time.Minute ||
		o.StartTimeout.D() != 4*time.Minute || o.HealthyTimeout.D() != 9*time.Minute {
		t.Errorf("options read %+v", o)
	}
	js, _ := json.Marshal(KRaftRestoreOptions{HostOpsOptions: o.HostOpsOptions})
	if want := `{"agent_timeout":"20s","stop_timeout":"2m0s","start_timeout":"4m0s","healthy_timeout":"9m0s"}`; string(js) != want {
		t.Errorf("KRaft restore options as JSON: %s, want %s", js, want)
	}
}
