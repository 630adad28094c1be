package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/schedule"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/internal/ctxrun"
	"github.com/repricer/repricer/nightly"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
	nightlyreport "github.com/repricer/repricer/report"
)

// usageError is a command line or configuration problem (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

func isUsage(err error) bool {
	var u *usageError
	var pu *pipeline.UsageError
	var bf *bundle.FormatError
	var ee *schedule.EmptyError
	return errors.As(err, &u) || errors.As(err, &pu) || errors.As(err, &bf) || errors.As(err, &ee)
}

// run builds the command-line app and runs it with args.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return newApp(stdin, stdout, stderr).RunContext(ctx, args)
}

// newApp is the command tree.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	info, ok := debug.ReadBuildInfo()
	app := &cli.App{
		Name:    "repricer",
		Version: version(info, ok),
		Usage:   "price claim lines against provider contracts",
		Description: `repricer reads claim lines (CSV or Parquet), finds each line's contract and
contracted rate, and computes the allowed amount, stop loss, administrative fee
and net payable in exact decimal money. Every input line ends up either in the
priced file or in the exceptions file with a reason code.

Exit status: 0 the run completed (exceptions are not failures); 1 the run
failed and published nothing; 2 a usage or configuration error; 3 another
run holds the lock (repricer run).`,
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are reported by main; never let the library exit.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Commands: []*cli.Command{
			repriceCommand(),
			runCommand(),
			contractsCommand(),
			dbCommand(),
			explainCommand(),
			syncCommand(),
			adjustCommand(),
			runsCommand(),
			genCommand(),
		},
	}
	app.Action = func(c *cli.Context) error {
		return unknownCommand(c, app.Name, app.Commands, cli.ShowAppHelp)
	}
	for _, c := range app.Commands {
		setUnknownCommand(c)
	}
	return app
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return &usageError{err} }

