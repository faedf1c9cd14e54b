package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"gopkg.in/yaml.v3"

	"github.com/kbr-project/kbr/internal/backupset"
	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/errtext"
	"github.com/kbr-project/kbr/internal/names"

	"github.com/kbr-project/kbr/activities"
	"github.com/kbr-project/kbr/storage"
	"github.com/kbr-project/kbr/storage/localdir"
)

// backupsCmd is `kbr backups`: list and verify recovery points.
func backupsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "backups", Short: "Look at recovery points on a target"}
	o := &backupsListOpts{out: outputOpts{help: "machine-readable output"}}
	list := &cobra.Command{
		Use:   "list PATH",
		Short: "List the recovery points under a backup path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackupsList(context.Background(), o, args[0], streamsOf(cmd))
		},
	}
	o.AddFlags(list.Flags())
	cmd.AddCommand(list, verifyCmd(), showCmd())
	return cmd
}

// backupsListOpts are the options of `kbr backups list`.
type backupsListOpts struct {
	pathType string
	out      outputOpts
}

func (o *backupsListOpts) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.pathType, "type", localdir.Type, "path type of PATH")
	o.out.AddFlags(fs)
}

// listedPoint is a line of `kbr backups list`: a recovery point, or a
// manifest that does not read, listed as damaged with why (it is no
// recovery point to restore from).
type listedPoint struct {
	activities.RecoveryPoint
	Damaged string `json:"damaged,omitempty"`
}

// runBackupsList lists the recovery points under path, read in this
// process (no Temporal).
func runBackupsList(ctx context.Context, o *backupsListOpts, path string, s streams) error {
	if st, err := os.Stat(path); strings.EqualFold(o.pathType, localdir.Type) && (err != nil || !st.IsDir()) {
		return withCode(exitBadInput, fmt.Errorf("%s: not a directory", path))
	}
	b, err := storageRegistry.Open(ctx, storage.Target{Type: o.pathType, Path: path})
	if err != nil {
		return withCode(exitBadInput, err)
	}
	defer b.Close()
	rps, err := activities.ListRecoveryPoints(ctx, b)
	if err != nil {
		return withCode(exitFailed, err)
	}
	out := make([]listedPoint, len(rps))
	for i := range rps {
		out[i].RecoveryPoint = rps[i]
		if sum, err := activities.SummarizeRecoveryPoint(ctx, b, rps[i].Manifest); err == nil {
			out[i].RecoveryPoint = *sum
		} else {
			out[i].Damaged = strings.TrimPrefix(errtext.Line(err), "manifest "+rps[i].Manifest+": ")
		}
	}
	return o.out.print(s.out, out, func() {
		if len(out) == 0 {
			fmt.Fprintln(s.out, "no recovery points under", path)
			return
		}
		tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EXECUTED\tTASK\tCLUSTER\tVERSION\tTOPICS\tRECORDS\tBYTES\tRECOVERY POINT")
		for _, r := range out {
			if r.Damaged != "" {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s  DAMAGED: %s\n", r.ExecutedAt.Format(time.RFC3339), r.Task, "-",
					r.KafkaVersion, "-", "-", r.Bytes, r.Manifest, r.Damaged)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.ExecutedAt.Format(time.RFC3339), r.Task, r.Cluster,
				r.KafkaVersion, r.TopicCount, r.Records, r.Bytes, r.Manifest)
		}
		tw.Flush()
	})
}

// verifyOpts are the options of `kbr backups verify`.
type verifyOpts struct {
	conn          connOpts
	out           outputOpts
	recoveryPoint string
	targetFile    string
}

func (o *verifyOpts) AddFlags(fs *pflag.FlagSet) {
	o.conn.AddFlags(fs)
	fs.StringVar(&o.recoveryPoint, "recovery-point", "", "manifest name relative to the target, or latest")
	fs.StringVar(&o.targetFile, "target", "", "YAML file holding the target (type, path and the path type's parameters)")
	o.out.AddFlags(fs)
}

func verifyCmd() *cobra.Command {
	o := &verifyOpts{}
	cmd := &cobra.Command{
		Use:   "verify PATH",
		Short: "Re-read every file of a recovery point and check sizes and SHA-256 (a VerifyWorkflow)",
		Long: `PATH is a recovery point's manifest file on local disk
(/backups/<task>_<created>/<version>_manifest_<executed>.json), or a LocalDir
backup path with --recovery-point NAME|latest. For other path types give the
target as a YAML file with --target and the recovery point with --recovery-point.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible()
			defer stop()
			return runBackupsVerify(ctx, o, args, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runBackupsVerify runs a VerifyWorkflow over the recovery point the
// arguments name and follows it.
func runBackupsVerify(ctx context.Context, o *verifyOpts, args []string, s streams) error {
	in, err := verifyInput(args, o.recoveryPoint, o.targetFile)
	if err != nil {
		return withCode(exitBadInput, err)
	}
	cl, err := o.conn.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	id := workflowID("verify", "rp", time.Now())
	opts := client.StartWorkflowOptions{ID: id, TypedSearchAttributes: temporal.NewSearchAttributes(
		names.SAKind.ValueSet(names.KindVerify), names.SAStatus.ValueSet(names.StatusRunning))}
	var res activities.RecoveryPoint
	if _, err := startAndWatch(ctx, cl, s, opts, names.VerifyWorkflow, in, startOpts{outputOpts: o.out}, &res); err != nil {
		return err
	}
	return o.out.print(s.out, map[string]any{"workflow_id": id, "status": names.StatusSucceeded, "result": res}, func() {
		fmt.Fprintf(s.out, "recovery point %s: %d files, %d bytes, every size and SHA-256 matches\n", res.Manifest, res.Files, res.Bytes)
	})
}

// verifyInput turns the command line into the workflow input.
func verifyInput(args []string, rp, targetFile string) (activities.VerifyInput, error) {
	var in activities.VerifyInput
	switch {
	case targetFile != "":
		data, err := os.ReadFile(targetFile)
		if err != nil {
			return in, fmt.Errorf("--target: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&in.Source.Target); err != nil {
			return in, fmt.Errorf("--target %s: %v", targetFile, err)
		}
		in.Source.RecoveryPoint = rp
	case len(args) == 1 && strings.HasSuffix(args[0], ".json"):
		abs, err := filepath.Abs(args[0])
		if err != nil {
			return in, err
		}
		taskDir := filepath.Dir(abs)
		in.Source.Target = storage.Target{Type: localdir.Type, Path: filepath.Dir(taskDir)}
		in.Source.RecoveryPoint = filepath.Base(taskDir) + "/" + filepath.Base(abs)
	case len(args) == 1:
		abs, err := filepath.Abs(args[0])
		if err != nil {
			return in, err
		}
		in.Source.Target = storage.Target{Type: localdir.Type, Path: abs}
		in.Source.RecoveryPoint = rp
	default:
		return in, fmt.Errorf("give PATH, or --target FILE with --recovery-point")
	}
	if in.Source.RecoveryPoint == "" {
		return in, fmt.Errorf("--recovery-point: required unless PATH is a manifest file")
	}
	if err := config.ValidateTarget("target", in.Source.Target); err != nil {
		return in, err
	}
	if in.Source.RecoveryPoint != "latest" {
		if _, _, _, ok := backupset.ParseManifestName(in.Source.RecoveryPoint); !ok {
			return in, fmt.Errorf("%s is not a recovery point's manifest (<task>_<created>/<version>_manifest_<executed>.json)", in.Source.RecoveryPoint)
		}
	}
	return in, nil
}
