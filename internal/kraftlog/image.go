package kraftlog

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Image is the metadata a snapshot (and the log after it) holds, as far as
// kbr lists it: topics with their partitions, ACLs, SCRAM users (names,
// mechanisms and iterations: never the salted keys), client quotas,
// feature levels and the quorum's voters. Apply records to it in log order.
type Image struct {
	topics   map[string]*imageTopic // by topic id
	acls     map[string]AccessControlEntryRecord
	scram    map[scramKey]int32 // -> iterations
	quotas   map[string]map[string]float64
	configs  map[string]map[string]string // "type/name" -> key -> value
	features map[string]int16

	// Voters and KRaftVersion are the quorum's, from the last VotersRecord
	// and KRaftVersionRecord seen.
	Voters       []Voter
	KRaftVersion int16
	// NextOffset is the offset after the last record applied; LastEpoch
	// that record's leader epoch.
	NextOffset int64
	LastEpoch  int32
	// LastTimestamp is the last data batch's time (ms since the epoch), or
	// the snapshot header's last contained log timestamp.
	LastTimestamp int64
	Records       int
	inSnapshot    bool
	// Other counts the records of types the image does not keep, by name.
	Other map[string]int
}

type imageTopic struct {
	name       string
	id         string
	partitions map[int32]*PartitionRecord
}

type scramKey struct {
	name      string
	mechanism int8
}

// NewImage is an empty image.
func NewImage() *Image {
	return &Image{topics: map[string]*imageTopic{}, acls: map[string]AccessControlEntryRecord{}, scram: map[scramKey]int32{},
		quotas: map[string]map[string]float64{}, configs: map[string]map[string]string{}, features: map[string]int16{}, Other: map[string]int{}}
}

// ReadSnapshot applies a snapshot file: the image then ends at the
// snapshot's end offset and epoch (its file name's), and its time is the
// header's last contained log timestamp.
func (im *Image) ReadSnapshot(r io.Reader, id SnapshotID) error {
	im.inSnapshot = true
	defer func() { im.inSnapshot = false }()
	if err := im.ReadSegment(r, 0); err != nil {
		return err
	}
	im.NextOffset, im.LastEpoch = id.EndOffset, id.Epoch
	return nil
}

// ReadSegment applies every batch of a log segment from offset from on
// (records below it are already in the image: the log after a snapshot
// starts inside a segment that holds older records too).
func (im *Image) ReadSegment(r io.Reader, from int64) error {
	s := NewScanner(r)
	for {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if b.LastOffset() < from {
			continue
		}
		if err := im.ApplyBatch(b, from); err != nil {
			return err
		}
	}
}

// ApplyBatch applies the records of a batch at or above from.
func (im *Image) ApplyBatch(b Batch, from int64) error {
	recs, err := b.Records()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if rec.Offset < from {
			continue
		}
		if b.IsControl() {
			c, err := DecodeControl(rec.Key, rec.Value)
			if err != nil {
				return fmt.Errorf("offset %d: %w", rec.Offset, err)
			}
			switch c.Type {
			case ControlKRaftVoters:
				im.Voters = c.Voters
			case ControlKRaftVersion:
				im.KRaftVersion = c.KRaftVersion
			case ControlSnapshotHeader:
				im.LastTimestamp = c.LastContainedLogTimestamp
			}
		} else {
			m, err := DecodeMessage(rec.Value)
			if err != nil {
				return fmt.Errorf("offset %d: %w", rec.Offset, err)
			}
			im.apply(m)
			im.Records++
		}
	}
	// A snapshot numbers its records from 0 and stamps them when it was
	// written: only a log's batches say where the image ends and when
	// (ReadSnapshot takes a snapshot's from its name and header).
	if !im.inSnapshot {
		if !b.IsControl() && b.NumRecords > 0 {
			im.LastTimestamp = b.MaxTimestamp
		}
		im.NextOffset = b.NextOffset()
		im.LastEpoch = b.LeaderEpoch
	}
	return nil
}

