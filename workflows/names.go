// Package workflows holds kbr's workflows: thin, deterministic sequences of
// the MRS steps, with every bit of I/O in activities. The names they are
// known by outside the process are in internal/names.
package workflows
