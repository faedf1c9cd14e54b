package secretscan

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const planted = "Zx7Qw3Vb9Lk2Pm5"

func payload(data []byte) *commonpb.Payloads {
	return &commonpb.Payloads{Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: data}}}
}

// TestHistoryFindsPlantedSecrets guards the scan assertNoSecrets ran:
// strings.Contains over protojson, which base64-encodes every payload, so
// a secret in any input, result, heartbeat, memo, search attribute or
// failure detail was invisible to it. Each event below plants the secret
// in one of those places; the old scan finds none, History finds each.
func TestHistoryFindsPlantedSecrets(t *testing.T) {
	js, _ := json.Marshal(map[string]any{"target": map[string]any{"password": planted}})
	escaped := []byte(`{"note":"a \u005a` + planted[1:] + `"}`) // JSON escapes the first character
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(js)
	zw.Close()
	memoPlan, _ := json.Marshal(map[string]any{"plan_gzip": gz.Bytes()}) // []byte -> base64 in JSON

	events := []*historypb.HistoryEvent{
		{EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
			WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: payload(js)}}},
		{EventId: 2, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{
			ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{Input: payload(escaped)}}},
		{EventId: 3, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{
			ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{Result: payload(js)}}},
		{EventId: 4, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, Attributes: &historypb.HistoryEvent_ActivityTaskTimedOutEventAttributes{
			ActivityTaskTimedOutEventAttributes: &historypb.ActivityTaskTimedOutEventAttributes{Failure: &failurepb.Failure{Message: "heartbeat timeout",
				FailureInfo: &failurepb.Failure_TimeoutFailureInfo{TimeoutFailureInfo: &failurepb.TimeoutFailureInfo{LastHeartbeatDetails: payload(js)}}}}}},
		{EventId: 5, EventType: enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED, Attributes: &historypb.HistoryEvent_WorkflowPropertiesModifiedEventAttributes{
			WorkflowPropertiesModifiedEventAttributes: &historypb.WorkflowPropertiesModifiedEventAttributes{UpsertedMemo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{"resume": {Data: memoPlan}}}}}},
		{EventId: 6, EventType: enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, Attributes: &historypb.HistoryEvent_UpsertWorkflowSearchAttributesEventAttributes{
			UpsertWorkflowSearchAttributesEventAttributes: &historypb.UpsertWorkflowSearchAttributesEventAttributes{SearchAttributes: &commonpb.SearchAttributes{
				IndexedFields: map[string]*commonpb.Payload{"KbrTask": {Data: []byte(`"` + planted + `"`)}}}}}},
		{EventId: 7, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, Attributes: &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{
			WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{Failure: &failurepb.Failure{Message: "failed",
				FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Details: payload([]byte(base64.StdEncoding.EncodeToString(js)))}}}}}},
	}
	for _, ev := range events {
		h := &historypb.History{Events: []*historypb.HistoryEvent{ev}}
		old, _ := protojson.Marshal(h)
		if strings.Contains(string(old), planted) {
			t.Errorf("event %d: the old protojson scan sees the secret; this case shows nothing", ev.GetEventId())
		}
		found := History(h, []string{planted})
		if len(found) == 0 {
			t.Errorf("event %d (%s): the planted secret was not found", ev.GetEventId(), ev.GetEventType())
		}
		for _, f := range found {
			if strings.Contains(f, planted) {
				t.Errorf("a finding shows the secret: %s", f)
			}
		}
	}
	clean := &historypb.History{Events: []*historypb.HistoryEvent{{EventId: 1, Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
		WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: payload([]byte(`{"password":{"file":"/etc/p"}}`))}}}}}
	if found := History(clean, []string{planted}); len(found) != 0 {
		t.Errorf("a clean history: %v", found)
	}
}

// TestTextFindsPlantedSecrets: a secret on a debug line of a log is found
// by its line (the worker is run at debug level for the scan).
func TestTextFindsPlantedSecrets(t *testing.T) {
	log := []byte("time=1 level=WARN msg=x\ntime=2 level=DEBUG msg=\"open target\" password=" + planted + "\n")
	if got := Text(log, []string{planted}); len(got) != 1 || got[0] != "secret 1 on line 2" {
		t.Errorf("Text = %v, want secret 1 on line 2", got)
	}
}
