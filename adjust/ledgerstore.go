package adjust

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/postgres"
)

// RecordRun records a finished run in the ledger named by target: a
// postgres:// URL (the runs table) or a JSON-lines file (appended). reprice
// calls it after pipeline.Run succeeds, e.g. with --ledger.
func RecordRun(ctx context.Context, target string, timeout time.Duration, rec RunRecord) error {
	if !postgres.IsURL(target) {
		return RecordRunFile(ctx, target, rec)
	}
	pg, err := pgRunRecord(rec)
	if err != nil {
		return err
	}
	return withLedgerDB(ctx, target, timeout, func(db *sqlx.DB) error { return postgres.RecordRun(ctx, db, pg) })
}

// withLedgerDB opens the ledger database at url for fn and closes it,
// reporting a failed close when fn succeeded.
func withLedgerDB(ctx context.Context, url string, timeout time.Duration, fn func(*sqlx.DB) error) error {
	return postgres.WithDB(ctx, url, postgres.Options{StatementTimeout: timeout}, fn)
}

// pgRunRecord maps a ledger entry onto the runs table: inputs holds the
// input files, reference summary and settings; counts the line counts;
// totals the money totals and the totals by contract.
func pgRunRecord(rec RunRecord) (postgres.RunRecord, error) {
	inputs, err := json.Marshal(map[string]any{"files": rec.Inputs, "reference": rec.Reference, "settings": rec.Settings})
	if err != nil {
		return postgres.RunRecord{}, err
	}
	counts, err := json.Marshal(rec.Counts)
	if err != nil {
		return postgres.RunRecord{}, err
	}
	totals, err := json.Marshal(map[string]any{"totals": rec.Totals, "by_contract": rec.ByContract})
	if err != nil {
		return postgres.RunRecord{}, err
	}
	return postgres.RunRecord{RunID: rec.RunID, StartedAt: rec.StartedAt, FinishedAt: rec.FinishedAt,
		Inputs: inputs, ReferenceFingerprint: rec.Reference.Fingerprint, Counts: counts, Totals: totals,
		OutputLocation: rec.OutputLocation}, nil
}

// PriorOutput returns the output folder of runID in the ledger named by
// target (a postgres:// URL or a ledger file): what reprice --compare-run
// RUN_ID compares against.
func PriorOutput(ctx context.Context, target string, timeout time.Duration, runID string) (string, error) {
	rec, err := GetRun(ctx, target, timeout, runID)
	if err != nil {
		return "", err
	}
	if rec.OutputLocation == "" {
		return "", fmt.Errorf("run %s has no output location in the ledger", runID)
	}
	return rec.OutputLocation, nil
}
