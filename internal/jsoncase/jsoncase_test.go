package jsoncase

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSnake(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"clusterID": "cluster_id", "controllerID": "controller_id", "takenAt": "taken_at",
		"aclsNote": "acls_note", "scramUsers": "scram_users", "zkChroot": "zk_chroot",
		"replicationFactor": "replication_factor", "leaderEpoch": "leader_epoch",
		"ephemeralOwner": "ephemeral_owner", "numChildren": "num_children", "format": "format",
		"cluster_id": "cluster_id",
	} {
		if got := Snake(in); got != want {
			t.Errorf("Snake(%q) = %q, want %q", in, got, want)
		}
	}
}

type inner struct {
	Epoch int32 `json:"leader_epoch"`
}

type base struct {
	Note string `json:"acls_note,omitempty"`
}

type doc struct {
	base
	ClusterID string            `json:"cluster_id"`
	TakenAt   time.Time         `json:"taken_at"`
	Configs   map[string]string `json:"configs"`
	Inner     []inner           `json:"inner"`
	Skip      string            `json:"-"`
}

func (d *doc) UnmarshalJSON(b []byte) error { type plain doc; return Decode(b, (*plain)(d)) }

func (i *inner) UnmarshalJSON(b []byte) error { type plain inner; return Decode(b, (*plain)(i)) }

// Old and new spellings read the same; map keys (user data) and unknown
// keys are left alone.
func TestDecodeBothSpellings(t *testing.T) {
	t.Parallel()
	old := `{"clusterID":"c1","takenAt":"2026-01-02T03:04:05Z","aclsNote":"n","configs":{"retention.ms":"1","MyKey":"2"},"inner":[{"leaderEpoch":7}],"extra":1}`
	cur := `{"cluster_id":"c1","taken_at":"2026-01-02T03:04:05Z","acls_note":"n","configs":{"retention.ms":"1","MyKey":"2"},"inner":[{"leader_epoch":7}]}`
	var a, b doc
	if err := json.Unmarshal([]byte(old), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cur), &b); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]doc{"camelCase": a, "snake_case": b} {
		if d.ClusterID != "c1" || !d.TakenAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || d.Note != "n" ||
			d.Configs["MyKey"] != "2" || d.Configs["retention.ms"] != "1" || len(d.Inner) != 1 || d.Inner[0].Epoch != 7 {
			t.Errorf("%s: decoded %+v", name, d)
		}
	}
	out, _ := json.Marshal(b)
	if want := `{"acls_note":"n","cluster_id":"c1","taken_at":"2026-01-02T03:04:05Z","configs":{"MyKey":"2","retention.ms":"1"},"inner":[{"leader_epoch":7}]}`; string(out) != want {
		t.Errorf("written as %s, want %s", out, want)
	}
	var bad doc
	if err := json.Unmarshal([]byte(`{"takenAt":"yesterday"}`), &bad); err == nil {
		t.Error("a bad value decoded without an error")
	}
	var null doc
	if err := json.Unmarshal([]byte(`null`), &null); err != nil {
		t.Errorf("null: %v", err)
	}
}
