package kraftlog

import (
	"encoding/binary"
	"fmt"
)

// Metadata record types (the apiKey of metadata/src/main/resources/common/
// metadata/*.json) that the decoder reads; others are counted by name.
const (
	TypeRegisterBroker            = 0
	TypeTopic                     = 2
	TypePartition                 = 3
	TypeConfig                    = 4
	TypePartitionChange           = 5
	TypeRemoveTopic               = 9
	TypeUserScramCredential       = 11
	TypeFeatureLevel              = 12
	TypeClientQuota               = 14
	TypeAccessControlEntry        = 18
	TypeRemoveAccessControl       = 19
	TypeRemoveUserScramCredential = 22
)

// typeNames names every metadata record type of Kafka 4.1.
var typeNames = map[int16]string{
	0: "RegisterBrokerRecord", 1: "UnregisterBrokerRecord", 2: "TopicRecord", 3: "PartitionRecord",
	4: "ConfigRecord", 5: "PartitionChangeRecord", 7: "FenceBrokerRecord", 8: "UnfenceBrokerRecord",
	9: "RemoveTopicRecord", 10: "DelegationTokenRecord", 11: "UserScramCredentialRecord", 12: "FeatureLevelRecord",
	14: "ClientQuotaRecord", 15: "ProducerIdsRecord", 17: "BrokerRegistrationChangeRecord",
	18: "AccessControlEntryRecord", 19: "RemoveAccessControlEntryRecord", 20: "NoOpRecord", 21: "ZkMigrationRecord",
	22: "RemoveUserScramCredentialRecord", 23: "BeginTransactionRecord", 24: "EndTransactionRecord",
	25: "AbortTransactionRecord", 26: "RemoveDelegationTokenRecord", 27: "RegisterControllerRecord", 28: "ClearElrRecord",
}

// TypeName names a metadata record type ("Type99" for one it does not know).
func TypeName(t int16) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type%d", t)
}

// Control record types (ControlRecordType): the key of a control batch's
// record is a version int16 and this type int16.
const (
	ControlLeaderChange   = 2
	ControlSnapshotHeader = 3
	ControlSnapshotFooter = 4
	ControlKRaftVersion   = 5
	ControlKRaftVoters    = 6
)

// TopicRecord creates a topic.
type TopicRecord struct {
	Name    string `json:"name"`
	TopicID string `json:"topic_id"`
}

// PartitionRecord creates a partition (or replaces it whole).
type PartitionRecord struct {
	PartitionID int32    `json:"partition"`
	TopicID     string   `json:"topic_id"`
	Replicas    []int32  `json:"replicas"`
	ISR         []int32  `json:"isr"`
	Leader      int32    `json:"leader"`
	LeaderEpoch int32    `json:"leader_epoch"`
	Directories []string `json:"directories,omitempty"`
}

// PartitionChangeRecord changes a partition; nil fields are unchanged.
type PartitionChangeRecord struct {
	PartitionID int32
	TopicID     string
	ISR         []int32
	Replicas    []int32
	// Leader is -2 when unchanged, -1 for none.
	Leader      int32
	Directories []string
}

// RemoveTopicRecord deletes a topic and its partitions.
type RemoveTopicRecord struct{ TopicID string }

// ConfigRecord sets (or, with a null value, deletes) one config of a resource.
type ConfigRecord struct {
	ResourceType int8
	ResourceName string
	Name         string
	Value        string
	Null         bool
}

// AccessControlEntryRecord adds an ACL.
type AccessControlEntryRecord struct {
	ID           string `json:"id"`
	ResourceType int8   `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  int8   `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    int8   `json:"operation"`
	Permission   int8   `json:"permission"`
}

// RemoveAccessControlEntryRecord deletes an ACL.
type RemoveAccessControlEntryRecord struct{ ID string }

// UserScramCredentialRecord sets a user's salted credential for one
// mechanism. The decoder keeps the name, mechanism and iterations: the salt
// and keys are never read into it.
type UserScramCredentialRecord struct {
	Name       string
	Mechanism  int8
	Iterations int32
}

// RemoveUserScramCredentialRecord deletes a user's credential for one mechanism.
type RemoveUserScramCredentialRecord struct {
	Name      string
	Mechanism int8
}

// FeatureLevelRecord sets a feature's finalized level (0 removes it).
type FeatureLevelRecord struct {
	Name  string
	Level int16
}

// ClientQuotaRecord sets or removes one quota of an entity.
type ClientQuotaRecord struct {
	Entity map[string]string // entity type -> name ("" for the default)
	Key    string
	Value  float64
	Remove bool
}

// Message is a decoded metadata record value: its type, version and, for
// the types the decoder reads, the record itself (one of the *Record types
// above; nil for the others).
type Message struct {
	Type    int16
	Version int16
	Body    any
}

