package metaarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/kbr-project/kbr/internal/kmeta"
	"github.com/kbr-project/kbr/internal/zkmeta"
)

func sample() (*kmeta.Snapshot, *zkmeta.Tree) {
	rack, user := "r1", "alice"
	at := time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.UTC)
	s := &kmeta.Snapshot{
		ClusterID: "abc", ControllerID: 2, TakenAt: at,
		Brokers: []kmeta.Broker{{ID: 1, Host: "h1", Port: 9092, Rack: &rack, VersionGuess: "3.9"}, {ID: 2, Host: "h2", Port: 9092, VersionGuess: "3.9"}},
		Topics: []kmeta.Topic{
			{Name: "orders", ID: "vM3bVyfGQfG8kSxf8iW2Ow", ReplicationFactor: 2,
				Partitions: []kmeta.Partition{{ID: 0, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1}}, {ID: 1, Leader: -1, Replicas: []int32{2, 1}, ISR: []int32{}}},
				Configs:    map[string]string{"retention.ms": "1", "cleanup.policy": "compact,delete"}},
			{Name: "empty", Configs: map[string]string{}},
		},
		ACLs:         []kmeta.ACL{{ResourceType: "TOPIC", ResourceName: "orders", PatternType: "PREFIXED", Principal: "User:alice", Host: "*", Operation: "READ", Permission: "DENY"}},
		Quotas:       []kmeta.Quota{{Entity: []kmeta.QuotaEntity{{Type: "client-id"}, {Type: "user", Name: &user}}, Values: map[string]float64{"producer_byte_rate": 1.5e6, "request_percentage": 0.25}}},
		SCRAMUsers:   []kmeta.SCRAMUser{{Name: "alice", Mechanisms: []kmeta.SCRAMMechanism{{Mechanism: "SCRAM-SHA-512", Iterations: 4096}}}},
		Groups:       []kmeta.Group{{ID: "g", State: "Empty", ProtocolType: "consumer", Offsets: []kmeta.GroupOffset{{Topic: "orders", Partition: 1, Offset: 99, LeaderEpoch: -1, Metadata: "ü\x01"}}}},
		Notes:        []string{"n"},
		KafkaVersion: "3.9",
	}
	t := &zkmeta.Tree{Chroot: "/kafka", TakenAt: at, Znodes: []zkmeta.Znode{
		{Path: "/kafka", Data: nil, ACL: []zkmeta.ACL{{Perms: zk.PermAll, Scheme: "world", ID: "anyone"}}},
		{Path: "/kafka/empty", Data: []byte{}, ACL: []zkmeta.ACL{}},
		{Path: "/kafka/bin", Data: []byte{0, 0xff, 0xfe, '\n', 0x80}, ACL: []zkmeta.ACL{{Perms: zk.PermRead, Scheme: "sasl", ID: "kafka"}}},
		{Path: "/kafka/brokers/ids/1", Data: []byte(`{"host":"h1"}`), Ephemeral: true,
			Stat: zkmeta.Stat{Czxid: 1, Mzxid: 2, Pzxid: 3, Ctime: 4, Mtime: 5, Version: 6, Cversion: 7, Aversion: 8, EphemeralOwner: 9, DataLength: 13, NumChildren: 0}},
	}}
	return s, t
}

func TestArchiveRoundTrip(t *testing.T) {
	s, tree := sample()
	var buf bytes.Buffer
	if err := WriteArchive(&buf, s, tree); err != nil {
		t.Fatalf("WriteArchive: %v", err)
	}
	raw := append([]byte(nil), buf.Bytes()...)
	gs, gt, err := ReadArchive(&buf)
	if err != nil {
		t.Fatalf("ReadArchive: %v", err)
	}
	if !reflect.DeepEqual(gs, s) {
		t.Errorf("snapshot changed:\n got %#v\nwant %#v", gs, s)
	}
	if !reflect.DeepEqual(gt, tree) {
		t.Errorf("tree changed:\n got %#v\nwant %#v", gt, tree)
	}
	if gt.Get("/kafka").Data != nil || gt.Get("/kafka/empty").Data == nil {
		t.Errorf("nil and empty data not kept apart")
	}

	// Same input, same bytes.
	var again bytes.Buffer
	if err := WriteArchive(&again, s, tree); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, again.Bytes()) {
		t.Errorf("two writes of the same metadata differ")
	}

	// Entries in order, version first, data as base64.
	names, files := entries(t, raw)
	if strings.Join(names, " ") != "version.json logical.json znodes.json" {
		t.Errorf("entries = %v", names)
	}
	if !strings.Contains(files["znodes.json"], `"data": "AP/+CoA="`) || !strings.Contains(files["znodes.json"], `"data": null`) || !strings.Contains(files["znodes.json"], `"data": ""`) {
		t.Errorf("znodes.json data encoding:\n%s", files["znodes.json"])
	}
	v, err := ReadVersion(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if *v != (Version{Format: 2, KafkaVersion: "3.9", ClusterID: "abc", TakenAt: s.TakenAt, ZKChroot: "/kafka"}) {
		t.Errorf("version = %+v", v)
	}
}

