package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
)

// Agent holds the host-local activities of `kbr agent`: they run on a
// broker's own machine, on its own task queue (names.AgentTaskQueue), and are
// registered on no other worker. The zero value is not usable: Config must
// be set.
type Agent struct {
	Config config.Agent
	// Storage opens backup targets for the metadata log copies (kraftlog.go).
	Storage *storage.Registry
	Logger  *slog.Logger
}

// AgentRequest names the host a task is meant for; an agent refuses a
// task for another host (two agents started with the same task queue by
// mistake would otherwise stop the wrong broker).
type AgentRequest struct {
	Host string `json:"host"`
	// Timeout bounds a stop or start (command plus wait).
	Timeout time.Duration `json:"timeout,omitempty"`
}

// AgentPing is what an agent reports about its host.
type AgentPing struct {
	Host         string             `json:"host"`
	Hostname     string             `json:"hostname"`
	KbrVersion   string             `json:"kbr_version"`
	KafkaVersion string             `json:"kafka_version,omitempty"`
	Listener     string             `json:"listener"`
	Running      bool               `json:"running"`
	LogDirs      []string           `json:"log_dirs"`
	Disk         []hostops.DiskFree `json:"disk"`
	// ClusterIDs is cluster.id of each log dir's meta.properties ("" when
	// the file is missing).
	ClusterIDs map[string]string `json:"cluster_ids"`
}

// KbrVersion is this binary's module version ("(devel)" for a local build).
func KbrVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func (g *Agent) check(in AgentRequest) error {
	if in.Host != g.Config.Host {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("this agent runs for host %q, the task is for %q: two agents share a task queue", g.Config.Host, in.Host), names.ErrWrongHost, nil)
	}
	return nil
}

// Ping reports the host: Kafka version, log dirs with their free disk and
// cluster ids, whether the broker listens. It reads only.
func (g *Agent) Ping(ctx context.Context, in AgentRequest) (*AgentPing, error) {
	if err := g.check(in); err != nil {
		return nil, err
	}
	c := g.Config
	hn, _ := os.Hostname()
	p := &AgentPing{Host: c.Host, Hostname: hn, KbrVersion: KbrVersion(), Listener: c.Listener,
		Running: hostops.PortAnswers(c.Listener), ClusterIDs: map[string]string{}}
	p.KafkaVersion = c.KafkaVersion
	if p.KafkaVersion == "" && c.KafkaLibs != "" {
		p.KafkaVersion = hostops.KafkaVersionFromLibs(c.KafkaLibs)
	}
	dirs, err := hostops.LogDirs(c.ServerProperties)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("host %s: %v", c.Host, err), names.ErrPreflight, err)
	}
	p.LogDirs = dirs
	p.Disk = hostops.FreeDisk(dirs)
	for _, d := range dirs {
		id, _ := hostops.ReadClusterID(d)
		p.ClusterIDs[d] = id
	}
	return p, nil
}

func (g *Agent) service(timeout time.Duration) hostops.Service {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	return hostops.Service{StopCommand: g.Config.StopCommand, StartCommand: g.Config.StartCommand,
		Addr: g.Config.Listener, StopTimeout: timeout, StartTimeout: timeout}
}

// heartbeatWhile heartbeats every few seconds until the returned stop.
func heartbeatWhile(ctx context.Context, what string) func() {
	return keepBeating(ctx, func() any { return what })
}

// keepBeating heartbeats details() every few seconds until the returned
// stop, so a step that waits on a cluster (creating thousands of topics,
// waiting for leaders) is not taken for a dead worker.
func keepBeating(ctx context.Context, details func() any) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, details())
			}
		}
	}()
	return func() { close(done) }
}

func commandErr(host string, err error) error {
	var ce *hostops.CommandError
	if errors.As(err, &ce) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("host %s: %v", host, err), names.ErrCommand, nil)
	}
	return fmt.Errorf("host %s: %w", host, err)
}

// StopKafka runs the stop command and waits until the broker's process is
// gone and its port closed. A broker that is not running is left alone.
func (g *Agent) StopKafka(ctx context.Context, in AgentRequest) (*hostops.StopResult, error) {
	if err := g.check(in); err != nil {
		return nil, err
	}
	defer heartbeatWhile(ctx, "stopping")()
	res, err := g.service(in.Timeout).Stop(ctx)
	if err != nil {
		return nil, commandErr(g.Config.Host, err)
	}
	return &res, nil
}

// StartKafka runs the start command and waits until the broker's port
// answers. A broker already listening is left alone.
func (g *Agent) StartKafka(ctx context.Context, in AgentRequest) (*hostops.StartResult, error) {
	if err := g.check(in); err != nil {
		return nil, err
	}
	defer heartbeatWhile(ctx, "starting")()
	res, err := g.service(in.Timeout).Start(ctx)
	if err != nil {
		return nil, commandErr(g.Config.Host, err)
	}
	return &res, nil
}

// FixClusterIDInput is the cluster id every log dir must carry.
type FixClusterIDInput struct {
	Host      string `json:"host"`
	ClusterID string `json:"cluster_id"`
}

// FixClusterIDResult lists what was done in each log dir.
type FixClusterIDResult struct {
	Host  string                 `json:"host"`
	Fixes []hostops.ClusterIDFix `json:"fixes"`
}

// FixClusterID sets cluster.id in meta.properties of every log dir of the
// broker (from log.dirs in its server.properties) to the restored id. It
// refuses to touch a broker that is running: Kafka reads the file at
// start only, and a running broker would not notice.
func (g *Agent) FixClusterID(ctx context.Context, in FixClusterIDInput) (*FixClusterIDResult, error) {
	if err := g.check(AgentRequest{Host: in.Host}); err != nil {
		return nil, err
	}
	c := g.Config
	if hostops.PortAnswers(c.Listener) {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("host %s: the broker on %s is running; stop it before fixing cluster.id", c.Host, c.Listener), names.ErrPreflight, nil)
	}
	dirs, err := hostops.LogDirs(c.ServerProperties)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("host %s: %v", c.Host, err), names.ErrPreflight, err)
	}
	res := &FixClusterIDResult{Host: c.Host}
	for _, d := range dirs {
		fix, err := hostops.SetClusterID(d, in.ClusterID)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", c.Host, err)
		}
		res.Fixes = append(res.Fixes, fix)
	}
	return res, nil
}
