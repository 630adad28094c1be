package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/feeschedule"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
)

// Amendment folder files (docs/reprocessing.md).
const (
	amendmentFile = "amendment.csv"
	replaceFile   = "replace.csv"
)

// amendmentColumns are the columns of amendment.csv; replace_rate_ids and
// retroactive are optional.
var amendmentColumns = []string{"amendment_id", "contract_id", "reason", "amendment_date", "effective_date"}

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
same folder). With a postgres:// URL the change is made in one transaction and
logged in the amendments table.

Example:
  repricer contracts amend --contracts contracts/ --amendment amend-2024-07/ --out contracts-amended/`,
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
			a, err := readAmendment(c.Context, c.String("amendment"))
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

// applyAmendments applies amendments in order to the schedule named by
// --contracts: in the database, or to the bundle written to --out.
func applyAmendments(c *cli.Context, as []contracts.Amendment, today contracts.Date) ([]*contracts.Applied, error) {
	src, out := c.String("contracts"), c.String("out")
	if src == "" {
		return nil, usagef("--contracts (a bundle folder or a postgres:// URL) is required")
	}
	ctx := c.Context
	var res []*contracts.Applied
	if postgres.IsURL(src) {
		if out != "" {
			return nil, usagef("--out is for bundles; a postgres:// store is amended in place")
		}
		db, err := postgres.Open(ctx, src, dbOptions(c))
		if err != nil {
			return nil, err
		}
		defer db.Close()
		for _, a := range as {
			r, err := postgres.ApplyAmendment(ctx, db, a, today)
			if err != nil {
				return res, refused(err)
			}
			res = append(res, r)
		}
		return res, nil
	}
	if out == "" {
		return nil, usagef("--out is required with a bundle folder")
	}
	s, err := bundle.Read(ctx, src)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		next, r, err := contracts.Apply(s, a, today)
		if err != nil {
			return nil, refused(err)
		}
		s = next
		res = append(res, r)
	}
	if err := bundle.Write(ctx, out, s); err != nil {
		return nil, fmt.Errorf("write amended bundle: %w", err)
	}
	return res, nil
}

// refused turns an amendment the rules refuse into a configuration error
// (exit status 2); database failures stay run failures (1).
func refused(err error) error {
	var ae *contracts.AmendmentError
	if errors.As(err, &ae) || errors.Is(err, postgres.ErrAmendmentExists) {
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

// readAmendment reads an amendment folder: amendment.csv (one record),
// optional replace.csv (column rate_id) and optional rates.csv (a bundle
// rates.csv; empty contract_id and effective_date take the amendment's).
func readAmendment(ctx context.Context, dir string) (contracts.Amendment, error) {
	var a contracts.Amendment
	path := filepath.Join(dir, amendmentFile)
	recs, err := readSmallCSV(path, amendmentColumns)
	if err != nil {
		return a, err
	}
	if len(recs) != 1 {
		return a, &bundle.FormatError{File: path, Err: fmt.Errorf("want exactly one amendment record, found %d", len(recs))}
	}
	rec := recs[0]
	a.ID, a.ContractID, a.Reason = rec["amendment_id"], rec["contract_id"], rec["reason"]
	for _, f := range []struct {
		name string
		dst  *contracts.Date
	}{{"amendment_date", &a.AmendmentDate}, {"effective_date", &a.EffectiveDate}} {
		if rec[f.name] == "" {
			continue // Apply names the missing field
		}
		d, err := contracts.ParseDate(rec[f.name])
		if err != nil {
			return a, &bundle.FormatError{File: path, Row: 1, Column: f.name, Err: err}
		}
		*f.dst = d
	}
	switch strings.ToLower(rec["retroactive"]) {
	case "", "false":
	case "true":
		a.Retroactive = true
	default:
		return a, &bundle.FormatError{File: path, Row: 1, Column: "retroactive", Err: errors.New("must be true or false")}
	}
	for _, id := range strings.FieldsFunc(rec["replace_rate_ids"], func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		a.Replace = append(a.Replace, id)
	}
	if rp := filepath.Join(dir, replaceFile); fileExists(rp) {
		recs, err := readSmallCSV(rp, []string{"rate_id"})
		if err != nil {
			return a, err
		}
		for _, r := range recs {
			if id := r["rate_id"]; id != "" {
				a.Replace = append(a.Replace, id)
			}
		}
	}
	if rp := filepath.Join(dir, bundle.RatesFile); fileExists(rp) {
		rs, err := readAmendmentRates(ctx, rp)
		if err != nil {
			return a, err
		}
		for _, r := range rs {
			if r.LoadError != nil {
				return a, &bundle.FormatError{File: rp, Row: r.Source.Row, Column: r.LoadError.Field, Err: r.LoadError}
			}
		}
		a.Add = rs
	}
	return a, nil
}

// readAmendmentRates reads a rates.csv with the bundle reader, so that it is
// parsed exactly like a bundle's rates.csv: it is copied beside an empty
// contracts.csv in a temporary folder.
func readAmendmentRates(ctx context.Context, path string) (rs []contracts.Rate, err error) {
	tmp, err := os.MkdirTemp("", "repricer-amendment-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &bundle.FormatError{File: path, Err: err}
	}
	if err := os.WriteFile(filepath.Join(tmp, bundle.RatesFile), b, 0o600); err != nil {
		return nil, err
	}
	header := strings.Join(bundle.ContractColumns, ",") + "\n"
	if err := os.WriteFile(filepath.Join(tmp, bundle.ContractsFile), []byte(header), 0o600); err != nil {
		return nil, err
	}
	s, err := bundle.Read(ctx, tmp)
	if err != nil {
		var fe *bundle.FormatError
		if errors.As(err, &fe) {
			fe.File = path
		}
		return nil, err
	}
	for i := range s.Rates {
		s.Rates[i].Source.File = path
	}
	return s.Rates, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readSmallCSV reads a small CSV file into records keyed by lower-cased,
// trimmed header names; values are trimmed.
func readSmallCSV(path string, required []string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &bundle.FormatError{File: path, Err: err}
	}
	defer f.Close() // read-only; a close error loses nothing
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, &bundle.FormatError{File: path, Err: err}
	}
	if len(recs) == 0 {
		return nil, &bundle.FormatError{File: path, Err: errors.New("empty file: a header row is required")}
	}
	header := recs[0]
	for i, h := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	}
	for _, r := range required {
		if !slices.Contains(header, r) {
			return nil, &bundle.FormatError{File: path, Column: r, Err: errors.New("required column is missing from the header")}
		}
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, v := range rec {
			if i < len(header) {
				m[header[i]] = strings.TrimSpace(v)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// FeeScheduleImport is what importing one fee-schedule file did.
type FeeScheduleImport struct {
	File             string                     `json:"file"`
	AmendmentID      string                     `json:"amendment_id"`
	Effective        string                     `json:"effective_date"`
	Rows             int                        `json:"rows"`
	Skipped          int                        `json:"skipped"`
	SkippedByReason  map[feeschedule.Reason]int `json:"skipped_by_reason"`
	RatesAdded       int                        `json:"rates_added"`
	RatesEndDated    int                        `json:"rates_end_dated"`
	RatesDeactivated int                        `json:"rates_deactivated"`
	Warnings         []string                   `json:"warnings,omitempty"`
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
	contract, files := c.String("contract"), c.StringSlice("file")
	switch {
	case c.NArg() > 0:
		return usagef("unexpected arguments %q", c.Args().Slice())
	case contract == "":
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
	amendDate := today
	if s := c.String("amendment-date"); s != "" {
		if amendDate, err = contracts.ParseDate(s); err != nil {
			return usagef("--amendment-date %q: %w", s, err)
		}
	}
	var effective contracts.Date
	if s := c.String("effective"); s != "" {
		if effective, err = contracts.ParseDate(s); err != nil {
			return usagef("--effective %q: %w", s, err)
		}
	}
	prefix := c.String("id-prefix")
	if prefix == "" {
		prefix = contract + "-FS"
	}
	var (
		as      []contracts.Amendment
		reports []FeeScheduleImport
	)
	for _, file := range files {
		a, rep, err := feeScheduleAmendment(c.Context, file, contract, prefix, c.String("reason"), amendDate, effective, c.Bool("retroactive"))
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
		for _, ch := range r.Replaced {
			switch ch.Action {
			case contracts.ActionEndDated:
				rep.RatesEndDated++
			case contracts.ActionDeactivated:
				rep.RatesDeactivated++
			}
		}
		rep.RatesAdded = len(r.Added)
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

// feeScheduleAmendment parses one fee-schedule file into an amendment of
// contract replacing the rates with the id prefix.
func feeScheduleAmendment(ctx context.Context, file, contract, prefix, reason string, amendDate, effective contracts.Date, retro bool) (a contracts.Amendment, rep FeeScheduleImport, err error) {
	f, err := os.Open(file)
	if err != nil {
		return a, rep, usagef("--file: %w", err)
	}
	defer f.Close() // read-only
	s, err := feeschedule.Parse(ctx, f, filepath.Base(file))
	if err != nil {
		return a, rep, err
	}
	if !effective.IsZero() {
		s.Effective = effective
	}
	rs, err := feeschedule.ToRates(s, contract, feeschedule.WithIDPrefix(prefix))
	if err != nil {
		return a, rep, err
	}
	if reason == "" {
		reason = "fee schedule " + s.Name + " effective " + s.Effective.String()
	}
	a = contracts.Amendment{
		ID:         prefix + "-" + strings.ReplaceAll(s.Effective.String(), "-", ""),
		ContractID: contract, Reason: reason,
		AmendmentDate: amendDate, EffectiveDate: s.Effective, Retroactive: retro,
		ReplacePrefix: prefix + "-", Add: rs,
	}
	rep = FeeScheduleImport{File: file, AmendmentID: a.ID, Effective: s.Effective.String(),
		Rows: len(s.Rows), Skipped: len(s.Skipped), SkippedByReason: s.SkippedByReason(), Warnings: s.Warnings}
	return a, rep, nil
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

// adjustCommand is "repricer adjust": the adjustment report between two runs.
func adjustCommand() *cli.Command {
	return &cli.Command{
		Name:  "adjust",
		Usage: "compare two runs' outputs line by line and write an adjustment report",
		Description: `Reads priced.csv and exceptions.csv of a prior and a current run and writes,
