// Package rates is the pure pricing core of repricer: it builds an index of
// a validated schedule once per run and prices claim lines against it
// (contract selection, rate lookup, units, percentage and amount math,
// lesser-of, prior authorization, stop loss per case and the administrative
// fee), in exact integer money. It does no I/O.
package rates

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unsafe"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// DefaultRate is a rate without criteria: a contract's or the system's.
type DefaultRate struct {
	Type  contracts.RateType
	Value money.Fixed
}

// String formats d as "Type:value", the form ParseDefaultRate reads.
func (d DefaultRate) String() string { return d.Type.String() + ":" + d.Value.String() }

// ParseDefaultRate parses "Percentage:60" or "Amount:25.00".
func ParseDefaultRate(s string) (DefaultRate, error) {
	typ, val, ok := strings.Cut(s, ":")
	t, okType := contracts.ParseRateType(strings.TrimSpace(typ))
	if !ok || !okType {
		return DefaultRate{}, fmt.Errorf("system default rate %q: want Percentage:N or Amount:N.NN", s)
	}
	v, err := money.ParseFixed(strings.TrimSpace(val))
	if err != nil {
		return DefaultRate{}, fmt.Errorf("system default rate %q: %w", s, err)
	}
	switch {
	case t == contracts.Percentage && (v < 0 || v > 200*money.FixedScale):
		return DefaultRate{}, fmt.Errorf("system default rate %q: a percentage must be between 0 and 200", s)
	case t == contracts.Amount && v <= 0:
		return DefaultRate{}, fmt.Errorf("system default rate %q: an amount must be greater than 0", s)
	}
	return DefaultRate{Type: t, Value: v}, nil
}

// Options are the run settings of an Engine.
type Options struct {
	// SystemDefault is the tier-8 rate; nil means none.
	SystemDefault *DefaultRate
	// Explain keeps the schedule's full rates, which Explain and
	// ExplainLine reason with. Without it the engine keeps only its compact
	// index (about a quarter of the memory) and Explain panics.
	Explain bool
	// Compile keeps every accepted rate in a compact encoding (about 55
	// bytes a rate, against 250 for a contracts.Rate) for WriteImage, which
	// stores them so that an engine opened from the image can Explain. An
	// engine built with Compile can Explain too.
	Compile bool
}

// Engine prices lines against one validated schedule. It is immutable after
// New and safe for concurrent use; each goroutine prices through its own
// Pricer.
type Engine struct {
	sched     *contracts.Validated // without Rates unless opts.Explain
	numRates  int
	contracts []contractEntry
	vendors   map[string]*vendorEntry
	crit      *criteriaTable
	ids       string // every rate id, back to back
	opts      Options
	// explainable: Explain has the rates it reasons with, in sched.Rates
	// or encoded in each contractEntry.rates (Options.Compile, images).
	explainable bool
	rateFiles   []string // the source files of the encoded rates, by id
}

type contractEntry struct {
	c        *contracts.Contract
	rejected string
	index    *rateIndex
	// The contract's term, copied here so that choosing a vendor's contract
	// reads these compact entries, not each candidate's Contract.
	eff, exp contracts.Date
	// rates holds the contract's accepted rates in source order, encoded
	// (see appendRate; their source files are Engine.rateFiles), when the
	// engine was compiled or opened from an image; nil otherwise.
	rates []byte
}

type vendorEntry struct {
	priceable []*contractEntry // Active, Expired, Terminated; by effective date
	inactive  []*contractEntry // Draft, Pending
}

// New builds the engine and its rate index. Unless opts.Explain is set the
// engine does not keep v.Rates, so a caller that drops v frees them.
func New(v *contracts.Validated, opts Options) *Engine {
	b := NewBuilder(v.Priority, opts)
	for i := range v.Rates {
		b.Add(&v.Rates[i])
	}
	return b.Build(v)
}

// Builder builds an Engine from accepted rates added one at a time, so that
// a loader can stream a schedule into the engine without ever holding all
// of its contracts.Rate values (see contracts.Validation). New is a Builder
// fed a whole Validated schedule.
type Builder struct {
	priority map[string]int
	opts     Options
	crit     *criteriaTable
	ids      strings.Builder
	pending  map[string][]pendingRate // active rates by contract
	counts   map[string]int           // accepted rates by contract
	encoded  map[string][]byte        // accepted rates by contract, with Options.Compile
	files    fileTable                // the encoded rates' source files
}

