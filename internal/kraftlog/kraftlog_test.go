package kraftlog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		name string
		id   SnapshotID
		ok   bool
	}{
		{"00000000000000022217-0000000001.checkpoint", SnapshotID{22217, 1}, true},
		{"00000000000000000000-0000000000.checkpoint", SnapshotID{0, 0}, true},
		{"00000000000000022217-0000000001.checkpoint.part", SnapshotID{}, false},
		{"00000000000000022217-0000000001.checkpoint.deleted", SnapshotID{}, false},
		{"00000000000000022217-00000001.checkpoint", SnapshotID{}, false},
		{"leader-epoch-checkpoint", SnapshotID{}, false},
		{"0000000000000002221a-0000000001.checkpoint", SnapshotID{}, false},
	} {
		id, ok := ParseSnapshotName(c.name)
		if ok != c.ok || id != c.id {
			t.Errorf("ParseSnapshotName(%q) = %v, %v; want %v, %v", c.name, id, ok, c.id, c.ok)
		}
		if ok && id.FileName() != c.name {
			t.Errorf("FileName of %v = %s", id, id.FileName())
		}
	}
	if b, ok := ParseSegmentName("00000000000000007221.log"); !ok || b != 7221 || SegmentName(7221) != "00000000000000007221.log" {
		t.Errorf("segment name: %d %v", b, ok)
	}
	for _, n := range []string{"00000000000000007221.index", "7221.log", "00000000000000007221.log.deleted", "00000000000000007221.timeindex"} {
		if _, ok := ParseSegmentName(n); ok {
			t.Errorf("%s read as a segment", n)
		}
	}
	// Kafka orders snapshots by epoch first.
	if !(SnapshotID{900, 1}).Less(SnapshotID{100, 2}) || (SnapshotID{100, 2}).Less(SnapshotID{900, 1}) || !(SnapshotID{1, 3}).Less(SnapshotID{2, 3}) {
		t.Error("Less does not order by epoch, then offset")
	}
}

