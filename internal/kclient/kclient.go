// Package kclient builds franz-go clients from a cluster's configuration and
// checks reachability within a bounded time.
package kclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kbr-project/kbr/internal/config"
)

// New builds a client for c with extra options appended.
func New(c config.Cluster, extra ...kgo.Opt) (*kgo.Client, error) {
	timeout := c.ConnectTimeout.D()
	if timeout <= 0 {
		timeout = config.DefaultConnectTimeout.D()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.BootstrapServers...),
		kgo.DialTimeout(timeout),
		kgo.ClientID("kbr"),
		kgo.RetryTimeout(2 * timeout),
		kgo.MetadataMinAge(time.Second),
	}
	if c.TLS != nil {
		tc, err := tlsConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if s := c.SASL; s != nil {
		pw, err := s.Password.Resolve("cluster.sasl.password")
		if err != nil {
			return nil, err
		}
		switch strings.ToUpper(s.Mechanism) {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: pw}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: pw}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: pw}.AsSha512Mechanism()))
		}
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	return cl, nil
}

func tlsConfig(t *config.TLS) (*tls.Config, error) { return TLSConfig("cluster.tls", t) }

// TLSConfig loads t's files; field names it in errors ("cluster.tls").
func TLSConfig(field string, t *config.TLS) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", field, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file %s: no PEM certificate in it", field, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file/key_file: %w", field, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ErrUnreachable is returned when no broker answers in time.
var ErrUnreachable = errors.New("no broker reachable")

// Ping asks the cluster for its metadata within the connect timeout and
// names the bootstrap servers when none answers.
func Ping(ctx context.Context, c config.Cluster, cl *kgo.Client) (*kmsg.MetadataResponse, error) {
	timeout := c.ConnectTimeout.D()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) || strings.Contains(err.Error(), "connect") {
			return nil, fmt.Errorf("cluster.bootstrap_servers %s: %w within %s: %v", strings.Join(c.BootstrapServers, ","), ErrUnreachable, timeout, err)
		}
		return nil, fmt.Errorf("cluster.bootstrap_servers %s: metadata: %w", strings.Join(c.BootstrapServers, ","), err)
	}
	return resp, nil
}
