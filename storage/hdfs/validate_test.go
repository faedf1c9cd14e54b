package hdfs

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/colinmarc/hdfs/v2/hadoopconf"

	"github.com/kbr-project/kbr/storage"
)

func TestValidate(t *testing.T) {
	ok := storage.Target{Type: "RemoteHDFS", NameNodes: []string{"nn1:8020"}, Path: "/kbr"}
	cases := []struct {
		name  string
		edit  func(*storage.Target)
		param string // "" = valid
	}{
		{"one NameNode", func(*storage.Target) {}, ""},
		{"HA pair", func(t *storage.Target) { t.NameNodes = []string{"nn1:8020", "10.0.0.2:8020"} }, ""},
		{"IPv6", func(t *storage.Target) { t.NameNodes = []string{"[::1]:8020"} }, ""},
		{"LocalHDFS may leave name_nodes out", func(t *storage.Target) { t.Type = "LocalHDFS"; t.NameNodes = nil }, ""},
		{"name service", func(t *storage.Target) { t.NameService = "hacluster" }, ""},
		{"RemoteHDFS needs name_nodes", func(t *storage.Target) { t.NameNodes = nil }, "name_nodes"},
		{"three NameNodes", func(t *storage.Target) { t.NameNodes = []string{"a:1", "b:1", "c:1"} }, "name_nodes"},
		{"no port", func(t *storage.Target) { t.NameNodes = []string{"nn1"} }, "name_nodes[0]"},
		{"bad port", func(t *storage.Target) { t.NameNodes = []string{"nn1:8020", "nn2:80x"} }, "name_nodes[1]"},
		{"port 0", func(t *storage.Target) { t.NameNodes = []string{"nn1:0"} }, "name_nodes[0]"},
		{"no host", func(t *storage.Target) { t.NameNodes = []string{":8020"} }, "name_nodes[0]"},
		{"duplicate", func(t *storage.Target) { t.NameNodes = []string{"nn1:8020", "nn1:8020"} }, "name_nodes[1]"},
		{"path required", func(t *storage.Target) { t.Path = "" }, "path"},
		{"relative path", func(t *storage.Target) { t.Path = "kbr" }, "path"},
		{"URI as path", func(t *storage.Target) { t.Path = "hdfs://hacluster/kbr" }, "path"},
		{"dot-dot", func(t *storage.Target) { t.Path = "/a/../b" }, "path"},
		{"colon", func(t *storage.Target) { t.Path = "/a:b" }, "path"},
		{"bad name service", func(t *storage.Target) { t.NameService = "ha cluster" }, "name_service"},
		{"bad user", func(t *storage.Target) { t.User = "a b" }, "user"},
		{"kerberos without principal", func(t *storage.Target) { t.Kerberos = &storage.Kerberos{Keytab: "/k"} }, "kerberos.principal"},
		{"kerberos without keytab", func(t *storage.Target) { t.Kerberos = &storage.Kerberos{Principal: "a@B"} }, "kerberos.keytab"},
		{"relative keytab", func(t *storage.Target) { t.Kerberos = &storage.Kerberos{Principal: "a@B", Keytab: "k"} }, "kerberos.keytab"},
		{"kerberos", func(t *storage.Target) { t.Kerberos = &storage.Kerberos{Principal: "a@B", Keytab: "/k"} }, ""},
	}
	for _, c := range cases {
		tgt := ok
		tgt.NameNodes = append([]string(nil), ok.NameNodes...)
		c.edit(&tgt)
		err := reg.Validate(tgt)
		var pe *storage.ParamError
		switch {
		case c.param == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.name, err)
		case c.param != "" && (!errors.As(err, &pe) || pe.Param != c.param):
			t.Errorf("%s: %v, want a ParamError for %s", c.name, err, c.param)
		case err != nil:
			t.Logf("%s: %v", c.name, err)
		}
	}
	// Open refuses what Validate refuses, permanently, before any network.
	bad := ok
	bad.NameNodes = nil
	if _, err := reg.Open(t.Context(), bad); err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "target.name_nodes") {
		t.Errorf("Open(invalid) = %v", err)
	}
}