// NewBuilder starts an engine for rates whose kinds have these priorities
// (contracts.Validation.Priority).
func NewBuilder(priority map[string]int, opts Options) *Builder {
	return &Builder{priority: priority, opts: opts, crit: newCriteriaTable(),
		pending: map[string][]pendingRate{}, counts: map[string]int{}, encoded: map[string][]byte{}}
}

// Add adds an accepted rate, in source order; it keeps nothing of r but
// copies.
func (b *Builder) Add(r *contracts.Rate) {
	b.counts[r.ContractID]++
	if b.opts.Compile {
		b.encoded[r.ContractID] = appendRate(b.encoded[r.ContractID], r, &b.files)
	}
	if r.Active {
		off := uint32(b.ids.Len())
		b.ids.WriteString(r.ID)
		b.pending[r.ContractID] = append(b.pending[r.ContractID], newPendingRate(r, off, b.priority, b.crit))
	}
}

// Build returns the engine. v is the validation's result: its Contracts
// and Rejected decide which added rates are used (those of rejected
// contracts are not), and with Options.Explain the engine keeps v.Rates,
// which must then be the added rates. The Builder cannot be used again.
func (b *Builder) Build(v *contracts.Validated) *Engine {
	sched := *v
	if !b.opts.Explain {
		sched.Rates = nil
	}
	e := &Engine{sched: &sched, crit: b.crit, ids: b.ids.String(), opts: b.opts,
		explainable: b.opts.Explain || b.opts.Compile, rateFiles: b.files.names}
	e.contracts = make([]contractEntry, len(v.Contracts))
	for i := range v.Contracts {
		c := &v.Contracts[i]
		ce := &e.contracts[i]
		ps := b.pending[c.ID]
		delete(b.pending, c.ID) // free each contract's pending rates once indexed
		if _, rejected := v.Rejected[c.ID]; rejected {
			ps = nil
		} else {
			e.numRates += b.counts[c.ID]
			ce.rates = b.encoded[c.ID]
		}
		ce.index = newRateIndex(ps, e.crit, e.ids)
	}
	e.crit.done()
	e.link()
	*b = Builder{}
	return e
}

// link completes the contract entries, whose indexes are set, and groups
// them by vendor for contract selection.
func (e *Engine) link() {
	e.vendors = map[string]*vendorEntry{}
	for i := range e.contracts {
		ce := &e.contracts[i]
		c := &e.sched.Contracts[i]
		ce.c, ce.rejected, ce.eff, ce.exp = c, e.sched.Rejected[c.ID], c.Effective, c.Expiration
		ve := e.vendors[c.VendorID]
		if ve == nil {
			ve = &vendorEntry{}
			e.vendors[c.VendorID] = ve
		}
		if c.Status.Priceable() {
			ve.priceable = append(ve.priceable, ce)
		} else {
			ve.inactive = append(ve.inactive, ce)
		}
	}
	for _, ve := range e.vendors {
		slices.SortStableFunc(ve.priceable, func(a, b *contractEntry) int { return cmp.Compare(a.c.Effective, b.c.Effective) })
	}
}

// NumRates returns the number of accepted rates the engine was built with.
func (e *Engine) NumRates() int { return e.numRates }

// Schedule returns the validated schedule the engine prices with. Its Rates
// are nil unless the engine was built with Options.Explain (see NumRates).
func (e *Engine) Schedule() *contracts.Validated { return e.sched }

// guessIndex returns the rate index of the contract that most likely
// prices l (the first in force on its date), for prefetching only.
func (e *Engine) guessIndex(l *claims.Line) *rateIndex {
	ve := e.vendors[l.VendorID]
	if ve == nil {
		return nil
	}
	for _, ce := range ve.priceable {
		if ce.eff <= l.ServiceDate && l.ServiceDate <= ce.exp {
			return ce.index
		}
	}
	return nil
}

