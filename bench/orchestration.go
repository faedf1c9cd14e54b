package main

// The orchestration group: what kbr's orchestration costs per partition when
// the data is next to nothing. franz-go's in-memory fake broker (kfake, three
// brokers in this process) holds N partitions with one record each; the real
// Temporal server and the real `kbr worker` back them up (LocalDir,
// data_sources [topicdata]) and restore them into the same fake cluster under
// renamed topics. Every restored record is compared with what was produced.
// Per run it reports the wall time per partition and, from the Temporal
// histories of the workflow, its children and their continued runs, the
// largest history, the largest event and the largest payload.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

var orchPartitions = flag.Int("orch-partitions", 100000, "orchestration group: partitions in all on the in-memory fake broker (kfake), one record each, 1000 per topic")

const (
	orchPerTopic    = 1000
	orchEventsMax   = 10240   // Temporal's history event count the issue keeps under
	orchPayloadMax  = 1 << 20 // and the largest payload
	orchMsPerPart   = 1.0     // overhead per partition
	orchBaseTimeMs  = 1_600_000_000_000
	orchHeaderKey   = "orch"
	orchClusterName = "bench-kfake"
)

// OrchStats is an orchestration run's shape, from its Temporal histories.
type OrchStats struct {
	Partitions     int     `json:"partitions"`
	MsPerPartition float64 `json:"ms_per_partition"` // wall time / partitions
	Runs           int     `json:"runs"`             // workflow runs: the workflow, its children, their continued runs
	Events         int     `json:"events"`           // in all runs
	MaxEvents      int     `json:"max_history_events"`
	MaxEventsRun   string  `json:"max_history_run"`
	MaxEventBytes  int     `json:"max_event_bytes"` // proto.Size of the largest event
	MaxEventType   string  `json:"max_event_type"`
	MaxPayload     int     `json:"max_payload_bytes"` // the largest Payload data in any event
	MaxPayloadIn   string  `json:"max_payload_in"`
	// MaxBeatSampled is the largest pending heartbeat seen by polling the
	// open runs every second (DescribeWorkflowExecution); a completed
	// activity's last heartbeat is in no history event.
	MaxBeatSampled int     `json:"max_heartbeat_sampled_bytes"`
	MaxBeatType    string  `json:"max_heartbeat_activity,omitempty"`
	BeatSamples    int     `json:"heartbeat_samples"` // pending activities seen
	BeatSampleErr  string  `json:"heartbeat_sample_error,omitempty"`
	KfakeCPU       float64 `json:"kfake_cpu_s"`     // the bench process (kfake, the sampler) during the run
	BenchRSS       int64   `json:"bench_rss_bytes"` // the bench process (kfake's partitions) after the run
}

func orchTopicName(runID string, t int) string {
	return fmt.Sprintf("kbr-bench-orch-%s-%03d", runID, t)
}

// orchRecord is partition p of topic t's one record: key, value, header and
// timestamp all distinct.
func orchRecord(t int, p int32) (key, value, hval []byte, ts time.Time) {
	i := int64(t)*orchPerTopic + int64(p)
	return []byte(fmt.Sprintf("k-%d-%d", t, p)), []byte(fmt.Sprintf("v-%d-%d-%x", t, p, i*2654435761)),
		[]byte(strconv.FormatInt(i, 36)), time.UnixMilli(orchBaseTimeMs + i)
}