// version is the module version and the commit it was built from, e.g.
// "v1.4.0 (commit 0799e2e1c3a4, modified)" or "(devel)" without VCS stamps.
func version(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var commit string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if commit == "" {
		return v
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if modified {
		return v + " (commit " + commit + ", modified)"
	}
	return v + " (commit " + commit + ")"
}

// setUnknownCommand makes every command that has subcommands refuse an
// unknown one, as the app does.
func setUnknownCommand(c *cli.Command) {
	if len(c.Subcommands) == 0 {
		return
	}
	if c.Action == nil {
		c.Action = func(ctx *cli.Context) error {
			return unknownCommand(ctx, "repricer "+c.Name, c.Subcommands, cli.ShowSubcommandHelp)
		}
	}
	for _, sub := range c.Subcommands {
		setUnknownCommand(sub)
	}
}

// unknownCommand is the action of the app and of commands with
// subcommands: without arguments it shows the help; with one it is a
// usage error naming the nearest command.
func unknownCommand(c *cli.Context, path string, cmds []*cli.Command, help cli.ActionFunc) error {
	if !c.Args().Present() {
		return help(c)
	}
	name := c.Args().First()
	var names []string
	for _, cmd := range cmds {
		if !cmd.Hidden && cmd.Name != "help" {
			names = append(names, cmd.Name)
		}
	}
	msg := fmt.Sprintf("unknown command %q for %q", name, path)
	if cli.SuggestCommand != nil { // nil when built with urfave_cli_no_suggest
		msg += ". " + cli.SuggestCommand(cmds, name)
	}
	return usagef("%s (commands: %s)", msg, strings.Join(names, ", "))
}

func repriceCommand() *cli.Command {
	return &cli.Command{
		Name:  "reprice",
		Usage: "price claim files and write priced lines, exceptions and a summary",
		Description: `Prices every line of the claim files against the contract schedule and writes,
into the output folder:
  priced.csv           priced lines: the input columns plus contract, rate and amounts
  exceptions.csv       lines that could not be priced (error) or must be reviewed (review)
  schedule_issues.csv  contracts and rates the schedule validation rejected
  summary.json         counts and money totals by contract and by code, input checksums

Files are written aside and moved into place only when the run succeeds and its
books balance, so the folder never holds half a run.

Example:
  repricer reprice --contracts testdata/sample/contracts \
      --claims testdata/sample/claims.csv --out out/`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			contractsFlag(),
			&cli.StringSliceFlag{Name: "claims", Usage: "claim `FILE` (.csv or .parquet; - for CSV on standard input); repeat for several"},
			&cli.StringFlag{Name: "out", Usage: "output `DIR` (created if missing); - writes the priced lines to standard output and the other files to --side-out"},
			&cli.StringFlag{Name: "side-out", Usage: "with --out -: the `DIR` for exceptions, schedule issues and the summary"},
			&cli.StringFlag{Name: "format", Value: "csv", Usage: "output `FORMAT`: csv, parquet, or arrow (Arrow IPC stream)"},
			&cli.IntFlag{Name: "workers", Usage: "`N` pricing goroutines, 0 for one per CPU"},
			systemDefaultRateFlag(),
			mapFlag(),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success", DisableDefaultText: true},
			&cli.StringFlag{Name: "compare-to", Usage: "a prior run's output `DIR`: also write an adjustment report (what changed, line by line, and why) into --out"},
			&cli.StringFlag{Name: "compare-run", Usage: "like --compare-to, naming the prior run by its `RUN_ID` in the ledger"},
			&cli.StringFlag{Name: "ledger", EnvVars: []string{"REPRICER_LEDGER"}, Usage: "where the run is recorded: a postgres:// URL or a JSON-lines `FILE`, or none (default: the contracts database, else $XDG_STATE_HOME/repricer/ledger.jsonl, i.e. ~/.local/state/repricer/ledger.jsonl)"},
			dbTimeoutFlag(),
			scheduleCacheFlag(),
		},
		Action: func(c *cli.Context) error {
			return reprice(c.Context, c, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func reprice(ctx context.Context, c *cli.Context, stdout, stderr io.Writer) error {
	if c.NArg() > 0 {
		return usagef("unexpected arguments %q (claim files go after --claims)", c.Args().Slice())
	}
	switch {
	case c.String("contracts") == "":
		return usagef("--contracts (a bundle folder or a postgres:// URL, or DATABASE_URL) is required")
	case len(c.StringSlice("claims")) == 0:
		return usagef("--claims is required")
	case c.String("out") == "":
		return usagef("--out is required")
	case c.String("out") == "-" && c.String("side-out") == "":
		return usagef("--out - needs --side-out DIR for the exceptions, schedule issues and summary")
	case c.String("out") != "-" && c.String("side-out") != "":
		return usagef("--side-out goes with --out -")
	case c.Int("workers") < 0:
		return usagef("--workers must be positive")
	}
	opts, err := pricingOptions(c)
	if err != nil {
		return err
	}
	mapping, err := parseMapping(c.StringSlice("map"))
	if err != nil {
		return err
	}
	quiet := c.Bool("quiet")
	var p *progress
	if !quiet && isTerminal(stderr) {
		p = newProgress(stderr, time.Now)
		defer p.done()
		p.tick("load", nil)
	}
	// Validating and indexing a large schedule takes seconds without looking
	// at ctx: a stop request must not wait for it.
	type loaded struct {
		eng    *rates.Engine
		source string
	}
	l, err := ctxrun.Do(ctx, func() (loaded, error) {
		eng, source, err := loadEngine(ctx, c.String("contracts"), c.Duration("db-timeout"), opts, scheduleCache(c, warnLogger(stderr)))
		return loaded{eng, source}, err
	})
	if err != nil {
		return pipeline.Stopped(ctx, "load", err)
	}
	eng, source := l.eng, l.source
	if gcTuned() {
		defer debug.SetGCPercent(debug.SetGCPercent(runGCPercent))
	}
	cfg := pipeline.Config{
		Engine:          eng,
		Claims:          c.StringSlice("claims"),
		Stdin:           c.App.Reader,
		OutDir:          outDir(c),
		Format:          c.String("format"),
		Workers:         c.Int("workers"),
		Mapping:         mapping,
		ReferenceSource: source,
		// A folder holds one run: publishing removes an earlier run's
		// adjustment report, nightly report and manifest.
		Supersedes: append(adjust.ReportPatterns(), nightlyreport.File, nightly.ManifestFile),
	}
	if opts.SystemDefault != nil {
		cfg.SystemDefaultRate = opts.SystemDefault.String()
	}
	if c.String("out") == "-" {
		cfg.PricedTo = stdout
	}
	ledger := ledgerTarget(c)
	prior, err := priorOutput(ctx, c, ledger)
	if err != nil {
		return err
	}
	if p != nil {
		cfg.Progress = p.update
	}
	started := time.Now()
	sum, err := pipeline.Run(ctx, cfg)
	if p != nil {
		p.done()
	}
	if err != nil {
		return pipeline.Stopped(ctx, "reprice", err)
	}
	if !quiet {
		fmt.Fprintf(stderr, "repricer: %d lines: %d priced, %d error exceptions, %d review exceptions; %d schedule issues; outputs in %s\n",
			sum.Counts.InputLines, sum.Counts.PricedLines, sum.Counts.ErrorExceptions, sum.Counts.ReviewExceptions,
			sum.Reference.Issues, cfg.OutDir)
	}
	var notRecorded error
	if ledger != "" {
		rec := adjust.NewRunRecord("", absPath(cfg.OutDir), sum, started, time.Now())
		if err := adjust.RecordRun(ctx, ledger, c.Duration("db-timeout"), rec); err != nil {
			// Published all the same: say so with its own exit status, after
			// the adjustment report is written.
			notRecorded = &adjust.NotRecordedError{OutDir: cfg.OutDir, Err: err}
		} else if !quiet {
			fmt.Fprintf(stderr, "repricer: run %s recorded in the ledger %s\n", rec.RunID, ledgerName(ledger))
		}
	}
	if prior != "" {
		log, err := amendmentLog(ctx, c.String("contracts"), c.Duration("db-timeout"))
		if err != nil {
			return err
		}
		rep, err := writeAdjustmentReport(ctx, prior, cfg.OutDir, cfg.OutDir, log)
		if err != nil {
			return err
		}
		if !quiet {
			printReport(stderr, rep, cfg.OutDir)
		}
	}
	return notRecorded
}

// outDir is where a run publishes: --out, or --side-out with --out -.
func outDir(c *cli.Context) string {
	if c.String("out") == "-" {
		return c.String("side-out")
	}
	return c.String("out")
}

// ledgerTarget is where a run is recorded: --ledger, else the contracts
// database, else the user's ledger file (adjust.DefaultLedgerFile) — never
// a place outside those the user named or the user's own state folder.
func ledgerTarget(c *cli.Context) string {
	switch l := c.String("ledger"); {
	case l == "none":
		return ""
	case l != "":
		return l
	case postgres.IsURL(c.String("contracts")):
		return c.String("contracts")
	}
	return adjust.DefaultLedgerFile(os.Getenv)
}

// warnSkippedRecords says which lines of a ledger file were skipped as
// torn records (a write that failed), so that a missing run is explained.
func warnSkippedRecords(ctx context.Context, w io.Writer, ledger string) {
	if postgres.IsURL(ledger) {
		return
	}
	if _, skipped, err := adjust.ReadRunsFile(ctx, ledger); err == nil {
		for _, s := range skipped {
			fmt.Fprintln(w, "repricer: warning:", s)
		}
	}
}

// ledgerName is a ledger for messages: a database URL without its password.
func ledgerName(ledger string) string {
	if postgres.IsURL(ledger) {
		return postgres.Redact(ledger)
	}
	return ledger
}

// priorOutput resolves --compare-to or --compare-run to a prior run's
// output folder, which must not be the folder this run publishes into.
func priorOutput(ctx context.Context, c *cli.Context, ledger string) (string, error) {
	prior := c.String("compare-to")
	if id := c.String("compare-run"); id != "" {
		if prior != "" {
			return "", usagef("give --compare-to or --compare-run, not both")
		}
		if ledger == "" {
			return "", usagef("--compare-run needs a ledger (--ledger)")
		}
		dir, err := adjust.PriorOutput(ctx, ledger, c.Duration("db-timeout"), id)
		if err != nil {
			return "", err
		}
		warnSkippedRecords(ctx, c.App.ErrWriter, ledger)
		prior = dir
	}
	if prior != "" && c.String("out") == "-" {
		return "", usagef("--compare-to and --compare-run need the priced file in a folder, not --out -")
	}
	if prior == "" {
		return "", nil
	}
	if absPath(prior) == absPath(outDir(c)) {
		return "", usagef("--compare-to must name another folder than --out: this run would replace the outputs it compares against")
	}
	// Every published run has a summary; checking for it here refuses a
	// wrong folder before the run rather than after it is published.
	if _, err := os.Stat(filepath.Join(prior, pipeline.SummaryFile)); err != nil {
		return "", usagef("--compare-to %s: not the output folder of a run (no %s there)", prior, pipeline.SummaryFile)
	}
	return prior, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// contractsFlag names the schedule: a bundle folder or a postgres:// URL.
func contractsFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "contracts", EnvVars: []string{"DATABASE_URL"},
		Usage: "contract bundle `DIR` (contracts.csv, rates.csv, rate_kinds.csv) or a postgres:// URL"}
}

// systemDefaultRateFlag is the tier-8 rate; pricingOptions reads it.
func systemDefaultRateFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "system-default-rate",
		Usage: "`RATE` for lines no contract rate or contract default covers, e.g. Percentage:60 or Amount:25.00 (default: none, such lines are NO_RATE exceptions)"}
}

// mapFlag renames input columns; parseMapping reads it.
func mapFlag() *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: "map", Usage: "input column mapping `CANONICAL=NAME`, e.g. billed_amount=charge_amt; repeat for several"}
}

