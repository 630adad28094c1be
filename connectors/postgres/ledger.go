package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// ErrRunNotFound is a run id that is not in the runs table.
var ErrRunNotFound = errors.New("run is not in the ledger")

// RunRecord is one row of the run ledger (the runs table). Inputs, Counts
// and Totals are JSON documents the store keeps as they are (jsonb); the
// caller decides their shape (adjust.RunRecord's fields).
type RunRecord struct {
	RunID                string
	StartedAt            time.Time
	FinishedAt           time.Time // zero = not finished
	Inputs               json.RawMessage
	ReferenceFingerprint string
	Counts               json.RawMessage
	Totals               json.RawMessage
	OutputLocation       string
}

// LedgerError is a ledger row that could not be written or read.
type LedgerError struct {
	RunID string
	Err   error
}

func (e *LedgerError) Error() string { return "postgres: run " + e.RunID + ": " + e.Err.Error() }
func (e *LedgerError) Unwrap() error { return e.Err }

// RecordRun inserts rec into the runs table, or replaces the row with the
// same run_id (so a run can be recorded when it starts and again when it
// finishes).
func RecordRun(ctx context.Context, db *sqlx.DB, rec RunRecord) error {
	if rec.RunID == "" {
		return &LedgerError{Err: errors.New("run_id is required")}
	}
	inputs := rec.Inputs
	if len(inputs) == 0 {
		inputs = json.RawMessage(`{}`)
	}
	started := rec.StartedAt
	if started.IsZero() {
		started = time.Now()
	}
	var finished any
	if !rec.FinishedAt.IsZero() {
		finished = rec.FinishedAt
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO runs
		(run_id, started_at, finished_at, inputs, reference_fingerprint, counts, totals, output_location)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (run_id) DO UPDATE SET started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
			inputs = EXCLUDED.inputs, reference_fingerprint = EXCLUDED.reference_fingerprint,
			counts = EXCLUDED.counts, totals = EXCLUDED.totals, output_location = EXCLUDED.output_location`,
		rec.RunID, started, finished, []byte(inputs), nullStr(rec.ReferenceFingerprint),
		nullJSON(rec.Counts), nullJSON(rec.Totals), nullStr(rec.OutputLocation)); err != nil {
		return &LedgerError{RunID: rec.RunID, Err: asConstraintError(err)}
	}
	return nil
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

// GetRun returns the ledger row of a run, or a *LedgerError wrapping
// ErrRunNotFound.
func GetRun(ctx context.Context, db *sqlx.DB, runID string) (*RunRecord, error) {
	rec := RunRecord{RunID: runID}
	var finished sql.NullTime
	var fp, out sql.NullString
	var inputs, counts, totals []byte
	err := db.QueryRowxContext(ctx, `SELECT started_at, finished_at, inputs, reference_fingerprint, counts, totals, output_location
		FROM runs WHERE run_id = $1`, runID).Scan(&rec.StartedAt, &finished, &inputs, &fp, &counts, &totals, &out)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &LedgerError{RunID: runID, Err: ErrRunNotFound}
	}
	if err != nil {
		return nil, &LedgerError{RunID: runID, Err: fmt.Errorf("read: %w", err)}
	}
	if finished.Valid {
		rec.FinishedAt = finished.Time
	}
	rec.Inputs, rec.Counts, rec.Totals = inputs, counts, totals
	rec.ReferenceFingerprint, rec.OutputLocation = fp.String, out.String
	return &rec, nil
}