// TestArchiveKeepsEmptyApartFromNil checks that empty lists and maps come
// back empty, not nil, and nil ones nil.
func TestArchiveKeepsEmptyApartFromNil(t *testing.T) {
	for _, s := range []*kmeta.Snapshot{
		{Brokers: []kmeta.Broker{}, Topics: []kmeta.Topic{{Name: "t", Partitions: []kmeta.Partition{}, Configs: map[string]string{}}}, ACLs: []kmeta.ACL{}, Quotas: []kmeta.Quota{{Entity: []kmeta.QuotaEntity{}, Values: map[string]float64{}}}, SCRAMUsers: []kmeta.SCRAMUser{}, Groups: []kmeta.Group{{Offsets: []kmeta.GroupOffset{}}}, Notes: []string{}},
		{Topics: []kmeta.Topic{{Name: "t"}}, Quotas: []kmeta.Quota{{}}, Groups: []kmeta.Group{{}}},
	} {
		tree := &zkmeta.Tree{Znodes: []zkmeta.Znode{}}
		var buf bytes.Buffer
		if err := WriteArchive(&buf, s, tree); err != nil {
			t.Fatal(err)
		}
		gs, gt, err := ReadArchive(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gs, s) || !reflect.DeepEqual(gt, tree) {
			t.Errorf("round trip changed:\n got %#v %#v\nwant %#v %#v", gs, gt, s, tree)
		}
	}
}

func TestArchiveKRaftHasNoTree(t *testing.T) {
	s, _ := sample()
	var buf bytes.Buffer
	if err := WriteArchive(&buf, s, nil); err != nil {
		t.Fatal(err)
	}
	names, _ := entries(t, buf.Bytes())
	if len(names) != 2 {
		t.Errorf("entries = %v", names)
	}
	gs, gt, err := ReadArchive(&buf)
	if err != nil || gt != nil || !reflect.DeepEqual(gs, s) {
		t.Errorf("ReadArchive = %v, %v, %v", gs, gt, err)
	}
}

func TestArchiveRefusesBadInput(t *testing.T) {
	mk := func(files ...string) *bytes.Buffer {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for i := 0; i < len(files); i += 2 {
			tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1]))})
			tw.Write([]byte(files[i+1]))
		}
		tw.Close()
		gz.Close()
		return &buf
	}
	for name, c := range map[string]struct {
		in   *bytes.Buffer
		want string
	}{
		"not gzip":   {bytes.NewBufferString("plain"), "not gzip"},
		"format 3":   {mk("version.json", `{"format":3}`, "logical.json", `{}`), "format 3 is not supported"},
		"format 0":   {mk("version.json", `{}`, "logical.json", `{}`), "format 0 is not supported"},
		"no logical": {mk("version.json", `{"format":1}`), "no logical.json"},
		"no version": {mk("other.txt", "x"), "no version.json"},
		"order":      {mk("logical.json", `{}`, "version.json", `{"format":1}`), "logical.json comes before version.json"},
		"bad json":   {mk("version.json", `{"format":1}`, "logical.json", `{"topics":7}`), "decode logical.json"},
	} {
		if _, _, err := ReadArchive(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	if err := WriteArchive(&bytes.Buffer{}, nil, nil); err == nil {
		t.Errorf("nil snapshot written")
	}
}

func entries(t *testing.T, raw []byte) ([]string, map[string]string) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var b bytes.Buffer
		b.ReadFrom(tr)
		names = append(names, h.Name)
		files[h.Name] = b.String()
	}
	return names, files
}

