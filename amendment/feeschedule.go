package amendment

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/repricer/repricer/connectors/feeschedule"
	"github.com/repricer/repricer/contracts"
)

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

// Count records in the import report what applying its amendment did.
func (rep *FeeScheduleImport) Count(r *contracts.Applied) {
	for _, ch := range r.Replaced {
		switch ch.Action {
		case contracts.ActionEndDated:
			rep.RatesEndDated++
		case contracts.ActionDeactivated:
			rep.RatesDeactivated++
		}
	}
	rep.RatesAdded = len(r.Added)
}

// FeeScheduleOptions describe the amendment a fee-schedule file becomes.
type FeeScheduleOptions struct {
	Contract string // the contract the fees become rates of
	// IDPrefix is the rate id prefix of fee-schedule rates; the amendment
	// replaces the contract's rates with this prefix. Default CONTRACT-FS.
	IDPrefix string
	// Reason defaults to "fee schedule NAME effective DATE".
	Reason        string
	AmendmentDate contracts.Date
	// Effective, when set, overrides the file's effective date.
	Effective   contracts.Date
	Retroactive bool
}

// FeeSchedule parses one fee-schedule file into an amendment of
// opts.Contract (id PREFIX-YYYYMMDD) replacing the rates with the id
// prefix, and the import report of the file (Count fills in the rates once
// the amendment is applied). An unreadable file is an *os.PathError.
func FeeSchedule(ctx context.Context, file string, opts FeeScheduleOptions) (a contracts.Amendment, rep FeeScheduleImport, err error) {
	f, err := os.Open(file)
	if err != nil {
		return a, rep, err
	}
	defer f.Close() // read-only
	s, err := feeschedule.Parse(ctx, f, filepath.Base(file))
	if err != nil {
		return a, rep, err
	}
	if !opts.Effective.IsZero() {
		s.Effective = opts.Effective
	}
	prefix := opts.IDPrefix
	if prefix == "" {
		prefix = opts.Contract + "-FS"
	}
	rs, err := feeschedule.ToRates(s, opts.Contract, feeschedule.WithIDPrefix(prefix))
	if err != nil {
		return a, rep, err
	}
	reason := opts.Reason
	if reason == "" {
		reason = "fee schedule " + s.Name + " effective " + s.Effective.String()
	}
	a = contracts.Amendment{
		ID:         prefix + "-" + strings.ReplaceAll(s.Effective.String(), "-", ""),
		ContractID: opts.Contract, Reason: reason,
		AmendmentDate: opts.AmendmentDate, EffectiveDate: s.Effective, Retroactive: opts.Retroactive,
		ReplacePrefix: prefix + "-", Add: rs,
	}
	rep = FeeScheduleImport{File: file, AmendmentID: a.ID, Effective: s.Effective.String(),
		Rows: len(s.Rows), Skipped: len(s.Skipped), SkippedByReason: s.SkippedByReason(), Warnings: s.Warnings}
	return a, rep, nil
}
