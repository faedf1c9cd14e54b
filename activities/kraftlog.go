package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/catalog"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/hostops"
	"github.com/kbr-project/kbr/internal/kraftlog"
	"github.com/kbr-project/kbr/internal/names"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/decorate"
)

// The KRaft metadata log: what `kbr agent` does on a KRaft node (copy its
// metadata log to the backup target, put a backed-up one in place, make
// meta.properties agree) and what the main worker checks around it. The
// agent opens the backup target itself: file bytes never pass through
// Temporal.

// kraftNode reads the node's storage settings from its server.properties.
func (g *Agent) kraftNode() (kraftlog.Node, error) {
	props, err := hostops.ReadProperties(g.Config.ServerProperties)
	if err != nil {
		return kraftlog.Node{}, g.preflightErr(fmt.Errorf("read %s: %w", g.Config.ServerProperties, err))
	}
	n, err := kraftlog.ParseNode(props)
	if err != nil {
		return n, g.preflightErr(fmt.Errorf("%s: %w", g.Config.ServerProperties, err))
	}
	return n, nil
}

func (g *Agent) preflightErr(err error) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("host %s: %v", g.Config.Host, err), names.ErrPreflight, nil)
}

// running reports whether the node's listener answers or a process holds it.
func (g *Agent) running() bool {
	if hostops.PortAnswers(g.Config.Listener) {
		return true
	}
	_, port, err := net.SplitHostPort(g.Config.Listener)
	p, _ := strconv.Atoi(port)
	return err == nil && p > 0 && hostops.ListenerPID(p) > 0
}

// openTarget opens the backup target from the agent's host, with the
// behaviour every kbr target has (logged, short outages retried).
func (g *Agent) openTarget(ctx context.Context, t storage.Target) (storage.Backend, error) {
	if g.Storage == nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("host %s: this agent opens no backup target (built without a storage registry)", g.Config.Host), names.ErrStorage, nil)
	}
	b, err := g.Storage.Open(ctx, t)
	if err != nil {
		return nil, permanent(fmt.Errorf("host %s: open %s: %w", g.Config.Host, t, err))
	}
	logger := g.Logger
	if logger == nil {
		logger = (&Activities{}).log()
	}
	return decorate.Retry(decorate.Log(b, logger), decorate.DefaultPolicy), nil
}

// readDirs reads meta.properties of every log dir of the node.
func readDirs(n kraftlog.Node) []backupset.KRaftDir {
	var out []backupset.KRaftDir
	for i, d := range n.Dirs() {
		kd := backupset.KRaftDir{Path: d, Metadata: i == 0}
		data, err := os.ReadFile(filepath.Join(d, kraftlog.MetaFile))
		if err != nil {
			kd.NoMeta = true
		} else {
			m := kraftlog.ParseMeta(data)
			kd.ClusterID, kd.NodeID, kd.DirectoryID = m.ClusterID, m.NodeID, m.DirectoryID
		}
		out = append(out, kd)
	}
	return out
}

// listMetadataLog lists __cluster_metadata-0 (nil when it does not exist).
func listMetadataLog(dir string) ([]kraftlog.FileInfo, bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var out []kraftlog.FileInfo
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted by Kafka since the listing
		}
		out = append(out, kraftlog.FileInfo{Name: e.Name(), Size: fi.Size()})
	}
	return out, true, nil
}

// KRaftNodeInfo is a KRaft node as its agent finds it.
type KRaftNodeInfo struct {
	Host         string        `json:"host"`
	KbrVersion   string        `json:"kbr_version"`
	KafkaVersion string        `json:"kafka_version,omitempty"`
	Listener     string        `json:"listener"`
	Running      bool          `json:"running"`
	Node         kraftlog.Node `json:"node"`
	// Dirs are the node's log dirs (the metadata log dir first) with what
	// their meta.properties say.
	Dirs []backupset.KRaftDir `json:"dirs"`
	// MetadataLog says what __cluster_metadata-0 holds now.
	MetadataLog KRaftLogState     `json:"metadata_log"`
	Disk        *hostops.DiskFree `json:"disk,omitempty"`
}

