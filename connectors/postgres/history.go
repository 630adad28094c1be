package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/contracts"
)

// AmendmentRate is one row of amendment_rates: what an amendment did to a
// rate (end_dated, deactivated, already_ended or added).
type AmendmentRate struct {
	AmendmentID string
	RateID      string
	Action      string
	// PreviousEnd and NewEnd are the end dates before and after (0 = open).
	PreviousEnd, NewEnd contracts.Date
}

// AmendmentRates returns every amendment_rates row, by amendment
// (applied_at order) and rate id.
func AmendmentRates(ctx context.Context, db *sqlx.DB) (out []AmendmentRate, err error) {
	rows, err := db.QueryxContext(ctx, `SELECT r.amendment_id, r.rate_id, r.action,
		coalesce(r.previous_end_date::text, ''), coalesce(r.new_end_date::text, '')
	FROM amendment_rates r JOIN amendments a USING (amendment_id)
	ORDER BY a.applied_at, r.amendment_id, r.rate_id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: amendment rates: %w", err)
	}
	defer closeInto(&err, rows)
	for rows.Next() {
		var r AmendmentRate
		var prev, next string
		if err := rows.Scan(&r.AmendmentID, &r.RateID, &r.Action, &prev, &next); err != nil {
			return nil, fmt.Errorf("postgres: amendment rates: %w", err)
		}
		for _, d := range []struct {
			s   string
			dst *contracts.Date
		}{{prev, &r.PreviousEnd}, {next, &r.NewEnd}} {
			if d.s == "" {
				continue
			}
			if *d.dst, err = contracts.ParseDate(d.s); err != nil {
				return nil, fmt.Errorf("postgres: amendment rates: date %q: %w", d.s, err)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: amendment rates: %w", err)
	}
	return out, nil
}

// ListRuns returns every row of the runs table, oldest start first.
func ListRuns(ctx context.Context, db *sqlx.DB) (out []RunRecord, err error) {
	rows, err := db.QueryxContext(ctx, `SELECT run_id, started_at, finished_at, inputs, reference_fingerprint,
		counts, totals, output_location FROM runs ORDER BY started_at, run_id`)
	if err != nil {
		return nil, &LedgerError{Err: fmt.Errorf("list: %w", err)}
	}
	defer closeInto(&err, rows)
	for rows.Next() {
		var rec RunRecord
		var finished sql.NullTime
		var fp, loc sql.NullString
		var inputs, counts, totals []byte
		if err := rows.Scan(&rec.RunID, &rec.StartedAt, &finished, &inputs, &fp, &counts, &totals, &loc); err != nil {
			return nil, &LedgerError{Err: fmt.Errorf("list: %w", err)}
		}
		if finished.Valid {
			rec.FinishedAt = finished.Time
		}
		rec.Inputs, rec.Counts, rec.Totals = inputs, counts, totals
		rec.ReferenceFingerprint, rec.OutputLocation = fp.String, loc.String
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, &LedgerError{Err: fmt.Errorf("list: %w", err)}
	}
	return out, nil
}
