package synth

import (
	"math"
	"strconv"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Defaults of ClaimOptions.
const (
	DefaultLines    = 1_000_000
	DefaultBadShare = 0.01
)

// ClaimOptions configure Claims.
type ClaimOptions struct {
	// Schedule supplies the vendors, contract terms and codes the claims
	// bill. It is read, never changed, and must not change while the
	// generator runs.
	Schedule *contracts.Schedule
	// Seed makes the claims reproducible.
	Seed int64
	// Lines is the number of lines to generate (0 = DefaultLines;
	// negative = none).
	Lines int64
	// BadShare is the share of lines made bad: malformed dates, amounts or
	// units, missing required fields, duplicate line numbers
	// (0 = DefaultBadShare; negative = none).
	BadShare float64
	// AsOf is the latest regular service date (0 = DefaultAsOf); claims
	// are mostly dated in the two years before it.
	AsOf contracts.Date
}

// Bad is the kind of defect of a bad row.
type Bad uint8

// Row defects. BadDuplicate rows are well-formed but repeat the previous
// line's line_number within the claim.
const (
	BadNone Bad = iota
	BadDate
	BadAmount
	BadNegativeAmount
	BadMissingCPT
	BadMissingVendor
	BadUnits
	BadLineNumber
	BadDuplicate
	numBad
)

var badNames = [numBad]string{"", "date", "amount", "negative_amount", "missing_cpt", "missing_vendor", "units", "line_number", "duplicate"}

func (b Bad) String() string { return badNames[b] }

// Row is one generated claim line in typed form. The writers format it:
// WriteCSV as text (bad values as malformed text), WriteParquet as typed
// columns (bad values as nulls or out-of-range numbers).
type Row struct {
	ClaimSeq    int64 // claim_id is "CLM" and 10 digits
	LineNumber  int64
	VendorID    string
	MemberSeq   int64 // member_id is "M" and 8 digits
	NPI         int64 // 10 digits
	CPT         string
	Modifiers   string // comma-separated
	Specialty   string
	VisitKind   string
	POS         string
	ServiceDate contracts.Date
	Units       int64 // 0 = empty (the reader's default of 1)
	Billed      money.Cents
	PriorAuth   int64 // 0 = none; otherwise "PA-" and 8 digits
	Bad         Bad
	// Variant picks among the spellings of a defect.
	Variant uint8
}

// ClaimGen streams claim lines. Its memory does not depend on how many
// lines it generates: it holds per-contract indexes of the schedule and the
// current claim only.
type ClaimGen struct {
	r        rng
	opts     ClaimOptions
	pool     *codePool
	s        *contracts.Schedule
	byRate   []int32   // contract index of each rate
	rateIdx  [][]int32 // rate indexes of each contract (active rates)
	mainSpec []string  // a specialty each contract prices, or ""
	eligible []int32   // contracts claims are billed against
	emitted  int64
	bad      int64

	// The current claim.
	claimSeq   int64
	claimLeft  int
	lineNo     int64
	contract   int32
	member     int64
	npi        int64
	date       contracts.Date
	prev       Row
	lt         map[string]string // modifier -> "LT,modifier"
	hasPrev    bool
	sizeWeight int
}

// Claims returns a generator of opts.Lines claim lines over opts.Schedule.
// A claim's lines are contiguous and claim ids are unique.
func Claims(opts ClaimOptions) *ClaimGen {
	if opts.Lines == 0 {
		opts.Lines = DefaultLines
	}
	switch {
	case opts.BadShare == 0:
		opts.BadShare = DefaultBadShare
	case opts.BadShare < 0:
		opts.BadShare = 0
	}
	if opts.AsOf == 0 {
		opts.AsOf = DefaultAsOf
	}
	s := opts.Schedule
	if s == nil {
		s = &contracts.Schedule{}
	}
	g := &ClaimGen{r: newRNG(opts.Seed, 0xC1A135), opts: opts, pool: newCodePool(), s: s}
	byID := make(map[string]int32, len(s.Contracts))
	for i := range s.Contracts {
		if _, dup := byID[s.Contracts[i].ID]; !dup {
			byID[s.Contracts[i].ID] = int32(i)
		}
	}
	g.rateIdx = make([][]int32, len(s.Contracts))
	counts := make([]int32, len(s.Contracts))
	g.byRate = make([]int32, len(s.Rates))
	for i := range s.Rates {
		ci, ok := byID[s.Rates[i].ContractID]
		if !ok || !s.Rates[i].Active {
			ci = -1
		} else {
			counts[ci]++
		}
		g.byRate[i] = ci
	}
	for ci, n := range counts {
		g.rateIdx[ci] = make([]int32, 0, n)
	}
	g.mainSpec = make([]string, len(s.Contracts))
	for i, ci := range g.byRate {
		if ci < 0 {
			continue
		}
		g.rateIdx[ci] = append(g.rateIdx[ci], int32(i))
		if g.mainSpec[ci] == "" && s.Rates[i].Specialty != "" {
			g.mainSpec[ci] = s.Rates[i].Specialty
		}
	}
	for i := range s.Contracts {
		if s.Contracts[i].VendorID != "" && !s.Contracts[i].Effective.IsZero() && s.Contracts[i].Expiration >= s.Contracts[i].Effective {
			g.eligible = append(g.eligible, int32(i))
		}
	}
	for _, w := range claimSizeWeights {
		g.sizeWeight += w
	}
	return g
}

// Emitted is the number of lines generated so far.
func (g *ClaimGen) Emitted() int64 { return g.emitted }

// BadRows is the number of bad rows generated so far.
func (g *ClaimGen) BadRows() int64 { return g.bad }

// Next fills row with the next line and reports whether there was one.
func (g *ClaimGen) Next(row *Row) bool {
	if g.emitted >= g.opts.Lines {
		return false
	}
	if g.claimLeft == 0 {
		g.startClaim()
	}
	g.claimLeft--
	g.emitted++
	r := g.r
	if g.opts.BadShare > 0 && r.chance(g.opts.BadShare) {
		kind := Bad(1 + r.IntN(int(numBad)-1))
		if kind == BadDuplicate && g.hasPrev {
			*row = g.prev
			row.Bad, row.Variant = BadDuplicate, 0
			g.bad++
			return true
		}
		if kind == BadDuplicate {
			kind = BadDate
		}
		saved, had := g.prev, g.hasPrev
		g.line(row)
		g.prev, g.hasPrev = saved, had // a bad row is no line to duplicate
		row.Bad, row.Variant = kind, uint8(r.IntN(4))
		g.bad++
		return true
	}
	g.line(row)
	return true
}

// startClaim picks the contract, member, provider, date and size of the
// next claim.
func (g *ClaimGen) startClaim() {
	r := g.r
	g.claimSeq++
	g.lineNo = 0
	g.hasPrev = false
	w := r.IntN(g.sizeWeight)
	size := 1
	for i, cw := range claimSizeWeights {
		if w < cw {
			size = i + 1
			break
		}
		w -= cw
	}
	g.claimLeft = int(min(int64(size), g.opts.Lines-g.emitted))
	g.member = int64(r.IntN(5_000_000)) + 1
	g.npi = 1_000_000_000 + int64(r.IntN(900_000_000))
	g.contract = -1
	switch {
	case len(g.eligible) == 0:
	case len(g.s.Rates) > 0 && r.chance(0.85):
		// Weighted by rate count: bigger contracts see more claims.
		for try := 0; try < 8 && g.contract < 0; try++ {
			g.contract = g.byRate[r.IntN(len(g.byRate))]
		}
		if g.contract < 0 {
			g.contract = g.eligible[r.IntN(len(g.eligible))]
		}
	default:
		g.contract = g.eligible[r.IntN(len(g.eligible))]
	}
	if g.contract < 0 {
		g.date = g.opts.AsOf
		return
	}
	if st := g.s.Contracts[g.contract].Status; (st == contracts.Pending || st == contracts.Draft) && r.chance(0.8) {
		// Few claims reach contracts that are not in force yet.
		g.contract = g.eligible[r.IntN(len(g.eligible))]
	}
	c := &g.s.Contracts[g.contract]
	lo, hi := max(c.Effective, g.opts.AsOf-730), min(c.Expiration, g.opts.AsOf)
	switch {
	case c.Status == contracts.Pending || c.Status == contracts.Draft:
		lo, hi = c.Effective, min(c.Expiration, c.Effective+180)
	case c.Expiration < g.opts.AsOf && r.chance(0.05):
		// After the term: honored, auto-renewed or terminated lines.
		lo, hi = c.Expiration+1, min(c.Expiration+180, g.opts.AsOf)
	}
	if lo > hi {
		lo, hi = c.Effective, c.Expiration
	}
	g.date = r.dateIn(lo, hi)
}

// line fills row with a regular line of the current claim.
func (g *ClaimGen) line(row *Row) {
	r := g.r
	g.lineNo++
	*row = Row{
		ClaimSeq: g.claimSeq, LineNumber: g.lineNo, MemberSeq: g.member, NPI: g.npi,
		ServiceDate: g.date, Units: 1,
	}
	if g.date != 0 && r.chance(0.15) {
		row.ServiceDate += contracts.Date(r.IntN(4))
	}
	if r.chance(0.03) {
		row.Units = 0 // left empty
	} else if r.chance(0.12) {
		row.Units = int64(r.between(2, 6))
	}
	if g.contract < 0 {
		row.VendorID = "V99999"
		row.CPT = g.pool.codes[r.IntN(poolSize)]
		row.Billed = r.dollars(20, 2000)
		return
	}
	c := &g.s.Contracts[g.contract]
	row.VendorID = c.VendorID
	units := max(row.Units, 1)
	rates := g.rateIdx[g.contract]
	var rt *contracts.Rate
	if len(rates) > 0 && r.chance(0.93) {
		// Skewed towards a contract's first rates: its common codes.
		k := int(float64(len(rates)) * math.Pow(r.Float64(), 2.5))
		rt = &g.s.Rates[rates[min(k, len(rates)-1)]]
	}
	if rt == nil {
		row.CPT = g.pool.codes[r.IntN(poolSize)]
		if r.chance(0.6) {
			row.Specialty = g.mainSpec[g.contract]
		}
		row.POS = professionalPOS[r.IntN(len(professionalPOS))]
		row.Billed = r.dollars(20, 3000) * money.Cents(units)
		g.auth(row, c, false)
		g.remember(row)
		return
	}
	switch {
	case rt.CPTCode != "":
		row.CPT = rt.CPTCode
	case rt.RangeStart != "":
		lo, hi := codeIndex(rt.RangeStart), codeIndex(rt.RangeEnd)
		if lo < 0 || hi < lo {
			row.CPT = rt.RangeStart
		} else {
			row.CPT = g.pool.codes[r.between(lo, hi)]
		}
	default:
		row.CPT = g.pool.codes[r.IntN(poolSize)]
	}
	switch {
	case rt.Modifier != "" && r.chance(0.2):
		row.Modifiers = g.withLT(rt.Modifier)
	case rt.Modifier != "":
		row.Modifiers = rt.Modifier
	case r.chance(0.08):
		row.Modifiers = lineModifiers[r.IntN(len(lineModifiers))]
	}
	switch {
	case rt.Specialty != "":
		row.Specialty = rt.Specialty
	case r.chance(0.6):
		row.Specialty = g.mainSpec[g.contract]
	}
	switch {
	case rt.VisitKind != "":
		row.VisitKind = rt.VisitKind
	case r.chance(0.3):
		row.VisitKind = visitKinds[r.IntN(len(visitKinds))]
	}
	if len(rt.PlaceOfService) > 0 {
		row.POS = rt.PlaceOfService[r.IntN(len(rt.PlaceOfService))]
	} else {
		row.POS = professionalPOS[r.IntN(len(professionalPOS))]
	}
	if rt.MinUnits > 0 {
		row.Units = int64(rt.MinUnits + r.IntN(3))
		if r.chance(0.1) {
			row.Units = int64(rt.MinUnits - 1)
		}
		if row.Units <= 0 {
			row.Units = 0
		}
		units = max(row.Units, 1)
	}
	if rt.Type == contracts.Amount {
		// Providers bill above the contracted amount, now and then below.
		per := float64(rt.Value) / float64(money.FixedScale/100)
		f := 1.05 + r.Float64()*1.2
		if r.chance(0.08) {
			f = 0.6 + r.Float64()*0.4
		}
		row.Billed = money.Cents(math.Round(per*f)) * money.Cents(units)
		if row.Billed <= 0 {
			row.Billed = 1
		}
	} else {
		row.Billed = r.dollars(20, 3000) * money.Cents(units)
	}
	g.auth(row, c, rt.RequiresAuth)
	g.remember(row)
}

// auth gives the line a prior authorization number when it is needed (most
// of the time) and now and then when it is not.
func (g *ClaimGen) auth(row *Row, c *contracts.Contract, required bool) {
	p := 0.15
	if required || (c.TPA && c.TPAPriorAuthRequired) {
		p = 0.92
	}
	if g.r.chance(p) {
		row.PriorAuth = int64(g.r.IntN(99_999_999)) + 1
	}
}

// withLT returns "LT,mod", cached so that lines do not allocate.
func (g *ClaimGen) withLT(mod string) string {
	s, ok := g.lt[mod]
	if !ok {
		if g.lt == nil {
			g.lt = map[string]string{}
		}
		s = "LT," + mod
		g.lt[mod] = s
	}
	return s
}

func (g *ClaimGen) remember(row *Row) {
	g.prev, g.hasPrev = *row, true
}

// Record fills rec with the text form of row, exactly as WriteCSV writes
// the fields (before CSV quoting).
func (row *Row) Record(rec *[claims.NumFields]string) {
	var buf [64]byte
	for f := claims.Field(0); f < claims.NumFields; f++ {
		rec[f] = string(row.appendField(buf[:0], f))
	}
}

// appendField appends the text of one field, bad spellings included.
func (row *Row) appendField(dst []byte, f claims.Field) []byte {
	switch f {
	case claims.ClaimID:
		return appendPadded(append(dst, "CLM"...), row.ClaimSeq, 10)
	case claims.LineNumber:
		if row.Bad == BadLineNumber {
			return append(dst, [...]string{"", "x1", "1.5", ""}[row.Variant&3]...)
		}
		return strconv.AppendInt(dst, row.LineNumber, 10)
	case claims.VendorID:
		if row.Bad == BadMissingVendor {
			return append(dst, [...]string{"", " ", "", ""}[row.Variant&3]...)
		}
		return append(dst, row.VendorID...)
	case claims.MemberID:
		return appendPadded(append(dst, 'M'), row.MemberSeq, 8)
	case claims.ProviderNPI:
		return strconv.AppendInt(dst, row.NPI, 10)
	case claims.CPTCode:
		if row.Bad == BadMissingCPT {
			return dst
		}
		return append(dst, row.CPT...)
	case claims.Modifiers:
		return append(dst, row.Modifiers...)
	case claims.Specialty:
		return append(dst, row.Specialty...)
	case claims.VisitKind:
		return append(dst, row.VisitKind...)
	case claims.PlaceOfService:
		return append(dst, row.POS...)
	case claims.ServiceDate:
		if row.Bad == BadDate {
			y, m, d := row.ServiceDate.Civil()
			switch row.Variant & 3 {
			case 0:
				return append(dst, strconv.Itoa(y)+"-02-30"...)
			case 1:
				return append(dst, pad(m, 2)+"/"+pad(d, 2)+"/"+strconv.Itoa(y)...)
			case 2:
				return append(dst, strconv.Itoa(y)+"-13-01"...)
			}
			return dst
		}
		if row.ServiceDate == 0 {
			return dst
		}
		return row.ServiceDate.Append(dst)
	case claims.Units:
		if row.Bad == BadUnits {
			return append(dst, [...]string{"0", "-2", "1.5", "two"}[row.Variant&3]...)
		}
		if row.Units == 0 {
			return dst
		}
		return strconv.AppendInt(dst, row.Units, 10)
	case claims.BilledAmount:
		switch row.Bad {
		case BadAmount:
			switch row.Variant & 3 {
			case 0:
				return append(row.Billed.Append(dst), '5') // three places
			case 1:
				return append(dst, "1,234.00"...)
			case 2:
				return row.Billed.Append(append(dst, '$'))
			}
			return dst
		case BadNegativeAmount:
			return row.Billed.Append(append(dst, '-'))
		}
		return row.Billed.Append(dst)
	case claims.PriorAuthNumber:
		if row.PriorAuth == 0 {
			return dst
		}
		return appendPadded(append(dst, "PA-"...), row.PriorAuth, 8)
	}
	return dst
}

// appendPadded appends n with leading zeros to width digits.
func appendPadded(dst []byte, n int64, width int) []byte {
	var tmp [20]byte
	b := strconv.AppendInt(tmp[:0], n, 10)
	for i := len(b); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, b...)
}