// orchestration runs the group once: backup and restore of -orch-partitions
// partitions on kfake.
func (b *bench) orchestration(ctx context.Context, par, rpar int) error {
	n := *orchPartitions
	if n < 1 {
		return fmt.Errorf("-orch-partitions %d: want at least 1", n)
	}
	var parts []int32 // per topic
	for left := n; left > 0; left -= orchPerTopic {
		parts = append(parts, int32(min(left, orchPerTopic)))
	}
	logf("orchestration: kfake cluster (3 brokers, in-memory) with %d partitions in %d topics", n, len(parts))
	fake, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.ClusterID("kbr-bench-kfake"))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	defer fake.Close()
	kc := cluster{name: orchClusterName, bootstrap: fake.ListenAddrs()}
	dir := filepath.Join(b.tmp, "orchestration")
	defer os.RemoveAll(dir)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.bootstrap...), kgo.ClientID("kbr-bench-orch"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(n+1), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t0 := time.Now()
	var src []string
	for t, np := range parts {
		src = append(src, orchTopicName(b.runID, t))
		if err := createTopic(ctx, adm, src[t], np, 1, nil); err != nil {
			return fmt.Errorf("kfake: %w", err)
		}
	}
	recs := make([]*kgo.Record, 0, n)
	for t, np := range parts {
		for p := int32(0); p < np; p++ {
			k, v, h, ts := orchRecord(t, p)
			recs = append(recs, &kgo.Record{Topic: src[t], Partition: p, Key: k, Value: v, Timestamp: ts,
				Headers: []kgo.RecordHeader{{Key: orchHeaderKey, Value: h}}})
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	err = cl.ProduceSync(pctx, recs...).FirstErr()
	cancel()
	recs = nil
	if err != nil {
		return fmt.Errorf("produce into kfake: %w", err)
	}
	logf("orchestration: %d topics created and %d records produced in %s (not measured)", len(parts), n, time.Since(t0).Round(time.Millisecond))

	// The backup.
	task := "bench-orch-" + b.runID
	yaml := kc.yaml() + fmt.Sprintf(`task: %s
data_sources: [topicdata]
topics:
  include: [%q]
target:
  type: LocalDir
  path: %q
options:
  parallelism: %d
  min_free_bytes: 1GiB
`, task, regexp.QuoteMeta("kbr-bench-orch-"+b.runID+"-")+"[0-9]+", dir, par)
	var rp string
	b.pause()
	ph := &Phase{Name: fmt.Sprintf("kbr orchestration backup, %d partitions (kfake)", n), Tool: "kbr", Op: "orchestration",
		Parallelism: par, Rep: 1, Records: int64(n),
		Notes: []string{fmt.Sprintf("%d topics x up to %d partitions, 1 record each, on kfake (in-memory, in the bench process)", len(parts), orchPerTopic)}}
	err = b.measure(ph, nil, true, func(ph *Phase) error {
		var res *backupOutput
		st, err := b.orchRun(ctx, ph, n, func() (string, time.Duration, error) {
			r, dur, err := b.kbr.backup(ctx, "orch-backup", yaml)
			res = r
			if r == nil {
				return "", dur, err
			}
			return r.WorkflowID, dur, err
		})
		if err != nil {
			return err
		}
		t := res.Result.Totals
		ph.FileBytes = t.Bytes
		ph.Notes = append(ph.Notes, fmt.Sprintf("%s: %d partitions, %d records, %d files, %d bytes on disk", res.Result.RecoveryPoint, t.Partitions, t.Records, t.Files, t.Bytes))
		if t.Partitions != n || t.Records != int64(n) {
			return fmt.Errorf("backup totals: %d partitions and %d records, want %d of each", t.Partitions, t.Records, n)
		}
		rp = res.Result.RecoveryPoint
		b.orchRatios("backup", st)
		return nil
	})
	b.orchDisturbed(ph)
	if err != nil {
		return fmt.Errorf("%s: %w", ph.Name, err)
	}

	// The restore, into the same fake cluster under new names.
	var rename []string
	dst := make([]string, len(src))
	for t := range src {
		dst[t] = src[t] + "-r"
		rename = append(rename, strconv.Quote(src[t]+":"+dst[t]))
	}
	ryaml := kc.yaml() + fmt.Sprintf(`source:
  target:
    type: LocalDir
    path: %q
  recovery_point: %s
rename: [%s]
skip_groups: true
options:
  parallelism: %d
  replication_factor: 1
`, dir, rp, strings.Join(rename, ", "), rpar)
	b.pause()
	ph = &Phase{Name: fmt.Sprintf("kbr orchestration restore, %d partitions (kfake)", n), Tool: "kbr", Op: "orchestration",
		Parallelism: rpar, Rep: 1, Records: int64(n),
		Notes: []string{"the backup's recovery point into the same kfake cluster, every topic renamed, replication_factor 1"}}
	err = b.measure(ph, nil, true, func(ph *Phase) error {
		var res *restoreOutput
		st, err := b.orchRun(ctx, ph, n, func() (string, time.Duration, error) {
			r, dur, err := b.kbr.restore(ctx, "orch-restore", ryaml)
			res = r
			if r == nil {
				return "", dur, err
			}
			return r.WorkflowID, dur, err
		})
		if err != nil {
			return err
		}
		if res.Result.Records != int64(n) {
			return fmt.Errorf("restore result: %d records, want %d", res.Result.Records, n)
		}
		if err := orchCompare(ctx, kc.bootstrap, adm, dst, parts); err != nil {
			return err
		}
		ph.Notes = append(ph.Notes, fmt.Sprintf("every one of the %d restored records read back from kfake: key, value, header, timestamp and partition as produced", n))
		b.orchRatios("restore", st)
		return nil
	})
	b.orchDisturbed(ph)
	if err != nil {
		return fmt.Errorf("%s: %w", ph.Name, err)
	}
	return nil
}

// orchRun runs one kbr command under the heartbeat sampler and then walks
// its histories.
func (b *bench) orchRun(ctx context.Context, ph *Phase, n int, run func() (string, time.Duration, error)) (*OrchStats, error) {
	st := &OrchStats{Partitions: n}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.sampleHeartbeats(sctx, st) }()
	self0 := selfCPU()
	wf, dur, err := run()
	st.KfakeCPU = selfCPU() - self0
	st.BenchRSS = procStatusBytes(os.Getpid(), "VmRSS")
	stop()
	wg.Wait()
	ph.Seconds = dur.Seconds()
	if err != nil {
		return nil, err
	}
	st.MsPerPartition = dur.Seconds() * 1000 / float64(n)
	ph.Orchestration = st
	if b.tc == nil {
		return nil, fmt.Errorf("no Temporal client: cannot read the histories")
	}
	if err := orchHistories(ctx, b.tc, wf, st); err != nil {
		return nil, fmt.Errorf("histories of %s: %w", wf, err)
	}
	b.breakdown(ctx, ph, wf)
	beat := fmt.Sprintf("%d pending activities seen, polled once a second", st.BeatSamples)
	if st.MaxBeatType != "" {
		beat = st.MaxBeatType + ", " + beat
	}
	if st.BeatSampleErr != "" {
		beat += ", " + st.BeatSampleErr
	}
	ph.Notes = append(ph.Notes, fmt.Sprintf("%.3f ms/partition; %d runs, %d events in all, largest history %d events (%s), largest event %d bytes (%s), largest payload %d bytes (%s), largest pending heartbeat %d bytes (%s); bench process (kfake) %.1f cpu-s, RSS %.0f MiB after",
		st.MsPerPartition, st.Runs, st.Events, st.MaxEvents, st.MaxEventsRun, st.MaxEventBytes, st.MaxEventType,
		st.MaxPayload, st.MaxPayloadIn, st.MaxBeatSampled, beat, st.KfakeCPU, float64(st.BenchRSS)/(1<<20)))
	return st, nil
}

// orchRatios adds the run's figures against the targets.
func (b *bench) orchRatios(what string, st *OrchStats) {
	add := func(name string, v float64, target string, met bool) {
		b.mu.Lock()
		b.res.Ratios = append(b.res.Ratios, Ratio{Name: name, Value: v, Target: target, Met: &met})
		b.mu.Unlock()
	}
	pfx := fmt.Sprintf("kbr orchestration %s %d partitions: ", what, st.Partitions)
	add(pfx+"overhead ms/partition", st.MsPerPartition, "≤ 1 ms", st.MsPerPartition <= orchMsPerPart)
	add(pfx+"largest history (events)", float64(st.MaxEvents), "≤ 10240", st.MaxEvents <= orchEventsMax)
	add(pfx+"largest payload (KiB)", float64(st.MaxPayload)/1024, "≤ 1024", st.MaxPayload <= orchPayloadMax)
	if st.BeatSamples > 0 {
		add(pfx+"largest pending heartbeat, sampled (KiB)", float64(st.MaxBeatSampled)/1024, "≤ 1024", st.MaxBeatSampled <= orchPayloadMax)
	}
}

// orchDisturbed flags, without measuring again (a 100,000-partition run is
// long), a run during which other work took more than -max-other of the CPUs.
func (b *bench) orchDisturbed(ph *Phase) {
	if ph.Error != "" || ph.Seconds <= 0 {
		return
	}
	if share := ph.OtherCPU / (ph.Seconds * float64(runtime.NumCPU())); share > b.maxOther {
		ph.Disturbed = true
		b.warn("%s: other work used %.0f%% of the CPUs during it: kept, flagged disturbed (not measured again)", ph.Name, share*100)
	}
}

// orchHistories walks the workflow, every child it started and every run
// any of them continued as, one history at a time.
func orchHistories(ctx context.Context, c client.Client, id string, st *OrchStats) error {
	type runRef struct{ id, run string }
	queue := []runRef{{id: id}}
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		st.Runs++
		events := 0
		scheduled := map[int64]string{} // activity type by its scheduled event
		it := c.GetWorkflowHistory(ctx, ref.id, ref.run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return fmt.Errorf("%s %s: %w", ref.id, ref.run, err)
			}
			events++
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				queue = append(queue, runRef{id: ref.id, run: a.GetNewExecutionRunId()})
			}
			if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
				we := a.GetWorkflowExecution()
				queue = append(queue, runRef{id: we.GetWorkflowId(), run: we.GetRunId()})
			}
			what := ref.id + " " + ev.GetEventType().String()
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
				what += " " + a.GetActivityType().GetName()
			} else if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
				what += " " + scheduled[a.GetScheduledEventId()]
			} else if a := ev.GetChildWorkflowExecutionCompletedEventAttributes(); a != nil {
				what += " " + a.GetWorkflowType().GetName()
			}
			if sz := proto.Size(ev); sz > st.MaxEventBytes {
				st.MaxEventBytes, st.MaxEventType = sz, what
			}
			if sz, where := largestPayload(ev.ProtoReflect(), ""); sz > st.MaxPayload {
				st.MaxPayload, st.MaxPayloadIn = sz, what+" "+where
			}
		}
		st.Events += events
		if events > st.MaxEvents {
			st.MaxEvents, st.MaxEventsRun = events, ref.id
		}
	}
	return nil
}

