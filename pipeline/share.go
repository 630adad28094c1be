package pipeline

import (
	"io"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// This file serves runners that price one run's claims on several machines
// (the Apache Beam pipeline in the repository's beam/ module) with the same
// writers and the same account of the books as Run.

// NewResultWriter returns the writer Run uses for format ("csv", "parquet"
// or "arrow") over the priced and exceptions streams, and the file
// extension Run gives that format.
func NewResultWriter(format string, priced, exceptions io.Writer) (ResultWriter, string, error) {
	out, err := lookupFormat(format)
	if err != nil {
		return nil, "", err
	}
	w, err := out.newWriter(priced, exceptions)
	return w, out.ext, err
}

// Tally accumulates the counts and money totals of priced items, as Run
// does for its summary. It is for one goroutine; Share hands its account
// on as plain data.
type Tally struct{ t *tally }

// NewTally returns an empty Tally.
func NewTally() *Tally { return &Tally{t: newTally()} }

// Add counts priced (or excepted) items.
func (t *Tally) Add(items []claims.Item) {
	for i := range items {
		t.t.add(&items[i])
	}
}

// Share returns what t has counted.
func (t *Tally) Share() Share {
	var s Summary
	t.t.fill(&s, 0, 0) // only the counts and totals are taken; the books are checked by Share.Fill
	return Share{Counts: s.Counts, Totals: s.Totals, ByContract: s.ByContract, ByCode: s.ByCode}
}

// Share is the account of some of a run's lines: the part of a Summary a
// Tally fills. It is plain data, so shares counted on different machines
// can be sent (encoding/json) and merged, in any order.
type Share struct {
	Counts     Counts           `json:"counts"`
	Totals     Totals           `json:"totals"`
	ByContract []ContractTotals `json:"by_contract"`
	ByCode     []CodeTotals     `json:"by_code"`
}

// Merge adds o to s.
func (s *Share) Merge(o Share) {
	*s = (&Tally{t: tallyOf(*s, o)}).Share()
}

// Fill completes sum with the counts and totals of s and checks the books
// against what the readers counted, as Run does: a *BooksError when input
// lines are not priced + error exceptions, billed in is not billed out, or
// the amounts do not add up. Books.Balanced is set only when they balance.
func (s Share) Fill(sum *Summary, readLines int64, readBilled money.Cents) error {
	return tallyOf(s).fill(sum, readLines, readBilled)
}

// tallyOf rebuilds one tally from shares (made by Tally.Share). The tally
// keys contracts by the engine's pointer; here one stand-in per contract id
// serves.
func tallyOf(shares ...Share) *tally {
	t := newTally()
	byID := map[string]*contracts.Contract{}
	for _, s := range shares {
		t.counts.add(&s.Counts)
		t.totals.add(&s.Totals)
		for i := range s.ByContract {
			ct := &s.ByContract[i]
			c := byID[ct.ContractID]
			if c == nil {
				c = &contracts.Contract{ID: ct.ContractID, Number: ct.ContractNumber}
				byID[ct.ContractID] = c
			}
			t.contract(c).add(ct)
		}
		for _, ct := range s.ByCode {
			for _, c := range claims.AllCodes() {
				if c.String() == ct.Code {
					tc := t.code(c)
					tc.Lines += ct.Lines
					tc.Billed += ct.Billed
				}
			}
		}
	}
	return t
}