func (im *Image) apply(m Message) {
	switch r := m.Body.(type) {
	case *TopicRecord:
		im.topics[r.TopicID] = &imageTopic{name: r.Name, id: r.TopicID, partitions: map[int32]*PartitionRecord{}}
	case *PartitionRecord:
		t := im.topics[r.TopicID]
		if t == nil {
			t = &imageTopic{id: r.TopicID, partitions: map[int32]*PartitionRecord{}}
			im.topics[r.TopicID] = t
		}
		p := *r
		t.partitions[r.PartitionID] = &p
	case *PartitionChangeRecord:
		if t := im.topics[r.TopicID]; t != nil {
			if p := t.partitions[r.PartitionID]; p != nil {
				if r.ISR != nil {
					p.ISR = r.ISR
				}
				if r.Replicas != nil {
					p.Replicas = r.Replicas
				}
				if r.Leader != -2 {
					p.Leader = r.Leader
				}
				if r.Directories != nil {
					p.Directories = r.Directories
				}
			}
		}
	case *RemoveTopicRecord:
		delete(im.topics, r.TopicID)
	case *ConfigRecord:
		k := fmt.Sprintf("%d/%s", r.ResourceType, r.ResourceName)
		if r.Null {
			delete(im.configs[k], r.Name)
			break
		}
		if im.configs[k] == nil {
			im.configs[k] = map[string]string{}
		}
		im.configs[k][r.Name] = r.Value
	case *AccessControlEntryRecord:
		im.acls[r.ID] = *r
	case *RemoveAccessControlEntryRecord:
		delete(im.acls, r.ID)
	case *UserScramCredentialRecord:
		im.scram[scramKey{r.Name, r.Mechanism}] = r.Iterations
	case *RemoveUserScramCredentialRecord:
		delete(im.scram, scramKey{r.Name, r.Mechanism})
	case *FeatureLevelRecord:
		if r.Level == 0 {
			delete(im.features, r.Name)
		} else {
			im.features[r.Name] = r.Level
		}
	case *ClientQuotaRecord:
		ents := make([]string, 0, len(r.Entity))
		for t, n := range r.Entity {
			if n == "" {
				n = "<default>"
			}
			ents = append(ents, t+"="+n)
		}
		sort.Strings(ents)
		k := strings.Join(ents, ",")
		if r.Remove {
			delete(im.quotas[k], r.Key)
			if len(im.quotas[k]) == 0 {
				delete(im.quotas, k)
			}
			break
		}
		if im.quotas[k] == nil {
			im.quotas[k] = map[string]float64{}
		}
		im.quotas[k][r.Key] = r.Value
	default:
		im.Other[TypeName(m.Type)]++
	}
}

// Summary is an image as `kbr backups show` lists it.
type Summary struct {
	Topics   []TopicSummary   `json:"topics"`
	ACLs     []ACLSummary     `json:"acls"`
	Scram    []ScramUser      `json:"scram_users"`
	Quotas   []QuotaSummary   `json:"quotas,omitempty"`
	Features map[string]int16 `json:"features"`
	// Configs counts the configs set, by resource type (topic, broker, ...).
	Configs      map[string]int `json:"configs,omitempty"`
	Voters       []Voter        `json:"voters,omitempty"`
	KRaftVersion int16          `json:"kraft_version"`
	// Partitions counts every partition of every topic.
	Partitions    int            `json:"partitions"`
	Records       int            `json:"records"`
	NextOffset    int64          `json:"next_offset"`
	LastEpoch     int32          `json:"last_epoch"`
	LastTimestamp *time.Time     `json:"last_timestamp,omitempty"`
	Other         map[string]int `json:"other_records,omitempty"`
}

// TopicSummary is one topic of a summary.
type TopicSummary struct {
	Name       string             `json:"name"`
	ID         string             `json:"id"`
	Partitions []PartitionSummary `json:"partitions"`
	Configs    map[string]string  `json:"configs,omitempty"`
}

// PartitionSummary is one partition of a topic.
type PartitionSummary struct {
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
	Leader    int32   `json:"leader"`
}

