package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/repricer/repricer/contracts"
)

// ErrAmendmentExists is an amendment whose id is already in the log.
var ErrAmendmentExists = errors.New("amendment already applied")

// AmendError is an amendment the store could not apply; nothing was
// written. Err wraps the cause: a *contracts.AmendmentError when the
// amendment breaks a rule, ErrAmendmentExists, or a database error.
type AmendError struct {
	AmendmentID string
	Err         error
}

func (e *AmendError) Error() string {
	return "postgres: amendment " + e.AmendmentID + ": " + e.Err.Error()
}

func (e *AmendError) Unwrap() error { return e.Err }

// ApplyAmendment applies a to the stored reference data in one transaction:
// the replaced rates are end-dated (or deactivated) in place, the new rates
// inserted, and the amendment logged in amendments (applied_at = now) with
// one amendment_rates row per rate it touched. Rows are never deleted, so
// the rates table keeps the whole history. The rules are those of
// contracts.Apply (today is the date retroactivity is judged against); on
// any refusal or error nothing is written.
//
// Concurrent amendments and imports are serialized by a table lock; runs
// (Load) are not blocked and see either the state before or after.
func ApplyAmendment(ctx context.Context, db *sqlx.DB, a contracts.Amendment, today contracts.Date) (res *contracts.Applied, err error) {
	wrap := func(err error) error { return &AmendError{AmendmentID: a.ID, Err: err} }
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, wrap(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // already failing; nothing was committed
			res = nil
		}
	}()
	if _, err := tx.ExecContext(ctx, `LOCK TABLE contracts, rates, amendments IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return nil, wrap(fmt.Errorf("lock: %w", err))
	}
	var exists bool
	if err := tx.QueryRowxContext(ctx, `SELECT EXISTS (SELECT 1 FROM amendments WHERE amendment_id = $1)`, a.ID).Scan(&exists); err != nil {
		return nil, wrap(err)
	}
	if exists {
		return nil, wrap(ErrAmendmentExists)
	}
	s := &contracts.Schedule{}
	in := newInterner()
	if err := loadKinds(ctx, tx, s); err != nil {
		return nil, wrap(err)
	}
	if err := loadContracts(ctx, tx, s, in); err != nil {
		return nil, wrap(err)
	}
	if err := loadRates(ctx, tx, in, nil, func(r *contracts.Rate) error {
		s.Rates = append(s.Rates, *r)
		return nil
	}); err != nil {
		return nil, wrap(err)
	}
	_, res, err = contracts.Apply(s, a, today)
	if err != nil {
		return nil, wrap(err)
	}
	if err := writeAmendment(ctx, tx, a, res); err != nil {
		return nil, wrap(asConstraintError(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap(fmt.Errorf("commit: %w", asConstraintError(err)))
	}
	return res, nil
}

func writeAmendment(ctx context.Context, tx *sqlx.Tx, a contracts.Amendment, res *contracts.Applied) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO amendments
		(amendment_id, contract_id, reason, amendment_date, effective_date, retroactive, applied_at)
		VALUES ($1, $2, $3, $4, $5, $6, now())`,
		a.ID, a.ContractID, a.Reason, a.AmendmentDate.String(), a.EffectiveDate.String(), a.Retroactive); err != nil {
		return fmt.Errorf("log amendment: %w", err)
	}
	var ended, deactivated []string
	for _, ch := range res.Replaced {
		switch ch.Action {
		case contracts.ActionEndDated:
			ended = append(ended, ch.RateID)
		case contracts.ActionDeactivated:
			deactivated = append(deactivated, ch.RateID)
		}
	}
	if len(ended) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE rates SET end_date = $1, updated_at = now() WHERE rate_id = ANY($2::text[])`,
			(a.EffectiveDate - 1).String(), pq.Array(ended)); err != nil {
			return fmt.Errorf("end-date rates: %w", err)
		}
	}
	if len(deactivated) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE rates SET active = false, updated_at = now() WHERE rate_id = ANY($1::text[])`,
			pq.Array(deactivated)); err != nil {
			return fmt.Errorf("deactivate rates: %w", err)
		}
	}
	if err := copyInto(ctx, tx, "rates", rateCols, len(res.Added), func(i int, v []driver.Value) {
		rateValues(&res.Added[i], v)
	}); err != nil {
		return fmt.Errorf("insert rates: %w", err)
	}
	n := len(res.Replaced) + len(res.Added)
	return copyInto(ctx, tx, "amendment_rates", []string{"amendment_id", "rate_id", "action", "previous_end_date", "new_end_date"}, n,
		func(i int, v []driver.Value) {
			if i < len(res.Replaced) {
				ch := res.Replaced[i]
				v[0], v[1], v[2], v[3], v[4] = a.ID, ch.RateID, ch.Action, dateVal(ch.OldEnd), dateVal(ch.NewEnd)
				return
			}
			r := &res.Added[i-len(res.Replaced)]
			v[0], v[1], v[2], v[3], v[4] = a.ID, r.ID, "added", nil, dateVal(r.End)
		})
}

