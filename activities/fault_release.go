//go:build !kbrfault

package activities

import "log/slog"

// faultPruneExit is a test hook (fault_kbrfault.go); a release build has
// none.
func faultPruneExit(*slog.Logger) {}

// faultPrepareExit is a test hook (fault_kbrfault.go).
func faultPrepareExit(interface{ Error(string, ...any) }, int32) {}