// ACLSummary is one ACL, named as kafka-acls names them.
type ACLSummary struct {
	ID           string `json:"id"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Permission   string `json:"permission"`
	Operation    string `json:"operation"`
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
}

// ScramUser is a SCRAM credential without its secrets.
type ScramUser struct {
	Name       string `json:"name"`
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

// QuotaSummary is the quotas of one client entity.
type QuotaSummary struct {
	Entity string             `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// Summary lists the image, sorted.
func (im *Image) Summary() Summary {
	s := Summary{Features: map[string]int16{}, Configs: map[string]int{}, Voters: im.Voters, KRaftVersion: im.KRaftVersion,
		Records: im.Records, NextOffset: im.NextOffset, LastEpoch: im.LastEpoch, Other: im.Other}
	if im.LastTimestamp > 0 {
		t := time.UnixMilli(im.LastTimestamp).UTC()
		s.LastTimestamp = &t
	}
	for name, lvl := range im.features {
		s.Features[name] = lvl
	}
	byName := map[string]*TopicSummary{}
	for _, t := range im.topics {
		ts := TopicSummary{Name: t.name, ID: t.id}
		for _, p := range t.partitions {
			ts.Partitions = append(ts.Partitions, PartitionSummary{Partition: p.PartitionID, Replicas: p.Replicas, ISR: p.ISR, Leader: p.Leader})
		}
		sort.Slice(ts.Partitions, func(i, j int) bool { return ts.Partitions[i].Partition < ts.Partitions[j].Partition })
		s.Partitions += len(ts.Partitions)
		s.Topics = append(s.Topics, ts)
	}
	sort.Slice(s.Topics, func(i, j int) bool { return s.Topics[i].Name < s.Topics[j].Name })
	for i := range s.Topics {
		byName[s.Topics[i].Name] = &s.Topics[i]
	}
	for k, cs := range im.configs {
		typ, name, _ := strings.Cut(k, "/")
		rt := resourceTypeName(typ)
		s.Configs[rt] += len(cs)
		if t := byName[name]; t != nil && rt == "topic" && len(cs) > 0 {
			t.Configs = map[string]string{}
			for ck, cv := range cs {
				t.Configs[ck] = cv
			}
		}
	}
	for id, a := range im.acls {
		s.ACLs = append(s.ACLs, ACLSummary{ID: id, Principal: a.Principal, Host: a.Host, Permission: permissionName(a.Permission),
			Operation: operationName(a.Operation), ResourceType: aclResourceName(a.ResourceType), ResourceName: a.ResourceName, PatternType: patternName(a.PatternType)})
	}
	sort.Slice(s.ACLs, func(i, j int) bool {
		a, b := s.ACLs[i], s.ACLs[j]
		return fmt.Sprint(a.ResourceType, a.ResourceName, a.Principal, a.Operation, a.Permission, a.ID) <
			fmt.Sprint(b.ResourceType, b.ResourceName, b.Principal, b.Operation, b.Permission, b.ID)
	})
	for k, it := range im.scram {
		s.Scram = append(s.Scram, ScramUser{Name: k.name, Mechanism: MechanismName(k.mechanism), Iterations: it})
	}
	sort.Slice(s.Scram, func(i, j int) bool {
		if s.Scram[i].Name != s.Scram[j].Name {
			return s.Scram[i].Name < s.Scram[j].Name
		}
		return s.Scram[i].Mechanism < s.Scram[j].Mechanism
	})
	for e, vs := range im.quotas {
		s.Quotas = append(s.Quotas, QuotaSummary{Entity: e, Values: vs})
	}
	sort.Slice(s.Quotas, func(i, j int) bool { return s.Quotas[i].Entity < s.Quotas[j].Entity })
	if len(s.Configs) == 0 {
		s.Configs = nil
	}
	return s
}

// MechanismName names a SCRAM mechanism (ScramMechanism's type byte).
func MechanismName(m int8) string {
	switch m {
	case 1:
		return "SCRAM-SHA-256"
	case 2:
		return "SCRAM-SHA-512"
	}
	return fmt.Sprintf("mechanism-%d", m)
}

// ConfigResource types (ConfigResource.Type).
func resourceTypeName(s string) string {
	switch s {
	case "2":
		return "topic"
	case "4":
		return "broker"
	case "8":
		return "broker_logger"
	case "16":
		return "client_metrics"
	case "32":
		return "group"
	}
	return "type-" + s
}

// ACL codes (ResourceType, AclOperation, AclPermissionType, PatternType).
func aclResourceName(t int8) string {
	return pick(t, map[int8]string{1: "ANY", 2: "TOPIC", 3: "GROUP", 4: "CLUSTER", 5: "TRANSACTIONAL_ID", 6: "DELEGATION_TOKEN", 7: "USER"})
}

func operationName(o int8) string {
	return pick(o, map[int8]string{1: "ANY", 2: "ALL", 3: "READ", 4: "WRITE", 5: "CREATE", 6: "DELETE", 7: "ALTER", 8: "DESCRIBE",
		9: "CLUSTER_ACTION", 10: "DESCRIBE_CONFIGS", 11: "ALTER_CONFIGS", 12: "IDEMPOTENT_WRITE", 13: "CREATE_TOKENS", 14: "DESCRIBE_TOKENS", 15: "TWO_PHASE_COMMIT"})
}

func permissionName(p int8) string { return pick(p, map[int8]string{1: "ANY", 2: "DENY", 3: "ALLOW"}) }

func patternName(p int8) string {
	return pick(p, map[int8]string{1: "ANY", 2: "MATCH", 3: "LITERAL", 4: "PREFIXED"})
}

func pick(v int8, m map[int8]string) string {
	if s, ok := m[v]; ok {
		return s
	}
	return fmt.Sprintf("UNKNOWN(%d)", v)
}