// KRaftLogState is a node's metadata log directory as listed.
type KRaftLogState struct {
	Exists   bool                 `json:"exists"`
	Files    int                  `json:"files"`
	Bytes    int64                `json:"bytes"`
	Snapshot *kraftlog.SnapshotID `json:"snapshot,omitempty"`
}

// KRaftInspect reports the node: roles, node id, its log dirs and their
// ids, its metadata log, the Kafka version, whether it runs. It reads only.
func (g *Agent) KRaftInspect(ctx context.Context, in AgentRequest) (*KRaftNodeInfo, error) {
	if err := g.check(in); err != nil {
		return nil, err
	}
	c := g.Config
	n, err := g.kraftNode()
	if err != nil {
		return nil, err
	}
	info := &KRaftNodeInfo{Host: c.Host, KbrVersion: KbrVersion(), KafkaVersion: c.KafkaVersion, Listener: c.Listener, Running: g.running(), Node: n, Dirs: readDirs(n)}
	if info.KafkaVersion == "" && c.KafkaLibs != "" {
		info.KafkaVersion = hostops.KafkaVersionFromLibs(c.KafkaLibs)
	}
	files, exists, err := listMetadataLog(filepath.Join(n.MetadataLogDir, kraftlog.Dir))
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", c.Host, err)
	}
	info.MetadataLog.Exists = exists
	for _, f := range files {
		info.MetadataLog.Files++
		info.MetadataLog.Bytes += f.Size
		if id, ok := kraftlog.ParseSnapshotName(f.Name); ok && (info.MetadataLog.Snapshot == nil || info.MetadataLog.Snapshot.Less(id)) {
			info.MetadataLog.Snapshot = &id
		}
	}
	for d := n.MetadataLogDir; d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			free := hostops.FreeDisk([]string{d})[0]
			info.Disk = &free
			break
		}
	}
	return info, nil
}

// KRaftCopyInput asks an agent for a copy of its node's metadata log.
type KRaftCopyInput struct {
	Host string `json:"host"`
	// Node is the node id the config names for the host: the node's own
	// must be it.
	Node   int32          `json:"node"`
	Target storage.Target `json:"target"`
	// Dir is the node's folder in the recovery point (<...>_kraftlog_<time>/node-<id>).
	Dir string `json:"dir"`
	// Whole copies every snapshot, segment and state file as it is (a
	// safety copy before a restore), not only what a backup takes.
	Whole bool `json:"whole,omitempty"`
}

