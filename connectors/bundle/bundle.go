// Package bundle reads and writes contract bundles: a folder holding
// contracts.csv, rates.csv and an optional rate_kinds.csv, with one column
// per reference field (see the README's "Contract bundle" section).
//
// A bundle that cannot be read at all (a missing file or required column, a
// malformed CSV) is an error. A row with a field that does not parse is kept
// with its LoadError set, so that validation reports it and the run goes on.
package bundle

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/internal/atomicfile"
	"github.com/repricer/repricer/money"
)

// File names inside a bundle.
const (
	ContractsFile = "contracts.csv"
	RatesFile     = "rates.csv"
	KindsFile     = "rate_kinds.csv"
)

// ContractColumns lists the contract fields, in the order Write uses.
var ContractColumns = []string{
	"contract_id", "contract_number", "vendor_id", "status", "status_reason",
	"effective_date", "expiration_date", "auto_renewal", "renewal_term_months",
	"renewal_notice_days", "tpa_agreement", "tpa_name", "tpa_medical_necessity",
	"tpa_prior_auth_required", "default_rate_type", "default_rate_value",
	"stop_loss_amount", "admin_fee_pct", "excluded_services", "lesser_of_billed", "updated_at",
}

// RateColumns lists the rate fields, in the order Write uses.
var RateColumns = []string{
	"rate_id", "contract_id", "rate_kind", "rate_type", "rate_value", "specialty",
	"visit_kind", "cpt_code", "cpt_range_start", "cpt_range_end", "modifier",
	"place_of_service", "effective_date", "end_date", "min_units", "max_units",
	"requires_auth", "requires_review", "active",
}

var (
	requiredContract = []string{"contract_id", "vendor_id", "status", "effective_date", "expiration_date"}
	requiredRate     = []string{"rate_id", "contract_id", "rate_kind", "rate_type", "rate_value", "effective_date"}
)

