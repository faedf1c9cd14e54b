package hdfs

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kbr-project/kbr/storage"
)

// roundTrip writes, lists, reads and deletes a file through b.
func roundTrip(t *testing.T, b storage.Backend) {
	t.Helper()
	ctx := ctxT(t)
	data := bytes.Repeat([]byte("ha "), 100000)
	if _, err := storage.WriteFile(ctx, b, "ha/file", bytes.NewReader(data)); err != nil {
		t.Fatalf("write through %s: %v", b, err)
	}
	if got := readAll(t, b, "ha/file"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(data))
	}
	if fs, err := b.List(ctx, "ha/"); err != nil || len(fs) != 1 {
		t.Fatalf("List = %v, %v", fs, err)
	}
	if err := b.Delete(ctx, "ha/file"); err != nil {
		t.Fatal(err)
	}
}

// TestHADeadNameNode: with two NameNodes of which one refuses connections,
// the backend works through the other, whichever order they are given in.
func TestHADeadNameNode(t *testing.T) {
	e := loadHDFS(t)
	dead := deadAddr(t)
	for _, order := range [][]string{{dead, e.NameNode}, {e.NameNode, dead}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			tgt := e.target(e.freshRoot(t))
			tgt.NameNodes = order
			if err := reg.Validate(tgt); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			b, err := reg.Open(ctxT(t), tgt)
			if err != nil {
				t.Fatalf("Open(%v): %v", order, err)
			}
			defer b.Close()
			t.Logf("opened in %v", time.Since(start).Round(time.Millisecond))
			roundTrip(t, b)
		})
	}
}

// TestHAStandbyNameNode: a NameNode that answers every call with
// StandbyException (the passive half of an HA pair) is skipped for the active
// one, in either order. The standby is a fake speaking Hadoop RPC; it counts
// the calls it refused, so the test knows it was asked.
func TestHAStandbyNameNode(t *testing.T) {
	e := loadHDFS(t)
	sb := startStandby(t)
	for _, order := range [][]string{{sb.addr, e.NameNode}, {e.NameNode, sb.addr}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			before := sb.refused.Load()
			tgt := e.target(e.freshRoot(t))
			tgt.NameNodes = order
			b, err := reg.Open(ctxT(t), tgt)
			if err != nil {
				t.Fatalf("Open(%v): %v", order, err)
			}
			defer b.Close()
			roundTrip(t, b)
			n := sb.refused.Load() - before
			t.Logf("the standby refused %d calls", n)
			if order[0] == sb.addr && n == 0 {
				t.Error("the standby listed first was never asked")
			}
		})
	}
	// No active NameNode: a retryable error naming the standby, not a hang.
	tgt := e.target(e.freshRoot(t))
	tgt.NameNodes = []string{sb.addr}
	_, err := New(ctxT(t), tgt)
	if err == nil || storage.IsPermanent(err) || !strings.Contains(err.Error(), "StandbyException") {
		t.Errorf("Open with no active NameNode = %v; want a retryable error mentioning StandbyException", err)
	}
}

