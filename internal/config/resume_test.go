package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// A plan of many partitions survives the compressed round trip, is much
// smaller than its JSON, and plans of runs from before (plain JSON) read.
func TestRestoreResumePlan(t *testing.T) {
	type part struct {
		Topic     string `json:"topic"`
		Partition int    `json:"partition"`
		Base      int64  `json:"base"`
	}
	var plan []part
	for i := range 20000 {
		plan = append(plan, part{Topic: "orders-" + strings.Repeat("x", i%7), Partition: i, Base: int64(i) * 1000})
	}
	var r RestoreResume
	if err := r.SetPlan(plan); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(plan)
	if len(r.PlanGzip)*5 > len(js) || r.Plan != nil {
		t.Errorf("compressed plan %d bytes of %d JSON (plain kept: %v)", len(r.PlanGzip), len(js), r.Plan != nil)
	}
	// Through JSON, as a memo and a retry's input carry it.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back RestoreResume
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var got []part
	if err := back.DecodePlan(&got); err != nil || !reflect.DeepEqual(got, plan) {
		t.Fatalf("DecodePlan: %v (equal %v)", err, reflect.DeepEqual(got, plan))
	}
	old := RestoreResume{Plan: js[:0:0]}
	old.Plan = append(old.Plan, js...)
	got = nil
	if err := old.DecodePlan(&got); err != nil || !reflect.DeepEqual(got, plan) {
		t.Errorf("plain JSON plan: %v", err)
	}
	if err := (RestoreResume{}).DecodePlan(&got); err == nil {
		t.Errorf("an empty resume decoded")
	}
	if err := (RestoreResume{PlanGzip: []byte("not gzip")}).DecodePlan(&got); err == nil || !strings.Contains(err.Error(), "plan_gzip") {
		t.Errorf("damaged plan_gzip: %v", err)
	}
}
