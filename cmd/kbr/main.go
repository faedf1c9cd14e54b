// Command kbr backs up and restores Apache Kafka with Temporal workflows.
//
// Each command lives in its own file, cmd_<command>.go: a constructor that
// builds the cobra command from an options struct (whose AddFlags adds its
// flags; the shared ones are in options.go and client.go) and a
// run<Command>(ctx, opts, ...) function that holds what the command does,
// which the tests call directly.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kbr-project/kbr/internal/config"
	"github.com/kbr-project/kbr/internal/errtext"
	"github.com/kbr-project/kbr/storage/all"
)

// storageRegistry opens and checks every path type: the one place the
// binary links the storage backends.
var storageRegistry = all.Registry()

// Exit codes: how a command ended.
const (
	exitOK          = 0
	exitFailed      = 1 // the workflow ran and failed
	exitBadInput    = 2 // the config or arguments are wrong; nothing was started
	exitConnect     = 3 // Temporal could not be reached
	exitRecordsLost = 4 // a backup completed, but retention deleted records before it read them
)

// exitError carries an exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// exitCode is the code the process ends with for err: the one it carries,
// else bad input (cobra's own errors: an unknown flag or command).
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitBadInput
}

// newRoot is the kbr command with every sub-command. Cobra adds
// `completion bash|zsh|fish|powershell` when it executes (its scripts ask
// the binary, `kbr __complete ...`, so they never go stale).
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "kbr",
		Short:         "Back up and restore Apache Kafka: metadata, topic data and consumer offsets",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serverCmd(), workerCmd(), agentCmd(), backupCmd(), restoreCmd(), backupsCmd(), taskCmd(), clusterCmd(), namespaceCmd(), versionCmd())
	return root
}

func main() {
	config.UseStorage(storageRegistry)
	if err := newRoot().Execute(); err != nil {
		// One line, Temporal's nested wrappers read once (errtext.Line).
		fmt.Fprintln(os.Stderr, "kbr:", errtext.Line(err))
		os.Exit(exitCode(err))
	}
}
