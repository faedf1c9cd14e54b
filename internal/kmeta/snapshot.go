package kmeta

import (
	"encoding/base64"
	"fmt"
	"time"
)

// Snapshot is the logical metadata of one cluster at one moment. It is
// written to logical.json in the metadata archive, so field names and
// meanings are part of the backup format: add fields, never rename them.
type Snapshot struct {
	ClusterID string `json:"cluster_id"`
	// ControllerID is what the brokers report as controller. On KRaft
	// clusters brokers report an arbitrary broker here, because
	// controllers are not reachable by clients.
	ControllerID int32     `json:"controller_id"`
	TakenAt      time.Time `json:"taken_at"`
	Brokers      []Broker  `json:"brokers"`
	Topics       []Topic   `json:"topics"`
	ACLs         []ACL     `json:"acls"`
	// ACLsNote says why ACLs is empty when the cluster has no authorizer
	// (SECURITY_DISABLED): that is a fact to record, not a failure.
	ACLsNote   string      `json:"acls_note,omitempty"`
	Quotas     []Quota     `json:"quotas"`
	SCRAMUsers []SCRAMUser `json:"scram_users"`
	Groups     []Group     `json:"groups"`
	// Notes lists what could not be read because the brokers are too old
	// for the request (quotas before 2.6, SCRAM users before 2.7), so a
	// reader knows the empty list means "unknown", not "none".
	Notes []string `json:"notes"`
	// KafkaVersion is the lowest broker VersionGuess: a mixed cluster
	// during an upgrade counts as its oldest broker, which is what a
	// version-gated restore must compare against.
	KafkaVersion string `json:"kafka_version"`
}

// Broker is one broker as the metadata response lists it.
type Broker struct {
	ID   int32   `json:"id"`
	Host string  `json:"host"`
	Port int32   `json:"port"`
	Rack *string `json:"rack,omitempty"`
	// VersionGuess is kversion's guess from this broker's ApiVersions
	// response without the leading "v" ("3.9"), or kversion's longer
	// wording ("at least v4.1") when no release matches exactly.
	VersionGuess string `json:"version_guess"`
}

// Topic is one topic with its layout and the configs an operator set on it.
type Topic struct {
	Name string `json:"name"`
	// ID is the topic id in Kafka's own notation (URL-safe base64 without
	// padding, as kafka-topics.sh and the /brokers/topics znodes show it),
	// empty where brokers predate topic ids. A changed ID under the same
	// name means the topic was deleted and recreated.
	ID                string      `json:"id,omitempty"`
	Internal          bool        `json:"internal,omitempty"`
	ReplicationFactor int16       `json:"replication_factor"`
	Partitions        []Partition `json:"partitions"`
	// Configs holds only DYNAMIC_TOPIC_CONFIG entries, the values an
	// operator set on the topic. Broker defaults are left out so that a
	// restore does not freeze the source cluster's defaults onto the
	// target.
	Configs map[string]string `json:"configs"`
}

// Partition is one partition's placement when the snapshot was taken.
type Partition struct {
	ID       int32   `json:"id"`
	Leader   int32   `json:"leader"`
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
}

// ACL is one ACL binding. Enumerations are kept as Kafka's upper-case names
// (TOPIC, LITERAL, READ, ALLOW) so the archive reads like kafka-acls.sh and
// does not depend on a client library's numbering.
type ACL struct {
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

// Quota is the client quota of one entity ({user=alice, client-id=app}).
type Quota struct {
	Entity []QuotaEntity      `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// QuotaEntity is one component of a quota entity. A nil Name is the
// default entity of that type (user=<default>).
type QuotaEntity struct {
	Type string  `json:"type"`
	Name *string `json:"name"`
}

// SCRAMUser is a user that has SCRAM credentials. The Admin API tells only
// which mechanisms a user has and with how many iterations; salts and
// salted passwords are not readable, so SCRAM users are recorded for the
// report and cannot be restored from a snapshot: their passwords must be
// set again on the target.
type SCRAMUser struct {
	Name       string           `json:"name"`
	Mechanisms []SCRAMMechanism `json:"mechanisms"`
}

// SCRAMMechanism is one credential of a SCRAM user.
type SCRAMMechanism struct {
	Mechanism  string `json:"mechanism"` // SCRAM-SHA-256 or SCRAM-SHA-512
	Iterations int32  `json:"iterations"`
}

// Group is a consumer group and the offsets it has committed.
type Group struct {
	ID           string        `json:"id"`
	State        string        `json:"state"`
	ProtocolType string        `json:"protocol_type"`
	Offsets      []GroupOffset `json:"offsets"`
}

// GroupOffset is one committed offset. LeaderEpoch is -1 when the committer
// did not send one.
type GroupOffset struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata,omitempty"`
}

// Topic returns the named topic of the snapshot, or nil.
func (s *Snapshot) Topic(name string) *Topic {
	if s == nil {
		return nil
	}
	for i := range s.Topics {
		if s.Topics[i].Name == name {
			return &s.Topics[i]
		}
	}
	return nil
}

// ParseTopicID reads a topic id in Kafka's notation (see Topic.ID); an
// empty string is the zero id (brokers without topic ids).
func ParseTopicID(s string) ([16]byte, error) {
	var id [16]byte
	if s == "" {
		return id, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return id, fmt.Errorf("topic id %q is not a 16-byte url-safe base64 id", s)
	}
	copy(id[:], b)
	return id, nil
}