// copyInto streams n rows into table with COPY FROM STDIN.
func copyInto(ctx context.Context, tx *sqlx.Tx, table string, cols []string, n int, fill func(int, []driver.Value)) (err error) {
	if n == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn(table, cols...))
	if err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	defer closeInto(&err, stmt)
	vals := make([]driver.Value, len(cols))
	args := make([]any, len(cols))
	for i := 0; i < n; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		clear(vals)
		fill(i, vals)
		for j, v := range vals {
			args[j] = v
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("copy %s row %d: %w", table, i+1, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	return nil
}

// AmendmentRecord is one entry of the amendment log.
type AmendmentRecord struct {
	ID            string
	ContractID    string
	Reason        string
	AmendmentDate contracts.Date
	EffectiveDate contracts.Date
	Retroactive   bool
	AppliedAt     time.Time
	// Rates counts the amendment_rates rows by action.
	Rates map[string]int
}

// Amendments returns the amendment log of a contract ("" = every
// contract), oldest effective date first.
func Amendments(ctx context.Context, db *sqlx.DB, contractID string) (out []AmendmentRecord, err error) {
	rows, err := db.QueryxContext(ctx, `SELECT a.amendment_id, a.contract_id, a.reason, a.amendment_date::text,
		a.effective_date::text, a.retroactive, coalesce(a.applied_at, 'epoch'::timestamptz),
		coalesce(string_agg(r.action || '=' || r.n, ',' ORDER BY r.action), '')
	FROM amendments a
	LEFT JOIN (SELECT amendment_id, action, count(*) AS n FROM amendment_rates GROUP BY 1, 2) r USING (amendment_id)
	WHERE $1 = '' OR a.contract_id = $1
	GROUP BY 1, 2, 3, 4, 5, 6, 7
	ORDER BY a.effective_date, a.applied_at, a.amendment_id`, contractID)
	if err != nil {
		return nil, fmt.Errorf("postgres: amendments: %w", err)
	}
	defer closeInto(&err, rows)
	for rows.Next() {
		var rec AmendmentRecord
		var ad, ed, counts string
		if err := rows.Scan(&rec.ID, &rec.ContractID, &rec.Reason, &ad, &ed, &rec.Retroactive, &rec.AppliedAt, &counts); err != nil {
			return nil, fmt.Errorf("postgres: amendments: %w", err)
		}
		if rec.AmendmentDate, err = contracts.ParseDate(ad); err != nil {
			return nil, fmt.Errorf("postgres: amendments: amendment_date %q: %w", ad, err)
		}
		if rec.EffectiveDate, err = contracts.ParseDate(ed); err != nil {
			return nil, fmt.Errorf("postgres: amendments: effective_date %q: %w", ed, err)
		}
		rec.Rates = map[string]int{}
		for _, kv := range strings.Split(counts, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				var n int
				if _, err := fmt.Sscan(v, &n); err != nil {
					return nil, fmt.Errorf("postgres: amendments: count %q: %w", v, err)
				}
				rec.Rates[k] = n
			}
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: amendments: %w", err)
	}
	return out, nil
}
