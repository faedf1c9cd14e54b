package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// connOpts are the flags that reach a Temporal frontend: --address,
// --namespace and the mTLS files, each defaulting to its KBR_* variable.
// Every command that talks to Temporal takes them.
type connOpts struct {
	address, namespace          string
	tlsCert, tlsKey, tlsCA, sni string
	// metrics receives the SDK's metrics and kbr's (nil: none).
	metrics client.MetricsHandler
	// dialTimeout bounds the first connection (default 15 s).
	dialTimeout time.Duration
}

func (c *connOpts) AddFlags(fs *pflag.FlagSet) {
	def := os.Getenv("KBR_ADDRESS")
	if def == "" {
		def = "127.0.0.1:7233"
	}
	ns := os.Getenv("KBR_NAMESPACE")
	if ns == "" {
		ns = "default"
	}
	fs.StringVar(&c.address, "address", def, "Temporal frontend host:port (env KBR_ADDRESS)")
	fs.StringVar(&c.namespace, "namespace", ns, "Temporal namespace (env KBR_NAMESPACE)")
	fs.StringVar(&c.tlsCert, "tls-cert", os.Getenv("KBR_TLS_CERT"), "client certificate (PEM) for mTLS (env KBR_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", os.Getenv("KBR_TLS_KEY"), "client key (PEM) for mTLS (env KBR_TLS_KEY)")
	fs.StringVar(&c.tlsCA, "tls-ca", os.Getenv("KBR_TLS_CA"), "CA bundle (PEM) that signed the frontend's certificate (env KBR_TLS_CA)")
	fs.StringVar(&c.sni, "tls-server-name", os.Getenv("KBR_TLS_SERVER_NAME"), "server name to verify on the frontend's certificate (env KBR_TLS_SERVER_NAME)")
}

// options are the client options of the flags: address, namespace, mTLS.
func (c *connOpts) options(logger *slog.Logger) (client.Options, error) {
	opts := client.Options{HostPort: c.address, Namespace: c.namespace, Logger: quietSDKLogger(logger), MetricsHandler: c.metrics}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return opts, withCode(exitBadInput, fmt.Errorf("--tls-cert and --tls-key go together: give both or neither"))
	}
	if c.tlsCert != "" || c.tlsCA != "" {
		tc := &tls.Config{ServerName: c.sni, MinVersion: tls.VersionTLS12}
		if c.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
			if err != nil {
				return opts, withCode(exitBadInput, fmt.Errorf("--tls-cert/--tls-key: %w", err))
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if c.tlsCA != "" {
			pem, err := os.ReadFile(c.tlsCA)
			if err != nil {
				return opts, withCode(exitBadInput, fmt.Errorf("--tls-ca: %w", err))
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return opts, withCode(exitBadInput, fmt.Errorf("--tls-ca %s: no PEM certificate", c.tlsCA))
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	return opts, nil
}

func (c *connOpts) dial(ctx context.Context, logger *slog.Logger) (client.Client, error) {
	opts, err := c.options(logger)
	if err != nil {
		return nil, err
	}
	timeout := c.dialTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, withCode(exitConnect, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", c.address, c.namespace, err))
	}
	return cl, nil
}

// dialNamespaces is a client of the namespace API (which needs no namespace).
func (c *connOpts) dialNamespaces() (client.NamespaceClient, error) {
	opts, err := c.options(nil)
	if err != nil {
		return nil, err
	}
	nc, err := client.NewNamespaceClient(opts)
	if err != nil {
		return nil, withCode(exitConnect, fmt.Errorf("connect to Temporal at %s: %w", c.address, err))
	}
	return nc, nil
}

func quietSDKLogger(l *slog.Logger) sdklog.Logger {
	if l == nil {
		l = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return sdklog.NewStructuredLogger(l)
}

func newLogger(level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}