// FormatError is a bundle file that cannot be used at all.
type FormatError struct {
	File   string
	Row    int // record number (header not counted); 0 when the problem is the file or its header
	Line   int // line of the file where the record starts; 0 when unknown
	Column string
	Err    error
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString(contracts.Source{File: e.File, Row: e.Row, Line: e.Line}.Loc())
	if e.Column != "" {
		fmt.Fprintf(&b, " column %s", e.Column)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

// Read loads the bundle in dir.
func Read(ctx context.Context, dir string) (*contracts.Schedule, error) {
	var s *contracts.Schedule
	err := ReadStream(ctx, dir, func(hdr *contracts.Schedule) error {
		s = hdr
		// A rate schedule can hold millions of rows: size the slice once
		// instead of letting append double it (and copy it) as it grows.
		if n, err := countLines(filepath.Join(dir, RatesFile)); err == nil {
			s.Rates = make([]contracts.Rate, 0, n)
		}
		return nil
	}, func(r *contracts.Rate) error {
		s.Rates = append(s.Rates, *r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ReadStream reads the bundle in dir for a caller that validates and
// indexes rates as they come instead of holding them all (as
// postgres.LoadStream does for a database): header gets the kinds and
// contracts (Rates empty), then rate each rate in file order. rate must not
// keep r, which is reused. An error from header or rate stops the read and
// is returned as is.
func ReadStream(ctx context.Context, dir string, header func(*contracts.Schedule) error, rate func(r *contracts.Rate) error) error {
	s := &contracts.Schedule{}
	if err := readFile(ctx, filepath.Join(dir, ContractsFile), requiredContract, func(r *row) error {
		s.Contracts = append(s.Contracts, parseContract(r))
		return nil
	}); err != nil {
		return err
	}
	kindsPath := filepath.Join(dir, KindsFile)
	if _, err := os.Stat(kindsPath); err == nil {
		if err := readFile(ctx, kindsPath, []string{"kind", "priority"}, func(r *row) error {
			k := contracts.RateKind{Kind: strings.TrimSpace(r.get("kind")), Source: r.src}
			k.Priority = r.integer("priority")
			if strings.TrimSpace(r.get("priority")) == "" {
				r.fail("priority", "", "priority is required") // not "priority 0"
			}
			k.LoadError = r.ferr // validation rejects it, quoting the value
			s.Kinds = append(s.Kinds, k)
			return nil
		}); err != nil {
			return err
		}
	}
	if err := header(s); err != nil {
		return err
	}
	in := newInterner()
	var rt contracts.Rate
	return readFile(ctx, filepath.Join(dir, RatesFile), requiredRate, func(r *row) error {
		rt = parseRate(r, in)
		return rate(&rt)
	})
}

// row is one record of a bundle file with its header index.
type row struct {
	cols map[string]int
	rec  []string
	src  contracts.Source
	ferr *contracts.FieldError
}

func (r *row) get(name string) string {
	if i, ok := r.cols[name]; ok && i < len(r.rec) {
		return r.rec[i]
	}
	return ""
}

// fail records the first field that did not parse.
func (r *row) fail(field, value, reason string) {
	if r.ferr == nil {
		r.ferr = &contracts.FieldError{Field: field, Value: value, Reason: reason}
	}
}

func (r *row) date(field string) contracts.Date {
	s := strings.TrimSpace(r.get(field))
	if s == "" {
		return 0
	}
	d, err := contracts.ParseDate(s)
	if err != nil {
		r.fail(field, s, err.Error())
	}
	return d
}

func (r *row) boolean(field string, def bool) bool {
	s := strings.TrimSpace(r.get(field))
	switch strings.ToLower(s) {
	case "":
		return def
	case "true":
		return true
	case "false":
		return false
	}
	r.fail(field, s, "must be true or false")
	return def
}

func (r *row) integer(field string) int {
	s := strings.TrimSpace(r.get(field))
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		r.fail(field, s, "not a whole number")
	}
	return n
}

func (r *row) fixed(field string) (money.Fixed, bool) {
	s := strings.TrimSpace(r.get(field))
	if s == "" {
		return 0, false
	}
	f, err := money.ParseFixed(s)
	if err != nil {
		r.fail(field, s, err.Error())
		return 0, false
	}
	return f, true
}

func (r *row) cents(field string) money.Cents {
	s := strings.TrimSpace(r.get(field))
	if s == "" {
		return 0
	}
	c, err := money.ParseCents(s)
	if err != nil {
		r.fail(field, s, err.Error())
	}
	return c
}

func (r *row) rateType(field string) contracts.RateType {
	s := strings.TrimSpace(r.get(field))
	if s == "" {
		return 0
	}
	t, ok := contracts.ParseRateType(s)
	if !ok {
		r.fail(field, s, "must be Percentage or Amount")
	}
	return t
}

// codes splits a comma-separated list of codes, normalized.
func codes(s string, in *interner) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = contracts.NormalizeCode(p); p != "" {
			out = append(out, in.get(inOther, p))
		}
	}
	return out
}

func parseContract(r *row) contracts.Contract {
	c := contracts.Contract{
		ID:                   strings.TrimSpace(r.get("contract_id")),
		Number:               strings.TrimSpace(r.get("contract_number")),
		VendorID:             strings.TrimSpace(r.get("vendor_id")),
		StatusReason:         strings.TrimSpace(r.get("status_reason")),
		Effective:            r.date("effective_date"),
		Expiration:           r.date("expiration_date"),
		AutoRenewal:          r.boolean("auto_renewal", false),
		RenewalTermMonths:    r.integer("renewal_term_months"),
		RenewalNoticeDays:    r.integer("renewal_notice_days"),
		TPA:                  r.boolean("tpa_agreement", false),
		TPAName:              strings.TrimSpace(r.get("tpa_name")),
		TPAMedicalNecessity:  r.boolean("tpa_medical_necessity", false),
		TPAPriorAuthRequired: r.boolean("tpa_prior_auth_required", false),
		DefaultRateType:      r.rateType("default_rate_type"),
		StopLoss:             r.cents("stop_loss_amount"),
		LesserOfBilled:       r.boolean("lesser_of_billed", false),
		UpdatedAt:            strings.TrimSpace(r.get("updated_at")),
		Source:               r.src,
	}
	status := strings.TrimSpace(r.get("status"))
	if st, ok := contracts.ParseStatus(status); ok {
		c.Status = st
	} else {
		r.fail("status", status, "must be one of Draft, Pending, Active, Expired, Terminated")
	}
	c.DefaultRateValue, c.HasDefaultRate = r.fixed("default_rate_value")
	if c.HasDefaultRate && c.DefaultRateType == 0 {
		r.fail("default_rate_type", "", "a default_rate_value needs a default_rate_type")
	}
	c.AdminFeePct, _ = r.fixed("admin_fee_pct")
	for _, item := range codes(r.get("excluded_services"), nil) {
		lo, hi, isRange := strings.Cut(item, "-")
		if !isRange {
			hi = lo
		}
		lo, hi = strings.TrimSpace(lo), strings.TrimSpace(hi)
		if lo == "" || hi == "" || hi < lo {
			r.fail("excluded_services", item, "not a code or an ascending code range A-B")
			continue
		}
		c.ExcludedServices = append(c.ExcludedServices, contracts.CodeRange{Lo: lo, Hi: hi})
	}
	c.LoadError = r.ferr
	return c
}

// interner shares one copy of each repeated value (contract ids, kinds,
// codes) among the rates that name it. Without it every rate would keep its
// whole CSV record alive through its fields: 75 MB for 1M rates. Rates come
// grouped by contract, so each field first checks the value of the row
// before. A nil *interner returns its argument.
type interner struct {
	m    map[string]string
	last [numInterned]string
}

// Fields of a rate row that the interner caches the last value of.
const (
	inContract = iota
	inKind
	inCode
	inOther
	numInterned
)

func newInterner() *interner { return &interner{m: map[string]string{}} }

func (in *interner) get(field int, s string) string {
	if s == "" || in == nil {
		return s
	}
	if s == in.last[field] {
		return in.last[field]
	}
	v, ok := in.m[s]
	if !ok {
		v = strings.Clone(s)
		in.m[v] = v
	}
	in.last[field] = v
	return v
}

func parseRate(r *row, in *interner) contracts.Rate {
	rt := contracts.Rate{
		ID:             strings.Clone(strings.TrimSpace(r.get("rate_id"))),
		ContractID:     in.get(inContract, strings.TrimSpace(r.get("contract_id"))),
		Kind:           in.get(inKind, strings.ToUpper(strings.TrimSpace(r.get("rate_kind")))),
		Type:           r.rateType("rate_type"),
		Specialty:      in.get(inOther, contracts.NormalizeCode(r.get("specialty"))),
		VisitKind:      in.get(inOther, contracts.NormalizeCode(r.get("visit_kind"))),
		CPTCode:        in.get(inCode, contracts.NormalizeCode(r.get("cpt_code"))),
		RangeStart:     in.get(inCode, contracts.NormalizeCode(r.get("cpt_range_start"))),
		RangeEnd:       in.get(inCode, contracts.NormalizeCode(r.get("cpt_range_end"))),
		Modifier:       in.get(inOther, contracts.NormalizeCode(r.get("modifier"))),
		PlaceOfService: codes(r.get("place_of_service"), in),
		Effective:      r.date("effective_date"),
		End:            r.date("end_date"),
		MinUnits:       r.integer("min_units"),
		MaxUnits:       r.integer("max_units"),
		RequiresAuth:   r.boolean("requires_auth", false),
		RequiresReview: r.boolean("requires_review", false),
		Active:         r.boolean("active", true),
		Source:         r.src,
	}
	if v, ok := r.fixed("rate_value"); ok {
		rt.Value = v
	} else if r.ferr == nil {
		r.fail("rate_value", "", "rate_value is required")
	}
	rt.LoadError = r.ferr
	return rt
}

// countLines counts the newlines of the file at path: an upper bound of its
// records.
func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	n := 0
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// readFile streams the CSV at path, checks its header for the required
// columns and calls fn for each record, stopping at the first error fn returns.
func readFile(ctx context.Context, path string, required []string, fn func(*row) error) error {
	f, err := os.Open(path)
	if err != nil {
		return &FormatError{File: path, Err: err}
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty file: a header row is required")
		}
		return &FormatError{File: path, Err: err}
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := cols[h]; dup {
			return &FormatError{File: path, Column: h, Err: errors.New("column appears twice in the header")}
		}
		cols[h] = i
	}
	for _, name := range required {
		if _, ok := cols[name]; !ok {
			return &FormatError{File: path, Column: name, Err: errors.New("required column is missing from the header")}
		}
	}
	for n := 1; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			fe := &FormatError{File: path, Row: n, Err: err}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				fe.Line, fe.Err = pe.StartLine, pe.Err
			}
			return fe
		}
		line, _ := cr.FieldPos(0)
		if err := fn(&row{cols: cols, rec: rec, src: contracts.Source{File: path, Row: n, Line: line}}); err != nil {
			return err
		}
	}
}

