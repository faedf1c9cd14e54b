package kmeta

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// GroupOffsets lists the consumer groups of the cluster with the offsets
// they committed. It is the "consumer offsets" data source of a backup and
// is also called by Take when Options.Groups is set.
//
// topics filters offsets by topic name (nil keeps all). With a filter, a
// group that committed nothing on a selected topic is left out, because
// it has nothing to restore; without one every group is listed, empty or
// not. Share groups are skipped: they keep no committed offsets. Offsets
// that older consumers stored in ZooKeeper are not read here; they are part
// of the znode backup.
func GroupOffsets(ctx context.Context, cl *kgo.Client, topics func(string) bool) ([]Group, error) {
	adm := kadm.NewClient(cl) // never Close: that would close the caller's client
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list consumer groups: %w", err)
	}
	var ids []string
	for _, g := range listed.Sorted() {
		if g.ProtocolType != "share" {
			ids = append(ids, g.Group)
		}
	}
	fetched := adm.FetchManyOffsets(ctx, ids...)
	var groups []Group
	for _, id := range ids {
		r, ok := fetched[id]
		if !ok {
			return nil, fmt.Errorf("fetch committed offsets of group %s: no answer for the group", id)
		}
		if r.Err != nil {
			if errors.Is(r.Err, kerr.GroupIDNotFound) {
				continue // deleted while listing
			}
			return nil, fmt.Errorf("fetch committed offsets of group %s: %w", id, r.Err)
		}
		lg := listed[id]
		g := Group{ID: id, State: lg.State, ProtocolType: lg.ProtocolType}
		for t, ps := range r.Fetched {
			if topics != nil && !topics(t) {
				continue
			}
			for p, o := range ps {
				if o.Err != nil {
					if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
						continue // the topic went away; its offset is meaningless
					}
					return nil, fmt.Errorf("fetch committed offset of group %s on %s/%d: %w", id, t, p, o.Err)
				}
				if o.At < 0 {
					continue // nothing committed
				}
				g.Offsets = append(g.Offsets, GroupOffset{
					Topic: t, Partition: p, Offset: o.At, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata,
				})
			}
		}
		if topics != nil && len(g.Offsets) == 0 {
			continue
		}
		sort.Slice(g.Offsets, func(i, j int) bool {
			a, b := g.Offsets[i], g.Offsets[j]
			if a.Topic != b.Topic {
				return a.Topic < b.Topic
			}
			return a.Partition < b.Partition
		})
		groups = append(groups, g)
	}
	return groups, nil
}

// inactiveStates are the group states in which nobody else commits: an
// offset written then is the one consumers will start from.
var inactiveStates = map[string]bool{"": true, "Empty": true, "Dead": true}

// CommitGroupOffsets sets the committed offsets of a group, as a restore
// does after translating them to the target's offsets. It refuses an active
// group: its members would overwrite the offsets with their own next commit,
// and Kafka rejects commits from outside a live generation anyway. The
// leader epoch is left unknown (-1) because the source's epochs mean nothing
// on the target.
func CommitGroupOffsets(ctx context.Context, cl *kgo.Client, group string, offsets map[string]map[int32]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	adm := kadm.NewClient(cl)
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: list groups: %w", group, err)
	}
	if g, ok := listed[group]; ok && !inactiveStates[g.State] {
		return fmt.Errorf("commit offsets of group %s: the group is active (state %s); stop its consumers first", group, g.State)
	}
	os := make(kadm.Offsets)
	for t, ps := range offsets {
		for p, o := range ps {
			os.Add(kadm.Offset{Topic: t, Partition: p, At: o, LeaderEpoch: -1})
		}
	}
	resps, err := adm.CommitOffsets(ctx, group, os)
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	errs := map[string]error{}
	var failed []string
	for t, ps := range resps {
		for p, r := range ps {
			if r.Err != nil {
				tp := fmt.Sprintf("%s/%d", t, p)
				failed, errs[tp] = append(failed, tp), r.Err
			}
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("commit offsets of group %s: %d partition(s) failed, first %s: %w", group, len(failed), failed[0], errs[failed[0]])
	}
	return nil
}

// GroupInactive reports a group state in which nobody else commits offsets.
func GroupInactive(state string) bool { return inactiveStates[state] }