var payloadName = (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()

// largestPayload is the size of the largest Payload data anywhere in m, and
// the field path to it.
func largestPayload(m protoreflect.Message, path string) (int, string) {
	if m.Descriptor().FullName() == payloadName {
		return len(m.Interface().(*commonpb.Payload).GetData()), path
	}
	best, where := 0, ""
	see := func(n int, w string) {
		if n > best {
			best, where = n, w
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				see(largestPayload(l.Get(i).Message(), name))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				see(largestPayload(mv.Message(), name+"["+k.String()+"]"))
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			see(largestPayload(v.Message(), name))
		}
		return true
	})
	return best, where
}

// sampleHeartbeats polls, every second until ctx ends, the open workflow
// runs' pending activities for their last heartbeat details: a completed
// activity's heartbeats are in no history event.
func (b *bench) sampleHeartbeats(ctx context.Context, st *OrchStats) {
	if b.tc == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		resp, err := b.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "ExecutionStatus = 'Running'", PageSize: 100})
		if err != nil {
			if st.BeatSampleErr == "" && ctx.Err() == nil {
				st.BeatSampleErr = "list open runs: " + err.Error()
			}
			continue
		}
		for _, e := range resp.GetExecutions() {
			d, err := b.tc.DescribeWorkflowExecution(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
			if err != nil {
				continue
			}
			for _, pa := range d.GetPendingActivities() {
				st.BeatSamples++
				n := 0
				for _, p := range pa.GetHeartbeatDetails().GetPayloads() {
					n += len(p.GetData())
				}
				if n > st.MaxBeatSampled {
					st.MaxBeatSampled, st.MaxBeatType = n, pa.GetActivityType().GetName()
				}
			}
		}
	}
}

