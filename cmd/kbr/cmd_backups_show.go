package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/catalog"
	"github.com/kbr-project/kbr/internal/kraftlog"
	"github.com/kbr-project/kbr/storage"
)

// showOpts are the options of `kbr backups show`.
type showOpts struct {
	out           outputOpts
	recoveryPoint string
	targetFile    string
	node          int32
	nodeGiven     bool
}

func (o *showOpts) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.recoveryPoint, "recovery-point", "", "manifest name relative to the target, or latest")
	fs.StringVar(&o.targetFile, "target", "", "YAML file holding the target (type, path and the path type's parameters)")
	fs.Int32Var(&o.node, "node", -1, "the node whose metadata log is decoded (default: the one that reaches furthest)")
	o.out.AddFlags(fs)
}

// showCmd is `kbr backups show`.
func showCmd() *cobra.Command {
	o := &showOpts{out: outputOpts{help: "machine-readable output"}}
	cmd := &cobra.Command{
		Use:   "show PATH",
		Short: "Say what a recovery point holds; for a KRaft metadata log, what its snapshot and log hold (topics, partitions, ACLs, SCRAM users without secrets, quotas, feature levels, voters)",
		Long: `PATH is given as to 'kbr backups verify': a manifest file on local disk, or a
LocalDir backup path with --recovery-point NAME|latest, or --target FILE with
--recovery-point for other path types. The command reads the target from
where it runs (no Temporal).

For a recovery point with the kraft_log data source it lists every node's
metadata log (snapshot, segments, end offset) and decodes one of them (--node,
default the one that reaches furthest): the newest snapshot, then the log
after it up to the copy's end. Each file is checked against its size and
SHA-256 as it is read. SCRAM credentials are listed by user, mechanism and
iterations: their salted keys are never shown.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.nodeGiven = cmd.Flags().Changed("node")
			ctx, stop := interruptible()
			defer stop()
			return runBackupsShow(ctx, o, args, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runBackupsShow reads the recovery point the arguments name, in this
// process (no Temporal), and says what it holds.
func runBackupsShow(ctx context.Context, o *showOpts, args []string, s streams) error {
	in, err := verifyInput(args, o.recoveryPoint, o.targetFile)
	if err != nil {
		return withCode(exitBadInput, err)
	}
	b, err := storageRegistry.Open(ctx, in.Source.Target)
	if err != nil {
		return withCode(exitBadInput, err)
	}
	defer b.Close()
	name := in.Source.RecoveryPoint
	if name == "latest" {
		all, err := activities.ListRecoveryPoints(ctx, b)
		if err != nil {
			return withCode(exitFailed, err)
		}
		if len(all) == 0 {
			return withCode(exitBadInput, fmt.Errorf("no recovery point on %s", in.Source.Target))
		}
		name = all[len(all)-1].Manifest
	}
	out, err := showRecoveryPoint(ctx, b, name, o.node, o.nodeGiven)
	if err != nil {
		return withCode(exitFailed, err)
	}
	return o.out.print(s.out, out, func() { printShow(s.out, out) })
}

// shown is what `kbr backups show` prints.
type shown struct {
	RecoveryPoint *activities.RecoveryPoint `json:"recovery_point"`
	DataSources   []string                  `json:"data_sources"`
	Mode          string                    `json:"mode"`
	KRaftLog      []shownNode               `json:"kraft_log,omitempty"`
	// Node is the node whose log Metadata decodes.
	Node     *int32            `json:"node,omitempty"`
	Metadata *kraftlog.Summary `json:"metadata,omitempty"`
}

type shownNode struct {
	Node      int32                    `json:"node"`
	Host      string                   `json:"host"`
	Roles     []string                 `json:"roles"`
	ClusterID string                   `json:"cluster_id"`
	Snapshot  *backupset.KRaftSnapshot `json:"snapshot,omitempty"`
	EndOffset int64                    `json:"end_offset"`
	LastEpoch int32                    `json:"last_epoch"`
	TakenAt   time.Time                `json:"taken_at"`
	Files     []string                 `json:"files"`
	Bytes     int64                    `json:"bytes"`
	Dirs      []backupset.KRaftDir     `json:"dirs"`
	Whole     bool                     `json:"whole,omitempty"`
}

func showRecoveryPoint(ctx context.Context, b storage.Backend, name string, node int32, nodeGiven bool) (*shown, error) {
	m, err := catalog.Manifest(ctx, b, name)
	if err != nil {
		return nil, err
	}
	sum, err := activities.SummarizeRecoveryPoint(ctx, b, name)
	if err != nil {
		return nil, err
	}
	out := &shown{RecoveryPoint: sum, DataSources: m.DataSources, Mode: m.Mode}
	var pick *backupset.KRaftNode
	for i := range m.KRaftLog {
		n := &m.KRaftLog[i]
		sn := shownNode{Node: n.Node, Host: n.Host, Roles: n.Roles, ClusterID: n.ClusterID, Snapshot: n.Snapshot, EndOffset: n.EndOffset,
			LastEpoch: n.LastEpoch, TakenAt: n.TakenAt, Bytes: n.Bytes(), Dirs: n.Dirs, Whole: n.Whole}
		for _, f := range n.Files {
			sn.Files = append(sn.Files, f.FileName())
		}
		out.KRaftLog = append(out.KRaftLog, sn)
		if nodeGiven && n.Node == node || !nodeGiven && (pick == nil || n.EndOffset > pick.EndOffset) && len(n.Files) > 0 {
			pick = n
		}
	}
	if nodeGiven && pick == nil {
		return nil, fmt.Errorf("recovery point %s holds no metadata log of node %d", name, node)
	}
	if pick == nil {
		return out, nil
	}
	im, err := readKRaftImage(ctx, b, pick)
	if err != nil {
		return nil, fmt.Errorf("recovery point %s: node %d: %w", name, pick.Node, err)
	}
	s := im.Summary()
	out.Node, out.Metadata = &pick.Node, &s
	return out, nil
}

// readKRaftImage decodes a node's metadata log from the target: its newest
// snapshot, then the segments after it, every file checked as it is read.
func readKRaftImage(ctx context.Context, b storage.Backend, n *backupset.KRaftNode) (*kraftlog.Image, error) {
	byName := map[string]backupset.KRaftFile{}
	var files []kraftlog.FileInfo
	for _, f := range n.Files {
		byName[f.FileName()] = f
		files = append(files, kraftlog.FileInfo{Name: f.FileName(), Size: f.Size})
	}
	plan, err := kraftlog.PlanBackup(files)
	if err != nil {
		return nil, err
	}
	im := kraftlog.NewImage()
	var from int64
	for _, p := range plan.Files {
		f := byName[p.Name]
		err := catalog.ReadVerified(ctx, b, f.FileEntry, func(r io.Reader) error {
			if p.Kind == kraftlog.KindSnapshot {
				return im.ReadSnapshot(r, *plan.Snapshot)
			}
			return im.ReadSegment(r, from)
		})
		if err != nil {
			return nil, err
		}
		if p.Kind == kraftlog.KindSnapshot {
			from = plan.Snapshot.EndOffset
		}
	}
	return im, nil
}

func printShow(w io.Writer, s *shown) {
	rp := s.RecoveryPoint
	fmt.Fprintf(w, "recovery point %s\n", rp.Manifest)
	fmt.Fprintf(w, "  cluster %s (id %s), Kafka %s, mode %s, executed %s\n", rp.Cluster, rp.ClusterID, rp.KafkaVersion, s.Mode, rp.ExecutedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "  data sources %s; %d files, %d bytes; %d topics, %d partitions, %d records of topic data\n",
		strings.Join(s.DataSources, ", "), rp.Files, rp.Bytes, rp.TopicCount, rp.Partitions, rp.Records)
	if len(s.KRaftLog) == 0 {
		fmt.Fprintln(w, "  no KRaft metadata log (data source kraft_log) in it")
		return
	}
	for _, n := range s.KRaftLog {
		what := "the log from offset 0"
		if n.Snapshot != nil {
			what = fmt.Sprintf("snapshot at offset %d (epoch %d) and the log after it", n.Snapshot.EndOffset, n.Snapshot.Epoch)
		}
		if n.Whole {
			what = "the whole directory, as it was (a safety copy)"
		}
		fmt.Fprintf(w, "metadata log of node %d (host %s, %s): %s, up to offset %d (epoch %d), copied %s; %d files, %d bytes\n",
			n.Node, n.Host, strings.Join(n.Roles, ","), what, n.EndOffset, n.LastEpoch, n.TakenAt.Format(time.RFC3339), len(n.Files), n.Bytes)
		for _, d := range n.Dirs {
			role := "log dir"
			if d.Metadata {
				role = "metadata log dir"
			}
			if d.NoMeta {
				fmt.Fprintf(w, "  %s %s: no meta.properties\n", role, d.Path)
				continue
			}
			fmt.Fprintf(w, "  %s %s: cluster.id=%s node.id=%s directory.id=%s\n", role, d.Path, d.ClusterID, d.NodeID, d.DirectoryID)
		}
	}
	md := s.Metadata
	if md == nil {
		return
	}
	fmt.Fprintf(w, "\nwhat node %d's metadata log holds, up to offset %d (epoch %d)", *s.Node, md.NextOffset, md.LastEpoch)
	if md.LastTimestamp != nil {
		fmt.Fprintf(w, ", last written %s", md.LastTimestamp.Format(time.RFC3339))
	}
	fmt.Fprintln(w, ":")
	var feats []string
	for k, v := range md.Features {
		feats = append(feats, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(feats)
	fmt.Fprintf(w, "  features: %s\n", strings.Join(feats, " "))
	fmt.Fprintf(w, "  kraft.version %d, voters:", md.KRaftVersion)
	for _, v := range md.Voters {
		var eps []string
		for _, e := range v.Endpoints {
			eps = append(eps, fmt.Sprintf("%s://%s:%d", e.Name, e.Host, e.Port))
		}
		fmt.Fprintf(w, " %d (directory %s, %s)", v.ID, v.DirectoryID, strings.Join(eps, " "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  topics: %d, partitions: %d\n", len(md.Topics), md.Partitions)
	for _, t := range md.Topics {
		var reps []string
		for _, p := range t.Partitions {
			reps = append(reps, fmt.Sprintf("%d:%v", p.Partition, p.Replicas))
		}
		cfg := ""
		if len(t.Configs) > 0 {
			var cs []string
			for k, v := range t.Configs {
				cs = append(cs, k+"="+v)
			}
			sort.Strings(cs)
			cfg = " " + strings.Join(cs, ",")
		}
		fmt.Fprintf(tw, "    %s\t%s\t%d partitions\t%s%s\n", t.Name, t.ID, len(t.Partitions), truncate(strings.Join(reps, " "), 60), cfg)
	}
	tw.Flush()
	fmt.Fprintf(w, "  ACLs: %d\n", len(md.ACLs))
	for _, a := range md.ACLs {
		fmt.Fprintf(w, "    %s %s %s on %s %s (%s) from %s\n", a.Principal, a.Permission, a.Operation, a.ResourceType, a.ResourceName, a.PatternType, a.Host)
	}
	fmt.Fprintf(w, "  SCRAM users: %d\n", len(md.Scram))
	for _, u := range md.Scram {
		fmt.Fprintf(w, "    %s %s (%d iterations)\n", u.Name, u.Mechanism, u.Iterations)
	}
	if len(md.Quotas) > 0 {
		fmt.Fprintf(w, "  client quotas: %d\n", len(md.Quotas))
		for _, q := range md.Quotas {
			var vs []string
			for k, v := range q.Values {
				vs = append(vs, fmt.Sprintf("%s=%g", k, v))
			}
			sort.Strings(vs)
			fmt.Fprintf(w, "    %s: %s\n", q.Entity, strings.Join(vs, " "))
		}
	}
	if len(md.Configs) > 0 {
		var cs []string
		for k, v := range md.Configs {
			cs = append(cs, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(cs)
		fmt.Fprintf(w, "  configs set: %s\n", strings.Join(cs, ", "))
	}
	fmt.Fprintf(w, "  %d metadata records in all\n", md.Records)
}
