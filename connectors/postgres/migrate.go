package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var embedded embed.FS

// MigrationsTable is the table goose records applied migrations in.
const MigrationsTable = "goose_db_version"

// migrations returns the embedded migration files at the root of an FS.
func migrations() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// newProvider returns a goose provider for the embedded migrations. A
// Postgres advisory lock serializes concurrent migrators.
func newProvider(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("postgres: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations(),
		goose.WithSessionLocker(locker),
		goose.WithTableName(MigrationsTable),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration, in order, each in its own
// transaction. It is idempotent: on an up-to-date database it does nothing.
func Migrate(ctx context.Context, db *sql.DB) error {
	_, err := MigrateUp(ctx, db)
	return err
}

// MigrationResult is one migration that was applied.
type MigrationResult struct {
	Version  int64
	Source   string
	Duration time.Duration
}

// MigrateUp applies every pending migration and returns the ones applied
// (none when the database is up to date).
func MigrateUp(ctx context.Context, db *sql.DB) ([]MigrationResult, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	res, err := p.Up(ctx)
	out := make([]MigrationResult, 0, len(res))
	for _, r := range res {
		out = append(out, MigrationResult{Version: r.Source.Version, Source: r.Source.Path, Duration: r.Duration})
	}
	if err != nil {
		return out, &MigrationError{Err: err}
	}
	return out, nil
}

// MigrationState is the state of one known migration.
type MigrationState struct {
	Version   int64
	Source    string
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// MigrationStatus lists every embedded migration and whether it is applied.
func MigrationStatus(ctx context.Context, db *sql.DB) ([]MigrationState, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, &MigrationError{Err: err}
	}
	out := make([]MigrationState, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationState{
			Version:   s.Source.Version,
			Source:    s.Source.Path,
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// SchemaVersion returns the newest embedded migration version (the version
// Migrate brings a database to).
func SchemaVersion() int64 {
	entries, err := fs.ReadDir(migrations(), ".")
	if err != nil {
		panic(err)
	}
	var v int64
	for _, e := range entries {
		n, err := goose.NumericComponent(e.Name())
		if err == nil && n > v {
			v = n
		}
	}
	return v
}

// MigrationError is a migration that could not be applied or inspected.
type MigrationError struct{ Err error }

func (e *MigrationError) Error() string { return "postgres: migrate: " + e.Err.Error() }
func (e *MigrationError) Unwrap() error { return e.Err }

// migrateDownTo rolls back every migration newer than version (tests).
func migrateDownTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := newProvider(db)
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return &MigrationError{Err: err}
	}
	return nil
}
