package kmeta

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// brokerVersions asks every broker for its ApiVersions, one request per
// broker: brokers of a cluster being upgraded answer differently, and the
// metadata restore must know the oldest of them.
func brokerVersions(ctx context.Context, cl *kgo.Client, brokers []kmsg.MetadataResponseBroker) (map[int32]*kversion.Versions, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  = make(map[int32]*kversion.Versions, len(brokers))
		errs []error
	)
	for _, b := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := kmsg.NewPtrApiVersionsRequest()
			req.ClientSoftwareName = "kbr"
			req.ClientSoftwareVersion = "1"
			resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
			if err == nil && resp.ErrorCode != 0 {
				err = fmt.Errorf("error code %d", resp.ErrorCode)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("api versions of broker %d (%s:%d): %w", b.NodeID, b.Host, b.Port, err))
				return
			}
			out[b.NodeID] = kversion.FromApiVersionsResponse(resp)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// versionGuess is kversion's guess without the leading "v" of an exact
// match, so it reads as the release ("3.9") in file names and reports.
func versionGuess(v *kversion.Versions) string {
	if v == nil {
		return ""
	}
	return strings.TrimPrefix(v.VersionGuess(), "v")
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)(?:\.(\d+))?`)

// parseVersion finds the first dotted release number in a guess ("3.9",
// "at least v4.1", "between v2.8 and v3.0"); ok is false when it has none.
func parseVersion(s string) (v [3]int, ok bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return v, false
	}
	for i := 0; i < 3; i++ {
		if m[i+1] != "" {
			v[i], _ = strconv.Atoi(m[i+1])
		}
	}
	return v, true
}

// lowestVersion is the guess of the oldest broker. Guesses without a
// release number (custom builds) count only when no broker has one.
func lowestVersion(brokers []Broker) string {
	best, bestV, found := "", [3]int{}, false
	for _, b := range brokers {
		v, ok := parseVersion(b.VersionGuess)
		if !ok {
			if best == "" && !found {
				best = b.VersionGuess
			}
			continue
		}
		if !found || less(v, bestV) {
			best, bestV, found = b.VersionGuess, v, true
		}
	}
	return best
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
