package main

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/nightly"
)

// runCommand is "repricer run": the nightly job in one command.
func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "the nightly job: sync contracts to Business Central, reprice the night's claims, publish with a manifest",
		Description: `Runs the job described by the configuration file (JSON; see docs/nightly.md):
takes a lock, syncs contract changes to Business Central (when "bc.enabled") while
repricing the night's claim files, writes report.html, and writes _SUCCESS.json
last: every published file with its size and SHA-256, the books check, the run id
and the inputs' checksums. A folder without _SUCCESS.json holds no complete run.

Secrets come only from the environment: DATABASE_URL (or PGPASSWORD/~/.pgpass),
BC_CLIENT_SECRET or BC_CLIENT_SECRET_FILE.

Logs go to standard error: JSON lines when it is not a terminal, text when it is
(--log-format or REPRICER_LOG_FORMAT override). A terminal also gets a progress line.

Exit status: 0 the run completed and its manifest is written; 1 the run failed or
was stopped (SIGINT/SIGTERM) and wrote no manifest; 2 a configuration error;
3 another run holds the lock (nothing was done).

Example:
  repricer run --config /etc/repricer/nightly.json
  repricer run --config /etc/repricer/nightly.json --date 2024-05-15   # rerun that night`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", EnvVars: []string{"REPRICER_CONFIG"}, Usage: "job configuration `FILE` (JSON)"},
			&cli.StringFlag{Name: "date", Usage: "run `DATE` (YYYY-MM-DD) for {{date}} (default: today in the configured time zone)"},
			&cli.StringFlag{Name: "log-format", Usage: "json or text (default: json unless standard error is a terminal)"},
			scheduleCacheFlag(),
		},
		Action: runNightly,
	}
}

func runNightly(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("unexpected arguments %q", c.Args().Slice())
	}
	if c.String("config") == "" {
		return usagef("--config is required")
	}
	stderr := c.App.ErrWriter
	// A progress line only on a terminal, and never with JSON logs: then
	// every log line first clears it.
	var p *progress
	logTo, terminal := stderr, isTerminal(stderr)
	if terminal {
		p = newProgress(stderr, time.Now)
		logTo = p.logWriter()
	}
	log, jsonLogs, err := newLogger(logTo, c.String("log-format"), terminal)
	if err != nil {
		return err
	}
	if jsonLogs {
		p = nil
	}
	// From here on every failure is one log line (JSON for a scheduler),
	// not plain text: nightly.Run logs its own; this logs the rest.
	cfg, err := nightly.LoadConfig(c.String("config"))
	if err != nil {
		log.Error("run failed", "stage", "config", "error", err.Error(), "exit_status", exitCode(err))
		return &loggedError{err}
	}
	opts := nightly.Options{Date: c.String("date"), Logger: log, Getenv: os.Getenv, ScheduleCache: scheduleCache(c, log)}
	if p != nil {
		opts.Progress = p.update
		opts.OnStage = func(stage string) {
			if stage == "load" {
				p.tick("load", nil) // until the first priced lines report
			}
		}
	}
	res, err := nightly.Run(c.Context, cfg, opts)
	if p != nil {
		p.done()
	}
	if res == nil {
		return &loggedError{err}
	}
	if terminal && !jsonLogs {
		fmt.Fprintf(stderr, "repricer: run %s complete: %d lines; outputs and %s in %s\n",
			res.Manifest.RunID, res.Summary.Counts.InputLines, nightly.ManifestFile, res.OutDir)
	}
	if err != nil {
		return &loggedError{err} // published, not recorded in the ledger
	}
	return nil
}
