// Package adjust compares two pricing runs of the same claims line by line
// and explains every difference: the adjustment report finance teams need
// after a contract amendment (docs/reprocessing.md). It also lists the run
// ledger (ListRuns), where runs are recorded for later comparison.
//
// Compare reads two output folders written by pipeline.Run in any output
// format (priced and exceptions files as CSV, Parquet or Arrow IPC streams;
// the two runs need not share a format) and returns a Report: one Line per
// claim line with the old and new outcome, contract, rate and amounts, the
// exact money.Cents deltas, a Reason and, when an amendment log is given,
// the amendment that caused the change; plus totals by contract and by
// procedure code.
//
// # Matching lines
//
// A line is keyed by (claim_id, line_number). Each run contributes, per key,
// its primary outcome — the priced row, or else the first error exception
// whose code is not INVALID_ROW or DUPLICATE_LINE — and, in input order,
// its secondary rows (INVALID_ROW and DUPLICATE_LINE exceptions, which
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
// Lines come in the current run's input order (claim order): the error
// exceptions carry their source file and row, the run's summary.json the
// line count of each input, and the priced rows, which keep input order,
// fill the remaining positions. Lines only the prior run has come last, in
// its order. Both runs are held in memory (a few hundred bytes per line);
// this is meant for runs of up to some millions of lines.
package adjust

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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

// File names of the report.
const (
	AdjustmentsFile = "adjustments.csv"
	ByContractFile  = "adjustments_by_contract.csv"
	ByCodeFile      = "adjustments_by_code.csv"
	SummaryFile     = "adjustment_summary.json"
	HTMLFile        = "adjustment_report.html"
)

// Labels of the rows of adjustments_by_contract.csv and
// adjustments_by_code.csv that are not a contract or a code.
const (
	// NotPricedLabel is the contract row of the lines priced in neither run.
	NotPricedLabel = "(not priced in either run)"
	// NoCodeLabel is the code row of the lines without a procedure code.
	NoCodeLabel = "(no code)"
	// TotalLabel is the last row: every line compared.
	TotalLabel = "(total)"
)

// StatusPriced is the status of a priced line; other statuses are
// exception codes, and "" means the run has no such line.
const StatusPriced = "priced"

// Errors of Compare.
var (
	ErrNoOutputs = errors.New("no priced and exceptions files (.csv, .parquet or .arrows) in the output folder")
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
	Status         string // StatusPriced, an exception code, or "" (absent)
	ContractID     string
	ContractNumber string
	RateID         string
	RateType       string
	RateValue      string
	Allowed        money.Cents
	AdminFee       money.Cents
	NetPayable     money.Cents
}

// Line is one row of the adjustment report. VendorID, CPTCode,
// ServiceDate and BilledAmount are the current run's (the prior run's for
// a removed line), as written in its output.
type Line struct {
	ClaimID      string
	LineNumber   string
	VendorID     string
	CPTCode      string
	ServiceDate  string
	BilledAmount string
	Reason       Reason
	Old, New     Outcome
	// Amendment caused the change, when the amendment log names it (see
	// AmendmentLog.Cause); nil otherwise.
	Amendment *Amendment
}

// Delta returns new minus old allowed amount, admin fee and net payable.
func (l *Line) Delta() (allowed, adminFee, net money.Cents) {
	return l.New.Allowed - l.Old.Allowed, l.New.AdminFee - l.Old.AdminFee, l.New.NetPayable - l.Old.NetPayable
}