// Write writes s as a bundle into dir (created if needed). Rows are written
// in the schedule's order; rate_kinds.csv only when s.Kinds is set.
func Write(ctx context.Context, dir string, s *contracts.Schedule) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := WriteCSVFile(ctx, filepath.Join(dir, ContractsFile), ContractColumns, len(s.Contracts), func(i int) []string {
		return ContractRecord(&s.Contracts[i])
	}); err != nil {
		return err
	}
	if err := WriteCSVFile(ctx, filepath.Join(dir, RatesFile), RateColumns, len(s.Rates), func(i int) []string {
		return RateRecord(&s.Rates[i])
	}); err != nil {
		return err
	}
	if len(s.Kinds) == 0 {
		return nil
	}
	return WriteCSVFile(ctx, filepath.Join(dir, KindsFile), []string{"kind", "priority"}, len(s.Kinds), func(i int) []string {
		return []string{s.Kinds[i].Kind, strconv.Itoa(s.Kinds[i].Priority)}
	})
}

// ContractRecord formats c in ContractColumns order.
func ContractRecord(c *contracts.Contract) []string {
	var excl []string
	for _, r := range c.ExcludedServices {
		if r.Lo == r.Hi {
			excl = append(excl, r.Lo)
		} else {
			excl = append(excl, r.Lo+"-"+r.Hi)
		}
	}
	def := ""
	if c.HasDefaultRate {
		def = c.DefaultRateValue.String()
	}
	stop := ""
	if c.StopLoss != 0 {
		stop = c.StopLoss.String()
	}
	return []string{
		c.ID, c.Number, c.VendorID, string(c.Status), c.StatusReason,
		c.Effective.String(), c.Expiration.String(), fmtBool(c.AutoRenewal), fmtInt(c.RenewalTermMonths),
		fmtInt(c.RenewalNoticeDays), fmtBool(c.TPA), c.TPAName, fmtBool(c.TPAMedicalNecessity),
		fmtBool(c.TPAPriorAuthRequired), c.DefaultRateType.String(), def,
		stop, c.AdminFeePct.String(), strings.Join(excl, ","), fmtBool(c.LesserOfBilled), c.UpdatedAt,
	}
}

// RateRecord formats r in RateColumns order.
func RateRecord(r *contracts.Rate) []string {
	return []string{
		r.ID, r.ContractID, r.Kind, r.Type.String(), r.Value.String(), r.Specialty,
		r.VisitKind, r.CPTCode, r.RangeStart, r.RangeEnd, r.Modifier,
		strings.Join(r.PlaceOfService, ","), r.Effective.String(), r.End.String(), fmtInt(r.MinUnits), fmtInt(r.MaxUnits),
		fmtBool(r.RequiresAuth), fmtBool(r.RequiresReview), fmtBool(r.Active),
	}
}

func fmtBool(b bool) string { return strconv.FormatBool(b) }

func fmtInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// WriteCSVFile writes a CSV file of the header and n records (rec(i) is
// record i) aside and renames it to path, so that a reader never sees half
// a file. Bundle files and the files kept beside them (an amendment log)
// are written this way.
func WriteCSVFile(ctx context.Context, path string, header []string, n int, rec func(int) []string) error {
	return atomicfile.Write(path, func(f io.Writer) error {
		w := csv.NewWriter(f)
		if err := w.Write(header); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := w.Write(rec(i)); err != nil {
				return err
			}
		}
		w.Flush()
		return w.Error()
	})
}
