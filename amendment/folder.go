// Package amendment reads, applies and logs contract amendments: the
// amendment folders of docs/reprocessing.md (ReadFolder), published fee
// schedules turned into amendments (FeeSchedule), applying them to a
// contract bundle or a PostgreSQL store (Apply), and the amendment log a
// bundle keeps beside its contracts (amendments.csv and
// amendment_rates.csv, like the amendments and amendment_rates tables of
// the store), which the adjustment report reads to name the amendment
// behind a change (ReadLog).
package amendment

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/contracts"
)

// Amendment folder files.
const (
	File        = "amendment.csv"
	ReplaceFile = "replace.csv"
)

// Columns are the required columns of amendment.csv; replace_rate_ids and
// retroactive are optional.
var Columns = []string{"amendment_id", "contract_id", "reason", "amendment_date", "effective_date"}

// IsFolder reports whether dir holds an amendment (an amendment.csv).
func IsFolder(dir string) bool { return fileExists(filepath.Join(dir, File)) }

// ReadFolder reads an amendment folder: amendment.csv (one record),
// optional replace.csv (column rate_id) and optional rates.csv (a bundle
// rates.csv; empty contract_id and effective_date take the amendment's).
// A malformed file is a *bundle.FormatError naming the file, row and column.
func ReadFolder(ctx context.Context, dir string) (contracts.Amendment, error) {
	var a contracts.Amendment
	path := filepath.Join(dir, File)
	recs, err := readSmallCSV(path, Columns)
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
	if a.Retroactive, err = parseBool(rec["retroactive"]); err != nil {
		return a, &bundle.FormatError{File: path, Row: 1, Column: "retroactive", Err: err}
	}
	a.Replace = append(a.Replace, strings.FieldsFunc(rec["replace_rate_ids"], func(r rune) bool { return r == ',' || r == ';' || r == ' ' })...)
	if rp := filepath.Join(dir, ReplaceFile); fileExists(rp) {
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
		rs, err := readRates(ctx, rp)
		if err != nil {
			return a, err
		}
		for _, r := range rs {
			if r.LoadError != nil {
				return a, &bundle.FormatError{File: rp, Row: r.Source.Row, Line: r.Source.Line, Column: r.LoadError.Field, Err: r.LoadError}
			}
		}
		a.Add = rs
	}
	return a, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, errors.New("must be true or false")
}

// readRates reads a rates.csv with the bundle reader, so that it is parsed
// exactly like a bundle's rates.csv: it is copied beside an empty
// contracts.csv in a temporary folder.
func readRates(ctx context.Context, path string) (rs []contracts.Rate, err error) {
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