// selectContract applies docs/pricing.md step 1.
func (e *Engine) selectContract(ve *vendorEntry, l *claims.Line, res *claims.Result) *contractEntry {
	if ve == nil {
		res.Code, res.Message = claims.NoContract, "no contract for vendor "+l.VendorID
		return nil
	}
	d := l.ServiceDate
	var inForce, latest *contractEntry
	n := 0
	for _, ce := range ve.priceable {
		if ce.eff <= d && d <= ce.exp {
			n++
			if inForce == nil {
				inForce = ce
			}
		} else if ce.exp < d && (latest == nil || ce.exp > latest.exp) {
			latest = ce
		}
	}
	var chosen *contractEntry
	switch {
	case n > 1:
		res.Code = claims.ContractOverlap
		res.Message = fmt.Sprintf("%d contracts of vendor %s are in force on %s", n, l.VendorID, d)
		return nil
	case n == 1:
		chosen = inForce
	case latest != nil:
		c := latest.c
		switch {
		case c.Status == contracts.Terminated:
			res.Code = claims.ContractTerminated
			res.Message = fmt.Sprintf("contract %s was terminated (%s) and ended %s", c.Number, c.StatusReason, c.Expiration)
			res.Contract = c
			return nil
		case c.AutoRenewal && c.RenewalTermMonths > 0:
			res.Flags |= claims.AutoRenewedTerm
		default:
			res.Flags |= claims.ExpiredContractHonored
		}
		chosen = latest
	default:
		for _, ce := range ve.inactive {
			if ce.eff <= d && d <= ce.exp {
				res.Code = claims.ContractNotActive
				res.Message = fmt.Sprintf("contract %s covering %s is %s", ce.c.Number, d, ce.c.Status)
				res.Contract = ce.c
				return nil
			}
		}
		res.Code = claims.NoContract
		res.Message = fmt.Sprintf("no contract of vendor %s covers %s", l.VendorID, d)
		return nil
	}
	res.Contract = chosen.c
	if chosen.rejected != "" {
		res.Code = claims.ContractInvalid
		res.Message = "contract " + chosen.c.Number + " was rejected: " + chosen.rejected
		return nil
	}
	return chosen
}

// priceLine prices one valid line up to allowed_before_stop_loss (docs/pricing.md).
// ve is the line's vendor (nil when unknown).
func (e *Engine) priceLine(ve *vendorEntry, l *claims.Line, res *claims.Result) {
	*res = claims.Result{}
	ce := e.selectContract(ve, l, res)
	if ce == nil {
		return
	}
	c := ce.c
	if c.Excludes(l.CPT) {
		res.Code, res.Message = claims.ExcludedService, "code "+l.CPT+" is excluded by contract "+c.Number
		return
	}
	ix := ce.index
	pos, conflict := ix.lookup(l)
	var minUnits, maxUnits int64
	var rate *rateRec
	switch {
	case pos >= 0:
		rate = &ix.rates[pos]
		res.RateID, res.RateKind, res.MatchPriority = e.ids[rate.idOff:rate.idOff+rate.idLen], ix.crit.kinds[rate.kind], int(rate.priority)
		// Writers read the id next, once the claim is priced; it sits in
		// the engine's many-megabyte id string, so start fetching it now.
		prefetch(unsafe.Pointer(unsafe.StringData(res.RateID)))
		res.RateType, res.RateValue = rate.typ, rate.value
		res.ReviewByRate = rate.flags&recReview != 0
		minUnits, maxUnits = rate.minUnits, rate.maxUnits
		if conflict {
			res.Flags |= claims.RateConflict
		}
	case c.HasDefaultRate:
		res.RateKind, res.MatchPriority = claims.KindContractDefault, contracts.PriorityContractDefault
		res.RateType, res.RateValue = c.DefaultRateType, c.DefaultRateValue
		res.Flags |= claims.ContractDefaultRate
	case e.opts.SystemDefault != nil:
		res.RateKind, res.MatchPriority = claims.KindSystemDefault, contracts.PrioritySystemDefault
		res.RateType, res.RateValue = e.opts.SystemDefault.Type, e.opts.SystemDefault.Value
		res.Flags |= claims.SystemDefaultRate
	default:
		res.Code, res.Message = claims.NoRate, fmt.Sprintf("no rate of contract %s applies to code %s on %s and the contract has no default rate", c.Number, l.CPT, l.ServiceDate)
		return
	}

	res.PricedUnits = l.Units
	switch {
	case minUnits > 0 && l.Units < minUnits:
		res.Code, res.Message = claims.UnitsBelowMinimum, fmt.Sprintf("%d units is below the minimum of %d for rate %s", l.Units, minUnits, res.RateID)
		return
	case maxUnits > 0 && l.Units > maxUnits:
		res.PricedUnits = maxUnits
		res.Flags |= claims.UnitsCapped
	}

	amt, err := Allowed(res.RateType, res.RateValue, l.Billed, l.Units, res.PricedUnits, c.LesserOfBilled)
	if err != nil {
		res.Code, res.Message = claims.InvalidRow, err.Error()
		return
	}
	res.AllowedBeforeStopLoss = amt

	if l.PriorAuth == "" {
		switch {
		case rate != nil && rate.flags&recAuth != 0:
			res.Code, res.Message = claims.PriorAuthMissing, "rate "+res.RateID+" requires prior authorization and the line has no prior_auth_number"
			return
		case c.TPA && c.TPAPriorAuthRequired:
			res.Code, res.Message = claims.PriorAuthMissing, "TPA contract "+c.Number+" requires prior authorization and the line has no prior_auth_number"
			return
		}
	}
	if res.ReviewByRate || (c.TPA && c.TPAMedicalNecessity) {
		res.Flags |= claims.ReviewRequired
	}
}

