package adjust

import (
	"fmt"
	"path/filepath"
)

// ReportPatterns returns the names (path.Match patterns) of the files an
// adjustment report writes into a run's output folder, so that publishing
// a later run there can remove a report that no longer describes it.
func ReportPatterns() []string { return []string{"adjustment*"} }

// ExitNotRecorded is the exit status of a run that is complete and
// published but could not be recorded in the run ledger.
const ExitNotRecorded = 4

// NotRecordedError is a run that is complete and published (its outputs,
// and for the nightly job its manifest, stand) but whose ledger record
// could not be written (full disk, database gone). Rerunning is safe:
// it publishes identical outputs and records them.
type NotRecordedError struct {
	OutDir string
	Err    error
}

func (e *NotRecordedError) Error() string {
	return fmt.Sprintf("the run is complete and published in %s, but recording it in the ledger failed (exit status %d): %v",
		e.OutDir, ExitNotRecorded, e.Err)
}

func (e *NotRecordedError) Unwrap() error { return e.Err }

// ExitStatus is ExitNotRecorded.
func (e *NotRecordedError) ExitStatus() int { return ExitNotRecorded }

// DefaultLedgerFile is the ledger file of a run that names none and has no
// database: $XDG_STATE_HOME/repricer/ledger.jsonl, else
// $HOME/.local/state/repricer/ledger.jsonl (the XDG base directory
// convention for a program's own state), or "" (no ledger) when neither
// variable is set.
func DefaultLedgerFile(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "repricer", "ledger.jsonl")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "repricer", "ledger.jsonl")
	}
	return ""
}