// Contract is the contract a line counts under in the by-contract totals:
// the one that prices it now, else the one that priced it before; "" when
// neither run priced it.
func (l *Line) Contract() *Outcome {
	switch {
	case l.New.Status == StatusPriced:
		return &l.New
	case l.Old.Status == StatusPriced:
		return &l.Old
	}
	return nil
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

func (t *Totals) add(l *Line) {
	t.Lines++
	if l.Reason != Unchanged {
		t.ChangedLines++
	}
	t.OldAllowed += l.Old.Allowed
	t.OldAdminFee += l.Old.AdminFee
	t.OldNet += l.Old.NetPayable
	t.NewAllowed += l.New.Allowed
	t.NewAdminFee += l.New.AdminFee
	t.NewNet += l.New.NetPayable
	t.DeltaAllowed = t.NewAllowed - t.OldAllowed
	t.DeltaAdminFee = t.NewAdminFee - t.OldAdminFee
	t.DeltaNet = t.NewNet - t.OldNet
}

// GroupTotals are the totals of one contract or one procedure code.
type GroupTotals struct {
	// Key is the contract id or the procedure code; "" for the lines
	// priced in neither run, or without a code.
	Key string `json:"key"`
	// ContractNumber and VendorID are set for contracts.
	ContractNumber string `json:"contract_number,omitempty"`
	VendorID       string `json:"vendor_id,omitempty"`
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
	// ByContract: each line counts once, old and new amounts, under
	// Line.Contract (the contract pricing it now, else before); key "" =
	// the lines priced in neither run. The groups' Lines add up to
	// Totals.Lines.
	ByContract []GroupTotals `json:"by_contract"`
	// ByCode groups by the line's procedure code.
	ByCode []GroupTotals `json:"by_code"`
	// Amendments are the amendments named by lines, in first-named order.
	Amendments []Amendment `json:"amendments,omitempty"`
}

// Options tune Compare.
type Options struct {
	// Amendments, when set, names the amendment behind each changed line.
	Amendments *AmendmentLog
}

// Compare reads the outputs of two runs and explains their differences.
func Compare(ctx context.Context, priorDir, currentDir string) (*Report, error) {
	return CompareWith(ctx, priorDir, currentDir, Options{})
}

// CompareWith is Compare with options.
func CompareWith(ctx context.Context, priorDir, currentDir string, opts Options) (*Report, error) {
	prior, err := readRun(ctx, priorDir)
	if err != nil {
		return nil, err
	}
	cur, err := readRun(ctx, currentDir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Prior: priorDir, Current: currentDir, Lines: make([]Line, 0, len(cur.rows))}
	emit := func(o, n *row) {
		l := Line{}
		src := n
		if n != nil {
			l.New = n.out
		} else {
			src = o
		}
		if o != nil {
			l.Old = o.out
		}
		l.ClaimID, l.LineNumber, l.VendorID, l.CPTCode, l.ServiceDate, l.BilledAmount =
			src.claimID, src.lineNumber, src.vendor, src.cpt, src.serviceDate, src.billed
		l.Reason = classify(&l.Old, &l.New)
		if l.Reason != Unchanged {
			l.Amendment = opts.Amendments.Cause(&l)
		}
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
	byContract := map[string]*GroupTotals{}
	byCode := map[string]*GroupTotals{}
	group := func(m map[string]*GroupTotals, k string) *GroupTotals {
		g := m[k]
		if g == nil {
			g = &GroupTotals{Key: k}
			m[k] = g
		}
		return g
	}
	seen := map[string]bool{}
	for i := range rep.Lines {
		l := &rep.Lines[i]
		rep.ByReason[l.Reason]++
		rep.Totals.add(l)
		var g *GroupTotals
		if c := l.Contract(); c != nil {
			g = group(byContract, c.ContractID)
			if g.ContractNumber == "" {
				g.ContractNumber, g.VendorID = c.ContractNumber, l.VendorID
			}
		} else {
			g = group(byContract, "")
		}
		g.add(l)
		group(byCode, l.CPTCode).add(l)
		if a := l.Amendment; a != nil && !seen[a.ID] {
			seen[a.ID] = true
			rep.Amendments = append(rep.Amendments, *a)
		}
	}
	rep.ByContract = sortedGroups(byContract)
	rep.ByCode = sortedGroups(byCode)
}

// sortedGroups returns the groups by key, the "" group last.
func sortedGroups(m map[string]*GroupTotals) []GroupTotals {
	out := make([]GroupTotals, 0, len(m))
	for _, g := range m {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b GroupTotals) int {
		if (a.Key == "") != (b.Key == "") {
			if a.Key == "" {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}

// row is one line of one run.
type row struct {
	claimID, lineNumber, vendor, cpt, serviceDate, billed string
	sourceFile, sourceRow                                 string // error exceptions only
	out                                                   Outcome
	secondary                                             bool
	matched                                               bool
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
