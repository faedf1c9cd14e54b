package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kbr-project/kbr/storage"
)

const kraftRestoreYAML = `
cluster:
  name: kq
  bootstrap_servers: [127.0.0.1:14101]
source:
  target: {type: LocalDir, path: /tmp}
  recovery_point: latest
nodes:
  - {id: 1, host: kq1}
  - {id: 2, host: kq2}
  - {id: 3, host: kq3}
`

func TestLoadKRaftRestore(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte(kraftRestoreYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadKRaftRestore(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.SafetyBackup.Task != "kq-before-restore" || r.Options.AgentTimeout != DefaultAgentTimeout || r.Options.HealthyTimeout != DefaultHealthyTimeout || len(r.Nodes) != 3 {
		t.Errorf("defaults: %+v %+v", r.SafetyBackup, r.Options)
	}
	// The ZooKeeper restore's fields are not this document's.
	if err := os.WriteFile(p, []byte(kraftRestoreYAML+"brokers: [{id: 1, host: b}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKRaftRestore(p); err == nil || !strings.Contains(err.Error(), "brokers") {
		t.Errorf("brokers accepted: %v", err)
	}
}

func TestKRaftRestoreValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		edit  func(*KRaftRestore)
		field string
	}{
		{"zookeeper", func(r *KRaftRestore) { r.Cluster.ZooKeeper = &ZooKeeper{Connect: []string{"z:2181"}, Chroot: "/"} }, "cluster.zookeeper"},
		{"no nodes", func(r *KRaftRestore) { r.Nodes = nil }, "nodes"},
		{"no host", func(r *KRaftRestore) { r.Nodes[1].Host = "" }, "nodes[1].host"},
		{"bad host", func(r *KRaftRestore) { r.Nodes[0].Host = "a b" }, "nodes[0].host"},
		{"duplicate id", func(r *KRaftRestore) { r.Nodes[1].ID = 1 }, "nodes[1].id"},
		{"duplicate host", func(r *KRaftRestore) { r.Nodes[1].Host = "kq1" }, "nodes[1].host"},
		{"short timeout", func(r *KRaftRestore) { r.Options.StartTimeout = 1 }, "options.start_timeout"},
		{"bad task", func(r *KRaftRestore) { r.SafetyBackup.Task = "a_b" }, "safety_backup.task"},
		{"bad recovery point", func(r *KRaftRestore) { r.Source.RecoveryPoint = "x.json" }, "source.recovery_point"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := KRaftRestore{
				Cluster: Cluster{Name: "kq", BootstrapServers: []string{"127.0.0.1:14101"}},
				Source:  Source{Target: storage.Target{Type: "LocalDir", Path: "/tmp"}, RecoveryPoint: "latest"},
				Nodes:   []BrokerHost{{ID: 1, Host: "kq1"}, {ID: 2, Host: "kq2"}},
			}
			r.ApplyDefaults()
			if err := r.Validate(); err != nil {
				t.Fatalf("valid document refused: %v", err)
			}
			c.edit(&r)
			err := r.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("err %v, want one naming %s", err, c.field)
			}
		})
	}
}

// The kraft_log data source needs the controllers and a KRaft cluster.
func TestBackupKRaftLog(t *testing.T) {
	t.Parallel()
	base := func() Backup {
		b := Backup{Cluster: Cluster{Name: "kq", BootstrapServers: []string{"127.0.0.1:14101"}, Controllers: []BrokerHost{{ID: 1, Host: "kq1"}, {ID: 2, Host: "kq2"}}},
			DataSources: []string{SourceMetadata, SourceKRaftLog}, Target: storage.Target{Type: "LocalDir", Path: "/tmp"}}
		b.ApplyDefaults()
		return b
	}
	b := base()
	if err := b.Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	// The default data sources do not include it: it needs agents.
	d := Backup{Cluster: b.Cluster, Target: b.Target}
	d.ApplyDefaults()
	if d.Has(SourceKRaftLog) {
		t.Error("kraft_log is a default data source")
	}
	for _, c := range []struct {
		name  string
		edit  func(*Backup)
		field string
	}{
		{"no controllers", func(b *Backup) { b.Cluster.Controllers = nil }, "cluster.controllers"},
		{"zookeeper", func(b *Backup) { b.Cluster.ZooKeeper = &ZooKeeper{Connect: []string{"z:2181"}, Chroot: "/"} }, "data_sources"},
		{"duplicate controller", func(b *Backup) { b.Cluster.Controllers[1].ID = 1 }, "cluster.controllers[1].id"},
		{"bad host", func(b *Backup) { b.Cluster.Controllers[0].Host = "x/y" }, "cluster.controllers[0].host"},
		{"unknown source", func(b *Backup) { b.DataSources = []string{"kraftlog"} }, "data_sources[0]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := base()
			c.edit(&b)
			err := b.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("err %v, want one naming %s", err, c.field)
			}
		})
	}
	// Controllers without kraft_log are left alone (a cluster document
	// shared by tasks).
	b = base()
	b.DataSources = []string{SourceMetadata}
	b.Cluster.Controllers[1].ID = 1
	if err := b.Validate(); err != nil {
		t.Errorf("controllers checked without kraft_log: %v", err)
	}
}