// TestLocalHDFSFromHadoopConf: LocalHDFS without name_nodes takes those of
// its name service from HADOOP_CONF_DIR's hdfs-site.xml (an HA pair whose
// first NameNode is dead here), or a single rpc-address, or fs.defaultFS.
func TestLocalHDFSFromHadoopConf(t *testing.T) {
	e := loadHDFS(t)
	dir := t.TempDir()
	dead := deadAddr(t)
	site := `<?xml version="1.0"?>
<configuration>
  <property><name>dfs.nameservices</name><value>hacluster</value></property>
  <property><name>dfs.ha.namenodes.hacluster</name><value>nn1,nn2</value></property>
  <property><name>dfs.namenode.rpc-address.hacluster.nn1</name><value>` + dead + `</value></property>
  <property><name>dfs.namenode.rpc-address.hacluster.nn2</name><value>` + e.NameNode + `</value></property>
  <property><name>dfs.namenode.rpc-address.single</name><value>` + e.NameNode + `</value></property>
</configuration>`
	if err := os.WriteFile(filepath.Join(dir, "hdfs-site.xml"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HADOOP_CONF_DIR", dir)
	for _, ns := range []string{"", "hacluster", "single"} {
		tgt := storage.Target{Type: "LocalHDFS", NameService: ns, User: e.User, Path: e.freshRoot(t)}
		if err := reg.Validate(tgt); err != nil {
			t.Fatalf("Validate(LocalHDFS without name_nodes): %v", err)
		}
		b, err := reg.Open(ctxT(t), tgt)
		if err != nil {
			t.Fatalf("Open(LocalHDFS, name service %q): %v", ns, err)
		}
		t.Logf("%s", b)
		roundTrip(t, b)
		b.Close()
	}
	// An unknown name service is a permanent error naming name_nodes.
	tgt := storage.Target{Type: "LocalHDFS", NameService: "other", User: e.User, Path: "/x"}
	if _, err := reg.Open(ctxT(t), tgt); err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "target.name_nodes") {
		t.Errorf("Open(unknown name service) = %v", err)
	}
	// The stack's own client configuration (fs.defaultFS host:port) works too.
	t.Setenv("HADOOP_CONF_DIR", e.ConfDir)
	b, err := reg.Open(ctxT(t), storage.Target{Type: "LocalHDFS", User: e.User, Path: e.freshRoot(t)})
	if err != nil {
		t.Fatalf("Open(LocalHDFS with the stack's conf dir): %v", err)
	}
	roundTrip(t, b)
	b.Close()
}

// standby is a fake NameNode: it accepts Hadoop RPC connections and answers
// every call with org.apache.hadoop.ipc.StandbyException.
type standby struct {
	addr    string
	refused atomic.Int64
}

func startStandby(t *testing.T) *standby {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &standby{addr: l.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s.serve(c)
			}()
		}
	}()
	return s
}

func (s *standby) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(time.Minute))
	hdr := make([]byte, 7) // "hrpc", version, service class, auth protocol
	if _, err := io.ReadFull(c, hdr); err != nil || string(hdr[:4]) != "hrpc" {
		return
	}
	for {
		var n uint32
		if err := binary.Read(c, binary.BigEndian, &n); err != nil {
			return
		}
		pkt := make([]byte, n)
		if _, err := io.ReadFull(c, pkt); err != nil {
			return
		}
		callID, ok := rpcCallID(pkt)
		if !ok {
			return
		}
		if callID < 0 { // the connection context (-3) and pings get no answer
			continue
		}
		s.refused.Add(1)
		// RpcResponseHeaderProto: callId=1, status=2 (ERROR=1), serverIpcVersionNum=3,
		// exceptionClassName=4, errorMsg=5, errorDetail=6 (ERROR_APPLICATION=1)
		var h []byte
		h = protowire.AppendTag(h, 1, protowire.VarintType)
		h = protowire.AppendVarint(h, uint64(uint32(callID)))
		h = protowire.AppendTag(h, 2, protowire.VarintType)
		h = protowire.AppendVarint(h, 1)
		h = protowire.AppendTag(h, 3, protowire.VarintType)
		h = protowire.AppendVarint(h, 9)
		h = protowire.AppendTag(h, 4, protowire.BytesType)
		h = protowire.AppendString(h, "org.apache.hadoop.ipc.StandbyException")
		h = protowire.AppendTag(h, 5, protowire.BytesType)
		h = protowire.AppendString(h, "Operation category READ is not supported in state standby")
		h = protowire.AppendTag(h, 6, protowire.VarintType)
		h = protowire.AppendVarint(h, 1)
		body := protowire.AppendVarint(nil, uint64(len(h)))
		body = append(body, h...)
		out := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		if _, err := c.Write(append(out, body...)); err != nil {
			return
		}
	}
}

// rpcCallID reads callId (field 3, sint32) from the RpcRequestHeaderProto that
// starts a request packet (varint length, then the message).
func rpcCallID(pkt []byte) (int32, bool) {
	l, n := protowire.ConsumeVarint(pkt)
	if n < 0 || uint64(len(pkt)-n) < l {
		return 0, false
	}
	m := pkt[n : n+int(l)]
	for len(m) > 0 {
		num, typ, k := protowire.ConsumeTag(m)
		if k < 0 {
			return 0, false
		}
		m = m[k:]
		if num == 3 && typ == protowire.VarintType {
			v, k := protowire.ConsumeVarint(m)
			if k < 0 {
				return 0, false
			}
			return int32(protowire.DecodeZigZag(v)), true
		}
		k = protowire.ConsumeFieldValue(num, typ, m)
		if k < 0 {
			return 0, false
		}
		m = m[k:]
	}
	return 0, false
}