func TestPlanBackup(t *testing.T) {
	seg := func(base, size int64) FileInfo { return FileInfo{SegmentName(base), size} }
	snap := func(off int64, ep int32, size int64) FileInfo { return FileInfo{SnapshotID{off, ep}.FileName(), size} }
	other := []FileInfo{{"00000000000000000000.index", 10 << 20}, {"00000000000000000000.timeindex", 10 << 20}, {"leader-epoch-checkpoint", 8},
		{"partition.metadata", 43}, {"quorum-state", 104}, {"00000000000000030000-0000000002.checkpoint.part", 5}, {"00000000000000000000.snapshot", 10}}
	for _, c := range []struct {
		name  string
		files []FileInfo
		want  []string // name:limit
		snap  *SnapshotID
		err   string
	}{
		{name: "the kraft1 layout: one segment from 0, snapshots in it", files: append([]FileInfo{snap(0, 0, 241), seg(0, 2097692), snap(7221, 1, 9601), snap(22217, 1, 43336), snap(14614, 1, 20076)}, other...),
			want: []string{"00000000000000022217-0000000001.checkpoint:43336:snapshot", "00000000000000000000.log:2097692:segment"}, snap: &SnapshotID{22217, 1}},
		{name: "segments before the snapshot's are left out", files: []FileInfo{seg(0, 100), seg(500, 100), seg(1000, 100), seg(1500, 7), snap(1200, 3, 9)},
			want: []string{"00000000000000001200-0000000003.checkpoint:9:snapshot", "00000000000000001000.log:100:segment", "00000000000000001500.log:7:segment"}, snap: &SnapshotID{1200, 3}},
		{name: "a snapshot at a segment's base offset", files: []FileInfo{seg(0, 100), seg(1000, 5), snap(1000, 2, 9)},
			want: []string{"00000000000000001000-0000000002.checkpoint:9:snapshot", "00000000000000001000.log:5:segment"}, snap: &SnapshotID{1000, 2}},
		{name: "the newest by epoch, not by offset", files: []FileInfo{seg(0, 100), snap(900, 1, 9), snap(800, 2, 8)},
			want: []string{"00000000000000000800-0000000002.checkpoint:8:snapshot", "00000000000000000000.log:100:segment"}, snap: &SnapshotID{800, 2}},
		{name: "no snapshot: the log from 0", files: []FileInfo{seg(0, 100), seg(10, 1)},
			want: []string{"00000000000000000000.log:100:segment", "00000000000000000010.log:1:segment"}},
		{name: "a snapshot and no segment", files: []FileInfo{snap(50, 1, 9)}, want: []string{"00000000000000000050-0000000001.checkpoint:9:snapshot"}, snap: &SnapshotID{50, 1}},
		{name: "no snapshot, log truncated", files: []FileInfo{seg(500, 100)}, err: "no snapshot and its log starts at offset 500"},
		{name: "snapshot below the log start", files: []FileInfo{seg(500, 100), snap(400, 1, 9)}, err: "newest snapshot ends at 400 but the log starts at 500"},
		{name: "empty", files: other, err: "neither a snapshot nor a log segment"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := PlanBackup(c.files)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range p.Files {
				got = append(got, f.Name+":"+itoa(f.Limit)+":"+f.Kind)
			}
			if !reflect.DeepEqual(got, c.want) || !reflect.DeepEqual(p.Snapshot, c.snap) {
				t.Errorf("plan %v snapshot %v; want %v %v", got, p.Snapshot, c.want, c.snap)
			}
		})
	}
	safety := SafetyFiles(append([]FileInfo{seg(0, 100), snap(7, 1, 9)}, other...))
	var names []string
	for _, f := range safety {
		names = append(names, f.Name+":"+f.Kind)
		if !ValidRestoreName(f.Name, f.Kind) {
			t.Errorf("%s (%s) would not be restored", f.Name, f.Kind)
		}
	}
	want := []string{"00000000000000000000.log:segment", "00000000000000000007-0000000001.checkpoint:snapshot", "leader-epoch-checkpoint:state", "partition.metadata:state", "quorum-state:state"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("safety files %v, want %v", names, want)
	}
	for _, c := range []struct{ name, kind string }{{"../x.log", KindSegment}, {"meta.properties", KindState}, {"a/quorum-state", KindState}, {"00000000000000000000.log", KindSnapshot}} {
		if ValidRestoreName(c.name, c.kind) {
			t.Errorf("%s (%s) would be restored", c.name, c.kind)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCopyBatches(t *testing.T) {
	b1 := batch(0, 1, false, nil, [][]byte{topicRec("a", idA), partRec(idA, 0, 2, 1)})
	b2 := batch(2, 1, false, nil, [][]byte{topicRec("b", idB)})
	b3 := batch(3, 2, false, nil, [][]byte{partRec(idB, 0, 1, 2, 3)})
	seg := append(append(append([]byte(nil), b1...), b2...), b3...)
	for _, c := range []struct {
		name      string
		limit     int64
		wantBytes int
		next      int64
		epoch     int32
		cut       bool
		batches   int
	}{
		{"whole file", int64(len(seg)), len(seg), 4, 2, false, 3},
		{"limit beyond the end", int64(len(seg)) + 100, len(seg), 4, 2, false, 3},
		{"cut inside the last batch", int64(len(seg)) - 1, len(b1) + len(b2), 3, 1, true, 2},
		{"cut inside a header", int64(len(b1) + 10), len(b1), 2, 1, true, 1},
		{"at a batch boundary", int64(len(b1)), len(b1), 2, 1, false, 1},
		{"nothing", 0, 0, -1, 0, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			res, err := CopyBatches(&out, bytes.NewReader(seg), c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if out.Len() != c.wantBytes || !bytes.Equal(out.Bytes(), seg[:c.wantBytes]) || res.Bytes != int64(c.wantBytes) ||
				res.NextOffset != c.next || res.LastEpoch != c.epoch || res.Cut != c.cut || res.Batches != c.batches {
				t.Errorf("copied %d bytes, %+v; want %d bytes, next %d, epoch %d, cut %v, %d batches", out.Len(), res, c.wantBytes, c.next, c.epoch, c.cut, c.batches)
			}
		})
	}
	// Damage inside the limit fails the copy, naming the position.
	bad := append([]byte(nil), seg...)
	bad[len(b1)+30] ^= 0xff
	if _, err := CopyBatches(&bytes.Buffer{}, bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "position "+itoa(int64(len(b1)))) {
		t.Errorf("flipped byte: %v", err)
	}
	// Offsets that go back.
	back := append(append([]byte(nil), b2...), b1...)
	if _, err := CopyBatches(&bytes.Buffer{}, bytes.NewReader(back), int64(len(back))); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "below the previous batch") {
		t.Errorf("offsets back: %v", err)
	}
	// A huge length must not allocate it.
	huge := append([]byte(nil), b1...)
	huge[8], huge[9] = 0x7f, 0xff
	if _, err := CopyBatches(&bytes.Buffer{}, bytes.NewReader(huge), 1<<40); !errors.Is(err, ErrDamaged) {
		t.Errorf("huge length: %v", err)
	}
	// Zeros (a preallocated tail) are no batch.
	zeros := append(append([]byte(nil), b1...), make([]byte, 100)...)
	if _, err := CopyBatches(&bytes.Buffer{}, bytes.NewReader(zeros), int64(len(zeros))); !errors.Is(err, ErrDamaged) {
		t.Errorf("zero tail: %v", err)
	}
}

func TestDecodeMessages(t *testing.T) {
	for _, c := range []struct {
		name  string
		value []byte
		want  any
	}{
		{"TopicRecord", topicRec("orders", idA), &TopicRecord{Name: "orders", TopicID: idA}},
		{"PartitionRecord v0", partRec(idA, 3, 0, 2, 1), &PartitionRecord{PartitionID: 3, TopicID: idA, Replicas: []int32{2, 1}, ISR: []int32{2, 1}, Leader: 2}},
		{"PartitionRecord v1", partRec(idA, 0, 1, 1), &PartitionRecord{TopicID: idA, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, Directories: []string{dir}}},
		{"PartitionRecord v2 with tagged ELR", partRec(idA, 0, 2, 1, 2, 3), &PartitionRecord{TopicID: idA, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1, Directories: []string{dir}}},
		{"PartitionChangeRecord", frame(TypePartitionChange, 0).i32(1).uuid(idB).uv(3).tag(0, (&w{}).i32s(3).b).tag(1, (&w{}).i32(3).b).tag(5, []byte{0}).b,
			&PartitionChangeRecord{PartitionID: 1, TopicID: idB, ISR: []int32{3}, Leader: 3}},
		{"RemoveTopicRecord", frame(TypeRemoveTopic, 0).uuid(idB).noTags().b, &RemoveTopicRecord{TopicID: idB}},
		{"ConfigRecord", frame(TypeConfig, 0).i8(2).str("orders").str("retention.ms").str("1000").noTags().b,
			&ConfigRecord{ResourceType: 2, ResourceName: "orders", Name: "retention.ms", Value: "1000"}},
		{"ConfigRecord null", frame(TypeConfig, 0).i8(2).str("orders").str("retention.ms").null().noTags().b,
			&ConfigRecord{ResourceType: 2, ResourceName: "orders", Name: "retention.ms", Null: true}},
		{"AccessControlEntryRecord", frame(TypeAccessControlEntry, 0).uuid(acl).i8(2).str("orders").i8(3).str("User:alice").str("*").i8(3).i8(3).noTags().b,
			&AccessControlEntryRecord{ID: acl, ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: "User:alice", Host: "*", Operation: 3, Permission: 3}},
		{"UserScramCredentialRecord", frame(TypeUserScramCredential, 0).str("alice").i8(2).bytes([]byte("salt")).bytes(make([]byte, 64)).bytes(make([]byte, 64)).i32(8192).noTags().b,
			&UserScramCredentialRecord{Name: "alice", Mechanism: 2, Iterations: 8192}},
		{"RemoveUserScramCredentialRecord", frame(TypeRemoveUserScramCredential, 0).str("alice").i8(1).noTags().b, &RemoveUserScramCredentialRecord{Name: "alice", Mechanism: 1}},
		{"FeatureLevelRecord", frame(TypeFeatureLevel, 0).str("metadata.version").i16(27).noTags().b, &FeatureLevelRecord{Name: "metadata.version", Level: 27}},
		{"ClientQuotaRecord", frame(TypeClientQuota, 0).uv(2).str("user").str("alice").noTags().str("producer_byte_rate").f64(1024).i8(0).noTags().b,
			&ClientQuotaRecord{Entity: map[string]string{"user": "alice"}, Key: "producer_byte_rate", Value: 1024}},
		{"a type not decoded", frame(15, 0).i32(1).i64(2).i64(3).noTags().b, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := DecodeMessage(c.value)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Body, c.want) {
				t.Errorf("decoded %#v, want %#v", m.Body, c.want)
			}
			// Cut short anywhere, a decoded type is an error, never a panic.
			if c.want != nil {
				for i := 4; i < len(c.value); i++ {
					if _, err := DecodeMessage(c.value[:i]); err == nil {
						t.Errorf("cut at %d of %d decoded", i, len(c.value))
					}
				}
				if _, err := DecodeMessage(append(append([]byte(nil), c.value...), 0)); err == nil {
					t.Error("a trailing byte decoded")
				}
			}
		})
	}
	if _, err := DecodeMessage([]byte{0, 2, 0}); err == nil || !strings.Contains(err.Error(), "frame version 0") {
		t.Errorf("frame 0: %v", err)
	}
}

