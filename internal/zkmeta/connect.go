package zkmeta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// sessionTimeout is the session asked of the server (which clamps it to
// its own min/max). A backup walk is short; 30 s rides out a brief server
// failover without losing the session.
const sessionTimeout = 30 * time.Second

// DefaultTimeout is used by Connect when timeout is not positive.
const DefaultTimeout = 15 * time.Second

// Connect opens a ZooKeeper session and returns once the session is
// established. go-zookeeper's Connect only starts a background loop that
// retries forever and logs every failed dial through the standard logger;
// here the wait is bounded by timeout (and ctx), the library's messages go
// to slog at debug level instead, and a failure names the servers and the
// last thing the client saw (for example "connection refused").
func Connect(ctx context.Context, servers []string, timeout time.Duration) (*zk.Conn, error) {
	if len(servers) == 0 {
		return nil, errors.New("connect to ZooKeeper: no servers given")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	where := strings.Join(servers, ",")
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	log := &lastLogger{servers: where}
	type result struct {
		c   *zk.Conn
		ev  <-chan zk.Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// zk.Connect resolves host names without a deadline; run it
		// aside so a stuck resolver cannot outlast timeout.
		c, ev, err := zk.Connect(servers, sessionTimeout, zk.WithLogger(log), zk.WithLogInfo(false))
		ch <- result{c, ev, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() {
			if late := <-ch; late.c != nil {
				late.c.Close()
			}
		}()
		return nil, fmt.Errorf("connect to ZooKeeper %s: resolving servers: %w", where, context.Cause(ctx))
	}
	if r.err != nil {
		return nil, fmt.Errorf("connect to ZooKeeper %s: %w", where, r.err)
	}

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if r.c.State() == zk.StateHasSession {
			return r.c, nil
		}
		select {
		case _, ok := <-r.ev:
			if !ok {
				return nil, fmt.Errorf("connect to ZooKeeper %s: connection closed before a session was established%s", where, log.suffix())
			}
		case <-tick.C:
		case <-ctx.Done():
			state := r.c.State()
			// Close waits up to a second for a close request that a
			// connection without a session cannot send; do not make
			// the caller wait for it too.
			go r.c.Close()
			why := "no session within " + timeout.String()
			if ctx.Err() != context.DeadlineExceeded {
				why = ctx.Err().Error()
			}
			return nil, fmt.Errorf("connect to ZooKeeper %s: %s (state %s)%s", where, why, state, log.suffix())
		}
	}
}

// lastLogger keeps go-zookeeper's last message for error reports and passes
// every message to slog at debug level.
type lastLogger struct {
	servers string
	mu      sync.Mutex
	last    string
}

func (l *lastLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	slog.Debug("zookeeper client", "servers", l.servers, "msg", msg)
	l.mu.Lock()
	l.last = msg
	l.mu.Unlock()
}

func (l *lastLogger) suffix() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == "" {
		return ""
	}
	return "; last client message: " + l.last
}

// SplitConnect splits a Kafka zookeeper.connect string
// ("h1:2181,h2:2181/kafka") into its servers and chroot ("/" when none).
func SplitConnect(s string) (servers []string, chroot string) {
	chroot = "/"
	if i := strings.Index(s, "/"); i >= 0 {
		s, chroot = s[:i], normChroot(s[i:])
	}
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			servers = append(servers, h)
		}
	}
	return servers, chroot
}

// normChroot makes "", "/", "/kafka/" and "/kafka" comparable.
func normChroot(c string) string {
	c = strings.TrimRight(strings.TrimSpace(c), "/")
	if c == "" {
		return "/"
	}
	if !strings.HasPrefix(c, "/") {
		c = "/" + c
	}
	return c
}
