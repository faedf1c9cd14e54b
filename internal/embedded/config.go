package embedded

import (
	"database/sql"
	"errors"
	"fmt"
	"google.golang.org/protobuf/types/known/durationpb"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const (
	clusterName = "active"
	storeName   = "sqlite"

	// sqliteKeywordColumns is how many Keyword custom search attribute
	// columns (Keyword01..Keyword10) the SQLite visibility schema has.
	sqliteKeywordColumns = 10
)

// serviceLayout is where each Temporal service listens.
type serviceLayout struct {
	frontendBindIP   string
	frontendPort     int
	frontendDialAddr string
	historyPort      int
	matchingPort     int
	workerPort       int
}

func sqliteConfig(dbPath string) *config.SQL {
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		// rwc: read-write, create the file if missing. The plugin keeps a
		// single connection per database, as SQLite wants one writer.
		ConnectAttributes: map[string]string{"mode": "rwc"},
	}
}

// dynamicConfig is the server's dynamic configuration. Most values restate
// v1.32 defaults on purpose: the product depends on them.
func dynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// Workflow update (used by kbr to talk to running workflows).
		dynamicconfig.FrontendEnableUpdateWorkflowExecution.Key():              true,
		dynamicconfig.FrontendEnableUpdateWorkflowExecutionAsyncAccepted.Key(): true,
		// Schedules: the frontend RPCs and the per-namespace worker that
		// runs the scheduler.
		dynamicconfig.FrontendEnableSchedules.Key():       true,
		dynamicconfig.WorkerEnableScheduler.Key():         true,
		dynamicconfig.WorkerPerNamespaceWorkerCount.Key(): 1,
		// Workflow-id reuse and conflict policies are always available in
		// v1.32; this removes the 1s throttle on re-starting a closed
		// workflow id (ALLOW_DUPLICATE) or terminating a running one
		// (TERMINATE_EXISTING) right after it was started.
		dynamicconfig.WorkflowIdReuseMinimalInterval.Key(): time.Duration(0),
		// The Web UI and `kbr` list workflows often; 10 rps is too low.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Room for the kbr search attributes plus user ones on a workflow.
		dynamicconfig.SearchAttributesNumberOfKeysLimit.Key(): 100,
		// A single node with few workflows: keep the mutable-state cache small.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
		// No periodic calls home from an embedded server.
		dynamicconfig.EnableServerVersionCheck.Key(): false,
	}
}

func serverConfig(l serviceLayout, sqlCfg *config.SQL) *config.Config {
	var c config.Config
	c.Global.Membership.MaxJoinDuration = 30 * time.Second
	c.Global.Membership.BroadcastAddress = "127.0.0.1"

	c.Persistence.DefaultStore = storeName
	c.Persistence.VisibilityStore = storeName
	c.Persistence.NumHistoryShards = 1
	c.Persistence.DataStores = map[string]config.DataStore{storeName: {SQL: sqlCfg}}
	// Custom search attributes on SQL visibility map to pre-created
	// columns; the SQLite schema has ten Keyword columns.
	c.Visibility.PersistenceCustomSearchAttributes = map[string]int{
		enums.INDEXED_VALUE_TYPE_KEYWORD.String(): sqliteKeywordColumns,
	}

	c.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             l.frontendDialAddr,
			},
		},
	}
	c.DCRedirectionPolicy.Policy = "noop"

	// The frontend binds the requested IP; the internal services only ever
	// listen on loopback. HTTPPort 0 leaves the frontend's HTTP API off.
	internal := func(port int) config.Service {
		var s config.Service
		s.RPC.GRPCPort = port
		s.RPC.BindOnIP = "127.0.0.1"
		return s
	}
	var fe config.Service
	fe.RPC.GRPCPort = l.frontendPort
	fe.RPC.BindOnIP = l.frontendBindIP
	c.Services = map[string]config.Service{
		string(primitives.FrontendService): fe,
		string(primitives.HistoryService):  internal(l.historyPort),
		string(primitives.MatchingService): internal(l.matchingPort),
		string(primitives.WorkerService):   internal(l.workerPort),
	}

	c.Archival.History.State = "disabled"
	c.Archival.Visibility.State = "disabled"
	c.NamespaceDefaults.Archival.History.State = "disabled"
	c.NamespaceDefaults.Archival.Visibility.State = "disabled"
	c.PublicClient.HostPort = l.frontendDialAddr
	return &c
}