// ErrOverflow reports an amount too large for exact 64-bit cents.
var ErrOverflow = errors.New("amount is too large to price exactly")

// percentScale converts a percentage in Fixed units to a fraction.
const percentScale = 100 * money.FixedScale

// Allowed computes allowed_before_stop_loss (docs/pricing.md steps 4-5): for a
// Percentage rate billed is pro-rated to the priced units and multiplied by
// the percentage; for an Amount rate the value is multiplied by the priced
// units; with lesserOfBilled the result never exceeds the (pro-rated) billed
// amount. The exact result is rounded half away from zero to cents, once.
func Allowed(t contracts.RateType, value money.Fixed, billed money.Cents, units, pricedUnits int64, lesserOfBilled bool) (money.Cents, error) {
	b, v := int64(billed), int64(value)
	if b < 0 || v < 0 || units <= 0 || pricedUnits <= 0 {
		return 0, fmt.Errorf("cannot price billed %s with %d of %d units", billed, pricedUnits, units)
	}
	var out int64
	var err error
	switch t {
	case contracts.Percentage:
		if lesserOfBilled && v > percentScale {
			v = percentScale // min(billed × p, billed) = billed × min(p, 100%)
		}
		out, err = mulDivRound([]int64{b, v, pricedUnits}, []int64{units, percentScale})
	case contracts.Amount:
		// value is in millionths of a dollar: cents = value × units / 10^4.
		if lesserOfBilled && amountExceedsBilled(v, b, units) {
			out, err = mulDivRound([]int64{b, pricedUnits}, []int64{units})
		} else {
			out, err = mulDivRound([]int64{v, pricedUnits}, []int64{money.FixedScale / 100})
		}
	default:
		return 0, fmt.Errorf("rate has no rate type")
	}
	return money.Cents(out), err
}

// amountExceedsBilled reports v×pu/10^4 > b×pu/units, i.e. v×units > b×10^4.
func amountExceedsBilled(v, b, units int64) bool {
	lh, ll := bits.Mul64(uint64(v), uint64(units))
	rh, rl := bits.Mul64(uint64(b), money.FixedScale/100)
	return lh > rh || (lh == rh && ll > rl)
}

// mulDivRound computes the product of nums over the product of dens,
// rounded half away from zero, on a 128-bit fast path when it can.
func mulDivRound(nums, dens []int64) (int64, error) {
	if len(nums) == 3 && nums[2] == dens[0] {
		nums, dens = nums[:2], dens[1:] // units cancel: not capped
	}
	if len(nums) == 2 && len(dens) == 1 {
		if q, ok := money.MulDivRound(nums[0], nums[1], dens[0]); ok {
			return q, nil
		}
	}
	q, err := money.RatDivRound(nums, dens)
	if err != nil {
		return 0, ErrOverflow
	}
	return q, nil
}

// AdminFee is round_half_away(allowed × pct / 100).
func AdminFee(allowed money.Cents, pct money.Fixed) money.Cents {
	if pct <= 0 || allowed <= 0 {
		return 0
	}
	q, err := mulDivRound([]int64{int64(allowed), int64(pct)}, []int64{percentScale})
	if err != nil {
		return 0 // unreachable: the fee is at most the allowed amount
	}
	return money.Cents(q)
}
