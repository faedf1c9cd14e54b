// Package embedded runs a single-node Temporal server inside the kbr process:
// frontend, history, matching and worker services persisted in a SQLite file,
// plus (optionally) the Temporal Web UI.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporal"
)

// Defaults applied by Start to zero-valued Options fields.
const (
	DefaultIP           = "127.0.0.1"
	DefaultFrontendPort = 7233
	DefaultUIPort       = 8233
	DefaultNamespace    = "default"

	// DBFileName is the SQLite database inside Options.DataDir.
	DBFileName = "temporal.db"

	lockFileName   = "temporal.lock"
	schemaFileName = "temporal.schema"

	// startTimeout bounds the readiness waits of Start when ctx has no deadline.
	startTimeout = 2 * time.Minute
)

// Options configures Start. Zero values take the defaults above, except
// UIPort: zero or negative disables the UI (DefaultUIPort is the value for a
// command-line flag's default).
type Options struct {
	DataDir      string       // SQLite db file lives here (DataDir/temporal.db); created if missing
	IP           string       // address the frontend and UI bind to; default "127.0.0.1"
	FrontendPort int          // default 7233
	UIPort       int          // Web UI port, usually DefaultUIPort (8233); 0 or negative = no UI
	Namespace    string       // default "default"; created on first start, kept after
	Logger       *slog.Logger // server logs (warn+ unless the handler is enabled for debug); nil = stderr, warn+
}

// Server is a running embedded Temporal server.
type Server struct {
	frontendAddr string
	uiAddr       string
	namespace    string

	stopTemporal func() error
	ui           *webUI
	lock         *os.File
	logger       *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// FrontendAddress is the host:port SDK clients dial ("127.0.0.1:7233"). When
// the server binds a wildcard IP, this is the matching loopback address.
func (s *Server) FrontendAddress() string { return s.frontendAddr }

// UIAddress is the host:port of the Web UI, or "" when it is disabled.
func (s *Server) UIAddress() string { return s.uiAddr }

// Namespace is the namespace Start created or found.
func (s *Server) Namespace() string { return s.namespace }

// Start runs the server and returns once the frontend answers, the namespace
// exists and the kbr search attributes are registered. A busy frontend or UI
// port fails Start with an error naming the port. ctx bounds the start-up
// only; use Stop to shut the server down.
func Start(ctx context.Context, o Options) (_ *Server, retErr error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}

	var undo []func()
	defer func() {
		if retErr != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDataDir(filepath.Join(o.DataDir, lockFileName))
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = unlockDataDir(lock) })

	// Ports. The UI listener is bound here and handed to the HTTP server,
	// so it cannot be lost; the Temporal services bind their own ports, so
	// those are probed just before the server starts.
	var uiLn net.Listener
	if o.UIPort > 0 {
		uiLn, err = net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(o.UIPort)))
		if err != nil {
			return nil, fmt.Errorf("web UI port %d on %s is not available: %w", o.UIPort, o.IP, err)
		}
		undo = append(undo, func() { _ = uiLn.Close() })
	}
	if err := probePort(o.IP, o.FrontendPort); err != nil {
		return nil, fmt.Errorf("frontend port %d on %s is not available: %w", o.FrontendPort, o.IP, err)
	}
	internal, err := freeLoopbackPorts(3)
	if err != nil {
		return nil, fmt.Errorf("pick ports for internal services: %w", err)
	}

	// Persistence: create the schema only for a new database, then make
	// sure the namespace exists (a no-op when it does).
	dbPath := filepath.Join(o.DataDir, DBFileName)
	sqlCfg := sqliteConfig(dbPath)
	if err := prepareDatabase(sqlCfg, dbPath, filepath.Join(o.DataDir, schemaFileName), o.Namespace, o.Logger); err != nil {
		return nil, err
	}

	frontendAddr := net.JoinHostPort(dialHost(o.IP), strconv.Itoa(o.FrontendPort))
	layout := serviceLayout{
		frontendBindIP:   o.IP,
		frontendPort:     o.FrontendPort,
		frontendDialAddr: frontendAddr,
		historyPort:      internal[0],
		matchingPort:     internal[1],
		workerPort:       internal[2],
	}
	srvLogger := withFloor(o.Logger, serverLogFloor(o.Logger))
	gate := newLogGate()
	ts, err := temporal.NewServer(serverOptions(layout, sqlCfg, srvLogger, gate)...)
	if err != nil {
		return nil, fmt.Errorf("build temporal server: %w", err)
	}
	stopTemporal := func() error {
		gate.close()
		return ts.Stop()
	}
	if err := ts.Start(); err != nil {
		// A failed start has already been rolled back by the server.
		return nil, fmt.Errorf("start temporal server (frontend %s): %w", frontendAddr, err)
	}
	undo = append(undo, func() { _ = stopTemporal() })

	if err := waitReady(ctx, frontendAddr, o.Namespace, o.Logger); err != nil {
		return nil, err
	}

	s := &Server{
		frontendAddr: frontendAddr,
		namespace:    o.Namespace,
		stopTemporal: stopTemporal,
		lock:         lock,
		logger:       o.Logger,
	}
	if uiLn != nil {
		ui, err := newWebUI(uiLn, frontendAddr, o.Namespace, o.Logger)
		if err != nil {
			return nil, err
		}
		s.ui = ui
		s.uiAddr = net.JoinHostPort(dialHost(o.IP), strconv.Itoa(o.UIPort))
	}
	return s, nil
}