func serverOptions(l serviceLayout, sqlCfg *config.SQL, logger *slog.Logger, gate *logGate) []temporal.ServerOption {
	host := func(port int) static.Hosts {
		return static.SingleLocalHost(fmt.Sprintf("127.0.0.1:%d", port))
	}
	return []temporal.ServerOption{
		temporal.WithConfig(serverConfig(l, sqlCfg)),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(l.frontendDialAddr),
			primitives.HistoryService:  host(l.historyPort),
			primitives.MatchingService: host(l.matchingPort),
			primitives.WorkerService:   host(l.workerPort),
		}),
		temporal.WithLogger(newServerLogger(logger, gate)),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
		temporal.WithDynamicConfigClient(dynamicConfig()),
	}
}

type dbState int

const (
	dbNew     dbState = iota // no file, or a file without tables
	dbReady                  // complete Temporal schema
	dbPartial                // some tables: an interrupted schema setup
)

// inspectDB tells a new database from a set-up one. It uses its own
// connection (closed on return): the server's SQLite plugin keeps its
// connections open for the life of the process.
func inspectDB(dbPath string) (dbState, error) {
	st, err := os.Stat(dbPath)
	if errors.Is(err, fs.ErrNotExist) {
		return dbNew, nil
	}
	if err != nil {
		return 0, err
	}
	if st.Size() == 0 {
		return dbNew, nil
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=rw")
	if err != nil {
		return 0, err
	}
	defer func() { _ = db.Close() }()
	var objects, markers int
	// "namespaces" is created first by the execution schema and the
	// "executions_visibility_au" trigger last by the visibility schema.
	err = db.QueryRow(`SELECT count(*),
		coalesce(sum(name IN ('namespaces', 'executions_visibility_au')), 0)
		FROM sqlite_master`).Scan(&objects, &markers)
	if err != nil {
		return 0, err
	}
	switch {
	case objects == 0:
		return dbNew, nil
	case markers == 2:
		return dbReady, nil
	default:
		return dbPartial, nil
	}
}

func schemaStamp() string {
	return fmt.Sprintf("temporal-sqlite-schema=%s visibility=%s\n", sqliteschema.Version, sqliteschema.VisibilityVersion)
}

// prepareDatabase sets the schema up when the database is new and creates
// the namespace when it does not exist (with the kbr search attributes
// already mapped, so a fresh server can use them at once).
func prepareDatabase(sqlCfg *config.SQL, dbPath, stampPath, namespace string, logger *slog.Logger) error {
	state, err := inspectDB(dbPath)
	if err != nil {
		return fmt.Errorf("inspect database %s: %w", dbPath, err)
	}
	switch state {
	case dbPartial:
		return fmt.Errorf("database %s has an incomplete Temporal schema (interrupted first start?); "+
			"move it away to start with an empty database", dbPath)
	case dbNew:
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			return fmt.Errorf("set up Temporal schema in %s: %w", dbPath, err)
		}
		if err := os.WriteFile(stampPath, []byte(schemaStamp()), 0o640); err != nil {
			return fmt.Errorf("record schema version: %w", err)
		}
	case dbReady:
		// The SQLite store has no schema-version table or migration tool;
		// the version that created the file is recorded next to it.
		if b, err := os.ReadFile(stampPath); err == nil && string(b) != schemaStamp() {
			logger.Warn("database was created with another Temporal SQLite schema version",
				"database", dbPath,
				"created", strings.TrimSpace(string(b)),
				"running", strings.TrimSpace(schemaStamp()))
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, SearchAttributes)
	if err != nil {
		return fmt.Errorf("namespace %q: %w", namespace, err)
	}
	// Keep finished runs for 30 days: they are the task history operators
	// read (kbr task history, the Web UI), not debugging leftovers.
	ns.Detail.Config.Retention = durationpb.New(HistoryRetention)
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return fmt.Errorf("create namespace %q in %s: %w", namespace, dbPath, err)
	}
	return nil
}

// HistoryRetention is how long the embedded server keeps finished workflows.
const HistoryRetention = 30 * 24 * time.Hour
