// Package adjust compares two pricing runs of the same claims line by line
// and explains every difference: the adjustment report finance teams need
// after a contract amendment (docs/reprocessing.md).
//
// Compare reads two output folders written by pipeline.Run in CSV format
// (priced.csv and exceptions.csv; Parquet outputs are not read yet) and
// returns a Report: one Line per claim line with the old and new outcome,
// amounts, contract and rate, the exact money.Cents deltas and a Reason,
// plus totals by contract and by procedure code.
//
// # Matching lines
//
// A line is keyed by (claim_id, line_number). Each run contributes, per key,
// its primary outcome — the priced row, or else the first error exception
// whose code is not INVALID_ROW or DUPLICATE_LINE — and, in exceptions-file
// order, its secondary rows (INVALID_ROW and DUPLICATE_LINE exceptions, which
// describe extra input rows rather than the line's pricing). Primaries are
// matched with primaries and secondaries with secondaries in order. Review
// exceptions are not lines (the priced row stands for them).
//
// # Reasons
//
//	UNCHANGED          both priced with the same contract, rate_id, rate
//	                   value and amounts; or both the same exception code
//	RATE_AMENDED       both priced under the same contract, but the rate_id,
//	                   rate type or rate value differs
//	CONTRACT_CHANGED   both priced, under different contracts
//	AMOUNT_CHANGED     same contract and rate, different allowed amount,
//	                   admin fee or net payable (stop-loss share of the case,
//	                   the contract's admin fee, units)
//	NEWLY_PRICED       an exception before, priced now
//	NEWLY_EXCEPTED     priced before, an exception now
//	EXCEPTION_CHANGED  an exception in both runs, with different codes
//	NEW_LINE           only in the current run
//	REMOVED_LINE       only in the prior run
//
// An exception counts as zero allowed, admin fee and net payable, so every
// delta is new minus old in exact cents.
//
// # Order and memory
//
// Lines come in the current run's order: its priced rows in file order,
// then its error exceptions in file order (the two files each keep input
// order; their interleaving is not recorded in the outputs), then the
// lines only the prior run has, in its order. Both runs are held in memory
// (a few hundred bytes per line); this is meant for runs of up to some
// millions of lines.
package adjust

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/repricer/repricer/money"
)

// Reason says why a line's outcome changed (see the package doc).
type Reason string

// Reasons.
const (
	Unchanged        Reason = "UNCHANGED"
	RateAmended      Reason = "RATE_AMENDED"
	ContractChanged  Reason = "CONTRACT_CHANGED"
	AmountChanged    Reason = "AMOUNT_CHANGED"
	NewlyPriced      Reason = "NEWLY_PRICED"
	NewlyExcepted    Reason = "NEWLY_EXCEPTED"
	ExceptionChanged Reason = "EXCEPTION_CHANGED"
	NewLine          Reason = "NEW_LINE"
	RemovedLine      Reason = "REMOVED_LINE"
)

// Reasons lists every reason in report order.
func Reasons() []Reason {
	return []Reason{Unchanged, RateAmended, ContractChanged, AmountChanged, NewlyPriced, NewlyExcepted, ExceptionChanged, NewLine, RemovedLine}
}

// File names of a pipeline output folder, and of the report.
const (
	PricedFile     = "priced.csv"
	ExceptionsFile = "exceptions.csv"

	AdjustmentsFile = "adjustments.csv"
	ByContractFile  = "adjustments_by_contract.csv"
	ByCodeFile      = "adjustments_by_code.csv"
	SummaryFile     = "adjustment_summary.json"
)

// StatusPriced is the status of a priced line; other statuses are
// exception codes, and "" means the run has no such line.
const StatusPriced = "priced"

// Errors of Compare.
var (
	ErrNoOutputs = errors.New("no priced.csv and exceptions.csv in the output folder")
	ErrParquet   = errors.New("the output folder holds Parquet outputs; compare reads CSV outputs (rerun with --format csv)")
	ErrColumn    = errors.New("required column is missing")
	ErrValue     = errors.New("value does not parse")
)