func TestImageFromSnapshotAndLog(t *testing.T) {
	snap := snapshotFile(t,
		[][]byte{frame(TypeFeatureLevel, 0).str("metadata.version").i16(27).noTags().b, frame(TypeFeatureLevel, 0).str("kraft.version").i16(1).noTags().b},
		[][]byte{topicRec("orders", idA), partRec(idA, 0, 2, 1), partRec(idA, 1, 2, 1),
			topicRec("gone", idB), partRec(idB, 0, 2, 1),
			frame(TypeConfig, 0).i8(2).str("orders").str("retention.ms").str("1000").noTags().b,
			frame(TypeAccessControlEntry, 0).uuid(acl).i8(2).str("orders").i8(3).str("User:alice").str("*").i8(3).i8(3).noTags().b,
			frame(TypeUserScramCredential, 0).str("alice").i8(2).bytes([]byte("salt")).bytes([]byte("stored")).bytes([]byte("server")).i32(4096).noTags().b,
			frame(TypeUserScramCredential, 0).str("bob").i8(1).bytes([]byte("s")).bytes([]byte("k")).bytes([]byte("k")).i32(4096).noTags().b,
			frame(15, 0).i32(1).i64(2).i64(3).noTags().b,
		})
	im := NewImage()
	if err := im.ReadSnapshot(bytes.NewReader(snap), SnapshotID{100, 4}); err != nil {
		t.Fatal(err)
	}
	// The log after the snapshot: a segment from 90 (records 90..99 are
	// in the snapshot already and must not apply twice).
	seg := append(batch(90, 4, false, nil, [][]byte{frame(TypeRemoveTopic, 0).uuid(idA).noTags().b}),
		batch(100, 5, false, nil, [][]byte{frame(TypeRemoveTopic, 0).uuid(idB).noTags().b,
			frame(TypeRemoveUserScramCredential, 0).str("bob").i8(1).noTags().b,
			frame(TypeConfig, 0).i8(2).str("orders").str("retention.ms").null().noTags().b,
			frame(TypePartitionChange, 0).i32(1).uuid(idA).uv(1).tag(1, (&w{}).i32(-1).b).b,
		})...)
	if err := im.ReadSegment(bytes.NewReader(seg), 100); err != nil {
		t.Fatal(err)
	}
	s := im.Summary()
	if len(s.Topics) != 1 || s.Topics[0].Name != "orders" || s.Topics[0].ID != idA || len(s.Topics[0].Partitions) != 2 || s.Partitions != 2 {
		t.Fatalf("topics %+v", s.Topics)
	}
	if p := s.Topics[0].Partitions[1]; p.Leader != -1 || !reflect.DeepEqual(p.Replicas, []int32{1}) {
		t.Errorf("partition 1 after the change: %+v", p)
	}
	if s.Topics[0].Configs != nil {
		t.Errorf("the deleted config is still there: %v", s.Topics[0].Configs)
	}
	if !reflect.DeepEqual(s.Scram, []ScramUser{{Name: "alice", Mechanism: "SCRAM-SHA-512", Iterations: 4096}}) {
		t.Errorf("scram %+v", s.Scram)
	}
	if len(s.ACLs) != 1 || s.ACLs[0] != (ACLSummary{ID: acl, Principal: "User:alice", Host: "*", Permission: "ALLOW", Operation: "READ", ResourceType: "TOPIC", ResourceName: "orders", PatternType: "LITERAL"}) {
		t.Errorf("acls %+v", s.ACLs)
	}
	if !reflect.DeepEqual(s.Features, map[string]int16{"metadata.version": 27, "kraft.version": 1}) || s.KRaftVersion != 1 {
		t.Errorf("features %v, kraft.version %d", s.Features, s.KRaftVersion)
	}
	if len(s.Voters) != 1 || s.Voters[0].DirectoryID != dir || s.Voters[0].Endpoints[0].Port != 29093 {
		t.Errorf("voters %+v", s.Voters)
	}
	if s.NextOffset != 104 || s.LastEpoch != 5 || s.Other["ProducerIdsRecord"] != 1 {
		t.Errorf("next %d epoch %d other %v", s.NextOffset, s.LastEpoch, s.Other)
	}
	// The summary holds no SCRAM secret.
	js, _ := json.Marshal(s)
	for _, secret := range []string{"salt", "stored", "server", base64.StdEncoding.EncodeToString([]byte("salt"))} {
		if strings.Contains(string(js), secret) {
			t.Errorf("summary holds %q", secret)
		}
	}
}
