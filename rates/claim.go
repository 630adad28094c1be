package rates

import (
	"cmp"
	"slices"
	"unsafe"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Pricer prices the lines of one claim at a time. It holds scratch space,
// so each goroutine needs its own; the Engine is shared.
type Pricer struct {
	e *Engine
	// The last vendor looked up: a claim's lines share one. The caches
	// keep copies of the ids they compare with, not the lines' strings,
	// whose text a caller may reuse once the lines are priced (see
	// claims.Line.CopyRaw).
	lastVendorID []byte
	lastVendor   *vendorEntry
	seen         map[int64]struct{}
	done         []bool
	shares       []share
	ahead        []aheadLine // the lines of the last Prefetch call
	// The last line Prefetch guessed the contract of, and its index.
	aheadVendor []byte
	aheadDate   contracts.Date
	aheadIndex  *rateIndex
}

// aheadLine is a line Prefetch has started fetching the rate of.
type aheadLine struct {
	ix  *rateIndex
	key uint64
}

type share struct {
	item *claims.Item
	rem  int64
}

// NewPricer returns a Pricer for one goroutine.
func (e *Engine) NewPricer() *Pricer {
	return &Pricer{e: e, seen: map[int64]struct{}{}}
}

func (p *Pricer) vendor(id string) *vendorEntry {
	if id != string(p.lastVendorID) || p.lastVendor == nil {
		p.lastVendorID, p.lastVendor = append(p.lastVendorID[:0], id...), p.e.vendors[id]
	}
	return p.lastVendor
}

// Prefetch hints that the lines of items will be priced after those of the
// previous Prefetch call. At scale most of a line's pricing time is waiting
// for memory (a million rates do not fit in the CPU's caches), so it starts
// loading, without waiting, the exact-code slot of each of these lines and
// the rate found in the slot of each line of the previous call, whose slot
// has had time to arrive. It changes no result: a caller that prefetches
// lines it then does not price, or never prefetches, gets the same prices.
func (p *Pricer) Prefetch(items []claims.Item) {
	for _, a := range p.ahead {
		a.ix.prefetchRate(a.key)
	}
	p.ahead = p.ahead[:0]
	for i := range items {
		l := &items[i].Line
		if l.Invalid != nil {
			continue
		}
		if l.VendorID != string(p.aheadVendor) || l.ServiceDate != p.aheadDate {
			p.aheadVendor, p.aheadDate, p.aheadIndex = append(p.aheadVendor[:0], l.VendorID...), l.ServiceDate, p.e.guessIndex(l)
		}
		ix := p.aheadIndex
		key, short := codeKey(l.CPT)
		if ix == nil || !short || len(ix.exact.slots) == 0 {
			continue
		}
		prefetch(unsafe.Pointer(&ix.exact.slots[ix.exact.home(key)]))
		p.ahead = append(p.ahead, aheadLine{ix, key})
	}
}

// PriceLine prices a single line on its own (a one-line claim).
func (p *Pricer) PriceLine(it *claims.Item) {
	p.PriceClaim(unsafe.Slice(it, 1))
}

// PriceClaim prices items that hold all the lines of one claim, in input
// order. Rows that failed to parse (Line.Invalid) may sit among them and
// become INVALID_ROW exceptions; every other line must carry the same
// claim_id. It marks repeated line numbers DUPLICATE_LINE, prices each line,
// then applies stop loss per case and the administrative fee (docs/pricing.md step 7).
func (p *Pricer) PriceClaim(items []claims.Item) {
	clear(p.seen)
	for i := range items {
		it := &items[i]
		l := &it.Line
		if l.Invalid != nil {
			it.Result = claims.Result{Code: claims.InvalidRow, Message: l.Invalid.Error()}
			continue
		}
		if _, dup := p.seen[l.LineNumber]; dup {
			it.Result = claims.Result{Code: claims.DuplicateLine, Message: "line_number repeats an earlier line of this claim"}
			continue
		}
		p.seen[l.LineNumber] = struct{}{}
		p.e.priceLine(p.vendor(l.VendorID), l, &it.Result)
	}
	p.finishCases(items)
}

// finishCases applies stop loss to each (claim, contract) case and then
// the admin fee to every priced line.
func (p *Pricer) finishCases(items []claims.Item) {
	done := slices.Grow(p.done[:0], len(items))[:len(items)]
	clear(done)
	p.done = done
	for i := range items {
		r := &items[i].Result
		if !r.Priced() || done[i] {
			continue
		}
		c := r.Contract
		// Gather the case: priced lines of this claim under the same contract.
		p.shares = p.shares[:0]
		var total int64
		for j := i; j < len(items); j++ {
			rj := &items[j].Result
			if rj.Priced() && rj.Contract == c {
				p.shares = append(p.shares, share{item: &items[j]})
				total += int64(rj.AllowedBeforeStopLoss)
				done[j] = true
			}
		}
		applyStopLoss(p.shares, c.StopLoss, total)
		for _, sh := range p.shares {
			res := &sh.item.Result
			res.StopLossReduction = res.AllowedBeforeStopLoss - res.Allowed
			res.AdminFee = AdminFee(res.Allowed, c.AdminFeePct)
			res.NetPayable = res.Allowed - res.AdminFee
		}
	}
}

// applyStopLoss sets Allowed on each line of a case. When the case total
// exceeds the stop loss S, the case pays exactly S: each line gets the floor
// of its share pre×S/T and the cents left over go one each to the lines with
// the largest remainders (ties: lower line_number).
func applyStopLoss(shares []share, stopLoss money.Cents, total int64) {
	s := int64(stopLoss)
	if s <= 0 || total <= s {
		for _, sh := range shares {
			sh.item.Result.Allowed = sh.item.Result.AllowedBeforeStopLoss
		}
		return
	}
	left := s
	for i := range shares {
		res := &shares[i].item.Result
		q, rem, _ := money.MulDivFloor(int64(res.AllowedBeforeStopLoss), s, total) // q <= s: fits
		res.Allowed = money.Cents(q)
		res.Flags |= claims.StopLossApplied
		shares[i].rem = rem
		left -= q
	}
	if left == 0 {
		return
	}
	slices.SortStableFunc(shares, func(a, b share) int {
		if c := cmp.Compare(b.rem, a.rem); c != 0 {
			return c
		}
		return cmp.Compare(a.item.Line.LineNumber, b.item.Line.LineNumber)
	})
	for i := 0; left > 0; i++ {
		shares[i].item.Result.Allowed++
		left--
	}
}
