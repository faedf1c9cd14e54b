package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdktemporal "go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const (
	testTaskQueue = "kbr-embedded-test"
	testNamespace = "kbr-test"
)

func greetWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, greetActivity, name).Get(ctx, &out)
	return out, err
}

func greetActivity(_ context.Context, name string) (string, error) {
	return "hello " + name, nil
}

// waitForSignalWorkflow blocks until it gets the "go" signal, so it is still
// running when the server stops.
func waitForSignalWorkflow(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	return "resumed " + v, nil
}

// testLogger sends server warnings and errors to the test log while the test
// runs (and drops them afterwards, when background goroutines may still log).
type testLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func newTestLogger(t *testing.T) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func dial(t *testing.T, s *Server, logger *slog.Logger) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: testNamespace,
		Logger:    sdkLogger(logger),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddress(), err)
	}
	return c
}

func startWorker(t *testing.T, c client.Client) worker.Worker {
	t.Helper()
	w := worker.New(c, testTaskQueue, worker.Options{})
	w.RegisterWorkflow(greetWorkflow)
	w.RegisterWorkflow(waitForSignalWorkflow)
	w.RegisterActivity(greetActivity)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	return w
}

func eventually(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	var last error
	for {
		if last = cond(); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (last error: %v)", what, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestServerPersistsAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logger := newTestLogger(t)
	dir := t.TempDir()
	opts := Options{
		DataDir:      dir,
		FrontendPort: freePort(t),
		UIPort:       freePort(t),
		Namespace:    testNamespace,
		Logger:       logger,
	}

	began := time.Now()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("first start (new database) took %v", time.Since(began))
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()

	if want := "127.0.0.1:" + strconv.Itoa(opts.FrontendPort); s.FrontendAddress() != want {
		t.Errorf("FrontendAddress = %q, want %q", s.FrontendAddress(), want)
	}
	if want := "127.0.0.1:" + strconv.Itoa(opts.UIPort); s.UIAddress() != want {
		t.Errorf("UIAddress = %q, want %q", s.UIAddress(), want)
	}

	c := dial(t, s, logger)
	defer c.Close()

	// The namespace exists.
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: testNamespace})
	if err != nil {
		t.Fatalf("DescribeNamespace: %v", err)
	}
	if got := ns.GetNamespaceInfo().GetName(); got != testNamespace {
		t.Fatalf("namespace name = %q", got)
	}

	// The search attributes exist, and registering again is a no-op.
	checkSearchAttributes(t, ctx, c)
	if err := RegisterSearchAttributes(ctx, c, testNamespace); err != nil {
		t.Fatalf("second RegisterSearchAttributes: %v", err)
	}
	// Adding an attribute to an existing namespace (the path an external
	// cluster takes) makes it usable at once (the workflow below sets it);
	// a type clash is an error.
	extra := map[string]enums.IndexedValueType{"KbrTestExtra": enums.INDEXED_VALUE_TYPE_KEYWORD}
	if err := registerSearchAttributes(ctx, c.OperatorService(), c.WorkflowService(), testNamespace, extra); err != nil {
		t.Fatalf("register extra search attribute: %v", err)
	}
	clash := map[string]enums.IndexedValueType{"KbrTask": enums.INDEXED_VALUE_TYPE_INT}
	if err := registerSearchAttributes(ctx, c.OperatorService(), c.WorkflowService(), testNamespace, clash); err == nil || !strings.Contains(err.Error(), "KbrTask") {
		t.Fatalf("register clashing search attribute: err = %v", err)
	}

	// A busy port fails Start with an error naming the port, and a second
	// server on the same data directory is refused.
	other := opts
	other.DataDir = t.TempDir()
	other.UIPort = -1
	if _, err := Start(ctx, other); err == nil || !strings.Contains(err.Error(), strconv.Itoa(opts.FrontendPort)) {
		t.Fatalf("Start on busy frontend port: err = %v, want an error naming port %d", err, opts.FrontendPort)
	}
	other.FrontendPort = freePort(t)
	other.UIPort = opts.UIPort
	if _, err := Start(ctx, other); err == nil || !strings.Contains(err.Error(), strconv.Itoa(opts.UIPort)) {
		t.Fatalf("Start on busy UI port: err = %v, want an error naming port %d", err, opts.UIPort)
	}
	same := opts
	same.FrontendPort, same.UIPort = freePort(t), -1
	if _, err := Start(ctx, same); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Start on a data directory in use: err = %v", err)
	}

	// A workflow with an activity runs to completion; it carries a kbr
	// search attribute.
	w := startWorker(t, c)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "greet-1",
		TaskQueue: testTaskQueue,
		TypedSearchAttributes: sdktemporal.NewSearchAttributes(
			sdktemporal.NewSearchAttributeKeyKeyword("KbrTask").ValueSet("task-1"),
			sdktemporal.NewSearchAttributeKeyKeyword("KbrCluster").ValueSet("c1"),
			sdktemporal.NewSearchAttributeKeyKeyword("KbrTestExtra").ValueSet("x"),
		),
	}, greetWorkflow, "kbr")
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	var greeting string
	if err := run.Get(ctx, &greeting); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if greeting != "hello kbr" {
		t.Fatalf("workflow result = %q", greeting)
	}
	firstRunID := run.GetRunID()

	// A workflow that is still running when the server stops.
	waiting, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "waiting-1", TaskQueue: testTaskQueue}, waitForSignalWorkflow)
	if err != nil {
		t.Fatalf("start waiting workflow: %v", err)
	}
	// Wait until its first workflow task ran, so the worker is parked on the signal.
	eventually(t, ctx, "waiting workflow started", func() error {
		d, err := c.DescribeWorkflowExecution(ctx, "waiting-1", "")
		if err != nil {
			return err
		}
		if d.GetWorkflowExecutionInfo().GetHistoryLength() < 4 {
			return fmt.Errorf("history length %d", d.GetWorkflowExecutionInfo().GetHistoryLength())
		}
		return nil
	})

	// A schedule (paused, so it only runs when triggered).
	_, err = c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:     "sched-1",
		Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Paused: true,
		Action: &client.ScheduleWorkflowAction{
			ID:        "sched-1-run",
			Workflow:  greetWorkflow,
			Args:      []any{"schedule"},
			TaskQueue: testTaskQueue,
		},
	})
	if err != nil {
		t.Fatalf("create schedule: %v", err)
	}

	// The Web UI serves its HTML and proxies its API to the frontend.
	checkUI(t, ctx, s.UIAddress())

	w.Stop()
	c.Close()
	began = time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stop took %v", time.Since(began))
	stopped = true
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if s.UIAddress() != "" {
		if _, err := http.Get("http://" + s.UIAddress() + "/"); err == nil {
			t.Errorf("web UI still answers after Stop")
		}
	}

	// Restart on the same data directory and ports.
	began = time.Now()
	s2, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	t.Logf("second start (existing database) took %v", time.Since(began))
	defer func() { _ = s2.Stop() }()
	c2 := dial(t, s2, logger)
	defer c2.Close()
	checkSearchAttributes(t, ctx, c2)

	// The completed workflow and its history survived.
	d, err := c2.DescribeWorkflowExecution(ctx, "greet-1", firstRunID)
	if err != nil {
		t.Fatalf("describe completed workflow after restart: %v", err)
	}
	if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("status after restart = %v", st)
	}
	if got := completedResult(t, ctx, c2, "greet-1", firstRunID); got != "hello kbr" {
		t.Fatalf("result in history after restart = %q", got)
	}
	// Visibility (with the search attribute) survived too.
	eventually(t, ctx, "list by search attribute", func() error {
		resp, err := c2.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: testNamespace,
			Query:     `KbrTask = "task-1" AND KbrTestExtra = "x" AND ExecutionStatus = "Completed"`,
		})
		if err != nil {
			return err
		}
		if len(resp.GetExecutions()) != 1 || resp.GetExecutions()[0].GetExecution().GetWorkflowId() != "greet-1" {
			return fmt.Errorf("got %d executions", len(resp.GetExecutions()))
		}
		return nil
	})

	// The workflow that was running resumes and completes.
	w2 := startWorker(t, c2)
	defer w2.Stop()
	if err := c2.SignalWorkflow(ctx, "waiting-1", waiting.GetRunID(), "go", "after restart"); err != nil {
		t.Fatalf("signal after restart: %v", err)
	}
	var resumed string
	if err := c2.GetWorkflow(ctx, "waiting-1", waiting.GetRunID()).Get(ctx, &resumed); err != nil {
		t.Fatalf("resumed workflow: %v", err)
	}
	if resumed != "resumed after restart" {
		t.Fatalf("resumed workflow result = %q", resumed)
	}

	// The schedule survived, and the scheduler runs it.
	h := c2.ScheduleClient().GetHandle(ctx, "sched-1")
	if _, err := h.Describe(ctx); err != nil {
		t.Fatalf("describe schedule after restart: %v", err)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enums.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
		t.Fatalf("trigger schedule: %v", err)
	}
	var schedWF string
	eventually(t, ctx, "scheduled workflow started", func() error {
		desc, err := h.Describe(ctx)
		if err != nil {
			return err
		}
		acts := desc.Info.RecentActions
		if len(acts) == 0 {
			return errors.New("no actions yet")
		}
		schedWF = acts[len(acts)-1].StartWorkflowResult.WorkflowID
		return nil
	})
	var schedOut string
	if err := c2.GetWorkflow(ctx, schedWF, "").Get(ctx, &schedOut); err != nil {
		t.Fatalf("scheduled workflow %s: %v", schedWF, err)
	}
	if schedOut != "hello schedule" {
		t.Fatalf("scheduled workflow result = %q", schedOut)
	}

	checkUI(t, ctx, s2.UIAddress())
}

