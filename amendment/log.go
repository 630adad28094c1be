package amendment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
)

// Files of a bundle's amendment log.
const (
	LogFile      = "amendments.csv"
	LogRatesFile = "amendment_rates.csv"
)

// LogColumns and LogRatesColumns are the columns of the log files, those
// of the store's amendments and amendment_rates tables.
var (
	LogColumns      = []string{"amendment_id", "contract_id", "reason", "amendment_date", "effective_date", "retroactive"}
	LogRatesColumns = []string{"amendment_id", "rate_id", "action", "previous_end_date", "new_end_date"}
)

// Record is one amendment of the log.
type Record struct {
	ID            string
	ContractID    string
	Reason        string
	AmendmentDate contracts.Date
	EffectiveDate contracts.Date
	Retroactive   bool
}

// RateAction is what an amendment did to one rate: a contracts action
// (end_dated, deactivated, already_ended) or ActionAdded.
type RateAction struct {
	AmendmentID string
	RateID      string
	Action      string
	// PreviousEnd and NewEnd are the rate's end dates before and after
	// (0 = open; an added rate has only NewEnd).
	PreviousEnd, NewEnd contracts.Date
}

// ActionAdded is the action of a rate an amendment added.
const ActionAdded = "added"

// Log is the amendment log of a schedule, in the order applied.
type Log struct {
	Amendments []Record
	Rates      []RateAction
}

// Has reports whether the log holds amendment id.
func (l *Log) Has(id string) bool {
	for _, r := range l.Amendments {
		if r.ID == id {
			return true
		}
	}
	return false
}

// Append logs an applied amendment.
func (l *Log) Append(a contracts.Amendment, r *contracts.Applied) {
	l.Amendments = append(l.Amendments, Record{ID: a.ID, ContractID: a.ContractID, Reason: a.Reason,
		AmendmentDate: a.AmendmentDate, EffectiveDate: a.EffectiveDate, Retroactive: a.Retroactive})
	for _, ch := range r.Replaced {
		l.Rates = append(l.Rates, RateAction{AmendmentID: a.ID, RateID: ch.RateID, Action: ch.Action, PreviousEnd: ch.OldEnd, NewEnd: ch.NewEnd})
	}
	for _, rt := range r.Added {
		l.Rates = append(l.Rates, RateAction{AmendmentID: a.ID, RateID: rt.ID, Action: ActionAdded, NewEnd: rt.End})
	}
}

// ReadLog reads the amendment log of the bundle folder dir; a bundle
// without amendments.csv has an empty log.
func ReadLog(_ context.Context, dir string) (*Log, error) {
	l := &Log{}
	path := filepath.Join(dir, LogFile)
	if !fileExists(path) {
		return l, nil
	}
	recs, err := readSmallCSV(path, LogColumns)
	if err != nil {
		return nil, err
	}
	for i, rec := range recs {
		r := Record{ID: rec["amendment_id"], ContractID: rec["contract_id"], Reason: rec["reason"]}
		if r.AmendmentDate, err = parseLogDate(path, i+1, "amendment_date", rec); err != nil {
			return nil, err
		}
		if r.EffectiveDate, err = parseLogDate(path, i+1, "effective_date", rec); err != nil {
			return nil, err
		}
		if r.Retroactive, err = parseBool(rec["retroactive"]); err != nil {
			return nil, &bundle.FormatError{File: path, Row: i + 1, Column: "retroactive", Err: err}
		}
		l.Amendments = append(l.Amendments, r)
	}
	path = filepath.Join(dir, LogRatesFile)
	if !fileExists(path) {
		return l, nil
	}
	if recs, err = readSmallCSV(path, LogRatesColumns); err != nil {
		return nil, err
	}
	for i, rec := range recs {
		ra := RateAction{AmendmentID: rec["amendment_id"], RateID: rec["rate_id"], Action: rec["action"]}
		if ra.PreviousEnd, err = parseLogDate(path, i+1, "previous_end_date", rec); err != nil {
			return nil, err
		}
		if ra.NewEnd, err = parseLogDate(path, i+1, "new_end_date", rec); err != nil {
			return nil, err
		}
		l.Rates = append(l.Rates, ra)
	}
	return l, nil
}

func parseLogDate(path string, row int, col string, rec map[string]string) (contracts.Date, error) {
	if rec[col] == "" {
		return 0, nil
	}
	d, err := contracts.ParseDate(rec[col])
	if err != nil {
		return 0, &bundle.FormatError{File: path, Row: row, Column: col, Err: err}
	}
	return d, nil
}

// Write writes the log into the bundle folder dir (amendments.csv and
// amendment_rates.csv), each file written aside and renamed into place.
func (l *Log) Write(ctx context.Context, dir string) error {
	if err := bundle.WriteCSVFile(ctx, filepath.Join(dir, LogFile), LogColumns, len(l.Amendments), func(i int) []string {
		r := &l.Amendments[i]
		return []string{r.ID, r.ContractID, r.Reason, r.AmendmentDate.String(), r.EffectiveDate.String(), strconv.FormatBool(r.Retroactive)}
	}); err != nil {
		return err
	}
	return bundle.WriteCSVFile(ctx, filepath.Join(dir, LogRatesFile), LogRatesColumns, len(l.Rates), func(i int) []string {
		r := &l.Rates[i]
		return []string{r.AmendmentID, r.RateID, r.Action, dateText(r.PreviousEnd), dateText(r.NewEnd)}
	})
}

func dateText(d contracts.Date) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

// ReadLogDB reads the amendment log of the store at url: the amendments
// and amendment_rates tables.
func ReadLogDB(ctx context.Context, url string, opts postgres.Options) (l *Log, err error) {
	err = postgres.WithDB(ctx, url, opts, func(db *sqlx.DB) error {
		l, err = readLogDB(ctx, db)
		return err
	})
	return l, err
}

func readLogDB(ctx context.Context, db *sqlx.DB) (l *Log, err error) {
	recs, err := postgres.Amendments(ctx, db, "")
	if err != nil {
		return nil, err
	}
	l = &Log{}
	for _, r := range recs {
		l.Amendments = append(l.Amendments, Record{ID: r.ID, ContractID: r.ContractID, Reason: r.Reason,
			AmendmentDate: r.AmendmentDate, EffectiveDate: r.EffectiveDate, Retroactive: r.Retroactive})
	}
	rates, err := postgres.AmendmentRates(ctx, db)
	if err != nil {
		return nil, err
	}
	for _, r := range rates {
		l.Rates = append(l.Rates, RateAction{AmendmentID: r.AmendmentID, RateID: r.RateID, Action: r.Action,
			PreviousEnd: r.PreviousEnd, NewEnd: r.NewEnd})
	}
	return l, nil
}

// Load reads the amendment log of src: a postgres:// URL or a bundle folder.
func Load(ctx context.Context, src string, opts postgres.Options) (*Log, error) {
	if postgres.IsURL(src) {
		return ReadLogDB(ctx, src, opts)
	}
	if !fileExists(src) {
		return nil, fmt.Errorf("amendment log: %w", &os.PathError{Op: "open", Path: src, Err: os.ErrNotExist})
	}
	return ReadLog(ctx, src)
}