// pricingOptions reads --system-default-rate.
func pricingOptions(c *cli.Context) (rates.Options, error) {
	var opts rates.Options
	if s := c.String("system-default-rate"); s != "" {
		d, err := rates.ParseDefaultRate(s)
		if err != nil {
			return opts, &usageError{err}
		}
		opts.SystemDefault = &d
	}
	return opts, nil
}

// parseMapping reads --map CANONICAL=NAME items; an unknown canonical
// name is a usage error listing the known ones.
func parseMapping(items []string) (map[string]string, error) {
	m := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, usagef("--map %q: want CANONICAL=NAME, e.g. billed_amount=charge_amt", it)
		}
		m[k] = v
	}
	if err := claims.CheckMapping(m); err != nil {
		return nil, usagef("--map: %w", err)
	}
	return m, nil
}

func contractsCommand() *cli.Command {
	return &cli.Command{
		Name:  "contracts",
		Usage: "validate, import, export, amend, compile and inspect contract schedules",
		Subcommands: append(append([]*cli.Command{importCommand(), exportCommand(), calendarCommand(), compileCommand()}, amendCommands()...), &cli.Command{
			Name:  "validate",
			Usage: "check a contract schedule and print every rejected or suspicious row",
			Description: `Applies the same validation a pricing run applies and prints one line per
issue: FILE:LINE, rejected or warning, the contract or rate, the field and why.
Exit status 0 when nothing is rejected, 1 when something is, 2 when the
schedule cannot be read at all.`,
			OnUsageError: onUsageError,
			Flags: []cli.Flag{
				contractsFlag(),
				dbTimeoutFlag(),
			},
			Action: func(c *cli.Context) error {
				if c.String("contracts") == "" {
					return usagef("--contracts is required")
				}
				v, _, err := loadSchedule(c.Context, c.String("contracts"), c.Duration("db-timeout"))
				if err != nil {
					return err
				}
				w := c.App.Writer
				for _, is := range v.Issues {
					fmt.Fprintln(w, is)
				}
				fmt.Fprintf(w, "%d contracts (%d rejected), %d usable rates, %d issues\n",
					len(v.Contracts), len(v.Rejected), len(v.Rates), len(v.Issues))
				if n := rejectedCount(v); n > 0 {
					return &exitStatus{code: 1, err: fmt.Errorf("%d rows rejected", n)}
				}
				return nil
			},
		}),
	}
}

func rejectedCount(v *contracts.Validated) int {
	n := 0
	for _, is := range v.Issues {
		if is.Action == contracts.ActionRejected {
			n++
		}
	}
	return n
}

// exitStatus is an error with a chosen exit status.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string   { return e.err.Error() }
func (e *exitStatus) Unwrap() error   { return e.err }
func (e *exitStatus) ExitStatus() int { return e.code }
