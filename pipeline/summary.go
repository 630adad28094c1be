package pipeline

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/money"
)

// Summary is the machine-readable account of one run (summary.json).
// Everything but Timings is a function of the inputs and reference data, so
// reruns over identical inputs give identical summaries apart from Timings.
type Summary struct {
	Inputs     []InputSummary   `json:"inputs"`
	Reference  ReferenceSummary `json:"reference"`
	Settings   Settings         `json:"settings"`
	Counts     Counts           `json:"counts"`
	Totals     Totals           `json:"totals"`
	ByContract []ContractTotals `json:"by_contract"`
	ByCode     []CodeTotals     `json:"by_code"`
	Books      Books            `json:"books"`
	Timings    Timings          `json:"timings"`
}

// InputSummary identifies one claim file.
type InputSummary struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	Lines  int64  `json:"lines"`
}

// ReferenceSummary identifies the reference data the run priced with.
type ReferenceSummary struct {
	Source            string `json:"source"`
	Fingerprint       string `json:"fingerprint"`
	Contracts         int    `json:"contracts"`
	RejectedContracts int    `json:"rejected_contracts"`
	Rates             int    `json:"rates"`
	Issues            int    `json:"schedule_issues"`
}

// Settings are the run options that change results.
type Settings struct {
	Format            string `json:"format"`
	SystemDefaultRate string `json:"system_default_rate,omitempty"`
	// Mode is "streaming" (claims grouped in the input) or "buffered"
	// (a claim's lines were scattered, so the run held all lines in memory).
	Mode string `json:"mode"`
}

// Counts are line counts.
type Counts struct {
	InputLines       int64 `json:"input_lines"`
	PricedLines      int64 `json:"priced_lines"`
	ErrorExceptions  int64 `json:"error_exceptions"`
	ReviewExceptions int64 `json:"review_exceptions"`
}

// Totals are money totals over the run.
type Totals struct {
	BilledInput           money.Cents `json:"billed_input"`
	BilledPriced          money.Cents `json:"billed_priced"`
	BilledErrors          money.Cents `json:"billed_error_exceptions"`
	AllowedBeforeStopLoss money.Cents `json:"allowed_before_stop_loss"`
	StopLossReduction     money.Cents `json:"stop_loss_reduction"`
	Allowed               money.Cents `json:"allowed_amount"`
	AdminFee              money.Cents `json:"admin_fee"`
	NetPayable            money.Cents `json:"net_payable"`
}

// ContractTotals are the priced lines of one contract.
type ContractTotals struct {
	ContractID            string      `json:"contract_id"`
	ContractNumber        string      `json:"contract_number"`
	Lines                 int64       `json:"lines"`
	Billed                money.Cents `json:"billed"`
	AllowedBeforeStopLoss money.Cents `json:"allowed_before_stop_loss"`
	StopLossReduction     money.Cents `json:"stop_loss_reduction"`
	Allowed               money.Cents `json:"allowed_amount"`
	AdminFee              money.Cents `json:"admin_fee"`
	NetPayable            money.Cents `json:"net_payable"`
}

// CodeTotals are the exception rows of one code.
type CodeTotals struct {
	Code     string      `json:"code"`
	Severity string      `json:"severity"`
	Lines    int64       `json:"lines"`
	Billed   money.Cents `json:"billed"`
}

// Books is the accounting check of SPEC §5.
type Books struct {
	Balanced bool `json:"balanced"`
	// ReadLines and ReadBilled are counted by the reader, independently of
	// the priced and exception counts they are checked against.
	ReadLines  int64       `json:"read_lines"`
	ReadBilled money.Cents `json:"read_billed"`
}

// Timings are wall-clock measurements; they differ between reruns.
type Timings struct {
	Workers        int     `json:"workers"`
	ReadSeconds    float64 `json:"read_seconds"`
	PriceSeconds   float64 `json:"price_seconds"`
	WriteSeconds   float64 `json:"write_seconds"`
	TotalSeconds   float64 `json:"total_seconds"`
	LinesPerSecond float64 `json:"lines_per_second"`
}

// BooksError is a run whose books do not balance; nothing is published.
type BooksError struct{ Detail string }

func (e *BooksError) Error() string { return "the books do not balance: " + e.Detail }

// tally accumulates the summary in the writer stage.
type tally struct {
	counts     Counts
	totals     Totals
	byContract map[string]*ContractTotals
	byCode     map[claims.Code]*CodeTotals
	codes      []claims.Code
}

func newTally() *tally {
	return &tally{byContract: map[string]*ContractTotals{}, byCode: map[claims.Code]*CodeTotals{}}
}

// reset empties t for reuse.
func (t *tally) reset() {
	t.counts, t.totals = Counts{}, Totals{}
	clear(t.byContract)
	clear(t.byCode)
}

