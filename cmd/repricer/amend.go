package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/amendment"
	"github.com/repricer/repricer/connectors/feeschedule"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
)

// amendCommands are the amendment subcommands of "repricer contracts".
func amendCommands() []*cli.Command {
	return []*cli.Command{amendCommand(), importFeeScheduleCommand(), whatIfCommand()}
}

func todayFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "today", Usage: "the date retroactivity is judged against, `YYYY-MM-DD` (default: today's date)"}
}

func todayOf(c *cli.Context) (contracts.Date, error) {
	s := c.String("today")
	if s == "" {
		return contracts.DateFromTime(time.Now()), nil
	}
	d, err := contracts.ParseDate(s)
	if err != nil {
		return 0, usagef("--today %q: %w", s, err)
	}
	return d, nil
}

func amendCommand() *cli.Command {
	return &cli.Command{
		Name:  "amend",
		Usage: "apply a rate amendment: end-date the rates it replaces and add its new rates",
		Description: `Reads an amendment folder (amendment.csv, optional replace.csv and rates.csv;
see docs/reprocessing.md) and applies it to the contract schedule. Replaced rates
are end-dated the day before the effective date (or deactivated when they would
only have started later); nothing is deleted. An effective date before the
amendment date or before today is refused unless the amendment is retroactive.

With a bundle folder the amended bundle is written to --out (which may be the
same folder), with the amendment added to its amendment log (amendments.csv and
amendment_rates.csv). With a postgres:// URL the change is made in one
transaction and logged in the amendments tables. An amendment id is applied
once. "repricer adjust" reads the log to name the amendment behind each change.

Example:
  repricer contracts amend --contracts contracts/ --amendment amend-2024-07/ --out out/contracts-amended/`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			contractsFlag(),
			&cli.StringFlag{Name: "amendment", Usage: "amendment `DIR` (amendment.csv, replace.csv, rates.csv)"},
			&cli.StringFlag{Name: "out", Usage: "bundle `DIR` to write the amended schedule to (bundles only)"},
			todayFlag(),
			dbTimeoutFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unexpected arguments %q", c.Args().Slice())
			}
			if c.String("amendment") == "" {
				return usagef("--amendment is required")
			}
			today, err := todayOf(c)
			if err != nil {
				return err
			}
			a, err := amendment.ReadFolder(c.Context, c.String("amendment"))
			if err != nil {
				return err
			}
			res, err := applyAmendments(c, []contracts.Amendment{a}, today)
			if err != nil {
				return err
			}
			printApplied(c.App.Writer, a, res[0])
			return nil
		},
	}
}

// applyAmendments checks --contracts and --out and applies amendments in
// order (amendment.Apply).
func applyAmendments(c *cli.Context, as []contracts.Amendment, today contracts.Date) ([]*contracts.Applied, error) {
	src, out := c.String("contracts"), c.String("out")
	switch {
	case src == "":
		return nil, usagef("--contracts (a bundle folder or a postgres:// URL) is required")
	case postgres.IsURL(src) && out != "":
		return nil, usagef("--out is for bundles; a postgres:// store is amended in place")
	case !postgres.IsURL(src) && out == "":
		return nil, usagef("--out is required with a bundle folder")
	}
	res, err := amendment.Apply(c.Context, src, out, as, today, dbOptions(c))
	return res, refused(err)
}

// refused turns an amendment the rules refuse into a configuration error
// (exit status 2); read and write failures stay run failures (1).
func refused(err error) error {
	if err != nil && amendment.Refused(err) {
		return &usageError{err}
	}
	return err
}

func printApplied(w io.Writer, a contracts.Amendment, r *contracts.Applied) {
	n := map[string]int{}
	for _, ch := range r.Replaced {
		n[ch.Action]++
	}
	retro := ""
	if a.Retroactive {
		retro = " (retroactive)"
	}
	fmt.Fprintf(w, "amendment %s: contract %s effective %s%s: %d rates end-dated, %d deactivated, %d already ended, %d added\n",
		a.ID, a.ContractID, a.EffectiveDate, retro, n[contracts.ActionEndDated], n[contracts.ActionDeactivated],
		n[contracts.ActionAlreadyEnded], len(r.Added))
}

