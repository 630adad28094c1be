// Package synth generates realistic synthetic contract schedules and claim
// files for benchmarks and demos.
//
// Everything is deterministic from a seed: the same options give the same
// schedule and the same claim bytes. Schedule builds a contracts.Schedule in
// memory (bundle.Write stores it as a bundle); Claims returns a streaming
// generator of claim lines drawn from that schedule, which WriteCSV and
// WriteParquet write without holding the lines in memory.
//
// The data is shaped like a provider network: most contracts are Active,
// some Expired (a share of them auto-renewing), a few Terminated, Pending
// or Draft; rates are mostly exact-code rates with modifier, specialty and
// place-of-service variants, plus code ranges and specialty or visit-kind
// rates. Claims of 1-10 lines mostly bill codes their contract prices, on
// dates inside its term, with a configurable share of malformed rows.
package synth

import (
	"math"
	"strconv"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Defaults of ScheduleOptions.
const (
	DefaultContracts = 2000
	DefaultRates     = 1_000_000
)

// DefaultAsOf is the default "today" of generated data: contract statuses
// are as of this date and claims are dated up to it.
var DefaultAsOf = contracts.DateOf(2025, 6, 30)

// ScheduleOptions configure Schedule.
type ScheduleOptions struct {
	// Seed makes the schedule reproducible.
	Seed int64
	// Contracts is the number of contracts (0 = DefaultContracts).
	Contracts int
	// Rates is the total number of rates over all contracts
	// (0 = DefaultRates; negative = none, every contract has a default rate).
	Rates int
	// AsOf is the date statuses are relative to (0 = DefaultAsOf).
	AsOf contracts.Date
	// BadRateShare is the share of rates made deliberately invalid
	// (zero amounts, dates outside the contract term) so that validation
	// has something to report; 0 = none.
	BadRateShare float64
}

func (o *ScheduleOptions) normalize() {
	if o.Contracts <= 0 {
		o.Contracts = DefaultContracts
	}
	switch {
	case o.Rates == 0:
		o.Rates = DefaultRates
	case o.Rates < 0:
		o.Rates = 0
	}
	if o.AsOf == 0 {
		o.AsOf = DefaultAsOf
	}
}

// contractShape is the lifecycle story of one generated contract.
type contractShape uint8

const (
	shapeActive contractShape = iota
	shapeExpired
	shapeTerminated
	shapePending
	shapeDraft
	shapePredecessor // Expired, followed by an Active successor of the same vendor
	shapeSuccessor
)

// Schedule generates a contract schedule: opts.Contracts contracts over
// vendors and opts.Rates rates spread over them (skewed: a few contracts
// carry many rates). It uses the default rate kinds.
func Schedule(opts ScheduleOptions) *contracts.Schedule {
	opts.normalize()
	g := &schedGen{r: newRNG(opts.Seed, 0x5C4ED), opts: opts, pool: newCodePool()}
	return g.build()
}

type schedGen struct {
	r     rng
	opts  ScheduleOptions
	pool  *codePool
	s     *contracts.Schedule
	spec  []string // primary specialty per contract
	rates []contracts.Rate
}

func (g *schedGen) build() *contracts.Schedule {
	n := g.opts.Contracts
	g.s = &contracts.Schedule{Kinds: contracts.DefaultRateKinds(), Contracts: make([]contracts.Contract, 0, n)}
	g.spec = make([]string, 0, n)
	vendor := 0
	for len(g.s.Contracts) < n {
		vendor++
		vid := "V" + pad(vendor, 5)
		u := g.r.Float64()
		switch {
		case u < 0.15 && n-len(g.s.Contracts) >= 2:
			old := g.contract(vid, shapePredecessor, 0)
			g.contract(vid, shapeSuccessor, old.Expiration+1)
		case u < 0.83:
			g.contract(vid, shapeActive, 0)
		case u < 0.91:
			g.contract(vid, shapeExpired, 0)
		case u < 0.95:
			g.contract(vid, shapeTerminated, 0)
		case u < 0.985:
			g.contract(vid, shapePending, 0)
		default:
			g.contract(vid, shapeDraft, 0)
		}
	}
	g.distributeRates()
	return g.s
}

// contract appends one contract of the given shape; start, when set, is
// its effective date.
func (g *schedGen) contract(vendorID string, shape contractShape, start contracts.Date) *contracts.Contract {
	r := g.r
	i := len(g.s.Contracts)
	asOf := monthStart(g.opts.AsOf)
	c := contracts.Contract{
		ID:                "C" + pad(i+1, 6),
		VendorID:          vendorID,
		Status:            contracts.Active,
		RenewalNoticeDays: []int{30, 30, 60, 90}[r.IntN(4)],
	}
	switch shape {
	case shapeActive:
		c.Effective = asOf.AddMonths(-r.between(1, 42))
		c.Expiration = c.Effective.AddMonths(12*r.between(2, 5)) - 1
		for c.Expiration <= g.opts.AsOf {
			c.Expiration = (c.Expiration + 1).AddMonths(12) - 1
		}
		if r.chance(0.2) {
			c.AutoRenewal, c.RenewalTermMonths = true, 12
		}
	case shapeExpired, shapeTerminated, shapePredecessor:
		end := asOf.AddMonths(-r.between(0, 15))
		c.Expiration = end - 1
		c.Effective = end.AddMonths(-12 * r.between(2, 3))
		c.Status, c.StatusReason = contracts.Expired, "Term ended"
		if shape == shapeTerminated {
			c.Status, c.StatusReason = contracts.Terminated, termReasons[r.IntN(len(termReasons))]
		}
		if shape == shapeExpired && r.chance(0.5) {
			c.AutoRenewal, c.RenewalTermMonths = true, []int{12, 12, 24}[r.IntN(3)]
		}
	case shapeSuccessor:
		c.Effective = start
		c.Expiration = start.AddMonths(36) - 1
		for c.Expiration <= g.opts.AsOf {
			c.Expiration = (c.Expiration + 1).AddMonths(12) - 1
		}
	case shapePending, shapeDraft:
		c.Effective = asOf.AddMonths(r.between(-6, 6))
		c.Expiration = c.Effective.AddMonths(24) - 1
		c.Status = contracts.Pending
		if shape == shapeDraft {
			c.Status = contracts.Draft
		}
	}
	y, _, _ := c.Effective.Civil()
	c.Number = "CON-" + strconv.Itoa(y) + "-" + pad((i+1)%100000, 5)
	if r.chance(0.05) {
		c.TPA, c.TPAName = true, tpaNames[r.IntN(len(tpaNames))]
		c.TPAMedicalNecessity = r.chance(0.5)
		c.TPAPriorAuthRequired = r.chance(0.3)
	}
	if r.chance(0.6) {
		c.HasDefaultRate = true
		c.DefaultRateType = contracts.Percentage
		c.DefaultRateValue = money.Fixed(r.between(80, 160)) * money.FixedScale / 2 // 40..80 by 0.5
	}
	if r.chance(0.15) {
		// Mostly high; some low enough that large claims hit it.
		if r.chance(0.3) {
			c.StopLoss = money.Cents(r.between(25, 100)) * 10000 // 2,500..10,000.00
		} else {
			c.StopLoss = money.Cents(r.between(20, 250)) * 100000 // 20,000..250,000.00
		}
	}
	if !r.chance(0.1) {
		c.AdminFeePct = money.Fixed(r.between(25, 500)) * money.FixedScale / 100 // 0.25..5.00
	}
	if r.chance(0.05) {
		k := r.IntN(poolSize - 50)
		c.ExcludedServices = []contracts.CodeRange{{Lo: g.pool.codes[k], Hi: g.pool.codes[k+r.between(0, 40)]}}
		if r.chance(0.5) {
			code := g.pool.codes[r.IntN(poolSize)]
			c.ExcludedServices = append(c.ExcludedServices, contracts.CodeRange{Lo: code, Hi: code})
		}
	}
	c.LesserOfBilled = r.chance(0.3)
	uy, um, ud := c.Effective.AddMonths(-1).Civil()
	c.UpdatedAt = strconv.Itoa(uy) + "-" + pad(um, 2) + "-" + pad(ud, 2) + "T09:00:00Z"
	g.s.Contracts = append(g.s.Contracts, c)
	g.spec = append(g.spec, specialties[r.IntN(len(specialties))])
	return &g.s.Contracts[len(g.s.Contracts)-1]
}

// distributeRates splits opts.Rates over the contracts by skewed weights
// and generates each contract's rates.
func (g *schedGen) distributeRates() {
	total := g.opts.Rates
	n := len(g.s.Contracts)
	weights := make([]float64, n)
	sum := 0.0
	for i := range weights {
		w := g.r.ExpFloat64() + 0.05
		weights[i] = w
		sum += w
	}
	quota := make([]int, n)
	given := 0
	for i, w := range weights {
		quota[i] = int(math.Floor(float64(total) * w / sum))
		given += quota[i]
	}
	for i := 0; given < total; i = (i + 1) % n {
		quota[i]++
		given++
	}
	g.rates = make([]contracts.Rate, 0, total)
	for i := range g.s.Contracts {
		c := &g.s.Contracts[i]
		if quota[i] == 0 && !c.HasDefaultRate {
			c.HasDefaultRate, c.DefaultRateType, c.DefaultRateValue = true, contracts.Percentage, 60*money.FixedScale
		}
		first := len(g.rates)
		g.contractRates(i, quota[i])
		if g.opts.BadRateShare > 0 {
			for k := first; k < len(g.rates); k++ {
				if g.r.chance(g.opts.BadRateShare) {
					g.spoil(&g.rates[k], c)
				}
			}
		}
	}
	g.assignIDs()
	g.s.Rates = g.rates
}

// contractRates appends n rates for contract i.
func (g *schedGen) contractRates(i, n int) {
	if n == 0 {
		return
	}
	c := &g.s.Contracts[i]
	r := g.r
	spec := g.spec[i]
	// Criteria-only rates (specialty / visit kind): about 1.5%, at most 30.
	ns := min(n/64, 30)
	if n >= 8 && ns == 0 {
		ns = 1
	}
	// Distinct criteria, so that no two of them tie: the contract's own
	// specialty, then visit kinds alone and with the specialty, then other
	// specialties.
	vk0, sp0 := r.IntN(len(visitKinds)), r.IntN(len(specialties))
	for k := 0; k < ns; k++ {
		rt := g.newRate(c)
		switch j := (k - 1) / 2; {
		case k == 0:
			rt.Kind, rt.Specialty = contracts.KindSpecialty, spec
		case j < len(visitKinds) && k%2 == 1:
			rt.Kind, rt.VisitKind = contracts.KindVisitKind, visitKinds[(vk0+j)%len(visitKinds)]
		case j < len(visitKinds):
			rt.Kind, rt.Specialty, rt.VisitKind = contracts.KindSpecialtyVisitKind, spec, visitKinds[(vk0+j)%len(visitKinds)]
		default:
			rt.Kind, rt.Specialty = contracts.KindSpecialty, specialties[(sp0+k)%len(specialties)]
			if rt.Specialty == spec {
				rt.Kind, rt.VisitKind = contracts.KindSpecialtyVisitKind, "OUTPATIENT SURGERY"
			}
		}
		g.percentage(rt, 45, 95)
	}
	n -= ns
	// Code ranges: about 4%.
	nr := n / 25
	for k := 0; k < nr; k++ {
		rt := g.newRate(c)
		rt.Kind = contracts.KindCPT
		if r.chance(0.1) {
			rt.Kind, rt.Specialty = contracts.KindCPTSpecialty, spec
		}
		lo := r.IntN(poolSize - 1)
		hi := min(lo+r.between(10, 800), poolSize-1)
		rt.RangeStart, rt.RangeEnd = g.pool.codes[lo], g.pool.codes[hi]
		if r.chance(0.85) {
			g.percentage(rt, 50, 120)
		} else {
			g.amount(rt, c, 20, 900)
		}
	}
	n -= nr
	// Exact-code families over distinct codes of the contract.
	start, stride := r.IntN(poolSize), g.stride()
	for j := 0; n > 0; j++ {
		code := g.pool.codes[(start+j*stride)%poolSize]
		n -= g.family(c, spec, code, n)
	}
}

// stride returns a step coprime with poolSize, so that successive codes of
// a contract are distinct until the pool wraps.
func (g *schedGen) stride() int {
	for {
		s := g.r.between(7919, poolSize-1)
		if gcd(s, poolSize) == 1 {
			return s
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// family appends the rates of one code (at most room) and returns how many.
func (g *schedGen) family(c *contracts.Contract, spec, code string, room int) int {
	r := g.r
	made := 0
	add := func() *contracts.Rate {
		made++
		rt := g.newRate(c)
		rt.Kind, rt.CPTCode = contracts.KindCPT, code
		return rt
	}
	base := add()
	isAmount := r.chance(0.7)
	if isAmount {
		g.amount(base, c, 8, 2500)
	} else {
		g.percentage(base, 40, 150)
	}
	baseVal := base.Value
	switch u := r.Float64(); {
	case u < 0.05:
		base.MaxUnits = 4
	case u < 0.06:
		base.MinUnits = 2
	}
	base.RequiresAuth = r.chance(0.03)
	base.RequiresReview = r.chance(0.01)
	base.Active = !r.chance(0.02)
	// A rate history: an earlier value that ended when the current one began.
	if made < room && r.chance(0.06) && c.Expiration.AddMonths(-1) > c.Effective.AddMonths(3) {
		switched := r.dateIn(c.Effective.AddMonths(3), c.Expiration.AddMonths(-1))
		base.Effective, base.End = switched, 0
		old := add()
		old.Type, old.Value = base.Type, base.Value*95/100
		if old.Type == contracts.Amount {
			old.Value = roundCents(old.Value)
		}
		old.Effective, old.End = c.Effective, switched-1
	}
	if made+2 <= room && r.chance(0.08) {
		// Professional and technical components.
		for k, mod := range pairedModifiers {
			v := add()
			v.Modifier, v.Type = mod, base.Type
			v.Value = baseVal * money.Fixed(35+30*k) / 100
			if v.Type == contracts.Percentage && v.Value == 0 {
				v.Value = money.FixedScale
			}
			if v.Type == contracts.Amount {
				v.Value = roundCents(v.Value)
			}
		}
	}
	if made < room && r.chance(0.05) {
		v := add()
		v.Kind, v.Specialty = contracts.KindCPTSpecialty, spec
		v.Type, v.Value = base.Type, baseVal*110/100
		if v.Type == contracts.Amount {
			v.Value = g.capAmount(c, roundCents(v.Value))
		}
	}
	if made < room && r.chance(0.04) {
		v := add()
		v.Kind, v.Specialty = contracts.KindCPTModifierSpecialty, spec
		v.Modifier = kindModifiers[r.IntN(len(kindModifiers))]
		v.Type, v.Value = base.Type, variantValue(base.Type, baseVal, 60)
	}
	if made < room && r.chance(0.03) {
		v := add()
		v.PlaceOfService = []string{"21", "22", "23"}
		v.Type, v.Value = base.Type, variantValue(base.Type, baseVal, 80)
	}
	return made
}

// newRate appends a rate of c with the common fields set and returns it.
func (g *schedGen) newRate(c *contracts.Contract) *contracts.Rate {
	g.rates = append(g.rates, contracts.Rate{ContractID: c.ID, Effective: c.Effective, Active: true})
	rt := &g.rates[len(g.rates)-1]
	r := g.r
	if r.chance(0.1) && c.Expiration.AddMonths(-2) > c.Effective {
		rt.Effective = r.dateIn(c.Effective, c.Expiration.AddMonths(-2))
	}
	if r.chance(0.03) {
		rt.End = r.dateIn(rt.Effective, c.Expiration)
	}
	return rt
}

// spoil makes rt invalid in one of the ways validation rejects.
func (g *schedGen) spoil(rt *contracts.Rate, c *contracts.Contract) {
	switch g.r.IntN(3) {
	case 0:
		rt.Effective = c.Effective - 30
	case 1:
		rt.End = rt.Effective - 1
	default:
		rt.MinUnits, rt.MaxUnits = 5, 2
	}
}

func (g *schedGen) percentage(rt *contracts.Rate, lo, hi int) {
	rt.Type = contracts.Percentage
	rt.Value = money.Fixed(g.r.between(2*lo, 2*hi)) * money.FixedScale / 2
}

func (g *schedGen) amount(rt *contracts.Rate, c *contracts.Contract, lo, hi float64) {
	rt.Type = contracts.Amount
	rt.Value = g.capAmount(c, g.r.dollars(lo, hi).Fixed())
}

// capAmount keeps an Amount rate at or below the contract's stop loss.
func (g *schedGen) capAmount(c *contracts.Contract, v money.Fixed) money.Fixed {
	if c.StopLoss > 0 && v > c.StopLoss.Fixed() {
		return c.StopLoss.Fixed()
	}
	if v < money.FixedScale/100 {
		return money.FixedScale / 100
	}
	return v
}

// variantValue is pct percent of a family's base value, in whole cents for
// an Amount, and never 0.
func variantValue(t contracts.RateType, base money.Fixed, pct money.Fixed) money.Fixed {
	v := base * pct / 100
	if t == contracts.Amount {
		v = roundCents(v)
	}
	if v == 0 {
		v = money.FixedScale
	}
	return v
}

func roundCents(v money.Fixed) money.Fixed {
	const per = money.FixedScale / 100
	return (v + per/2) / per * per
}

// assignIDs numbers the rates with fixed-width numeric ids cut from one
// string, so a million rates do not cost a million allocations.
func (g *schedGen) assignIDs() {
	n := len(g.rates)
	base := 1
	for base <= n {
		base *= 10
	}
	width := len(strconv.Itoa(base + n))
	buf := make([]byte, 0, width*n)
	for i := 0; i < n; i++ {
		buf = strconv.AppendInt(buf, int64(base+i+1), 10)
	}
	all := string(buf)
	for i := range g.rates {
		g.rates[i].ID = all[i*width : (i+1)*width]
	}
}

// pad formats n with leading zeros to width digits.
func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}