// DecodeMessage reads a metadata record's value: the ApiMessageAndVersion
// frame (frame version 1, api key and version as unsigned varints) and the
// message. Fields the decoder does not keep are read past; what a version
// adds is read only from that version on.
func DecodeMessage(value []byte) (Message, error) {
	r := &reader{b: value}
	frame := r.uvarint()
	typ := int16(r.uvarint())
	ver := int16(r.uvarint())
	if r.err != nil {
		return Message{}, fmt.Errorf("%w: record frame: %v", ErrDamaged, r.err)
	}
	if frame != 1 {
		return Message{}, fmt.Errorf("%w: record frame version %d (Kafka writes 1)", ErrDamaged, frame)
	}
	m := Message{Type: typ, Version: ver}
	switch typ {
	case TypeTopic:
		t := &TopicRecord{Name: r.compactString(), TopicID: r.uuid()}
		r.tagged(nil)
		m.Body = t
	case TypePartition:
		p := &PartitionRecord{PartitionID: r.int32(), TopicID: r.uuid()}
		p.Replicas = r.int32s()
		p.ISR = r.int32s()
		r.int32s() // removing replicas
		r.int32s() // adding replicas
		p.Leader = r.int32()
		p.LeaderEpoch = r.int32()
		r.int32() // partition epoch
		if ver >= 1 {
			p.Directories = r.uuids()
		}
		r.tagged(nil) // leader recovery state, ELR
		m.Body = p
	case TypePartitionChange:
		p := &PartitionChangeRecord{PartitionID: r.int32(), TopicID: r.uuid(), Leader: -2}
		r.tagged(func(tag uint64, f *reader) bool {
			switch tag {
			case 0:
				p.ISR = f.int32s()
			case 1:
				p.Leader = f.int32()
			case 2:
				p.Replicas = f.int32s()
			case 8:
				p.Directories = f.uuids()
			default:
				return false
			}
			return true
		})
		m.Body = p
	case TypeRemoveTopic:
		m.Body = &RemoveTopicRecord{TopicID: r.uuid()}
		r.tagged(nil)
	case TypeConfig:
		c := &ConfigRecord{ResourceType: r.int8(), ResourceName: r.compactString(), Name: r.compactString()}
		v, ok := r.compactNullableString()
		c.Value, c.Null = v, !ok
		r.tagged(nil)
		m.Body = c
	case TypeAccessControlEntry:
		a := &AccessControlEntryRecord{ID: r.uuid(), ResourceType: r.int8(), ResourceName: r.compactString(), PatternType: r.int8(),
			Principal: r.compactString(), Host: r.compactString(), Operation: r.int8(), Permission: r.int8()}
		r.tagged(nil)
		m.Body = a
	case TypeRemoveAccessControl:
		m.Body = &RemoveAccessControlEntryRecord{ID: r.uuid()}
		r.tagged(nil)
	case TypeUserScramCredential:
		u := &UserScramCredentialRecord{Name: r.compactString(), Mechanism: r.int8()}
		r.compactBytes() // salt
		r.compactBytes() // stored key
		r.compactBytes() // server key
		u.Iterations = r.int32()
		r.tagged(nil)
		m.Body = u
	case TypeRemoveUserScramCredential:
		m.Body = &RemoveUserScramCredentialRecord{Name: r.compactString(), Mechanism: r.int8()}
		r.tagged(nil)
	case TypeFeatureLevel:
		m.Body = &FeatureLevelRecord{Name: r.compactString(), Level: r.int16()}
		r.tagged(nil)
	case TypeClientQuota:
		q := &ClientQuotaRecord{Entity: map[string]string{}}
		n := r.arrayLen()
		for i := 0; i < n && r.err == nil; i++ {
			et := r.compactString()
			en := r.compactString()
			r.tagged(nil)
			q.Entity[et] = en
		}
		q.Key = r.compactString()
		q.Value = r.float64()
		q.Remove = r.bool()
		r.tagged(nil)
		m.Body = q
	default:
		return m, nil
	}
	if r.err != nil {
		return m, fmt.Errorf("%w: %s version %d: %v", ErrDamaged, TypeName(typ), ver, r.err)
	}
	if r.n != len(r.b) {
		return m, fmt.Errorf("%w: %s version %d: %d bytes left after the message", ErrDamaged, TypeName(typ), ver, len(r.b)-r.n)
	}
	return m, nil
}

// Voter is one voter of the KRaft quorum, from a VotersRecord.
type Voter struct {
	ID          int32      `json:"id"`
	DirectoryID string     `json:"directory_id"`
	Endpoints   []Endpoint `json:"endpoints"`
}

// Endpoint is a voter's listener.
type Endpoint struct {
	Name string `json:"name"`
	Host string `json:"host"`
	Port uint16 `json:"port"`
}

// ControlRecord is a decoded control record of a metadata log or snapshot.
type ControlRecord struct {
	Type int16
	// Set by type: SnapshotHeader, KRaftVersion, KRaftVoters.
	LastContainedLogTimestamp int64
	KRaftVersion              int16
	Voters                    []Voter
}

// DecodeControl reads a control record: its key (version, type) and, for
// the snapshot header, the kraft.version and the voters, its value (the
// message at version 0, not framed).
func DecodeControl(key, value []byte) (ControlRecord, error) {
	if len(key) < 4 {
		return ControlRecord{}, fmt.Errorf("%w: control record key of %d bytes", ErrDamaged, len(key))
	}
	c := ControlRecord{Type: int16(binary.BigEndian.Uint16(key[2:]))}
	r := &reader{b: value}
	switch c.Type {
	case ControlSnapshotHeader:
		r.int16()
		c.LastContainedLogTimestamp = r.int64()
		r.tagged(nil)
	case ControlKRaftVersion:
		r.int16()
		c.KRaftVersion = r.int16()
		r.tagged(nil)
	case ControlKRaftVoters:
		r.int16()
		n := r.arrayLen()
		for i := 0; i < n && r.err == nil; i++ {
			v := Voter{ID: r.int32(), DirectoryID: r.uuid()}
			ne := r.arrayLen()
			for k := 0; k < ne && r.err == nil; k++ {
				e := Endpoint{Name: r.compactString(), Host: r.compactString(), Port: r.uint16()}
				r.tagged(nil)
				v.Endpoints = append(v.Endpoints, e)
			}
			r.int16() // kraft.version supported: min
			r.int16() // max
			r.tagged(nil)
			r.tagged(nil)
			c.Voters = append(c.Voters, v)
		}
		r.tagged(nil)
	default:
		return c, nil
	}
	if r.err != nil {
		return c, fmt.Errorf("%w: control record type %d: %v", ErrDamaged, c.Type, r.err)
	}
	return c, nil
}
