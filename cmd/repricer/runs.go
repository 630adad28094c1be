package main

import (
	"encoding/json"
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/connectors/postgres"
)

// runsCommand is "repricer runs": the run ledger, read-only.
func runsCommand() *cli.Command {
	ledger := &cli.StringFlag{Name: "ledger", EnvVars: []string{"REPRICER_LEDGER", "DATABASE_URL"},
		Usage: "the run ledger: a JSON-lines `FILE` or a postgres:// URL (default: the one reprice records to without a database, $XDG_STATE_HOME/repricer/ledger.jsonl)"}
	asJSON := &cli.BoolFlag{Name: "json", Usage: "print the ledger records as JSON"}
	target := func(c *cli.Context) (string, error) {
		if l := c.String("ledger"); l != "" {
			return l, nil
		}
		if l := adjust.DefaultLedgerFile(os.Getenv); l != "" {
			return l, nil
		}
		return "", usagef("--ledger is required (a ledger file or a postgres:// URL)")
	}
	return &cli.Command{
		Name:  "runs",
		Usage: "list the runs recorded in the ledger and show one",
		Description: `Reads the run ledger that reprice --ledger and repricer run write: a JSON-lines
file, or the runs table of a postgres:// database. The run ids are what
reprice --compare-run takes.

Examples:
  repricer runs list --ledger out/ledger.jsonl
  repricer runs show --ledger out/ledger.jsonl 20240705T101500Z-3f2a9c1e`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "one line per run: id, start, line counts, net payable, fingerprint, inputs, output folder",
				Description: `Lists the runs of the ledger in the order they were recorded (a run recorded
twice is listed once, with its last record); --json prints the records. A
ledger file's lines that are not whole records (a write that failed) are
skipped with a warning.`,
				OnUsageError: onUsageError,
				Flags:        []cli.Flag{ledger, asJSON, dbTimeoutFlag()},
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return usagef("unexpected arguments %q", c.Args().Slice())
					}
					t, err := target(c)
					if err != nil {
						return err
					}
					recs, err := adjust.ListRuns(c.Context, t, c.Duration("db-timeout"))
					if err != nil {
						return err
					}
					warnSkippedRecords(c.Context, c.App.ErrWriter, t)
					if c.Bool("json") {
						enc := json.NewEncoder(c.App.Writer)
						for i := range recs {
							if err := enc.Encode(&recs[i]); err != nil {
								return err
							}
						}
						return nil
					}
					return adjust.WriteRunList(c.App.Writer, recs)
				},
			},
			{
				Name:  "show",
				Usage: "a run's ledger entry: when, inputs and checksums, reference fingerprint, counts, totals, output",
				Description: `Shows the ledger entry of RUN_ID (as runs list or reprice print it): what
reprice --compare-run RUN_ID compares with.`,
				ArgsUsage:    "RUN_ID",
				OnUsageError: onUsageError,
				Flags:        []cli.Flag{ledger, asJSON, dbTimeoutFlag()},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("give one RUN_ID (repricer runs list shows them)")
					}
					t, err := target(c)
					if err != nil {
						return err
					}
					rec, err := adjust.GetRun(c.Context, t, c.Duration("db-timeout"), c.Args().First())
					if errors.Is(err, adjust.ErrRunNotFound) || errors.Is(err, postgres.ErrRunNotFound) {
						return &usageError{err}
					}
					if err != nil {
						return err
					}
					if c.Bool("json") {
						enc := json.NewEncoder(c.App.Writer)
						enc.SetIndent("", "  ")
						return enc.Encode(rec)
					}
					return adjust.WriteRunText(c.App.Writer, rec)
				},
			},
		},
	}
}