// TestArchiveRefusesEscapingZnodes guards the chroot escape at the reader:
// an archive whose znodes.json names a znode outside its chroot (/kafkaX
// for /kafka), with a ".." or an empty segment, or twice, is refused when
// it is read, naming the entry, before anything plans a restore from it.
// So is an archive entry whose own name climbs out (../x, /etc/x).
func TestArchiveRefusesEscapingZnodes(t *testing.T) {
	mk := func(files ...string) *bytes.Buffer {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for i := 0; i < len(files); i += 2 {
			tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1]))})
			tw.Write([]byte(files[i+1]))
		}
		tw.Close()
		gz.Close()
		return &buf
	}
	version := `{"format":1,"zkChroot":"/kafka"}`
	znodes := func(chroot string, paths ...string) string {
		var zs []string
		for _, p := range paths {
			zs = append(zs, `{"path":"`+p+`","data":null,"acl":[]}`)
		}
		return `{"chroot":"` + chroot + `","znodes":[` + strings.Join(zs, ",") + `]}`
	}
	for name, c := range map[string]struct {
		in   *bytes.Buffer
		want string
	}{
		"prefix without a / boundary": {mk("version.json", version, "logical.json", `{}`, "znodes.json", znodes("/kafka", "/kafka", "/kafkaX/evil")),
			`znodes.json: znode 2: "/kafkaX/evil" is outside the chroot /kafka`},
		"dot-dot": {mk("version.json", version, "logical.json", `{}`, "znodes.json", znodes("/kafka", "/kafka/../zookeeper")),
			`znodes.json: znode 1: "/kafka/../zookeeper" has a ".." segment`},
		"empty segment": {mk("version.json", version, "logical.json", `{}`, "znodes.json", znodes("/kafka", "/kafka//a")),
			`znodes.json: znode 1: "/kafka//a" has an empty segment`},
		"relative": {mk("version.json", version, "logical.json", `{}`, "znodes.json", znodes("/kafka", "brokers")),
			`znodes.json: znode 1: "brokers" is not absolute`},
		"twice": {mk("version.json", version, "logical.json", `{}`, "znodes.json", znodes("/kafka", "/kafka/a", "/kafka/a")),
			`znodes.json: znode 2: "/kafka/a" appears twice`},
		"bad chroot": {mk("version.json", `{"format":1,"zkChroot":"/kafka/.."}`, "logical.json", `{}`, "znodes.json", znodes("/kafka/..", "/kafka/../a")),
			`znodes.json: chroot "/kafka/.." has a ".." segment`},
		"chroot differs from version.json": {mk("version.json", version, "logical.json", `{}`, "znodes.json", znodes("/other", "/other/a")),
			`znodes.json: chroot /other, but version.json says /kafka`},
		"entry name climbs out": {mk("version.json", version, "../evil.json", `{}`, "logical.json", `{}`),
			`entry "../evil.json": not a relative path inside the archive`},
		"absolute entry name": {mk("version.json", version, "/etc/evil", `{}`, "logical.json", `{}`),
			`entry "/etc/evil": not a relative path inside the archive`},
		"entry twice": {mk("version.json", version, "logical.json", `{}`, "logical.json", `{}`),
			`logical.json appears twice`},
	} {
		_, tree, err := ReadArchive(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: tree %v, err = %v, want %q", name, tree, err, c.want)
		}
	}
}

// gnuSparse builds an old-GNU sparse tar header (typeflag 'S') for name
// that claims size bytes, all holes: the tar reader hands back that many
// zeros from a 512-byte header.
func gnuSparse(name string, size int64) []byte {
	var b [512]byte
	copy(b[0:], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], "00000000000\x00")
	copy(b[136:], "00000000000\x00")
	b[156] = 'S'
	copy(b[257:], "ustar  \x00")
	copy(b[483:], fmt.Sprintf("%011o\x00", size))
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b[:]
}