// FileError is an output file Compare cannot read.
type FileError struct {
	File   string
	Row    int // 1-based record number, header not counted; 0 = the file
	Column string
	Err    error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("adjust: ")
	b.WriteString(e.File)
	if e.Row > 0 {
		fmt.Fprintf(&b, ":%d", e.Row)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, " column %s", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// Outcome is one run's result for a line.
type Outcome struct {
	Status     string // StatusPriced, an exception code, or "" (absent)
	ContractID string
	RateID     string
	RateType   string
	RateValue  string
	Allowed    money.Cents
	AdminFee   money.Cents
	NetPayable money.Cents
}

// Line is one row of the adjustment report.
type Line struct {
	ClaimID     string
	LineNumber  string
	CPTCode     string
	ServiceDate string
	Reason      Reason
	Old, New    Outcome
}

// Delta returns new minus old allowed amount, admin fee and net payable.
func (l *Line) Delta() (allowed, adminFee, net money.Cents) {
	return l.New.Allowed - l.Old.Allowed, l.New.AdminFee - l.Old.AdminFee, l.New.NetPayable - l.Old.NetPayable
}

// Totals are old, new and delta amounts over a set of lines.
type Totals struct {
	Lines         int64       `json:"lines"`
	ChangedLines  int64       `json:"changed_lines"`
	OldAllowed    money.Cents `json:"old_allowed_amount"`
	NewAllowed    money.Cents `json:"new_allowed_amount"`
	DeltaAllowed  money.Cents `json:"delta_allowed_amount"`
	OldAdminFee   money.Cents `json:"old_admin_fee"`
	NewAdminFee   money.Cents `json:"new_admin_fee"`
	DeltaAdminFee money.Cents `json:"delta_admin_fee"`
	OldNet        money.Cents `json:"old_net_payable"`
	NewNet        money.Cents `json:"new_net_payable"`
	DeltaNet      money.Cents `json:"delta_net_payable"`
}

func (t *Totals) addOld(o *Outcome) {
	t.OldAllowed += o.Allowed
	t.OldAdminFee += o.AdminFee
	t.OldNet += o.NetPayable
}

func (t *Totals) addNew(o *Outcome) {
	t.NewAllowed += o.Allowed
	t.NewAdminFee += o.AdminFee
	t.NewNet += o.NetPayable
}

func (t *Totals) finish() {
	t.DeltaAllowed = t.NewAllowed - t.OldAllowed
	t.DeltaAdminFee = t.NewAdminFee - t.OldAdminFee
	t.DeltaNet = t.NewNet - t.OldNet
}

// GroupTotals are the totals of one contract or one procedure code.
type GroupTotals struct {
	Key string `json:"key"`
	Totals
}

// Report is the result of Compare.
type Report struct {
	Prior   string `json:"prior"`
	Current string `json:"current"`
	Lines   []Line `json:"-"`
	// ByReason counts lines per reason (every reason listed).
	ByReason map[Reason]int64 `json:"by_reason"`
	Totals   Totals           `json:"totals"`
	// ByContract: a line's old amounts count under its old contract and
	// its new amounts under its new contract; Lines and ChangedLines count
	// the lines touching the contract in either run. Key "" = lines that
	// have no contract in either run (exceptions).
	ByContract []GroupTotals `json:"by_contract"`
	// ByCode groups by the line's procedure code.
	ByCode []GroupTotals `json:"by_code"`
}

// Compare reads the outputs of two runs and explains their differences.
func Compare(ctx context.Context, priorDir, currentDir string) (*Report, error) {
	prior, err := readRun(ctx, priorDir)
	if err != nil {
		return nil, err
	}
	cur, err := readRun(ctx, currentDir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Prior: priorDir, Current: currentDir}
	emit := func(o, n *row) {
		l := Line{}
		if n != nil {
			l.ClaimID, l.LineNumber, l.CPTCode, l.ServiceDate, l.New = n.claimID, n.lineNumber, n.cpt, n.serviceDate, n.out
		}
		if o != nil {
			if n == nil {
				l.ClaimID, l.LineNumber, l.CPTCode, l.ServiceDate = o.claimID, o.lineNumber, o.cpt, o.serviceDate
			}
			l.Old = o.out
		}
		l.Reason = classify(&l.Old, &l.New)
		rep.Lines = append(rep.Lines, l)
	}
	for _, n := range cur.rows {
		if err := ctxCheck(ctx, len(rep.Lines)); err != nil {
			return nil, err
		}
		emit(prior.take(n), n)
	}
	for _, o := range prior.rows {
		if !o.matched {
			emit(o, nil)
		}
	}
	rep.total()
	return rep, nil
}

func ctxCheck(ctx context.Context, n int) error {
	if n%4096 == 0 {
		return ctx.Err()
	}
	return nil
}

// classify applies the reason rules of the package doc.
func classify(o, n *Outcome) Reason {
	switch {
	case o.Status == "":
		return NewLine
	case n.Status == "":
		return RemovedLine
	case o.Status != StatusPriced && n.Status != StatusPriced:
		if o.Status == n.Status {
			return Unchanged
		}
		return ExceptionChanged
	case o.Status != StatusPriced:
		return NewlyPriced
	case n.Status != StatusPriced:
		return NewlyExcepted
	case o.ContractID != n.ContractID:
		return ContractChanged
	case o.RateID != n.RateID || o.RateType != n.RateType || o.RateValue != n.RateValue:
		return RateAmended
	case o.Allowed != n.Allowed || o.AdminFee != n.AdminFee || o.NetPayable != n.NetPayable:
		return AmountChanged
	}
	return Unchanged
}

func (rep *Report) total() {
	rep.ByReason = map[Reason]int64{}
	for _, r := range Reasons() {
		rep.ByReason[r] = 0
	}
	byContract := map[string]*Totals{}
	byCode := map[string]*Totals{}
	group := func(m map[string]*Totals, k string) *Totals {
		t := m[k]
		if t == nil {
			t = &Totals{}
			m[k] = t
		}
		return t
	}
	for i := range rep.Lines {
		l := &rep.Lines[i]
		rep.ByReason[l.Reason]++
		changed := l.Reason != Unchanged
		count := func(t *Totals) {
			t.Lines++
			if changed {
				t.ChangedLines++
			}
		}
		count(&rep.Totals)
		rep.Totals.addOld(&l.Old)
		rep.Totals.addNew(&l.New)

		oc, nc := group(byContract, l.Old.ContractID), group(byContract, l.New.ContractID)
		oc.addOld(&l.Old)
		nc.addNew(&l.New)
		count(oc)
		if nc != oc {
			count(nc)
		}
		ct := group(byCode, l.CPTCode)
		ct.addOld(&l.Old)
		ct.addNew(&l.New)
		count(ct)
	}
	rep.Totals.finish()
	rep.ByContract = sortedGroups(byContract)
	rep.ByCode = sortedGroups(byCode)
}

func sortedGroups(m map[string]*Totals) []GroupTotals {
	out := make([]GroupTotals, 0, len(m))
	for k, t := range m {
		t.finish()
		out = append(out, GroupTotals{Key: k, Totals: *t})
	}
	slices.SortFunc(out, func(a, b GroupTotals) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// row is one line of one run.
type row struct {
	claimID, lineNumber, cpt, serviceDate string
	out                                   Outcome
	secondary                             bool
	matched                               bool
}

type key struct{ claim, line string }

// runLines is one run's lines with an index for matching.
type runLines struct {
	rows      []*row
	primary   map[key]*row
	secondary map[key][]*row
}

// take returns the unmatched line of this run that matches n, or nil.
func (r *runLines) take(n *row) *row {
	k := key{n.claimID, n.lineNumber}
	if !n.secondary {
		if p := r.primary[k]; p != nil && !p.matched {
			p.matched = true
			return p
		}
		return nil
	}
	q := r.secondary[k]
	for len(q) > 0 && q[0].matched {
		q = q[1:]
	}
	if len(q) == 0 {
		r.secondary[k] = nil
		return nil
	}
	q[0].matched = true
	r.secondary[k] = q[1:]
	return q[0]
}

func readRun(ctx context.Context, dir string) (*runLines, error) {
	pp, ep := filepath.Join(dir, PricedFile), filepath.Join(dir, ExceptionsFile)
	_, perr := os.Stat(pp)
	_, eerr := os.Stat(ep)
	if perr != nil || eerr != nil {
		if _, err := os.Stat(filepath.Join(dir, "priced.parquet")); err == nil {
			return nil, &FileError{File: dir, Err: ErrParquet}
		}
		return nil, &FileError{File: dir, Err: ErrNoOutputs}
	}
	r := &runLines{primary: map[key]*row{}, secondary: map[key][]*row{}}
	err := readCSV(ctx, pp, []string{"claim_id", "line_number", "cpt_code", "service_date", "contract_id", "rate_id",
		"rate_type", "rate_value", "allowed_amount", "admin_fee", "net_payable"}, func(get func(string) string, cents func(string) (money.Cents, error)) error {
		ln := &row{claimID: get("claim_id"), lineNumber: get("line_number"), cpt: get("cpt_code"), serviceDate: get("service_date"),
			out: Outcome{Status: StatusPriced, ContractID: get("contract_id"), RateID: get("rate_id"),
				RateType: get("rate_type"), RateValue: get("rate_value")}}
		var err error
		if ln.out.Allowed, err = cents("allowed_amount"); err != nil {
			return err
		}
		if ln.out.AdminFee, err = cents("admin_fee"); err != nil {
			return err
		}
		if ln.out.NetPayable, err = cents("net_payable"); err != nil {
			return err
		}
		r.add(ln)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readCSV(ctx, ep, []string{"claim_id", "line_number", "code", "severity", "cpt_code", "service_date"},
		func(get func(string) string, _ func(string) (money.Cents, error)) error {
			if get("severity") != "error" {
				return nil // review rows repeat a priced line
			}
			code := get("code")
			ln := &row{claimID: get("claim_id"), lineNumber: get("line_number"), cpt: get("cpt_code"), serviceDate: get("service_date"),
				out: Outcome{Status: code}, secondary: code == "INVALID_ROW" || code == "DUPLICATE_LINE"}
			if !ln.secondary {
				if _, has := r.primary[key{ln.claimID, ln.lineNumber}]; has {
					ln.secondary = true // cannot happen in pipeline outputs; keep the line anyway
				}
			}
			r.add(ln)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (r *runLines) add(ln *row) {
	r.rows = append(r.rows, ln)
	k := key{ln.claimID, ln.lineNumber}
	if ln.secondary {
		r.secondary[k] = append(r.secondary[k], ln)
		return
	}
	if _, dup := r.primary[k]; dup {
		ln.secondary = true
		r.secondary[k] = append(r.secondary[k], ln)
		return
	}
	r.primary[k] = ln
}

// readCSV calls fn for each record of the CSV at path with accessors by
// column name.
func readCSV(ctx context.Context, path string, required []string, fn func(get func(string) string, cents func(string) (money.Cents, error)) error) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return &FileError{File: path, Err: err}
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = &FileError{File: path, Err: cerr}
		}
	}()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return &FileError{File: path, Err: err}
	}
	cols := map[string]int{}
	for i, h := range header {
		cols[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, c := range required {
		if _, ok := cols[c]; !ok {
			return &FileError{File: path, Column: c, Err: ErrColumn}
		}
	}
	var rec []string
	n := 0
	get := func(c string) string {
		if i, ok := cols[c]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	cents := func(c string) (money.Cents, error) {
		v, err := money.ParseCents(get(c))
		if err != nil {
			return 0, &FileError{File: path, Row: n, Column: c, Err: fmt.Errorf("%w: %w", ErrValue, err)}
		}
		return v, nil
	}
	for {
		if err := ctxCheck(ctx, n); err != nil {
			return err
		}
		rec, err = cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		n++
		if err != nil {
			return &FileError{File: path, Row: n, Err: err}
		}
		if err := fn(get, cents); err != nil {
			return err
		}
	}
}
