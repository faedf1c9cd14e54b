package main

import (
	"time"

	"github.com/kbr-project/kbr/internal/config"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The options every command shares, each with its flags. A command's own
// options struct embeds the ones it takes and adds them in its AddFlags.

// streams is where a command writes: results on out (stdout), progress,
// notes and errors on err (stderr).
type streams struct {
	out, err io.Writer
}

func streamsOf(cmd *cobra.Command) streams {
	return streams{out: cmd.OutOrStdout(), err: cmd.ErrOrStderr()}
}

// interruptible is the context of a command Ctrl-C stops.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

// stoppable is the context of a long-running process (server, worker,
// agent) that Ctrl-C or SIGTERM stops.
func stoppable() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// outputOpts is --json.
type outputOpts struct {
	json bool
	help string // default "machine-readable output on stdout"
}

func (o *outputOpts) AddFlags(fs *pflag.FlagSet) {
	help := o.help
	if help == "" {
		help = "machine-readable output on stdout"
	}
	fs.BoolVar(&o.json, "json", false, help)
}

// print writes v as JSON with --json, else runs text.
func (o *outputOpts) print(w io.Writer, v any, text func()) error {
	if o.json {
		return printJSON(w, v)
	}
	text()
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// startOpts are the flags of a command that starts a run and follows it:
// --json, --detach and (unless noID) --id.
type startOpts struct {
	outputOpts
	detach bool
	id     string
	// idHelp is --id's help; "" means the command takes no --id.
	idHelp string
	// detachHelp is --detach's help (default: it prints the workflow id).
	detachHelp string
}

func (o *startOpts) AddFlags(fs *pflag.FlagSet) {
	o.outputOpts.AddFlags(fs)
	help := o.detachHelp
	if help == "" {
		help = "start and print the workflow id without waiting"
	}
	fs.BoolVar(&o.detach, "detach", false, help)
	if o.idHelp != "" {
		fs.StringVar(&o.id, "id", "", o.idHelp)
	}
}

// fileOpts is -f/--file, the document a command reads.
type fileOpts struct {
	path string
	// what is the flag's help ("backup config (YAML)"); arg how usage
	// names it ("CONFIG").
	what, arg string
}

func (o *fileOpts) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.path, "file", "f", "", o.what)
}

// required fails unless -f was given.
func (o *fileOpts) required() error {
	if o.path == "" {
		return withCode(exitBadInput, fmt.Errorf("-f %s is required", o.arg))
	}
	return nil
}

// processOpts are the flags of a long-running process: --log-level and,
// for the workers, --max-activities.
type processOpts struct {
	level    string
	maxActs  int
	restBuf  string // --restore-buffer
	defLevel string // default of --log-level
	noActs   bool   // no --max-activities (the agent)
}

func (o *processOpts) AddFlags(fs *pflag.FlagSet) {
	if !o.noActs {
		fs.IntVar(&o.maxActs, "max-activities", 32, "activities this worker runs at once")
		fs.StringVar(&o.restBuf, "restore-buffer", "64MiB", "record batches all of this worker's restore units hold at once, read and not yet acknowledged (its memory does not grow with a restore's parallelism)")
	}
	fs.StringVar(&o.level, "log-level", o.defLevel, "debug, info, warn or error")
}

// restoreBuffer is --restore-buffer in bytes.
func (o *processOpts) restoreBuffer() (int64, error) {
	n, err := config.ParseByteSize(o.restBuf)
	if err == nil && n < 1<<20 {
		err = fmt.Errorf("want at least 1MiB")
	}
	if err != nil {
		return 0, withCode(exitBadInput, fmt.Errorf("--restore-buffer %q: %v", o.restBuf, err))
	}
	return int64(n), nil
}

// loadConfig reads the -f file with load: no -f, or a file load refuses,
// is bad input (exit 2) before anything is dialled or started.
func loadConfig[C any](f fileOpts, load func(string) (*C, error)) (*C, error) {
	if err := f.required(); err != nil {
		return nil, err
	}
	c, err := load(f.path)
	if err != nil {
		return nil, withCode(exitBadInput, err)
	}
	return c, nil
}

// runID is --id, or a new id of kind for name (the cluster or task).
func (o *startOpts) runID(kind, name string) string {
	if o.id != "" {
		return o.id
	}
	return workflowID(kind, name, time.Now())
}