// TestArchiveRefusesSparseEntries guards a hole found while writing the
// archive's fuzz target (the property "no allocation ahead of the data"):
// a tar entry in GNU sparse form claims gigabytes of holes, which the tar
// reader returns as zeros, so a 150-byte archive made ReadArchive read and
// allocate up to the 4 GiB entry limit (7 GB with the JSON decoder). The archive holds regular files
// only; anything else is refused, naming the entry, before it is read.
func TestArchiveRefusesSparseEntries(t *testing.T) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	v := `{"format":1}`
	tw.WriteHeader(&tar.Header{Name: VersionEntry, Mode: 0o644, Size: int64(len(v))})
	tw.Write([]byte(v))
	tw.Flush()
	raw.Write(gnuSparse(LogicalEntry, 3<<30))
	raw.Write(make([]byte, 1024))
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	gz.Write(raw.Bytes())
	gz.Close()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := ReadArchive(bytes.NewReader(buf.Bytes()))
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "logical.json") || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("err = %v, want logical.json refused as not a regular file", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("a %d-byte archive allocated %d bytes", buf.Len(), got)
	}
}

// An archive of format 1 (camelCase keys, as kbr wrote before format 2)
// reads into the same values as a format 2 archive.
func TestArchiveReadsFormat1(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range [][2]string{
		{"version.json", `{"format":1,"kafkaVersion":"3.9","clusterID":"abc","takenAt":"2025-03-04T05:06:07Z","zkChroot":"/kafka"}`},
		{"logical.json", `{"clusterID":"abc","controllerID":2,"takenAt":"2025-03-04T05:06:07Z","kafkaVersion":"3.9","aclsNote":"n",
			"brokers":[{"id":1,"versionGuess":"3.9"}],
			"topics":[{"name":"MyTopic","replicationFactor":3,"configs":{"retention.ms":"-1"}}],
			"acls":[{"resourceType":"TOPIC","resourceName":"MyTopic","patternType":"LITERAL"}],
			"scramUsers":[{"name":"alice"}],
			"groups":[{"id":"g","protocolType":"consumer","offsets":[{"topic":"MyTopic","partition":0,"offset":5,"leaderEpoch":4}]}]}`},
		{"znodes.json", `{"chroot":"/kafka","takenAt":"2025-03-04T05:06:07Z","znodes":[{"path":"/kafka","data":null,"acl":[],"aclRedacted":true,"stat":{"ephemeralOwner":9,"dataLength":3,"numChildren":1}}]}`},
	} {
		tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1]))})
		tw.Write([]byte(e[1]))
	}
	tw.Close()
	gz.Close()
	s, tree, err := ReadArchive(&buf)
	if err != nil {
		t.Fatal(err)
	}
	taken := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	if s.ClusterID != "abc" || s.ControllerID != 2 || !s.TakenAt.Equal(taken) || s.KafkaVersion != "3.9" || s.ACLsNote != "n" {
		t.Errorf("snapshot header: %+v", s)
	}
	if len(s.Brokers) != 1 || s.Brokers[0].VersionGuess != "3.9" {
		t.Errorf("brokers: %+v", s.Brokers)
	}
	if len(s.Topics) != 1 || s.Topics[0].Name != "MyTopic" || s.Topics[0].ReplicationFactor != 3 || s.Topics[0].Configs["retention.ms"] != "-1" {
		t.Errorf("topics: %+v", s.Topics)
	}
	if len(s.ACLs) != 1 || s.ACLs[0].ResourceType != "TOPIC" || s.ACLs[0].ResourceName != "MyTopic" || s.ACLs[0].PatternType != "LITERAL" {
		t.Errorf("acls: %+v", s.ACLs)
	}
	if len(s.SCRAMUsers) != 1 || len(s.Groups) != 1 || s.Groups[0].ProtocolType != "consumer" ||
		len(s.Groups[0].Offsets) != 1 || s.Groups[0].Offsets[0].LeaderEpoch != 4 {
		t.Errorf("scram users %+v, groups %+v", s.SCRAMUsers, s.Groups)
	}
	z := tree.Get("/kafka")
	if !tree.TakenAt.Equal(taken) || z == nil || !z.ACLRedacted || z.Stat.EphemeralOwner != 9 || z.Stat.DataLength != 3 || z.Stat.NumChildren != 1 {
		t.Errorf("znode tree: %+v, /kafka %+v", tree, z)
	}
}