func importFeeScheduleCommand() *cli.Command {
	return &cli.Command{
		Name:  "import-fee-schedule",
		Usage: "import published fee schedules as amendments of one contract",
		Description: `Parses each fee-schedule file (see connectors/feeschedule) into Amount rates of
the contract (kind CPT; the non-facility fee for non-facility places of service,
the facility fee for facility ones) and applies it as an amendment that replaces
the contract's rates from the previous fee schedule (the rates whose id starts
with --id-prefix and that are in force on or after the new effective date).
Several --file values are applied one after the other; give them in
effective-date order. Records that give no fee are skipped and counted by reason.

A fee schedule effective before today (or before --amendment-date) is
retroactive and needs --retroactive.

Example:
  repricer contracts import-fee-schedule --contracts testdata/amend/wa --contract WA-MCD \
      --file physician_010114.csv --file physician_070114.csv --retroactive --out wa-amended/`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			contractsFlag(),
			&cli.StringFlag{Name: "contract", Usage: "contract `ID` the fees become rates of"},
			&cli.StringSliceFlag{Name: "file", Usage: "fee-schedule CSV `FILE`; repeat, in effective-date order"},
			&cli.StringFlag{Name: "effective", Usage: "effective `DATE` overriding the file's (one --file only)"},
			&cli.StringFlag{Name: "amendment-date", Usage: "date the amendment was agreed, `YYYY-MM-DD` (default: --today)"},
			&cli.BoolFlag{Name: "retroactive", Usage: "allow an effective date in the past"},
			&cli.StringFlag{Name: "id-prefix", Usage: "rate id `PREFIX` of fee-schedule rates (default: CONTRACT-FS)"},
			&cli.StringFlag{Name: "reason", Usage: "amendment reason (default: fee schedule FILE effective DATE)"},
			&cli.StringFlag{Name: "out", Usage: "bundle `DIR` to write the amended schedule to (bundles only)"},
			&cli.StringFlag{Name: "report", Usage: "write the per-file import report as JSON to `FILE`"},
			todayFlag(),
			dbTimeoutFlag(),
		},
		Action: importFeeSchedules,
	}
}

func importFeeSchedules(c *cli.Context) error {
	opts := amendment.FeeScheduleOptions{Contract: c.String("contract"), IDPrefix: c.String("id-prefix"),
		Reason: c.String("reason"), Retroactive: c.Bool("retroactive")}
	files := c.StringSlice("file")
	switch {
	case c.NArg() > 0:
		return usagef("unexpected arguments %q", c.Args().Slice())
	case opts.Contract == "":
		return usagef("--contract is required")
	case len(files) == 0:
		return usagef("--file is required")
	case c.String("effective") != "" && len(files) > 1:
		return usagef("--effective needs exactly one --file")
	}
	today, err := todayOf(c)
	if err != nil {
		return err
	}
	opts.AmendmentDate = today
	if s := c.String("amendment-date"); s != "" {
		if opts.AmendmentDate, err = contracts.ParseDate(s); err != nil {
			return usagef("--amendment-date %q: %w", s, err)
		}
	}
	if s := c.String("effective"); s != "" {
		if opts.Effective, err = contracts.ParseDate(s); err != nil {
			return usagef("--effective %q: %w", s, err)
		}
	}
	var (
		as      []contracts.Amendment
		reports []amendment.FeeScheduleImport
	)
	for _, file := range files {
		a, rep, err := amendment.FeeSchedule(c.Context, file, opts)
		var pe *os.PathError
		if errors.As(err, &pe) {
			return usagef("--file: %w", err)
		}
		if err != nil {
			return err
		}
		as = append(as, a)
		reports = append(reports, rep)
	}
	res, err := applyAmendments(c, as, today)
	if err != nil {
		return err
	}
	w := c.App.Writer
	for i, r := range res {
		rep := &reports[i]
		rep.Count(r)
		fmt.Fprintf(w, "%s: effective %s, amendment %s: %d rows, %d rates added, %d end-dated, %d deactivated; %d records skipped%s\n",
			rep.File, rep.Effective, rep.AmendmentID, rep.Rows, rep.RatesAdded, rep.RatesEndDated, rep.RatesDeactivated,
			rep.Skipped, formatReasons(rep.SkippedByReason))
		for _, wn := range rep.Warnings {
			fmt.Fprintf(w, "%s: warning: %s\n", rep.File, wn)
		}
	}
	if p := c.String("report"); p != "" {
		if err := writeJSONFile(p, reports); err != nil {
			return err
		}
	}
	return nil
}