func TestNameNodesOf(t *testing.T) {
	conf := hadoopconf.HadoopConf{
		"fs.defaultFS":                           "hdfs://hacluster",
		"dfs.nameservices":                       "hacluster,other",
		"dfs.ha.namenodes.hacluster":             "nn1, nn2",
		"dfs.namenode.rpc-address.hacluster.nn1": "a:8020",
		"dfs.namenode.rpc-address.hacluster.nn2": "b:8020",
		"dfs.namenode.rpc-address.other":         "c:9000",
		"dfs.ha.namenodes.broken":                "x",
	}
	for ns, want := range map[string]string{"hacluster": "a:8020 b:8020", "other": "c:9000"} {
		got, err := nameNodesOf(conf, ns)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("nameNodesOf(%s) = %v, %v; want %s", ns, got, err, want)
		}
	}
	for _, ns := range []string{"broken", "missing"} {
		if got, err := nameNodesOf(conf, ns); err == nil {
			t.Errorf("nameNodesOf(%s) = %v, want an error", ns, got)
		}
	}
	plain := hadoopconf.HadoopConf{"fs.defaultFS": "hdfs://nn.example:8020"}
	if got, err := nameNodesOf(plain, "hacluster"); err != nil || strings.Join(got, " ") != "nn.example:8020" {
		t.Errorf("fs.defaultFS host:port: %v, %v", got, err)
	}
	noPort := hadoopconf.HadoopConf{"fs.defaultFS": "hdfs://nn.example"}
	if got, err := nameNodesOf(noPort, "hacluster"); err != nil || strings.Join(got, " ") != "nn.example:8020" {
		t.Errorf("fs.defaultFS host: %v, %v", got, err)
	}
}

// fakeRemote stands for a Java exception from a NameNode (hdfs.Error).
type fakeRemote struct{ class, msg string }

func (f fakeRemote) Error() string     { return "call failed with ERROR_APPLICATION (" + f.class + ")" }
func (f fakeRemote) Method() string    { return "call" }
func (f fakeRemote) Desc() string      { return "ERROR_APPLICATION" }
func (f fakeRemote) Exception() string { return f.class }
func (f fakeRemote) Message() string   { return f.msg + "\n\tat org.apache.hadoop..." }

func TestClassify(t *testing.T) {
	path := func(err error) error { return &os.PathError{Op: "create", Path: "/kbr/x", Err: err} }
	cases := []struct {
		err                 error
		permanent, notFound bool
		says                string
	}{
		{path(os.ErrNotExist), true, true, "not found"},
		{fakeRemote{"java.io.FileNotFoundException", "File does not exist: /kbr/x"}, true, true, "File does not exist"},
		{path(os.ErrPermission), true, false, "permission denied"},
		{path(fakeRemote{"org.apache.hadoop.hdfs.protocol.DSQuotaExceededException", "The DiskSpace quota of /kbr is exceeded"}), true, false, "quota"},
		{path(fakeRemote{"org.apache.hadoop.hdfs.protocol.NSQuotaExceededException", "The NameSpace quota"}), true, false, "NSQuotaExceededException"},
		{path(fakeRemote{"org.apache.hadoop.fs.ParentNotDirectoryException", "/kbr/a (is not a directory)"}), true, false, "is not a directory"},
		{path(fakeRemote{"java.io.IOException", "File /kbr/x could only be written to 0 of the 1 minReplication nodes. There are 1 datanode(s) running and no node(s) are excluded in this operation."}), true, false, "no space"},
		{path(fakeRemote{"java.io.IOException", "File /kbr/x could only be written to 0 of the 1 minReplication nodes. There are 0 datanode(s) running and 0 node(s) are excluded in this operation."}), false, false, "0 datanode(s)"},
		{path(fakeRemote{"java.io.IOException", "File /kbr/x could only be written to 0 of the 1 minReplication nodes. There are 1 datanode(s) running and 1 node(s) are excluded in this operation."}), false, false, "excluded"},
		{path(fakeRemote{"org.apache.hadoop.hdfs.server.namenode.SafeModeException", "Cannot create file/kbr/x. Name node is in safe mode."}), false, false, "safe mode"},
		{path(fakeRemote{"org.apache.hadoop.ipc.RetriableException", "NameNode still not started"}), false, false, "RetriableException"},
		{path(fakeRemote{"org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException", "No lease on /kbr/x"}), false, false, "No lease"},
		{fmt.Errorf("no available namenodes: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), false, false, "no available namenodes"},
		{io.ErrUnexpectedEOF, false, false, "unexpected EOF"},
		{io.EOF, false, false, "EOF"},
		{path(syscall.ENOSPC), true, false, "no space"},
	}
	for _, c := range cases {
		err := classify("RemoteHDFS:kbr@nn:8020:/kbr", "create", "x", c.err)
		if storage.IsPermanent(err) != c.permanent || errors.Is(err, storage.ErrNotFound) != c.notFound ||
			!strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "RemoteHDFS:kbr@nn:8020:/kbr") {
			t.Errorf("classify(%v) = %v (permanent %v, not found %v); want permanent %v, not found %v, saying %q",
				c.err, err, storage.IsPermanent(err), errors.Is(err, storage.ErrNotFound), c.permanent, c.notFound, c.says)
		}
	}
	if classify("x", "op", "n", nil) != nil {
		t.Error("classify(nil) != nil")
	}
	if !unavailable(classify("x", "op", "n", fmt.Errorf("stat /a: %w", errors.New("no available namenodes: dial tcp: refused")))) {
		t.Error("unavailable() does not see through wrapping")
	}
}