// merge adds o into t.
func (t *tally) merge(o *tally) {
	c, oc := &t.counts, &o.counts
	c.InputLines += oc.InputLines
	c.PricedLines += oc.PricedLines
	c.ErrorExceptions += oc.ErrorExceptions
	c.ReviewExceptions += oc.ReviewExceptions
	s, os := &t.totals, &o.totals
	s.BilledInput += os.BilledInput
	s.BilledPriced += os.BilledPriced
	s.BilledErrors += os.BilledErrors
	s.AllowedBeforeStopLoss += os.AllowedBeforeStopLoss
	s.StopLossReduction += os.StopLossReduction
	s.Allowed += os.Allowed
	s.AdminFee += os.AdminFee
	s.NetPayable += os.NetPayable
	for id, oct := range o.byContract {
		ct := t.byContract[id]
		if ct == nil {
			ct = &ContractTotals{ContractID: oct.ContractID, ContractNumber: oct.ContractNumber}
			t.byContract[id] = ct
		}
		ct.Lines += oct.Lines
		ct.Billed += oct.Billed
		ct.AllowedBeforeStopLoss += oct.AllowedBeforeStopLoss
		ct.StopLossReduction += oct.StopLossReduction
		ct.Allowed += oct.Allowed
		ct.AdminFee += oct.AdminFee
		ct.NetPayable += oct.NetPayable
	}
	for code, oct := range o.byCode {
		ct := t.byCode[code]
		if ct == nil {
			ct = &CodeTotals{Code: oct.Code, Severity: oct.Severity}
			t.byCode[code] = ct
		}
		ct.Lines += oct.Lines
		ct.Billed += oct.Billed
	}
}

func (t *tally) add(it *claims.Item) {
	l, r := &it.Line, &it.Result
	t.counts.InputLines++
	if l.BilledOK {
		t.totals.BilledInput += l.Billed
	}
	if r.Priced() {
		t.counts.PricedLines++
		t.totals.BilledPriced += l.Billed
		t.totals.AllowedBeforeStopLoss += r.AllowedBeforeStopLoss
		t.totals.StopLossReduction += r.StopLossReduction
		t.totals.Allowed += r.Allowed
		t.totals.AdminFee += r.AdminFee
		t.totals.NetPayable += r.NetPayable
		ct := t.byContract[r.Contract.ID]
		if ct == nil {
			ct = &ContractTotals{ContractID: r.Contract.ID, ContractNumber: r.Contract.Number}
			t.byContract[r.Contract.ID] = ct
		}
		ct.Lines++
		ct.Billed += l.Billed
		ct.AllowedBeforeStopLoss += r.AllowedBeforeStopLoss
		ct.StopLossReduction += r.StopLossReduction
		ct.Allowed += r.Allowed
		ct.AdminFee += r.AdminFee
		ct.NetPayable += r.NetPayable
		t.codes = r.Flags.ReviewCodes(t.codes[:0])
	} else {
		t.counts.ErrorExceptions++
		if l.BilledOK {
			t.totals.BilledErrors += l.Billed
		}
		t.codes = append(t.codes[:0], r.Code)
	}
	for _, c := range t.codes {
		ct := t.byCode[c]
		if ct == nil {
			ct = &CodeTotals{Code: c.String(), Severity: c.Severity()}
			t.byCode[c] = ct
		}
		ct.Lines++
		if l.BilledOK {
			ct.Billed += l.Billed
		}
		if c.Severity() == "review" {
			t.counts.ReviewExceptions++
		}
	}
}

// fill copies the tally into s, sorted, and checks the books against what
// the reader counted.
func (t *tally) fill(s *Summary, readLines int64, readBilled money.Cents) error {
	s.Counts, s.Totals = t.counts, t.totals
	s.ByContract = s.ByContract[:0]
	for _, ct := range t.byContract {
		s.ByContract = append(s.ByContract, *ct)
	}
	slices.SortFunc(s.ByContract, func(a, b ContractTotals) int { return cmp.Compare(a.ContractID, b.ContractID) })
	s.ByCode = s.ByCode[:0]
	for _, c := range claims.AllCodes() {
		if ct := t.byCode[c]; ct != nil {
			s.ByCode = append(s.ByCode, *ct)
		}
	}
	s.Books = Books{ReadLines: readLines, ReadBilled: readBilled}
	switch {
	case readLines != t.counts.PricedLines+t.counts.ErrorExceptions:
		return &BooksError{Detail: fmt.Sprintf("%d lines read but %d priced + %d error exceptions",
			readLines, t.counts.PricedLines, t.counts.ErrorExceptions)}
	case readBilled != t.totals.BilledPriced+t.totals.BilledErrors:
		return &BooksError{Detail: fmt.Sprintf("billed read %s but priced %s + error exceptions %s",
			readBilled, t.totals.BilledPriced, t.totals.BilledErrors)}
	case t.totals.Allowed+t.totals.StopLossReduction != t.totals.AllowedBeforeStopLoss,
		t.totals.NetPayable+t.totals.AdminFee != t.totals.Allowed:
		return &BooksError{Detail: "allowed, stop-loss, admin-fee and net totals do not add up"}
	}
	s.Books.Balanced = true
	return nil
}