func checkSearchAttributes(t *testing.T, ctx context.Context, c client.Client) {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: testNamespace})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	for name, typ := range SearchAttributes {
		got, ok := resp.GetCustomAttributes()[name]
		if !ok {
			t.Errorf("search attribute %s missing (have %v)", name, resp.GetCustomAttributes())
		} else if got != typ {
			t.Errorf("search attribute %s has type %v, want %v", name, got, typ)
		}
	}
}

func completedResult(t *testing.T, ctx context.Context, c client.Client, id, runID string) string {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("read history of %s: %v", id, err)
		}
		if ev.GetEventType() != enums.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
			continue
		}
		var out string
		payloads := ev.GetWorkflowExecutionCompletedEventAttributes().GetResult()
		if err := converter.GetDefaultDataConverter().FromPayloads(payloads, &out); err != nil {
			t.Fatalf("decode result of %s: %v", id, err)
		}
		return out
	}
	t.Fatalf("history of %s has no WorkflowExecutionCompleted event", id)
	return ""
}

func checkUI(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	if addr == "" {
		t.Fatal("UIAddress is empty")
	}
	get := func(path string) (*http.Response, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		return resp, string(body)
	}

	resp, body := get("/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET / content type %q", ct)
	}
	if !strings.Contains(strings.ToLower(body), "<html") {
		t.Fatalf("GET / is not HTML: %.200q", body)
	}

	// The UI's API is a gateway to the frontend: the namespace must show.
	resp, body = get("/api/v1/namespaces/" + testNamespace)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, testNamespace) {
		t.Fatalf("GET /api/v1/namespaces/%s = %d %.300q", testNamespace, resp.StatusCode, body)
	}
}

func TestServerWithoutUI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Logger nil: the default (stderr, warn+). UIPort 0: no UI.
	s, err := Start(ctx, Options{DataDir: t.TempDir() + "/nested/dir", FrontendPort: freePort(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() { _ = s.Stop() }()
	if s.UIAddress() != "" {
		t.Errorf("UIAddress = %q, want empty", s.UIAddress())
	}
	if s.Namespace() != DefaultNamespace {
		t.Errorf("Namespace = %q", s.Namespace())
	}
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddress(), Namespace: DefaultNamespace, Logger: sdkLogger(discardLogger())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: DefaultNamespace}); err != nil {
		t.Fatalf("DescribeNamespace(default): %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
