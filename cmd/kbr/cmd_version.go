package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set by the build: go build -ldflags "-X main.version=v1.2.3"
// (the Makefile sets it from git describe).
var version = ""

// versionInfo is what `kbr version` prints.
type versionInfo struct {
	Version     string `json:"version"`
	Commit      string `json:"commit,omitempty"`
	Modified    bool   `json:"modified,omitempty"`
	GoVersion   string `json:"go_version"`
	Platform    string `json:"platform"`
	TemporalSDK string `json:"temporal_sdk"`
	// TemporalServer is the embedded server's version (kbr server).
	TemporalServer string `json:"temporal_server"`
	FranzGo        string `json:"franz_go"`
}

func buildVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "unknown"
		}
		return v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		switch d.Path {
		case "go.temporal.io/sdk":
			v.TemporalSDK = d.Version
		case "go.temporal.io/server":
			v.TemporalServer = d.Version
		case "github.com/twmb/franz-go":
			v.FranzGo = d.Version
		}
	}
	if v.Version == "" {
		v.Version = bi.Main.Version // "(devel)" for a build from a work tree
	}
	return v
}

func versionCmd() *cobra.Command {
	o := &outputOpts{help: "machine-readable output"}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kbr's version and those of the Temporal SDK and server it is built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(o, streamsOf(cmd))
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// runVersion prints the build's versions.
func runVersion(o *outputOpts, s streams) error {
	v := buildVersion()
	return o.print(s.out, v, func() {
		line := "kbr " + v.Version
		if v.Commit != "" {
			line += " (" + v.Commit[:min(12, len(v.Commit))]
			if v.Modified {
				line += ", modified"
			}
			line += ")"
		}
		fmt.Fprintln(s.out, line)
		fmt.Fprintf(s.out, "  %s %s\n", v.GoVersion, v.Platform)
		fmt.Fprintf(s.out, "  Temporal SDK %s, embedded Temporal server %s, franz-go %s\n", v.TemporalSDK, v.TemporalServer, v.FranzGo)
	})
}