// Stop shuts down the UI and the Temporal services and releases the data
// directory. It is safe to call more than once; later calls return the first
// result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		if s.ui != nil {
			if err := s.ui.stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop web UI: %w", err))
			}
		}
		if err := s.stopTemporal(); err != nil {
			errs = append(errs, fmt.Errorf("stop temporal server: %w", err))
		}
		if err := unlockDataDir(s.lock); err != nil {
			errs = append(errs, fmt.Errorf("release data directory: %w", err))
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

func (o Options) withDefaults() (Options, error) {
	if o.DataDir == "" {
		return o, errors.New("embedded temporal: DataDir is required")
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return o, fmt.Errorf("data directory %q: %w", o.DataDir, err)
	}
	o.DataDir = abs
	if o.IP == "" {
		o.IP = DefaultIP
	}
	if net.ParseIP(o.IP) == nil {
		return o, fmt.Errorf("embedded temporal: IP %q is not an IP address", o.IP)
	}
	if o.FrontendPort == 0 {
		o.FrontendPort = DefaultFrontendPort
	}
	if o.FrontendPort < 0 || o.FrontendPort > 65535 {
		return o, fmt.Errorf("embedded temporal: frontend port %d out of range", o.FrontendPort)
	}
	if o.UIPort > 65535 {
		return o, fmt.Errorf("embedded temporal: UI port %d out of range", o.UIPort)
	}
	if o.UIPort > 0 && o.UIPort == o.FrontendPort {
		return o, fmt.Errorf("embedded temporal: UI port and frontend port are both %d", o.UIPort)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Logger == nil {
		o.Logger = defaultLogger()
	}
	return o, nil
}

// dialHost turns a bind address into one a local client can dial.
func dialHost(ip string) string {
	parsed := net.ParseIP(ip)
	switch {
	case parsed == nil || !parsed.IsUnspecified():
		return ip
	case parsed.To4() != nil:
		return "127.0.0.1"
	default:
		return "::1"
	}
}

func probePort(ip string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return ln.Close()
}

// freeLoopbackPorts asks the kernel for n distinct free ports on 127.0.0.1.
func freeLoopbackPorts(n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady dials the frontend and waits until the namespace is served, then
// registers the kbr search attributes.
func waitReady(ctx context.Context, frontendAddr, namespace string, logger *slog.Logger) error {
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  frontendAddr,
		Namespace: namespace,
		Logger:    sdkLogger(withFloor(logger, slog.LevelWarn)),
	})
	if err != nil {
		return fmt.Errorf("connect to embedded frontend %s: %w", frontendAddr, err)
	}
	defer c.Close()

	var lastErr error
	err = waitFor(ctx, func() (bool, error) {
		// Errors (namespace not yet in the registry, services still
		// starting) are retried until ctx ends.
		_, lastErr = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		return lastErr == nil, nil
	})
	if err != nil {
		if lastErr != nil {
			err = fmt.Errorf("%w (last error: %v)", err, lastErr)
		}
		return fmt.Errorf("namespace %q not served by %s: %w", namespace, frontendAddr, err)
	}
	if err := RegisterSearchAttributes(ctx, c, namespace); err != nil {
		return err
	}
	return nil
}
