package adjust

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/pipeline"
)

// ListRunsFile returns the runs of the ledger file at path in the order
// they were recorded; a run recorded twice is listed once, with its last
// record, where that record is. Lines that are not whole records (torn by a
// write that failed) are left out, as ReadRunsFile leaves them out.
func ListRunsFile(ctx context.Context, path string) ([]RunRecord, error) {
	all, _, err := ReadRunsFile(ctx, path)
	if err != nil {
		return nil, err
	}
	var out []RunRecord
	seen := map[string]bool{}
	for i := len(all) - 1; i >= 0; i-- {
		if !seen[all[i].RunID] {
			seen[all[i].RunID] = true
			out = append(out, all[i])
		}
	}
	slices.Reverse(out)
	return out, nil
}

// ListRuns returns the runs of the ledger named by target (a postgres://
// URL: the runs table, by start time; or a ledger file, see ListRunsFile).
func ListRuns(ctx context.Context, target string, timeout time.Duration) ([]RunRecord, error) {
	if !postgres.IsURL(target) {
		return ListRunsFile(ctx, target)
	}
	var out []RunRecord
	err := withLedgerDB(ctx, target, timeout, func(db *sqlx.DB) error {
		recs, err := postgres.ListRuns(ctx, db)
		if err != nil {
			return err
		}
		for i := range recs {
			r, err := fromPG(&recs[i])
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// GetRun returns the record of runID in the ledger named by target, or an
// error wrapping ErrRunNotFound (postgres.ErrRunNotFound for a store).
func GetRun(ctx context.Context, target string, timeout time.Duration, runID string) (*RunRecord, error) {
	if !postgres.IsURL(target) {
		return GetRunFile(ctx, target, runID)
	}
	var rec RunRecord
	err := withLedgerDB(ctx, target, timeout, func(db *sqlx.DB) error {
		pg, err := postgres.GetRun(ctx, db, runID)
		if err != nil {
			return err
		}
		rec, err = fromPG(pg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// fromPG maps a runs-table row back onto a ledger entry (the inverse of
// pgRunRecord); documents missing from the row stay zero.
func fromPG(pg *postgres.RunRecord) (RunRecord, error) {
	rec := RunRecord{RunID: pg.RunID, StartedAt: pg.StartedAt.UTC(), OutputLocation: pg.OutputLocation}
	if !pg.FinishedAt.IsZero() {
		rec.FinishedAt = pg.FinishedAt.UTC()
	}
	var inputs struct {
		Files     []pipeline.InputSummary   `json:"files"`
		Reference pipeline.ReferenceSummary `json:"reference"`
		Settings  pipeline.Settings         `json:"settings"`
	}
	var totals struct {
		Totals     pipeline.Totals           `json:"totals"`
		ByContract []pipeline.ContractTotals `json:"by_contract"`
	}
	for _, d := range []struct {
		name string
		b    json.RawMessage
		v    any
	}{{"inputs", pg.Inputs, &inputs}, {"counts", pg.Counts, &rec.Counts}, {"totals", pg.Totals, &totals}} {
		if len(d.b) == 0 {
			continue
		}
		if err := json.Unmarshal(d.b, d.v); err != nil {
			return rec, &postgres.LedgerError{RunID: pg.RunID, Err: fmt.Errorf("%s: %w", d.name, err)}
		}
	}
	rec.Inputs, rec.Reference, rec.Settings = inputs.Files, inputs.Reference, inputs.Settings
	if rec.Reference.Fingerprint == "" {
		rec.Reference.Fingerprint = pg.ReferenceFingerprint
	}
	rec.Totals, rec.ByContract = totals.Totals, totals.ByContract
	return rec, nil
}

// WriteRunList writes one line per run under a header: run id, start time,
// input lines, priced lines, error exceptions, net payable, the first 12
// hex digits of the reference fingerprint, the input files and the output
// folder.
func WriteRunList(w io.Writer, recs []RunRecord) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN_ID\tSTARTED\tLINES\tPRICED\tERRORS\tNET_PAYABLE\tFINGERPRINT\tINPUTS\tOUTPUT")
	for i := range recs {
		r := &recs[i]
		files := make([]string, len(r.Inputs))
		for j, in := range r.Inputs {
			files[j] = in.File
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", r.RunID, r.StartedAt.UTC().Format(time.RFC3339),
			r.Counts.InputLines, r.Counts.PricedLines, r.Counts.ErrorExceptions, r.Totals.NetPayable,
			short(r.Reference.Fingerprint, 12), strings.Join(files, ","), r.OutputLocation)
	}
	return tw.Flush()
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// WriteRunText writes one run's ledger entry for reading: when it ran,
// its inputs with their checksums, the reference data and settings, the
// counts, the totals and totals by contract, and the output folder.
func WriteRunText(w io.Writer, r *RunRecord) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("run\t%s", r.RunID)
	p("started\t%s", r.StartedAt.UTC().Format(time.RFC3339))
	if !r.FinishedAt.IsZero() {
		p("finished\t%s", r.FinishedAt.UTC().Format(time.RFC3339))
	}
	for _, in := range r.Inputs {
		p("input\t%s: %d lines, %d bytes, sha256 %s", in.File, in.Lines, in.Bytes, in.SHA256)
	}
	ref := &r.Reference
	p("reference\t%s: %d contracts (%d rejected), %d rates, %d schedule issues", ref.Source, ref.Contracts, ref.RejectedContracts, ref.Rates, ref.Issues)
	p("fingerprint\t%s", ref.Fingerprint)
	settings := "format " + r.Settings.Format
	if r.Settings.SystemDefaultRate != "" {
		settings += ", system default rate " + r.Settings.SystemDefaultRate
	}
	p("settings\t%s", settings)
	c := &r.Counts
	p("lines\t%d: %d priced, %d error exceptions, %d review exceptions", c.InputLines, c.PricedLines, c.ErrorExceptions, c.ReviewExceptions)
	t := &r.Totals
	p("totals\tbilled %s, allowed %s, admin fee %s, net payable %s", t.BilledInput, t.Allowed, t.AdminFee, t.NetPayable)
	for _, ct := range r.ByContract {
		p("contract\t%s %s: %d lines, billed %s, allowed %s, net payable %s", ct.ContractID, ct.ContractNumber, ct.Lines, ct.Billed, ct.Allowed, ct.NetPayable)
	}
	p("output\t%s", r.OutputLocation)
	return tw.Flush()
}
