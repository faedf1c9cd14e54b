package activities

import (
	"encoding/json"
	"testing"

	"github.com/kbr-project/kbr/internal/kmeta"
)

// A planned topic crosses the workflow boundary as JSON whole: the fields of
// the embedded plan and its own (an UnmarshalJSON on the embedded type
// would decode only the plan's and drop Action).
func TestPlannedTopicJSON(t *testing.T) {
	in := PlannedTopic{TopicPlan: kmeta.TopicPlan{Source: "a", Target: "b", Partitions: 3, ReplicationFactor: 1}, Action: "create", ExistingPartitions: 2}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out PlannedTopic
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Action != "create" || out.ExistingPartitions != 2 || out.Source != "a" || out.ReplicationFactor != 1 {
		t.Errorf("decoded %+v from %s", out, b)
	}
}
