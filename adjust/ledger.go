package adjust

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/repricer/repricer/internal/flock"
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
// (created, with its folder, if missing) and syncs it. Appends are
// serialized between processes with flock(2). A ledger is never left
// unreadable by a failed write: a write that fails (a full disk) is rolled
// back, and a record a killed process left without its newline is
// completed when it is a whole record, else rolled back, before rec is
// appended.
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
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return &LedgerError{File: path, Err: err}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return &LedgerError{File: path, Err: err}
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = &LedgerError{File: path, Err: cerr}
		}
	}()
	if err := flock.Lock(f); err != nil {
		return &LedgerError{File: path, Err: err}
	}
	end, err := repairTail(f)
	if err != nil {
		return &LedgerError{File: path, Err: err}
	}
	if _, err := f.WriteAt(append(b, '\n'), end); err != nil {
		// Roll back what part of the record reached the file.
		if terr := f.Truncate(end); terr != nil {
			err = errors.Join(err, fmt.Errorf("roll back the partial record: %w", terr))
		}
		return &LedgerError{File: path, Err: err}
	}
	if err := f.Sync(); err != nil {
		return &LedgerError{File: path, Err: err}
	}
	return nil
}

// repairTail makes the ledger end with a newline and returns its size: a
// last line without one is the record of a write that was killed or
// failed. A whole record gets its newline (completed); anything else is
// cut off (rolled back).
func repairTail(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if size == 0 {
		return 0, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return size, nil
	}
	start, err := lastLineStart(f, size)
	if err != nil {
		return 0, err
	}
	tail := make([]byte, size-start)
	if _, err := f.ReadAt(tail, start); err != nil {
		return 0, err
	}
	var r RunRecord
	if json.Unmarshal(tail, &r) == nil && r.RunID != "" {
		if _, err := f.WriteAt([]byte{'\n'}, size); err != nil {
			return 0, err
		}
		return size + 1, nil
	}
	if err := f.Truncate(start); err != nil {
		return 0, err
	}
	return start, nil
}

// lastLineStart returns the offset just after the last newline before
// size, or 0.
func lastLineStart(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// recordStart begins every ledger record (json.Marshal of a RunRecord).
const recordStart = `{"run_id":`

// ReadRunsFile returns every record of the ledger file at path, in file
// order, and the lines it skipped: a line that is not a record (the torn
// record of a write that failed) is skipped, each with a *LedgerError in
// skipped, and the records around it are read. A line where an earlier
// version glued a record onto a torn one yields the whole record.
func ReadRunsFile(ctx context.Context, path string) (recs []RunRecord, skipped []*LedgerError, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &LedgerError{File: path, Err: err}
	}
	defer f.Close()
	br := bufio.NewReader(f)
	for line := 1; ; line++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		b, rerr := br.ReadBytes('\n')
		if b = bytes.TrimSpace(b); len(b) > 0 {
			var r RunRecord
			jerr := json.Unmarshal(b, &r)
			if jerr != nil {
				// A torn record with a whole one after it on the same line.
				if i := bytes.LastIndex(b, []byte(recordStart)); i > 0 && json.Unmarshal(b[i:], &r) == nil {
					jerr = nil
					skipped = append(skipped, &LedgerError{File: path, Line: line, Err: fmt.Errorf("a torn record (%d bytes) before a whole one: skipped", i)})
				}
			}
			switch {
			case jerr != nil:
				skipped = append(skipped, &LedgerError{File: path, Line: line, Err: fmt.Errorf("not a whole record (%d bytes; a write that failed?), skipped: %w", len(b), jerr)})
			case r.RunID == "":
				skipped = append(skipped, &LedgerError{File: path, Line: line, Err: fmt.Errorf("a record without run_id, skipped")})
			default:
				recs = append(recs, r)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return recs, skipped, nil
		}
		if rerr != nil {
			return nil, nil, &LedgerError{File: path, Line: line, Err: rerr}
		}
	}
}

// GetRunFile returns the last entry with runID in the ledger file at path,
// or an error wrapping ErrRunNotFound. Lines that are not records are
// skipped (see ReadRunsFile).
func GetRunFile(ctx context.Context, path, runID string) (*RunRecord, error) {
	recs, _, err := ReadRunsFile(ctx, path)
	if err != nil {
		return nil, err
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].RunID == runID {
			return &recs[i], nil
		}
	}
	return nil, &LedgerError{File: path, Err: fmt.Errorf("%w: %s", ErrRunNotFound, runID)}
}
