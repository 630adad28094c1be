// Package postgres is the PostgreSQL contract store: the schema and its
// versioned migrations, loading a run's reference data (contracts, rates and
// rate kinds) into the same contracts.Schedule the bundle reader produces,
// and importing and exporting contract bundles.
//
// Connections use database/sql with lib/pq, wrapped in sqlx:
//
//	db, err := postgres.Open(ctx, url, postgres.Options{})
//	err = postgres.Migrate(ctx, db.DB)
//	report, err := postgres.Import(ctx, db, schedule)
//	schedule, err := postgres.Load(ctx, db)
//
// Open retries a database that is down or unreachable with exponential
// backoff for a bounded time, then fails with a *ConnectError whose message
// carries the URL with its password redacted. Load reads everything in one
// REPEATABLE READ READ ONLY transaction, so a run sees one consistent
// snapshot even while an import commits. Import writes a whole schedule in
// one transaction: it either stores every row or none, and reports each
// refused row with its file, row and field (see ImportError).
//
// See docs/postgres.md for the tables, constraints and operations.
package postgres