// CopyKRaftLog copies the node's metadata log to the target: the newest
// snapshot whole, and the segments from the one holding its end offset on,
// each up to its size when the copy began (the last batch Kafka was
// appending then is left out whole), every batch checked on the way; with
// the ids of every log dir's meta.properties. A snapshot never changes once
// written, and segments only grow, so the copy is consistent: the log up
// to the returned end offset. With Whole, it copies the directory as it is
// (nothing checked: it is the state a restore is about to replace).
func (g *Agent) CopyKRaftLog(ctx context.Context, in KRaftCopyInput) (*backupset.KRaftNode, error) {
	if err := g.check(AgentRequest{Host: in.Host}); err != nil {
		return nil, err
	}
	n, err := g.kraftNode()
	if err != nil {
		return nil, err
	}
	if n.NodeID != in.Node {
		return nil, g.preflightErr(fmt.Errorf("%s says node.id=%d, the config names node %d for this host", g.Config.ServerProperties, n.NodeID, in.Node))
	}
	if !in.Whole && !n.Controller() {
		return nil, g.preflightErr(fmt.Errorf("node %d is not a controller (process.roles=%s): its metadata log is a copy of the controllers'", n.NodeID, strings.Join(n.Roles, ",")))
	}
	res := &backupset.KRaftNode{Node: n.NodeID, Host: g.Config.Host, Roles: n.Roles, MetadataDir: n.MetadataLogDir, Dirs: readDirs(n),
		TakenAt: time.Now().UTC(), Whole: in.Whole, Files: []backupset.KRaftFile{}}
	res.ClusterID = res.Dirs[0].ClusterID
	src := filepath.Join(n.MetadataLogDir, kraftlog.Dir)
	files, exists, err := listMetadataLog(src)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	var plan []kraftlog.PlannedFile
	switch {
	case in.Whole:
		plan = kraftlog.SafetyFiles(files)
	case !exists:
		return nil, g.preflightErr(fmt.Errorf("%s does not exist: no metadata log to back up", src))
	default:
		p, err := kraftlog.PlanBackup(files)
		if err != nil {
			return nil, g.preflightErr(fmt.Errorf("%s: %w", src, err))
		}
		plan = p.Files
		if p.Snapshot != nil {
			res.Snapshot = &backupset.KRaftSnapshot{EndOffset: p.Snapshot.EndOffset, Epoch: p.Snapshot.Epoch}
			res.EndOffset, res.LastEpoch = p.Snapshot.EndOffset, p.Snapshot.Epoch
		}
	}
	b, err := g.openTarget(ctx, in.Target)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	defer heartbeatWhile(ctx, "copying the metadata log")()
	next := int64(-1)
	for _, f := range plan {
		name := in.Dir + "/" + f.Name
		var cr kraftlog.CopyResult
		entry, err := g.copyFile(ctx, b, filepath.Join(src, f.Name), name, func(w io.Writer, r io.Reader) error {
			if in.Whole {
				_, err := io.CopyN(w, r, f.Limit)
				if errors.Is(err, io.EOF) {
					err = nil // truncated by Kafka since the listing: what is there
				}
				return err
			}
			var err error
			cr, err = kraftlog.CopyBatches(w, r, f.Limit)
			return err
		})
		if err != nil {
			return nil, err
		}
		if !in.Whole {
			switch {
			case f.Kind == kraftlog.KindSnapshot && (cr.Cut || cr.Bytes != f.Limit):
				return nil, fmt.Errorf("host %s: snapshot %s: %d of its %d bytes are whole batches", g.Config.Host, f.Name, cr.Bytes, f.Limit)
			case f.Kind == kraftlog.KindSegment && cr.Batches > 0:
				if next >= 0 && cr.FirstOffset < next {
					return nil, fmt.Errorf("host %s: segment %s starts at offset %d, below the previous segment's end %d (the log changed during the copy; retried)", g.Config.Host, f.Name, cr.FirstOffset, next)
				}
				next = cr.NextOffset
				if cr.NextOffset > res.EndOffset {
					res.EndOffset, res.LastEpoch = cr.NextOffset, cr.LastEpoch
				}
			}
		}
		res.Files = append(res.Files, backupset.KRaftFile{FileEntry: *entry, Kind: f.Kind, Base: f.Base})
		activity.RecordHeartbeat(ctx, name)
	}
	return res, nil
}

