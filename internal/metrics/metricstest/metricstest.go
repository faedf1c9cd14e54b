// Package metricstest reads Prometheus' text format back, for tests that
// scrape a kbr process or registry.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Sample is one series' value.
type Sample struct {
	Labels map[string]string
	Value  float64 // counter or gauge value; a histogram's count
	Sum    float64 // a histogram's sum
}

// Scrape is a parsed exposition: metric name to its series.
type Scrape map[string][]Sample

// Parse reads the text format.
func Parse(r io.Reader) (Scrape, error) {
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := Scrape{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			s := Sample{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.Value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.Value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.Value, s.Sum = float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
			case dto.MetricType_SUMMARY:
				s.Value, s.Sum = float64(m.GetSummary().GetSampleCount()), m.GetSummary().GetSampleSum()
			default:
				s.Value = m.GetUntyped().GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

// Get scrapes url (http://host:port/metrics).
func Get(url string) (Scrape, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Value sums the series of name whose labels include every pair of match
// (k1, v1, k2, v2, ...); ok is false when none does.
func (s Scrape) Value(name string, match ...string) (v float64, ok bool) {
	for _, x := range s.Series(name, match...) {
		v += x.Value
		ok = true
	}
	return v, ok
}

// Series are the series of name whose labels include every pair of match.
func (s Scrape) Series(name string, match ...string) []Sample {
	var out []Sample
next:
	for _, x := range s[name] {
		for i := 0; i+1 < len(match); i += 2 {
			if x.Labels[match[i]] != match[i+1] {
				continue next
			}
		}
		out = append(out, x)
	}
	return out
}

// LabelNames are the label names of name's first series, sorted.
func (s Scrape) LabelNames(name string) []string {
	if len(s[name]) == 0 {
		return nil
	}
	var ls []string
	for k := range s[name][0].Labels {
		ls = append(ls, k)
	}
	sort.Strings(ls)
	return ls
}

// Names are the metric names that start with prefix, sorted.
func (s Scrape) Names(prefix string) []string {
	var ns []string
	for n := range s {
		if strings.HasPrefix(n, prefix) {
			ns = append(ns, n)
		}
	}
	sort.Strings(ns)
	return ns
}
