package kraftlog

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"testing"

	"github.com/kbr-project/kbr/internal/kbatch"
)

// A writer of the message format, for tests: the records Kafka writes, built
// field by field from the JSON definitions.
type w struct{ b []byte }

func (x *w) i8(v int8) *w     { x.b = append(x.b, byte(v)); return x }
func (x *w) i16(v int16) *w   { x.b = binary.BigEndian.AppendUint16(x.b, uint16(v)); return x }
func (x *w) i32(v int32) *w   { x.b = binary.BigEndian.AppendUint32(x.b, uint32(v)); return x }
func (x *w) i64(v int64) *w   { x.b = binary.BigEndian.AppendUint64(x.b, uint64(v)); return x }
func (x *w) f64(v float64) *w { return x.i64(int64(math.Float64bits(v))) }
func (x *w) uv(v uint64) *w   { x.b = binary.AppendUvarint(x.b, v); return x }
func (x *w) str(s string) *w {
	x.uv(uint64(len(s)) + 1)
	x.b = append(x.b, s...)
	return x
}
func (x *w) null() *w { return x.uv(0) }
func (x *w) bytes(b []byte) *w {
	x.uv(uint64(len(b)) + 1)
	x.b = append(x.b, b...)
	return x
}
func (x *w) uuid(s string) *w {
	id, err := ParseUUID(s)
	if err != nil {
		panic(err)
	}
	x.b = append(x.b, id[:]...)
	return x
}
func (x *w) i32s(vs ...int32) *w {
	x.uv(uint64(len(vs)) + 1)
	for _, v := range vs {
		x.i32(v)
	}
	return x
}
func (x *w) uuids(vs ...string) *w {
	x.uv(uint64(len(vs)) + 1)
	for _, v := range vs {
		x.uuid(v)
	}
	return x
}
func (x *w) noTags() *w { return x.uv(0) }

// tag appends one tagged field (count and fields are the caller's).
func (x *w) tag(t uint64, data []byte) *w {
	x.uv(t).uv(uint64(len(data)))
	x.b = append(x.b, data...)
	return x
}

func frame(typ, ver int16) *w { return (&w{}).uv(1).uv(uint64(typ)).uv(uint64(ver)) }

const (
	idA = "AiVJ7LlZRcqTSjJbqOO4TA"
	idB = "8nD6imygQZyI7rYulLvxGA"
	dir = "ipO9RT4yRjC_jagqJYv9ww"
	acl = "sy04iHuyTQ2n-vdK5cc5Dg"
)

func topicRec(name, id string) []byte { return frame(TypeTopic, 0).str(name).uuid(id).noTags().b }

func partRec(id string, p int32, ver int16, replicas ...int32) []byte {
	x := frame(TypePartition, ver).i32(p).uuid(id).i32s(replicas...).i32s(replicas...).i32s().i32s().i32(replicas[0]).i32(0).i32(0)
	if ver >= 1 {
		x.uuids(dir)
	}
	if ver >= 2 {
		// leader recovery state (tag 0) and an ELR (tag 1), as 4.1 writes
		return x.uv(2).tag(0, []byte{0}).tag(1, (&w{}).i32s(replicas...).b).b
	}
	return x.noTags().b
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batch builds a v2 batch of records (values; keys only for control
// records) at base, leader epoch epoch.
func batch(base int64, epoch int32, control bool, keys, values [][]byte) []byte {
	recs := make([]kbatch.Record, len(values))
	for i, v := range values {
		recs[i] = kbatch.Record{Offset: base + int64(i), Timestamp: 1700000000000 + int64(i), Value: v}
		if keys != nil {
			recs[i].Key = keys[i]
		}
	}
	b := kbatch.Build(recs, nil)
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
	if control {
		binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x20)
	}
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func controlKey(typ int16) []byte { return (&w{}).i16(0).i16(typ).b }

func votersValue(voters ...Voter) []byte {
	x := (&w{}).i16(0).uv(uint64(len(voters)) + 1)
	for _, v := range voters {
		x.i32(v.ID).uuid(v.DirectoryID).uv(uint64(len(v.Endpoints)) + 1)
		for _, e := range v.Endpoints {
			x.str(e.Name).str(e.Host).i16(int16(e.Port)).noTags()
		}
		x.i16(0).i16(1).noTags().noTags()
	}
	return x.noTags().b
}

// snapshotFile is a snapshot as Kafka writes one: a control batch with the
// header, kraft.version and voters, data batches, and a footer batch.
func snapshotFile(t *testing.T, data ...[][]byte) []byte {
	t.Helper()
	v := Voter{ID: 1, DirectoryID: dir, Endpoints: []Endpoint{{Name: "CONTROLLER", Host: "127.0.0.1", Port: 29093}}}
	out := batch(0, 1, true, [][]byte{controlKey(ControlSnapshotHeader), controlKey(ControlKRaftVersion), controlKey(ControlKRaftVoters)},
		[][]byte{(&w{}).i16(0).i64(1796299617221).noTags().b, (&w{}).i16(0).i16(1).noTags().b, votersValue(v)})
	off := int64(3)
	for _, d := range data {
		out = append(out, batch(off, 1, false, nil, d)...)
		off += int64(len(d))
	}
	out = append(out, batch(off, 1, true, [][]byte{controlKey(ControlSnapshotFooter)}, [][]byte{(&w{}).i16(0).noTags().b})...)
	return out
}
