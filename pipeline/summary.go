package pipeline

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
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
	BilledInput  money.Cents `json:"billed_input"`
	BilledPriced money.Cents `json:"billed_priced"`
	BilledErrors money.Cents `json:"billed_error_exceptions"`
	Amounts
}

// ContractTotals are the priced lines of one contract.
type ContractTotals struct {
	ContractID     string      `json:"contract_id"`
	ContractNumber string      `json:"contract_number"`
	Lines          int64       `json:"lines"`
	Billed         money.Cents `json:"billed"`
	Amounts
}

// Amounts are the pricing amounts summed over priced lines.
type Amounts struct {
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

// Books is the accounting check of docs/pricing.md "Outputs and books".
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
	counts Counts
	totals Totals
	// By the engine's contract pointer, which is one per contract id; last
	// is the previous line's, as lines of a claim share their contract.
	byContract map[*contracts.Contract]*ContractTotals
	last       *contracts.Contract
	lastTotals *ContractTotals
	byCode     map[claims.Code]*CodeTotals
	codes      []claims.Code
	// spare holds the totals of a reset tally for reuse: a batch's tally
	// meets hundreds of contracts, and allocating their totals anew for
	// every batch was a sizeable share of a run's garbage.
	spare []*ContractTotals
}

func newTally() *tally {
	return &tally{byContract: map[*contracts.Contract]*ContractTotals{}, byCode: map[claims.Code]*CodeTotals{}}
}

// reset empties t for reuse.
func (t *tally) reset() {
	t.counts, t.totals = Counts{}, Totals{}
	for _, ct := range t.byContract {
		t.spare = append(t.spare, ct)
	}
	clear(t.byContract)
	t.last, t.lastTotals = nil, nil
	clear(t.byCode)
}

// merge adds o into t.
func (t *tally) merge(o *tally) {
	t.counts.add(&o.counts)
	t.totals.add(&o.totals)
	for c, oct := range o.byContract {
		t.contract(c).add(oct)
	}
	for code, oct := range o.byCode {
		ct := t.code(code)
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
		line := Amounts{AllowedBeforeStopLoss: r.AllowedBeforeStopLoss, StopLossReduction: r.StopLossReduction,
			Allowed: r.Allowed, AdminFee: r.AdminFee, NetPayable: r.NetPayable}
		t.totals.Amounts.add(&line)
		ct := t.contract(r.Contract)
		ct.Lines++
		ct.Billed += l.Billed
		ct.Amounts.add(&line)
		t.codes = r.Flags.ReviewCodes(t.codes[:0])
	} else {
		t.counts.ErrorExceptions++
		if l.BilledOK {
			t.totals.BilledErrors += l.Billed
		}
		t.codes = append(t.codes[:0], r.Code)
	}
	for _, c := range t.codes {
		ct := t.code(c)
		ct.Lines++
		if l.BilledOK {
			ct.Billed += l.Billed
		}
		if c.Severity() == "review" {
			t.counts.ReviewExceptions++
		}
	}
}

func (t *tally) contract(c *contracts.Contract) *ContractTotals {
	if c == t.last {
		return t.lastTotals
	}
	ct := t.byContract[c]
	if ct == nil {
		if n := len(t.spare); n > 0 {
			ct, t.spare = t.spare[n-1], t.spare[:n-1]
			*ct = ContractTotals{ContractID: c.ID, ContractNumber: c.Number}
		} else {
			ct = &ContractTotals{ContractID: c.ID, ContractNumber: c.Number}
		}
		t.byContract[c] = ct
	}
	t.last, t.lastTotals = c, ct
	return ct
}

func (t *tally) code(c claims.Code) *CodeTotals {
	ct := t.byCode[c]
	if ct == nil {
		ct = &CodeTotals{Code: c.String(), Severity: c.Severity()}
		t.byCode[c] = ct
	}
	return ct
}

func (c *Counts) add(o *Counts) {
	c.InputLines += o.InputLines
	c.PricedLines += o.PricedLines
	c.ErrorExceptions += o.ErrorExceptions
	c.ReviewExceptions += o.ReviewExceptions
}

func (s *Totals) add(o *Totals) {
	s.BilledInput += o.BilledInput
	s.BilledPriced += o.BilledPriced
	s.BilledErrors += o.BilledErrors
	s.Amounts.add(&o.Amounts)
}

func (ct *ContractTotals) add(o *ContractTotals) {
	ct.Lines += o.Lines
	ct.Billed += o.Billed
	ct.Amounts.add(&o.Amounts)
}

func (a *Amounts) add(o *Amounts) {
	a.AllowedBeforeStopLoss += o.AllowedBeforeStopLoss
	a.StopLossReduction += o.StopLossReduction
	a.Allowed += o.Allowed
	a.AdminFee += o.AdminFee
	a.NetPayable += o.NetPayable
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