// orchCompare reads every restored topic back from kfake and checks that
// each partition holds exactly its one produced record.
func orchCompare(ctx context.Context, seeds []string, adm *kadm.Client, dst []string, parts []int32) error {
	want := 0
	index := map[string]int{}
	for t, name := range dst {
		index[name] = t
		want += int(parts[t])
	}
	details, err := adm.ListTopics(ctx, dst...)
	if err != nil {
		return fmt.Errorf("list restored topics: %w", err)
	}
	for t, name := range dst {
		d, ok := details[name]
		if !ok || d.Err != nil || len(d.Partitions) != int(parts[t]) {
			return fmt.Errorf("restored topic %s: %d partitions (%v), want %d", name, len(d.Partitions), d.Err, parts[t])
		}
	}
	starts, err := adm.ListStartOffsets(ctx, dst...)
	if err != nil {
		return fmt.Errorf("start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, dst...)
	if err != nil {
		return fmt.Errorf("end offsets: %w", err)
	}
	var bad []string
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Err != nil || s.Err != nil || o.Offset-s.Offset != 1 {
			bad = append(bad, fmt.Sprintf("%s[%d] offsets %d..%d (%v %v)", o.Topic, o.Partition, s.Offset, o.Offset, s.Err, o.Err))
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("%d restored partitions do not hold exactly one record, e.g. %s", len(bad), strings.Join(bad[:min(5, len(bad))], "; "))
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("kbr-bench-orch-read"),
		kgo.ConsumeTopics(dst...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(1<<10))
	if err != nil {
		return err
	}
	defer rd.Close()
	seen := make([][]bool, len(dst))
	for t := range seen {
		seen[t] = make([]bool, parts[t])
	}
	got := 0
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for got < want {
		fs := rd.PollFetches(rctx)
		if rctx.Err() != nil {
			return fmt.Errorf("reading the restored topics: %d of %d records after 10 minutes", got, want)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) { ferr = fmt.Errorf("fetch %s[%d]: %w", topic, p, err) })
		if ferr != nil {
			return ferr
		}
		var cerr error
		fs.EachRecord(func(r *kgo.Record) {
			if cerr != nil {
				return
			}
			t, ok := index[r.Topic]
			if !ok || r.Partition < 0 || r.Partition >= parts[t] {
				cerr = fmt.Errorf("record from %s[%d]: not a restored partition", r.Topic, r.Partition)
				return
			}
			if seen[t][r.Partition] {
				cerr = fmt.Errorf("%s[%d]: a second record at offset %d", r.Topic, r.Partition, r.Offset)
				return
			}
			seen[t][r.Partition] = true
			got++
			k, v, h, ts := orchRecord(t, r.Partition)
			switch {
			case r.Offset != 0:
				cerr = fmt.Errorf("%s[%d]: record at offset %d, want 0", r.Topic, r.Partition, r.Offset)
			case string(r.Key) != string(k) || string(r.Value) != string(v):
				cerr = fmt.Errorf("%s[%d]: key %q value %q, want %q %q", r.Topic, r.Partition, r.Key, r.Value, k, v)
			case len(r.Headers) != 1 || r.Headers[0].Key != orchHeaderKey || string(r.Headers[0].Value) != string(h):
				cerr = fmt.Errorf("%s[%d]: headers %v, want %s=%q", r.Topic, r.Partition, r.Headers, orchHeaderKey, h)
			case !r.Timestamp.Equal(ts):
				cerr = fmt.Errorf("%s[%d]: timestamp %s, want %s", r.Topic, r.Partition, r.Timestamp.UTC(), ts.UTC())
			}
		})
		if cerr != nil {
			return cerr
		}
	}
	return nil
}