into --out (default: the current run's folder):
  adjustments.csv               one row per claim line: old and new status, contract,
                                rate, allowed, admin fee, net payable, deltas, reason
  adjustments_by_contract.csv   old, new and delta totals per contract
  adjustments_by_code.csv       the same per procedure code
  adjustment_summary.json       counts per reason and all the totals

Reasons: UNCHANGED, RATE_AMENDED, CONTRACT_CHANGED, AMOUNT_CHANGED, NEWLY_PRICED,
NEWLY_EXCEPTED, EXCEPTION_CHANGED, NEW_LINE, REMOVED_LINE (docs/reprocessing.md).

Example:
  repricer adjust --prior out/2024-06 --current out/2024-07-rerun`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "prior", Usage: "output `DIR` of the earlier run"},
			&cli.StringFlag{Name: "current", Usage: "output `DIR` of the new run"},
			&cli.StringFlag{Name: "out", Usage: "report `DIR` (default: --current)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unexpected arguments %q", c.Args().Slice())
			}
			prior, cur := c.String("prior"), c.String("current")
			if prior == "" || cur == "" {
				return usagef("--prior and --current are required")
			}
			out := c.String("out")
			if out == "" {
				out = cur
			}
			rep, err := writeAdjustmentReport(c.Context, prior, cur, out)
			if err != nil {
				return err
			}
			printReport(c.App.Writer, rep, out)
			return nil
		},
	}
}

// writeAdjustmentReport compares the run in priorDir with the run in
// currentDir and writes the adjustment report into outDir. reprice
// --compare-to PRIOR calls it with currentDir = outDir = its --out.
func writeAdjustmentReport(ctx context.Context, priorDir, currentDir, outDir string) (*adjust.Report, error) {
	rep, err := adjust.Compare(ctx, priorDir, currentDir)
	if err != nil {
		var fe *adjust.FileError
		if errors.As(err, &fe) && (errors.Is(err, adjust.ErrNoOutputs) || errors.Is(err, adjust.ErrParquet)) {
			return nil, &usageError{err}
		}
		return nil, err
	}
	if err := rep.Write(ctx, outDir); err != nil {
		return nil, err
	}
	return rep, nil
}

func printReport(w io.Writer, rep *adjust.Report, out string) {
	var parts []string
	for _, r := range adjust.Reasons() {
		if n := rep.ByReason[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, n))
		}
	}
	t := rep.Totals
	fmt.Fprintf(w, "%d lines (%s); allowed %s -> %s (%s), net payable %s -> %s (%s); report in %s\n",
		t.Lines, strings.Join(parts, ", "), t.OldAllowed, t.NewAllowed, signed(t.DeltaAllowed),
		t.OldNet, t.NewNet, signed(t.DeltaNet), out)
}

func signed(c interface{ String() string }) string {
	s := c.String()
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s
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
adjustment report (adjustments.csv, adjustments_by_contract.csv,
adjustments_by_code.csv, adjustment_summary.json) into --out. The contract store
and the bundles are only read.

Example:
  repricer contracts what-if --contracts contracts/ --proposed amend-2025-01/ \
      --claims claims-2024.csv --out what-if/`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			contractsFlag(),
			&cli.StringFlag{Name: "proposed", Usage: "proposed bundle `DIR`, or an amendment folder (with amendment.csv)"},
			&cli.StringSliceFlag{Name: "claims", Usage: "claim `FILE` (.csv or .parquet); repeat for several"},
			&cli.StringFlag{Name: "out", Usage: "report `DIR` (created if missing)"},
			systemDefaultRateFlag(),
			todayFlag(),
			dbTimeoutFlag(),
		},
		Action: whatIf,
	}
}

