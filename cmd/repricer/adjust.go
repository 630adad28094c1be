package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/amendment"
	"github.com/repricer/repricer/connectors/postgres"
)

// adjustCommand is "repricer adjust": the adjustment report between two runs.
func adjustCommand() *cli.Command {
	return &cli.Command{
		Name:  "adjust",
		Usage: "compare two runs' outputs line by line and write an adjustment report",
		Description: `Reads the priced and exceptions files of a prior and a current run (CSV,
Parquet or Arrow, in any combination) and writes, into --out (default: the
current run's folder):
  adjustments.csv               one row per claim line, in claim order: vendor,
                                billed amount, old and new status, contract (id and
                                number), rate, allowed, admin fee, net payable, deltas,
                                reason, and the amendment behind the change
  adjustments_by_contract.csv   old, new and delta totals per contract, with a total row
  adjustments_by_code.csv       the same per procedure code
  adjustment_summary.json       counts per reason and all the totals
  adjustment_report.html        the same for reading in a browser

Reasons: UNCHANGED, RATE_AMENDED, CONTRACT_CHANGED, AMOUNT_CHANGED, NEWLY_PRICED,
NEWLY_EXCEPTED, EXCEPTION_CHANGED, NEW_LINE, REMOVED_LINE (docs/reprocessing.md).

The amendment is named from the amendment log of --amendments (a bundle folder
or a postgres:// URL); by default, from the bundle the current run priced with.

Example:
  repricer adjust --prior out/2024-06 --current out/2024-07-rerun`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "prior", Usage: "output `DIR` of the earlier run"},
			&cli.StringFlag{Name: "current", Usage: "output `DIR` of the new run"},
			&cli.StringFlag{Name: "out", Usage: "report `DIR` (default: --current)"},
			&cli.StringFlag{Name: "amendments", Usage: "amendment log: a bundle `DIR` or a postgres:// URL (default: the current run's contract bundle)"},
			dbTimeoutFlag(),
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
			src := c.String("amendments")
			if src == "" {
				src = adjust.ReferenceBundle(cur)
			}
			log, err := amendmentLog(c.Context, src, c.Duration("db-timeout"))
			if err != nil {
				return err
			}
			rep, err := writeAdjustmentReport(c.Context, prior, cur, out, log)
			if err != nil {
				return err
			}
			printReport(c.App.Writer, rep, out)
			return nil
		},
	}
}

// amendmentLog reads the amendment log of src (a bundle folder or a
// postgres:// URL); nil for "".
func amendmentLog(ctx context.Context, src string, timeout time.Duration) (*adjust.AmendmentLog, error) {
	if src == "" {
		return nil, nil
	}
	l, err := amendment.Load(ctx, src, postgres.Options{StatementTimeout: timeout})
	if err != nil {
		return nil, err
	}
	return adjust.NewAmendmentLog(l), nil
}

// writeAdjustmentReport compares the run in priorDir with the run in
// currentDir and writes the adjustment report into outDir. reprice
// --compare-to PRIOR calls it with currentDir = outDir = its --out.
func writeAdjustmentReport(ctx context.Context, priorDir, currentDir, outDir string, log *adjust.AmendmentLog) (*adjust.Report, error) {
	rep, err := adjust.CompareWith(ctx, priorDir, currentDir, adjust.Options{Amendments: log})
	if err != nil {
		if errors.Is(err, adjust.ErrNoOutputs) {
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
	for _, a := range rep.Amendments {
		fmt.Fprintf(w, "  amendment %s (contract %s, effective %s): %s\n", a.ID, a.ContractID, a.EffectiveDate, a.Reason)
	}
}

func signed(c interface{ String() string }) string {
	s := c.String()
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	return s
}
