package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/contracts"
)

// LoadHooked is Load with hook called every hookEvery rate rows (tests).
func LoadHooked(ctx context.Context, db *sqlx.DB, hook func(table string, n int)) (*contracts.Schedule, error) {
	return load(ctx, db, hook)
}

// MigrateDownTo rolls back to version (tests).
func MigrateDownTo(ctx context.Context, db *sql.DB, version int64) error {
	return migrateDownTo(ctx, db, version)
}

// HookEvery is how often LoadHooked calls its hook.
const HookEvery = hookEvery

// SeedRates COPYs n generated rates straight into the rates table, for
// benchmarks: no staging, no upsert, nothing held in memory.
func SeedRates(ctx context.Context, db *sqlx.DB, n int, gen func(i int, r *contracts.Rate)) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, `COPY rates (`+strings.Join(rateCols, ", ")+`) FROM STDIN`)
	if err != nil {
		return err
	}
	vals := make([]driver.Value, len(rateCols))
	args := make([]any, len(vals))
	var r contracts.Rate
	for i := 0; i < n; i++ {
		r = contracts.Rate{}
		gen(i, &r)
		rateValues(&r, vals)
		for j, v := range vals {
			args[j] = v
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			_ = stmt.Close()
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		_ = stmt.Close()
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `VACUUM ANALYZE rates`)
	return err
}