func whatIf(c *cli.Context) (err error) {
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
	current, currentSrc, err := loadRawSchedule(ctx, src, c.Duration("db-timeout"))
	if err != nil {
		return err
	}
	var next *contracts.Schedule
	switch {
	case fileExists(filepath.Join(proposed, amendmentFile)):
		a, err := readAmendment(ctx, proposed)
		if err != nil {
			return err
		}
		if next, _, err = contracts.Apply(current, a, today); err != nil {
			return refused(err)
		}
	case fileExists(filepath.Join(proposed, bundle.ContractsFile)):
		if next, err = bundle.Read(ctx, proposed); err != nil {
			return err
		}
	default:
		return usagef("--proposed %s holds neither amendment.csv nor contracts.csv", proposed)
	}
	tmp, err := os.MkdirTemp("", "repricer-what-if-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	for _, r := range []struct {
		dir, source string
		s           *contracts.Schedule
	}{{"current", currentSrc, current}, {"proposed", "proposed:" + proposed, next}} {
		cfg := pipeline.Config{Engine: rates.New(contracts.Validate(r.s), opts), Claims: claimFiles,
			OutDir: filepath.Join(tmp, r.dir), Format: "csv", ReferenceSource: r.source}
		if opts.SystemDefault != nil {
			cfg.SystemDefaultRate = opts.SystemDefault.String()
		}
		if _, err := pipeline.Run(ctx, cfg); err != nil {
			return fmt.Errorf("what-if %s run: %w", r.dir, err)
		}
	}
	rep, err := writeAdjustmentReport(ctx, filepath.Join(tmp, "current"), filepath.Join(tmp, "proposed"), out)
	if err != nil {
		return err
	}
	rep.Prior, rep.Current = "current:"+currentSrc, "proposed:"+proposed
	if err := rep.Write(ctx, out); err != nil { // again, with the sources named
		return err
	}
	printReport(c.App.Writer, rep, out)
	return nil
}

// loadRawSchedule reads the unvalidated schedule of a bundle folder or a
// postgres:// URL, and a description of the source without secrets.
func loadRawSchedule(ctx context.Context, src string, timeout time.Duration) (*contracts.Schedule, string, error) {
	if postgres.IsURL(src) {
		s, err := postgres.LoadURL(ctx, src, postgres.Options{StatementTimeout: timeout})
		if err != nil {
			return nil, "", err
		}
		return s, "postgres:" + postgres.Redact(src), nil
	}
	s, err := bundle.Read(ctx, src)
	if err != nil {
		return nil, "", err
	}
	return s, "bundle:" + src, nil
}