// copyFile streams a local file to the target through fn, hashing what it
// writes.
func (g *Agent) copyFile(ctx context.Context, b storage.Backend, local, name string, fn func(io.Writer, io.Reader) error) (*backupset.FileEntry, error) {
	f, err := os.Open(local)
	if err != nil {
		// Kafka deletes old snapshots and segments: the next attempt lists again.
		return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	defer f.Close()
	entry, err := writeHashed(ctx, b, name, func(w io.Writer) error { return fn(w, f) })
	if err != nil {
		// A damaged batch is retried (the log may have been truncated by
		// the quorum during the copy); the target's permanent errors are not.
		return nil, permanent(fmt.Errorf("host %s: %s: %w", g.Config.Host, local, err))
	}
	return entry, nil
}

// KRaftPutInput asks an agent to put a backed-up metadata log in place.
type KRaftPutInput struct {
	Host     string         `json:"host"`
	Target   storage.Target `json:"target"`
	Manifest string         `json:"manifest"`
	// Node is the node's id; Controller says the node votes in the quorum
	// and gets its metadata log from the recovery point. A node that is no
	// controller has its metadata log removed: it fetches the restored one
	// from the controllers.
	Node       int32 `json:"node"`
	Controller bool  `json:"controller"`
}

// KRaftPutResult says what was put in place.
type KRaftPutResult struct {
	Host string `json:"host"`
	Dir  string `json:"dir"`
	// Files and Bytes were written; Removed files of the old log deleted.
	Files   int   `json:"files"`
	Bytes   int64 `json:"bytes"`
	Removed int   `json:"removed"`
	// Cleared: a broker's metadata log removed.
	Cleared bool `json:"cleared,omitempty"`
}

// stagingDir is where a restore downloads the files before they replace
// the metadata log: a directory inside __cluster_metadata-0, which Kafka
// does not read (a log reads the files of its directory only), so a
// leftover never stops the node. A complete download is marked, so a
// retried attempt swaps what it has.
const stagingDir = ".kbr-restore"

// stagedMark is written in stagingDir once every file is in it, verified.
const stagedMark = ".complete"

// PutKRaftLog replaces the node's metadata log with the recovery point's:
// refused while the node runs; every file downloaded into a staging
// directory and checked (size and SHA-256) first; then the files of the
// old log that the backup does not have deleted and the backup's moved
// into place. A retried attempt finishes what a failed one began. A node
// that is not a controller has its metadata log removed: it fetches the
// restored one from the controllers.
func (g *Agent) PutKRaftLog(ctx context.Context, in KRaftPutInput) (*KRaftPutResult, error) {
	if err := g.check(AgentRequest{Host: in.Host}); err != nil {
		return nil, err
	}
	if g.running() {
		return nil, g.preflightErr(fmt.Errorf("the node on %s is running; stop it before its metadata log is replaced", g.Config.Listener))
	}
	n, err := g.kraftNode()
	if err != nil {
		return nil, err
	}
	if n.NodeID != in.Node {
		return nil, g.preflightErr(fmt.Errorf("%s says node.id=%d, the restore names node %d for this host", g.Config.ServerProperties, n.NodeID, in.Node))
	}
	dir := filepath.Join(n.MetadataLogDir, kraftlog.Dir)
	res := &KRaftPutResult{Host: g.Config.Host, Dir: dir}
	if !in.Controller {
		files, _, err := listMetadataLog(dir)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("host %s: remove %s: %w", g.Config.Host, dir, err)
		}
		res.Removed, res.Cleared = len(files), true
		return res, nil
	}
	b, err := g.openTarget(ctx, in.Target)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	node, err := g.backedUp(ctx, b, in.Manifest, n.NodeID)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	want := map[string]backupset.KRaftFile{}
	for _, f := range node.Files {
		if !kraftlog.ValidRestoreName(f.FileName(), f.Kind) {
			return nil, g.preflightErr(fmt.Errorf("recovery point %s: %s is not a %s of a metadata log", in.Manifest, f.Name, f.Kind))
		}
		want[f.FileName()] = f
	}
	stage := filepath.Join(dir, stagingDir)
	mark := listDigest(node.Files)
	if got, err := os.ReadFile(filepath.Join(stage, stagedMark)); err != nil || string(got) != mark {
		if err := g.download(ctx, b, in.Manifest, node, stage, mark); err != nil {
			return nil, err
		}
	}
	// The swap: the old files the backup lacks go, the staged ones move in.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	for _, e := range ents {
		if e.Name() == stagingDir {
			continue
		}
		if _, keep := want[e.Name()]; keep && e.Type().IsRegular() {
			continue // replaced below, or already moved in by an earlier attempt
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
		}
		res.Removed++
	}
	for name, f := range want {
		staged := filepath.Join(stage, name)
		if _, err := os.Stat(staged); err == nil {
			if err := os.Rename(staged, filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
			}
		}
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Size() != f.Size {
			return nil, fmt.Errorf("host %s: %s is not in place after the swap (%v)", g.Config.Host, name, err)
		}
		res.Files++
		res.Bytes += f.Size
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	if err := os.RemoveAll(stage); err != nil {
		return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	return res, nil
}

// download fetches every file of the node into the staging directory,
// checked against the manifest, then marks it complete.
func (g *Agent) download(ctx context.Context, b storage.Backend, manifest string, node *backupset.KRaftNode, stage, mark string) error {
	if err := os.RemoveAll(stage); err != nil {
		return fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	defer heartbeatWhile(ctx, "downloading the metadata log")()
	for _, f := range node.Files {
		out, err := os.OpenFile(filepath.Join(stage, f.FileName()), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("host %s: %w", g.Config.Host, err)
		}
		err = catalog.ReadVerified(ctx, b, f.FileEntry, func(r io.Reader) error { _, err := io.Copy(out, r); return err })
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return permanent(fmt.Errorf("host %s: recovery point %s: %w", g.Config.Host, manifest, err))
		}
	}
	if err := writeFileSync(filepath.Join(stage, stagedMark), []byte(mark), 0o644); err != nil {
		return fmt.Errorf("host %s: %w", g.Config.Host, err)
	}
	return syncDir(stage)
}

// backedUp reads the node's metadata log entry from the recovery point.
func (g *Agent) backedUp(ctx context.Context, b storage.Backend, manifest string, node int32) (*backupset.KRaftNode, error) {
	m, err := catalog.Manifest(ctx, b, manifest)
	if err != nil {
		return nil, permanent(fmt.Errorf("host %s: %w", g.Config.Host, err))
	}
	n := m.KRaftNodeOf(node)
	if n == nil {
		return nil, g.preflightErr(fmt.Errorf("recovery point %s holds no metadata log of node %d", manifest, node))
	}
	return n, nil
}

// listDigest identifies a list of files (names and checksums).
func listDigest(files []backupset.KRaftFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %d %s\n", f.Name, f.Size, f.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// KRaftFixInput is what every meta.properties of a node must agree with:
// the restored cluster id and, for a controller, the directory ids its log
// dirs had in the recovery point.
type KRaftFixInput struct {
	Host       string         `json:"host"`
	Target     storage.Target `json:"target"`
	Manifest   string         `json:"manifest"`
	ClusterID  string         `json:"cluster_id"`
	Node       int32          `json:"node"`
	Controller bool           `json:"controller"`
}

// KRaftFixResult lists what was done in each log dir.
type KRaftFixResult struct {
	Host  string             `json:"host"`
	Fixes []kraftlog.MetaFix `json:"fixes"`
}

// FixKRaftMeta makes meta.properties of every log dir of the node (the
// metadata log dir and log.dirs) agree with the restored metadata log:
// cluster.id the backup's, directory.id the backed-up one of the same dir,
// which the quorum's voters and the partitions' directory assignments name
// (kraftlog.PlanMetaFixes). Refused while the node runs. Each file is
// written atomically; the original is kept once as meta.properties.kbr-orig.
func (g *Agent) FixKRaftMeta(ctx context.Context, in KRaftFixInput) (*KRaftFixResult, error) {
	if err := g.check(AgentRequest{Host: in.Host}); err != nil {
		return nil, err
	}
	if g.running() {
		return nil, g.preflightErr(fmt.Errorf("the node on %s is running; stop it before fixing meta.properties", g.Config.Listener))
	}
	n, err := g.kraftNode()
	if err != nil {
		return nil, err
	}
	var current []kraftlog.CurrentDir
	for _, d := range n.Dirs() {
		data, err := os.ReadFile(filepath.Join(d, kraftlog.MetaFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
		}
		current = append(current, kraftlog.CurrentDir{Path: d, Meta: data})
	}
	if n.NodeID != in.Node {
		return nil, g.preflightErr(fmt.Errorf("%s says node.id=%d, the restore names node %d for this host", g.Config.ServerProperties, n.NodeID, in.Node))
	}
	var backup []kraftlog.BackedUpDir
	if in.Controller {
		b, err := g.openTarget(ctx, in.Target)
		if err != nil {
			return nil, err
		}
		node, err := g.backedUp(ctx, b, in.Manifest, n.NodeID)
		b.Close()
		if err != nil {
			return nil, err
		}
		for _, d := range node.Dirs {
			backup = append(backup, kraftlog.BackedUpDir{Path: d.Path, Metadata: d.Metadata, DirectoryID: d.DirectoryID})
		}
	}
	fixes, err := kraftlog.PlanMetaFixes(n, in.ClusterID, current, backup)
	if err != nil {
		return nil, g.preflightErr(err)
	}
	for _, f := range fixes {
		if f.Data == nil {
			continue
		}
		path := filepath.Join(f.Dir, kraftlog.MetaFile)
		orig := path + hostops.OrigSuffix
		if old, err := os.ReadFile(path); err == nil {
			if _, err := os.Stat(orig); errors.Is(err, fs.ErrNotExist) {
				if err := writeFileAtomic(orig, old); err != nil {
					return nil, fmt.Errorf("host %s: keep the original %s: %w", g.Config.Host, path, err)
				}
			}
		}
		if err := os.MkdirAll(f.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
		}
		if err := writeFileAtomic(path, f.Data); err != nil {
			return nil, fmt.Errorf("host %s: %w", g.Config.Host, err)
		}
	}
	return &KRaftFixResult{Host: g.Config.Host, Fixes: fixes}, nil
}

// writeFileAtomic writes through a temp file in the same dir: write,
// fsync, rename, fsync the dir. A crash leaves the old or the new file.
func writeFileAtomic(path string, data []byte) error {
	perm := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
	}
	tmp := path + ".kbr-tmp"
	if err := writeFileSync(tmp, data, perm); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func writeFileSync(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ---------------------------------------------------------------------------
// The main worker's side.

// KRaftPreflightInput is a KRaft metadata restore to check.
type KRaftPreflightInput struct {
	Config     config.KRaftRestore `json:"config"`
	Manifest   string              `json:"manifest"`
	ExecutedAt time.Time           `json:"executed_at"`
}

// KRaftPreflight is what the main worker's checks found.
type KRaftPreflight struct {
	BackupVersion   string `json:"backup_version"`
	BackupClusterID string `json:"backup_cluster_id"`
	// Nodes are the recovery point's metadata logs, without their files.
	Nodes []KRaftBackedUp `json:"nodes"`
	// LiveVersion and LiveClusterID are the running cluster's, when it
	// answers (LiveError says why not).
	LiveVersion   string `json:"live_version,omitempty"`
	LiveClusterID string `json:"live_cluster_id,omitempty"`
	LiveError     string `json:"live_error,omitempty"`
	// SafetyTaskDir is the folder the safety copy goes to.
	SafetyTaskDir string `json:"safety_task_dir"`
}

// KRaftBackedUp is one node's metadata log in the recovery point.
type KRaftBackedUp struct {
	Node      int32     `json:"node"`
	Host      string    `json:"host"`
	EndOffset int64     `json:"end_offset"`
	LastEpoch int32     `json:"last_epoch"`
	Snapshot  string    `json:"snapshot,omitempty"`
	Files     int       `json:"files"`
	Bytes     int64     `json:"bytes"`
	TakenAt   time.Time `json:"taken_at"`
}

// KRaftRestorePreflight checks, reading only, what the restore needs of the
// recovery point (it holds the metadata logs of a KRaft cluster, all of one
// cluster id) and of the live cluster if it answers, and finds the safety
// copy's folder. Every problem is listed in one error. (The recovery point's
// files are verified by ResolveRecoveryPoint, the nodes by their agents.)
func (a *Activities) KRaftRestorePreflight(ctx context.Context, in KRaftPreflightInput) (*KRaftPreflight, error) {
	cfg := in.Config
	if err := cfg.Validate(); err != nil {
		return nil, badInput("%v", err)
	}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	rep := &KRaftPreflight{}
	b, release, err := a.target(ctx, cfg.Source.Target)
	if err != nil {
		return nil, err
	}
	defer release()
	m, err := a.loadManifest(ctx, b, in.Manifest)
	switch {
	case err != nil:
		fail("%v", err)
	case len(m.KRaftLog) == 0:
		fail("recovery point %s holds no metadata log (data sources %v): back up with the kraft_log data source", in.Manifest, m.DataSources)
	default:
		rep.BackupVersion = m.KafkaVersion
		for _, n := range m.KRaftLog {
			bu := KRaftBackedUp{Node: n.Node, Host: n.Host, EndOffset: n.EndOffset, LastEpoch: n.LastEpoch, Files: len(n.Files), Bytes: n.Bytes(), TakenAt: n.TakenAt}
			if n.Snapshot != nil {
				bu.Snapshot = kraftlog.SnapshotID{EndOffset: n.Snapshot.EndOffset, Epoch: n.Snapshot.Epoch}.FileName()
			}
			rep.Nodes = append(rep.Nodes, bu)
			switch {
			case n.ClusterID == "":
				fail("recovery point %s: node %d's metadata log dir had no cluster.id", in.Manifest, n.Node)
			case rep.BackupClusterID == "":
				rep.BackupClusterID = n.ClusterID
			case n.ClusterID != rep.BackupClusterID:
				fail("recovery point %s: node %d has cluster.id %s, node %d %s: not one cluster", in.Manifest, n.Node, n.ClusterID, rep.Nodes[0].Node, rep.BackupClusterID)
			}
			if len(n.Files) == 0 {
				fail("recovery point %s: node %d's metadata log has no file", in.Manifest, n.Node)
			}
		}
		if m.ClusterID != "" && rep.BackupClusterID != "" && m.ClusterID != rep.BackupClusterID {
			fail("recovery point %s: the cluster reported id %s, its metadata logs say %s", in.Manifest, m.ClusterID, rep.BackupClusterID)
		}
	}
	task := cfg.SafetyBackup.Task
	if dir, err := findTaskDir(ctx, b, task); err != nil {
		fail("safety copy: list %s: %v", cfg.Source.Target, err)
	} else if dir != "" {
		rep.SafetyTaskDir = dir
	} else {
		rep.SafetyTaskDir = backupset.TaskDir(task, in.ExecutedAt)
	}
	rep.LiveVersion, rep.LiveClusterID, err = liveCluster(ctx, cfg.Cluster)
	if err != nil {
		rep.LiveError = err.Error()
	}
	if len(problems) > 0 {
		return rep, temporal.NewNonRetryableApplicationError("preflight failed:\n  - "+strings.Join(problems, "\n  - "), names.ErrPreflight, nil, rep)
	}
	return rep, nil
}

// KRaftHealthInput is the last wait of a KRaft metadata restore.
type KRaftHealthInput struct {
	Cluster config.Cluster `json:"cluster"`
	// Brokers are the node ids that must be registered (every node with
	// the broker role).
	Brokers   []int32         `json:"brokers"`
	ClusterID string          `json:"cluster_id"`
	Timeout   config.Duration `json:"timeout"`
}

// WaitKRaftHealthy waits, up to the timeout, until every broker is
// registered, the cluster reports the restored cluster id, and no partition
// is offline or under-replicated.
func (a *Activities) WaitKRaftHealthy(ctx context.Context, in KRaftHealthInput) (*ClusterHealth, error) {
	return waitHealthy(ctx, in.Cluster, in.Brokers, in.ClusterID, in.Timeout.D())
}