func formatReasons(m map[feeschedule.Reason]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[feeschedule.Reason(k)])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// whatIfCommand is the audit mode: price claims against the current and a
// proposed schedule and report the difference, writing nothing else.
func whatIfCommand() *cli.Command {
	return &cli.Command{
		Name:  "what-if",
		Usage: "price claims against a proposed schedule and report the impact (touches no stored data)",
		Description: `Prices the claims twice, against the current schedule (--contracts) and against
the proposed one (--proposed: a contract bundle folder, or an amendment folder
applied in memory to the current schedule), in temporary folders, and writes the
adjustment report (the files of "repricer adjust") into --out. The contract store
and the bundles are only read.

Example:
  repricer contracts what-if --contracts contracts/ --proposed amend-2025-01/ \
      --claims claims-2024.csv --out out/what-if/`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			contractsFlag(),
			&cli.StringFlag{Name: "proposed", Usage: "proposed bundle `DIR`, or an amendment folder (with amendment.csv)"},
			&cli.StringSliceFlag{Name: "claims", Usage: "claim `FILE` (.csv or .parquet); repeat for several"},
			&cli.StringFlag{Name: "out", Usage: "report `DIR` (created if missing)"},
			systemDefaultRateFlag(),
			todayFlag(),
			dbTimeoutFlag(),
			scheduleCacheFlag(),
		},
		Action: whatIf,
	}
}

func whatIf(c *cli.Context) error {
	ctx := c.Context
	src, proposed, claimFiles, out := c.String("contracts"), c.String("proposed"), c.StringSlice("claims"), c.String("out")
	switch {
	case c.NArg() > 0:
		return usagef("unexpected arguments %q", c.Args().Slice())
	case src == "" || proposed == "" || len(claimFiles) == 0 || out == "":
		return usagef("--contracts, --proposed, --claims and --out are required")
	case slices.Contains(claimFiles, "-"):
		return usagef("what-if reads the claims twice; standard input (-) is not supported")
	}
	opts, err := pricingOptions(c)
	if err != nil {
		return err
	}
	today, err := todayOf(c)
	if err != nil {
		return err
	}
	current, currentSrc, err := amendment.LoadSchedule(ctx, src, dbOptions(c))
	if err != nil {
		return err
	}
	next, err := amendment.Proposed(ctx, current, proposed, today)
	if errors.Is(err, amendment.ErrNotProposal) {
		return usagef("--proposed %w", err)
	}
	if err != nil {
		return refused(err)
	}
	cur := adjust.Schedule{S: current, Source: currentSrc}
	// The current schedule prices from its compiled image when that is
	// current; the proposal is new, so it is validated and indexed here.
	if cache := scheduleCache(c, warnLogger(c.App.ErrWriter)); cache != nil {
		eng, _, err := loadEngine(ctx, src, c.Duration("db-timeout"), opts, cache)
		if err != nil {
			return err
		}
		if eng.Schedule().Fingerprint == current.Fingerprint() { // not changed between the two reads
			cur.Engine = eng
		}
	}
	rep, err := adjust.WhatIf(ctx, cur, adjust.Schedule{S: next, Source: proposed}, claimFiles, opts)
	if err != nil {
		return err
	}
	if err := rep.Write(ctx, out); err != nil {
		return err
	}
	printReport(c.App.Writer, rep, out)
	return nil
}

func writeJSONFile(path string, v any) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
