package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// wireStats counts what a kgo client sent and received: produce batches and
// produce/fetch requests with their round trips. One value is shared by
// every client of a phase.
type wireStats struct {
	batches, batchRecords, batchBytes atomic.Int64
	produceReqs, produceBytes         atomic.Int64
	produceE2E                        atomic.Int64 // ns
	fetchReqs, fetchBytes             atomic.Int64
	fetchE2E                          atomic.Int64 // ns
}

func (s *wireStats) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	s.batches.Add(1)
	s.batchRecords.Add(int64(m.NumRecords))
	s.batchBytes.Add(int64(m.UncompressedBytes))
}

func (s *wireStats) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if e.Err() != nil {
		return
	}
	switch key {
	case kmsg.Produce.Int16():
		s.produceReqs.Add(1)
		s.produceBytes.Add(int64(e.BytesWritten))
		s.produceE2E.Add(int64(e.DurationE2E()))
	case kmsg.Fetch.Int16():
		s.fetchReqs.Add(1)
		s.fetchBytes.Add(int64(e.BytesRead))
		s.fetchE2E.Add(int64(e.DurationE2E()))
	}
}

func (s *wireStats) hook() kgo.Opt { return kgo.WithHooks(s) }

func (s *wireStats) String() string {
	out := ""
	if n := s.produceReqs.Load(); n > 0 {
		out += fmt.Sprintf("%d produce requests, avg %.0f KB, avg round trip %s; %d batches, avg %.0f KB, %.0f records",
			n, float64(s.produceBytes.Load())/float64(n)/1e3, time.Duration(s.produceE2E.Load()/n).Round(10*time.Microsecond),
			s.batches.Load(), float64(s.batchBytes.Load())/float64(max(s.batches.Load(), 1))/1e3,
			float64(s.batchRecords.Load())/float64(max(s.batches.Load(), 1)))
	}
	if n := s.fetchReqs.Load(); n > 0 {
		if out != "" {
			out += "; "
		}
		out += fmt.Sprintf("%d fetch responses, avg %.0f KB, avg round trip %s",
			n, float64(s.fetchBytes.Load())/float64(n)/1e3, time.Duration(s.fetchE2E.Load()/n).Round(10*time.Microsecond))
	}
	return out
}
