package adjust

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/repricer/repricer/pipeline"
)

// RunRecord is one ledger entry: what a run read, what reference data it
// priced with, what it produced and where.
type RunRecord struct {
	RunID          string                    `json:"run_id"`
	StartedAt      time.Time                 `json:"started_at"`
	FinishedAt     time.Time                 `json:"finished_at"`
	Inputs         []pipeline.InputSummary   `json:"inputs"`
	Reference      pipeline.ReferenceSummary `json:"reference"`
	Settings       pipeline.Settings         `json:"settings"`
	Counts         pipeline.Counts           `json:"counts"`
	Totals         pipeline.Totals           `json:"totals"`
	ByContract     []pipeline.ContractTotals `json:"by_contract"`
	OutputLocation string                    `json:"output_location"`
}

// NewRunRecord builds the ledger entry of a finished run. An empty runID is
// replaced by NewRunID(sum, started).
func NewRunRecord(runID, outDir string, sum *pipeline.Summary, started, finished time.Time) RunRecord {
	if runID == "" {
		runID = NewRunID(sum, started)
	}
	return RunRecord{
		RunID: runID, StartedAt: started.UTC(), FinishedAt: finished.UTC(),
		Inputs: sum.Inputs, Reference: sum.Reference, Settings: sum.Settings,
		Counts: sum.Counts, Totals: sum.Totals, ByContract: sum.ByContract,
		OutputLocation: outDir,
	}
}

// NewRunID returns a run id: the UTC start time to the second and the first
// 8 hex digits of a SHA-256 over the input checksums and the reference
// fingerprint, e.g. 20240705T101500Z-3f2a9c1e.
func NewRunID(sum *pipeline.Summary, started time.Time) string {
	h := sha256.New()
	for _, in := range sum.Inputs {
		fmt.Fprintf(h, "%s|%s\n", in.File, in.SHA256)
	}
	fmt.Fprintf(h, "%s\n%s\n", sum.Reference.Fingerprint, started.UTC().Format(time.RFC3339Nano))
	return started.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(h.Sum(nil))[:8]
}

// Ledger errors.
var (
	ErrRunNotFound  = errors.New("run is not in the ledger")
	ErrRunIDMissing = errors.New("run_id is required")
)

// LedgerError is a ledger file that cannot be read or written.
type LedgerError struct {
	File string
	Line int // 1-based line of the JSONL file; 0 = the file
	Err  error
}

func (e *LedgerError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("adjust: ledger %s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("adjust: ledger %s: %v", e.File, e.Err)
}

func (e *LedgerError) Unwrap() error { return e.Err }

// RecordRunFile appends rec as one JSON line to the ledger file at path
// (created if missing). The line is written with a single write on a file
// opened for appending, and synced before returning.
func RecordRunFile(ctx context.Context, path string, rec RunRecord) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rec.RunID == "" {
		return &LedgerError{File: path, Err: ErrRunIDMissing}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return &LedgerError{File: path, Err: err}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return &LedgerError{File: path, Err: err}
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = &LedgerError{File: path, Err: cerr}
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return &LedgerError{File: path, Err: err}
	}
	if err := f.Sync(); err != nil {
		return &LedgerError{File: path, Err: err}
	}
	return nil
}

// GetRunFile returns the last entry with runID in the ledger file at path,
// or an error wrapping ErrRunNotFound.
func GetRunFile(ctx context.Context, path, runID string) (rec *RunRecord, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &LedgerError{File: path, Err: err}
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			rec, err = nil, &LedgerError{File: path, Err: cerr}
		}
	}()
	br := bufio.NewReader(f)
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, rerr := br.ReadBytes('\n')
		if len(b) > 0 && !(len(b) == 1 && b[0] == '\n') {
			var r RunRecord
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, &LedgerError{File: path, Line: line, Err: err}
			}
			if r.RunID == runID {
				rec = &r
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, &LedgerError{File: path, Line: line, Err: rerr}
		}
	}
	if rec == nil {
		return nil, &LedgerError{File: path, Err: fmt.Errorf("%w: %s", ErrRunNotFound, runID)}
	}
	return rec, nil
}
