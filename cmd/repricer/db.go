package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/schedule"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/internal/atomicfile"
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

// exitImportPartial is the exit status of an import with --skip-refused
// that left rows out: the accepted rows are stored, the refused ones
// listed.
const exitImportPartial = 5

func importCommand() *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "load a contract bundle into the Postgres contract store (all or nothing, or --skip-refused)",
		Description: `Reads the bundle folder and writes every contract and rate in one transaction
(bulk rows through COPY).

By default the import is all or nothing: if the database refuses any row, nothing
is imported, every refused row is listed with its FILE:LINE, field, value and
reason, and the exit status is 1. With --skip-refused the rows the database
accepts are imported, those it refuses (and the rates of a refused contract) are
left out and listed, and the exit status is 5 when anything was left out. --report
FILE also writes every refused row as CSV (file, line, entity, id, field, value,
reason, constraint).

Rows the database accepts but a pricing run would reject are imported and listed
as issues (a run reports them exactly as a run from the folder does).

Exit status: 0 imported; 1 refused, nothing written; 2 usage error or a bundle
that cannot be read; 5 imported with refused rows left out (--skip-refused).`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "contract bundle `DIR` to import"},
			databaseFlag("to", "database `URL`"),
			&cli.BoolFlag{Name: "skip-refused", Usage: "import the rows the database accepts and list the ones it refuses (exit status 5 when any)"},
			&cli.StringFlag{Name: "report", Usage: "also write every refused row to `FILE` as CSV"},
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
			var rep *postgres.ImportReport
			var refused []postgres.RowError
			if c.Bool("skip-refused") {
				rep, refused, err = postgres.ImportAccepted(c.Context, db, s)
			} else {
				rep, err = postgres.Import(c.Context, db, s)
				var ie *postgres.ImportError
				if errors.As(err, &ie) {
					refused = ie.Rows
				}
			}
			if path := c.String("report"); path != "" {
				if werr := writeRefusedReport(path, refused); werr != nil {
					err = errors.Join(err, werr)
				}
			}
			if rep == nil {
				return err
			}
			w := c.App.Writer
			for _, is := range rep.Issues {
				fmt.Fprintln(w, is)
			}
			fmt.Fprintf(w, "contracts: %d new, %d changed, %d unchanged; rates: %d new, %d changed, %d unchanged, %d retired; %d new vendors; %d issues; fingerprint %s\n",
				rep.Contracts.Inserted, rep.Contracts.Updated, rep.Contracts.Unchanged,
				rep.Rates.Inserted, rep.Rates.Updated, rep.Rates.Unchanged, rep.Rates.Retired,
				rep.NewVendors, len(rep.Issues), rep.Fingerprint)
			if len(refused) > 0 {
				var b strings.Builder
				fmt.Fprintf(&b, "imported the accepted rows; %d refused row(s) left out:", len(refused))
				for _, r := range refused {
					b.WriteString("\n  " + r.String())
				}
				return &exitStatus{code: exitImportPartial, err: errors.Join(errors.New(b.String()), err)}
			}
			return err // the report could not be written
		},
	}
}

// writeRefusedReport writes the refused rows of an import as CSV, aside
// and then renamed into place.
func writeRefusedReport(path string, rows []postgres.RowError) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write([]string{"file", "line", "row", "entity", "id", "field", "value", "reason", "constraint"})
	for _, r := range rows {
		_ = cw.Write([]string{r.File, strconv.Itoa(r.Line), strconv.Itoa(r.Row), r.Entity, r.ID, r.Field, r.Value, r.Reason, r.Constraint})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(b.Bytes()); return err }); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
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
			&cli.BoolFlag{Name: "allow-empty", Usage: "export an empty store as an empty bundle instead of failing"},
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
			if len(s.Contracts) == 0 && !c.Bool("allow-empty") {
				return usagef("the contract store %s holds no contract: nothing to export (import one with `repricer contracts import`, or pass --allow-empty)", postgres.Redact(c.String("from")))
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
