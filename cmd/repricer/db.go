package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/schedule"
	"github.com/repricer/repricer/contracts"
)

// databaseFlag names a database; it falls back to DATABASE_URL. The URL may
// leave the password out and take it from PGPASSWORD or ~/.pgpass.
func databaseFlag(name, usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, EnvVars: []string{"DATABASE_URL"}, Usage: usage}
}

func dbTimeoutFlag() *cli.DurationFlag {
	return &cli.DurationFlag{Name: "db-timeout", Value: postgres.DefaultStatementTimeout,
		Usage: "longest a single database statement may run, a `DURATION` such as 30s or 10m"}
}

func dbOptions(c *cli.Context) postgres.Options {
	return postgres.Options{StatementTimeout: c.Duration("db-timeout")}
}

func openDB(c *cli.Context, flag string) (*sqlx.DB, error) {
	url := c.String(flag)
	if url == "" {
		return nil, usagef("--%s (or DATABASE_URL) is required", flag)
	}
	return postgres.Open(c.Context, url, dbOptions(c))
}

func dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "manage the Postgres contract store",
		Subcommands: []*cli.Command{{
			Name:  "migrate",
			Usage: "create or upgrade the contract store's tables (safe to repeat)",
			Description: `Applies the schema migrations embedded in this binary, in order, to the
database named by --db or DATABASE_URL. Migrations already applied are
skipped, so running it again is a no-op.`,
			OnUsageError: onUsageError,
			Flags:        []cli.Flag{databaseFlag("db", "database `URL`, e.g. postgres://repricer@localhost/contracts"), dbTimeoutFlag()},
			Action: func(c *cli.Context) error {
				db, err := openDB(c, "db")
				if err != nil {
					return err
				}
				defer db.Close()
				applied, err := postgres.MigrateUp(c.Context, db.DB)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "%d migrations applied; the schema is current\n", len(applied))
				return nil
			},
		}},
	}
}

func importCommand() *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "load a contract bundle into the Postgres contract store, all or nothing",
		Description: `Reads the bundle folder, validates it, and writes every contract and rate in
one transaction (bulk rows through COPY). If any row cannot be stored, nothing is
imported and every refused row is listed with its file, row and field. Rows the
database accepts but a pricing run would reject are imported and listed as issues.`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "contract bundle `DIR` to import"},
			databaseFlag("to", "database `URL`"),
			dbTimeoutFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.String("from") == "" {
				return usagef("--from is required")
			}
			s, err := bundle.Read(c.Context, c.String("from"))
			if err != nil {
				return err
			}
			db, err := openDB(c, "to")
			if err != nil {
				return err
			}
			defer db.Close()
			rep, err := postgres.Import(c.Context, db, s)
			if err != nil {
				return err
			}
			for _, is := range rep.Issues {
				fmt.Fprintln(c.App.Writer, is)
			}
			fmt.Fprintf(c.App.Writer, "contracts: %d new, %d changed, %d unchanged; rates: %d new, %d changed, %d unchanged, %d retired; %d new vendors; %d issues; fingerprint %s\n",
				rep.Contracts.Inserted, rep.Contracts.Updated, rep.Contracts.Unchanged,
				rep.Rates.Inserted, rep.Rates.Updated, rep.Rates.Unchanged, rep.Rates.Retired,
				rep.NewVendors, len(rep.Issues), rep.Fingerprint)
			return nil
		},
	}
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write the Postgres contract store out as a contract bundle",
		Description: `Reads every contract, rate and rate kind from the database named by --from
(or DATABASE_URL) as one consistent snapshot and writes them as a contract
bundle (contracts.csv, rates.csv, rate_kinds.csv) into --to, rates in rate_id
order: the folder reprice, validate and amend read, and import loads back.

Example:
  repricer contracts export --from "$DATABASE_URL" --to out/exported`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			databaseFlag("from", "database `URL`"),
			&cli.StringFlag{Name: "to", Usage: "bundle `DIR` to write (created if missing)"},
			dbTimeoutFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.String("to") == "" {
				return usagef("--to is required")
			}
			db, err := openDB(c, "from")
			if err != nil {
				return err
			}
			defer db.Close()
			s, err := postgres.Export(c.Context, db)
			if err != nil {
				return err
			}
			if err := bundle.Write(c.Context, c.String("to"), s); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "exported %d contracts and %d rates to %s\n", len(s.Contracts), len(s.Rates), c.String("to"))
			return nil
		},
	}
}

// loadSchedule reads and validates the reference data named by src: a
// bundle folder or a postgres:// URL. A source that names neither is a
// usage error.
func loadSchedule(ctx context.Context, src string, timeout time.Duration) (*contracts.Validated, string, error) {
	v, desc, err := schedule.Load(ctx, src, postgres.Options{StatementTimeout: timeout})
	return v, desc, contractsUsage(err)
}

// contractsUsage makes a --contracts value that names no schedule source a
// usage error.
func contractsUsage(err error) error {
	var se *schedule.SourceError
	if errors.As(err, &se) {
		return usagef("--contracts: %w", err)
	}
	return err
}
