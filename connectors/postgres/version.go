package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// ErrNoScheduleVersion reports a database without the schedule's change
// counter: its migrations predate it (run `repricer db migrate`).
var ErrNoScheduleVersion = errors.New("the database has no schedule_version table (migration 8): run `repricer db migrate`")

// ScheduleVersion returns the schedule's change counter, as text that
// changes whenever a statement writes rate_kinds, contracts or rates (see
// migration 8): the database instance, the counter and the time of the
// last change. It reads one row; it does not read the schedule.
func ScheduleVersion(ctx context.Context, db sqlx.QueryerContext) (string, error) {
	var v string
	err := db.QueryRowxContext(ctx, `SELECT instance::text || '/' || version || '/' ||
		to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM schedule_version`).Scan(&v)
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == pqerror.UndefinedTable {
		return "", ErrNoScheduleVersion
	}
	if err != nil {
		return "", fmt.Errorf("postgres: schedule version: %w", err)
	}
	return v, nil
}
