package rates

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
	"github.com/repricer/repricer/synth"
)

func d(s string) contracts.Date {
	v, err := contracts.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return v
}

func fx(s string) money.Fixed {
	v, err := money.ParseFixed(s)
	if err != nil {
		panic(err)
	}
	return v
}

func cents(s string) money.Cents {
	v, err := money.ParseCents(s)
	if err != nil {
		panic(err)
	}
	return v
}

// contract returns an Active contract of vendor V1 for 2024.
func contract(id string, mods ...func(*contracts.Contract)) contracts.Contract {
	c := contracts.Contract{
		ID: id, Number: "CON-2024-0000" + id[len(id)-1:], VendorID: "V1", Status: contracts.Active,
		Effective: d("2024-01-01"), Expiration: d("2024-12-31"),
		DefaultRateType: contracts.Percentage,
	}
	for _, m := range mods {
		m(&c)
	}
	return c
}

// rate returns an active CPT Amount rate of contract C1 for 99213.
func rate(id, value string, mods ...func(*contracts.Rate)) contracts.Rate {
	r := contracts.Rate{
		ID: id, ContractID: "C1", Kind: contracts.KindCPT, Type: contracts.Amount, Value: fx(value),
		CPTCode: "99213", Effective: d("2024-01-01"), Active: true,
	}
	for _, m := range mods {
		m(&r)
	}
	return r
}

// line returns a valid line of vendor V1 for 99213 on 2024-06-01, billed 100.
func line(mods ...func(*claims.Line)) claims.Item {
	var it claims.Item
	l := &it.Line
	l.Raw[claims.ClaimID] = "CL1"
	l.Raw[claims.LineNumber] = "1"
	l.Raw[claims.VendorID] = "V1"
	l.Raw[claims.CPTCode] = "99213"
	l.Raw[claims.ServiceDate] = "2024-06-01"
	l.Raw[claims.BilledAmount] = "100.00"
	for _, m := range mods {
		m(l)
	}
	l.Parse()
	return it
}

func set(f claims.Field, v string) func(*claims.Line) {
	return func(l *claims.Line) { l.Raw[f] = v }
}

func engine(t testing.TB, cs []contracts.Contract, rs []contracts.Rate, opts Options) *Engine {
	t.Helper()
	v := contracts.Validate(&contracts.Schedule{Contracts: cs, Rates: rs})
	return New(v, opts)
}

// outcome summarizes a result for table tests.
func outcome(r *claims.Result) string {
	if !r.Priced() {
		return r.Code.String()
	}
	id := r.RateKind
	if r.RateID != "" {
		id = r.RateID
	}
	s := fmt.Sprintf("%s %s/%s", r.Contract.ID, id, r.Allowed)
	if r.Flags != 0 {
		s += " " + r.Flags.String()
	}
	return s
}

func TestPriceLine(t *testing.T) {
	withDefault := func(c *contracts.Contract) { c.HasDefaultRate, c.DefaultRateValue = true, fx("50") }
	tests := []struct {
		name string
		cs   []contracts.Contract
		rs   []contracts.Rate
		opts Options
		line claims.Item
		want string
	}{
		// Step 1: contract selection.
		{name: "in force", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40")},
			line: line(), want: "C1 1/40.00"},
		{name: "no vendor", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40")},
			line: line(set(claims.VendorID, "V9")), want: "NO_CONTRACT"},
		{name: "before every contract", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40")},
			line: line(set(claims.ServiceDate, "2023-12-31")), want: "NO_CONTRACT"},
		{name: "two in force overlap", cs: []contracts.Contract{contract("C1"), contract("C2", func(c *contracts.Contract) {
			c.Effective = d("2024-06-01")
			c.Expiration = d("2025-05-31")
		})}, rs: []contracts.Rate{rate("1", "40")}, line: line(set(claims.ServiceDate, "2024-07-01")), want: "CONTRACT_OVERLAP"},
		{name: "overlapping contract outside the overlap is invalid", cs: []contracts.Contract{contract("C1"), contract("C2", func(c *contracts.Contract) {
			c.Effective = d("2024-06-01")
			c.Expiration = d("2025-05-31")
		})}, rs: []contracts.Rate{rate("1", "40")}, line: line(set(claims.ServiceDate, "2024-02-01")), want: "CONTRACT_INVALID"},
		{name: "expired honored", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) { c.Status = contracts.Expired })},
			rs: []contracts.Rate{rate("1", "40")}, line: line(set(claims.ServiceDate, "2025-03-01")), want: "C1 1/40.00 EXPIRED_CONTRACT_HONORED"},
		{name: "active past expiration is honored too", cs: []contracts.Contract{contract("C1")},
			rs: []contracts.Rate{rate("1", "40")}, line: line(set(claims.ServiceDate, "2025-03-01")), want: "C1 1/40.00 EXPIRED_CONTRACT_HONORED"},
		{name: "auto renewed", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) { c.AutoRenewal, c.RenewalTermMonths = true, 12 })},
			rs: []contracts.Rate{rate("1", "40")}, line: line(set(claims.ServiceDate, "2027-03-01")), want: "C1 1/40.00 AUTO_RENEWED_TERM"},
		{name: "latest expired wins", cs: []contracts.Contract{
			contract("C1", func(c *contracts.Contract) { c.Status = contracts.Expired }),
			contract("C2", func(c *contracts.Contract) {
				c.Effective, c.Expiration = d("2025-01-01"), d("2025-06-30")
				withDefault(c)
			}),
		}, rs: []contracts.Rate{rate("1", "40")}, line: line(set(claims.ServiceDate, "2025-08-01")), want: "C2 CONTRACT_DEFAULT/50.00 CONTRACT_DEFAULT_RATE;EXPIRED_CONTRACT_HONORED"},
		{name: "terminated after its term", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) {
			c.Status, c.StatusReason = contracts.Terminated, "breach"
		})}, rs: []contracts.Rate{rate("1", "40")}, line: line(set(claims.ServiceDate, "2025-01-01")), want: "CONTRACT_TERMINATED"},
		{name: "terminated within its term prices", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) {
			c.Status, c.StatusReason = contracts.Terminated, "breach"
		})}, rs: []contracts.Rate{rate("1", "40")}, line: line(), want: "C1 1/40.00"},
		{name: "pending covers date", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) { c.Status = contracts.Pending })},
			rs: []contracts.Rate{rate("1", "40")}, line: line(), want: "CONTRACT_NOT_ACTIVE"},
		{name: "draft covers date", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) { c.Status = contracts.Draft })},
			rs: []contracts.Rate{rate("1", "40")}, line: line(), want: "CONTRACT_NOT_ACTIVE"},
		{name: "draft not covering date", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) { c.Status = contracts.Draft })},
			rs: []contracts.Rate{rate("1", "40")}, line: line(set(claims.ServiceDate, "2025-06-01")), want: "NO_CONTRACT"},
		{name: "rejected contract", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) { c.TPA = true })},
			rs: []contracts.Rate{rate("1", "40")}, line: line(), want: "CONTRACT_INVALID"},
		// Step 2: exclusions.
		{name: "excluded code", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) {
			c.ExcludedServices = []contracts.CodeRange{{Lo: "99211", Hi: "99215"}}
		})}, rs: []contracts.Rate{rate("1", "40")}, line: line(), want: "EXCLUDED_SERVICE"},
		// Step 3: rate lookup and defaults.
		{name: "contract default", cs: []contracts.Contract{contract("C1", withDefault)}, rs: []contracts.Rate{rate("1", "40")},
			line: line(set(claims.CPTCode, "99214")), want: "C1 CONTRACT_DEFAULT/50.00 CONTRACT_DEFAULT_RATE"},
		{name: "system default", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40")},
			opts: Options{SystemDefault: &DefaultRate{Type: contracts.Amount, Value: fx("25")}},
			line: line(set(claims.CPTCode, "99214")), want: "C1 SYSTEM_DEFAULT/25.00 SYSTEM_DEFAULT_RATE"},
		{name: "no rate", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40")},
			line: line(set(claims.CPTCode, "99214")), want: "NO_RATE"},
		{name: "inactive rate ignored", cs: []contracts.Contract{contract("C1", withDefault)}, rs: []contracts.Rate{
			rate("1", "40", func(r *contracts.Rate) { r.Active = false }), rate("2", "45", func(r *contracts.Rate) { r.CPTCode = "99214" })},
			line: line(), want: "C1 CONTRACT_DEFAULT/50.00 CONTRACT_DEFAULT_RATE"},
		{name: "rate ended before service", cs: []contracts.Contract{contract("C1", withDefault)}, rs: []contracts.Rate{
			rate("1", "40", func(r *contracts.Rate) { r.End = d("2024-05-31") })},
			line: line(), want: "C1 CONTRACT_DEFAULT/50.00 CONTRACT_DEFAULT_RATE"},
		{name: "code case and spaces", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40", func(r *contracts.Rate) { r.CPTCode = "J3301" })},
			line: line(set(claims.CPTCode, " j3301 ")), want: "C1 1/40.00"},
		// Step 4: units.
		{name: "units below minimum", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "10", func(r *contracts.Rate) { r.MinUnits = 2 })},
			line: line(), want: "UNITS_BELOW_MINIMUM"},
		{name: "units capped amount", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "10", func(r *contracts.Rate) { r.MaxUnits = 3 })},
			line: line(set(claims.Units, "5")), want: "C1 1/30.00 UNITS_CAPPED"},
		{name: "units capped percentage pro-rates billed", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "80", func(r *contracts.Rate) {
			r.Type, r.MaxUnits = contracts.Percentage, 2
		})}, line: line(set(claims.Units, "3")), want: "C1 1/53.33 UNITS_CAPPED"},
		{name: "units multiply amount", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "12.345")},
			line: line(set(claims.Units, "3")), want: "C1 1/37.04"},
		// Step 5: amounts.
		{name: "percentage rounds half away from zero", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "50", func(r *contracts.Rate) { r.Type = contracts.Percentage })},
			line: line(set(claims.BilledAmount, "0.05")), want: "C1 1/0.03"},
		{name: "lesser of billed caps amount", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) { c.LesserOfBilled = true })},
			rs: []contracts.Rate{rate("1", "140")}, line: line(), want: "C1 1/100.00"},
		{name: "lesser of billed caps percentage over 100", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) { c.LesserOfBilled = true })},
			rs: []contracts.Rate{rate("1", "150", func(r *contracts.Rate) { r.Type = contracts.Percentage })}, line: line(), want: "C1 1/100.00"},
		{name: "percentage over 100 without lesser of", cs: []contracts.Contract{contract("C1")},
			rs: []contracts.Rate{rate("1", "150", func(r *contracts.Rate) { r.Type = contracts.Percentage })}, line: line(), want: "C1 1/150.00"},
		// Step 6: authorization and review.
		{name: "rate requires auth", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40", func(r *contracts.Rate) { r.RequiresAuth = true })},
			line: line(), want: "PRIOR_AUTH_MISSING"},
		{name: "rate requires auth and has it", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40", func(r *contracts.Rate) { r.RequiresAuth = true })},
			line: line(set(claims.PriorAuthNumber, "PA1")), want: "C1 1/40.00"},
		{name: "TPA requires auth", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) {
			c.TPA, c.TPAName, c.TPAPriorAuthRequired = true, "T", true
		})}, rs: []contracts.Rate{rate("1", "40")}, line: line(), want: "PRIOR_AUTH_MISSING"},
		{name: "TPA medical necessity", cs: []contracts.Contract{contract("C1", func(c *contracts.Contract) {
			c.TPA, c.TPAName, c.TPAMedicalNecessity = true, "T", true
		})}, rs: []contracts.Rate{rate("1", "40")}, line: line(), want: "C1 1/40.00 REVIEW_REQUIRED"},
		{name: "rate requires review", cs: []contracts.Contract{contract("C1")}, rs: []contracts.Rate{rate("1", "40", func(r *contracts.Rate) { r.RequiresReview = true })},
			line: line(), want: "C1 1/40.00 REVIEW_REQUIRED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := engine(t, tt.cs, tt.rs, tt.opts)
			it := tt.line
			if it.Line.Invalid != nil {
				t.Fatalf("test line invalid: %v", it.Line.Invalid)
			}
			e.NewPricer().PriceLine(&it)
			if got := outcome(&it.Result); got != tt.want {
				t.Errorf("got %q, want %q (message %q)", got, tt.want, it.Result.Message)
			}
		})
	}
}

func TestRateTieBreaks(t *testing.T) {
	ortho := func(r *contracts.Rate) { r.Specialty = "ORTHO" }
	kind := func(k string) func(*contracts.Rate) { return func(r *contracts.Rate) { r.Kind = k } }
	rng := func(lo, hi string) func(*contracts.Rate) {
		return func(r *contracts.Rate) { r.CPTCode, r.RangeStart, r.RangeEnd = "", lo, hi }
	}
	mod := func(m string) func(*contracts.Rate) { return func(r *contracts.Rate) { r.Modifier = m } }
	eff := func(s string) func(*contracts.Rate) { return func(r *contracts.Rate) { r.Effective = d(s) } }
	pos := func(p ...string) func(*contracts.Rate) { return func(r *contracts.Rate) { r.PlaceOfService = p } }
	noCPT := func(r *contracts.Rate) { r.CPTCode = "" }
	vk := func(v string) func(*contracts.Rate) { return func(r *contracts.Rate) { r.VisitKind = v } }
	orthoLine := []func(*claims.Line){set(claims.Specialty, "ortho"), set(claims.Modifiers, "LT 26"), set(claims.PlaceOfService, "21"), set(claims.VisitKind, "office")}

	tests := []struct {
		name  string
		kinds []contracts.RateKind
		rs    []contracts.Rate
		want  string
	}{
		{name: "priority 1 beats 2 and 3", rs: []contracts.Rate{
			rate("1", "10"),
			rate("2", "20", kind(contracts.KindCPTSpecialty), ortho),
			rate("3", "30", kind(contracts.KindCPTModifierSpecialty), ortho, mod("26")),
		}, want: "C1 3/30.00"},
		{name: "modifier must be on the line", rs: []contracts.Rate{
			rate("2", "20", kind(contracts.KindCPTSpecialty), ortho),
			rate("3", "30", kind(contracts.KindCPTModifierSpecialty), ortho, mod("TC")),
		}, want: "C1 2/20.00"},
		{name: "specialty beats visit kind", rs: []contracts.Rate{
			rate("5", "50", kind(contracts.KindSpecialty), ortho, noCPT),
			rate("6", "60", kind(contracts.KindVisitKind), vk("OFFICE"), noCPT),
			rate("4", "40", kind(contracts.KindSpecialtyVisitKind), ortho, vk("OFFICE"), noCPT),
		}, want: "C1 4/40.00"},
		{name: "kind priorities come from the data", kinds: []contracts.RateKind{
			{Kind: contracts.KindCPTModifierSpecialty, Priority: 1}, {Kind: contracts.KindCPTSpecialty, Priority: 2},
			{Kind: contracts.KindCPT, Priority: 9}, {Kind: contracts.KindSpecialtyVisitKind, Priority: 4},
			{Kind: contracts.KindSpecialty, Priority: 5}, {Kind: contracts.KindVisitKind, Priority: 6},
		}, rs: []contracts.Rate{
			rate("1", "10"),
			rate("6", "60", kind(contracts.KindVisitKind), vk("OFFICE"), noCPT),
		}, want: "C1 6/60.00"},
		{name: "a range of a better kind beats an exact code", rs: []contracts.Rate{
			rate("1", "10"),
			rate("2", "20", kind(contracts.KindCPTSpecialty), ortho, rng("99200", "99299")),
		}, want: "C1 2/20.00"},
		{name: "exact beats range", rs: []contracts.Rate{
			rate("1", "10", rng("99200", "99299")),
			rate("2", "20"),
		}, want: "C1 2/20.00"},
		{name: "range beats no cpt at equal priority", kinds: []contracts.RateKind{
			{Kind: contracts.KindCPT, Priority: 3}, {Kind: contracts.KindSpecialty, Priority: 3},
		}, rs: []contracts.Rate{
			rate("1", "10", kind(contracts.KindSpecialty), ortho, noCPT),
			rate("2", "20", rng("99200", "99299")),
		}, want: "C1 2/20.00"},
		{name: "nested range beats outer", rs: []contracts.Rate{
			rate("1", "10", rng("99000", "99999")),
			rate("2", "20", rng("99200", "99215")),
			rate("3", "30", rng("99100", "99299")),
		}, want: "C1 2/20.00"},
		{name: "same start earlier end wins", rs: []contracts.Rate{
			rate("1", "10", rng("99200", "99299")),
			rate("2", "20", rng("99200", "99215")),
		}, want: "C1 2/20.00"},
		{name: "range bounds inclusive", rs: []contracts.Rate{
			rate("1", "10", rng("99213", "99213")),
		}, want: "C1 1/10.00"},
		{name: "more optional criteria wins", rs: []contracts.Rate{
			rate("1", "10"),
			rate("2", "20", mod("26")),
			rate("3", "30", mod("26"), pos("21", "22")),
		}, want: "C1 3/30.00"},
		{name: "place of service must match", rs: []contracts.Rate{
			rate("1", "10"),
			rate("3", "30", pos("11")),
		}, want: "C1 1/10.00"},
		{name: "latest effective wins", rs: []contracts.Rate{
			rate("1", "10", eff("2024-01-01")),
			rate("2", "20", eff("2024-03-01")),
			rate("3", "30", eff("2024-07-01")),
		}, want: "C1 2/20.00"},
		{name: "conflict: smallest id, flagged", rs: []contracts.Rate{
			rate("10", "10"),
			rate("9", "20"),
		}, want: "C1 9/20.00 RATE_CONFLICT"},
		{name: "tie of equal value is no conflict", rs: []contracts.Rate{
			rate("2", "20"),
			rate("1", "20"),
		}, want: "C1 1/20.00"},
		{name: "tie of equal value but different type is a conflict", rs: []contracts.Rate{
			rate("2", "20", func(r *contracts.Rate) { r.Type = contracts.Percentage }),
			rate("1", "20"),
		}, want: "C1 1/20.00 RATE_CONFLICT"},
		{name: "tie with a rate that does not match is no conflict", rs: []contracts.Rate{
			rate("1", "10", pos("21")),
			rate("2", "20", mod("59")),
		}, want: "C1 1/10.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := contracts.Validate(&contracts.Schedule{Kinds: tt.kinds, Contracts: []contracts.Contract{contract("C1")}, Rates: tt.rs})
			for _, is := range v.Issues {
				if is.Action == contracts.ActionRejected {
					t.Fatalf("test schedule has a rejected row: %v", is)
				}
			}
			it := line(orthoLine...)
			New(v, Options{}).NewPricer().PriceLine(&it)
			if got := outcome(&it.Result); got != tt.want {
				t.Errorf("got %q, want %q (%s)", got, tt.want, it.Result.Message)
			}
		})
	}
}

func TestStopLossAndAdminFee(t *testing.T) {
	tests := []struct {
		name     string
		stopLoss string
		adminPct string
		pre      []string // billed per line, priced at 100%
		want     []string // allowed per line
		fees     []string
	}{
		{name: "under stop loss", stopLoss: "500.00", pre: []string{"100.00", "200.00"}, want: []string{"100.00", "200.00"}},
		{name: "equal to stop loss", stopLoss: "300.00", pre: []string{"100.00", "200.00"}, want: []string{"100.00", "200.00"}},
		{name: "proportional exact", stopLoss: "150.00", pre: []string{"100.00", "200.00"}, want: []string{"50.00", "100.00"}},
		// 100 × 100/300 = 33.333.. three times: floors 33.33 ×3 = 99.99, one cent to line 1 (equal remainders, lowest line).
		{name: "remainder to lowest line on ties", stopLoss: "100.00", pre: []string{"100.00", "100.00", "100.00"}, want: []string{"33.34", "33.33", "33.33"}},
		// shares of 10.00 over 3.00+3.00+4.00... use values that give different remainders.
		// T = 13.33: floors 2.49, 2.50, 4.99 with remainders .81, .56, .62 → the two cents go to lines 1 and 3.
		{name: "largest remainders first", stopLoss: "10.00", pre: []string{"3.33", "3.34", "6.66"}, want: []string{"2.50", "2.50", "5.00"}},
		{name: "admin fee rounds half away", stopLoss: "", adminPct: "2.5", pre: []string{"10.10", "0.20"}, want: []string{"10.10", "0.20"}, fees: []string{"0.25", "0.01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := contract("C1")
			if tt.stopLoss != "" {
				c.StopLoss = cents(tt.stopLoss)
			}
			if tt.adminPct != "" {
				c.AdminFeePct = fx(tt.adminPct)
			}
			var rs []contracts.Rate
			items := make([]claims.Item, len(tt.pre))
			for i, p := range tt.pre {
				code := fmt.Sprintf("9%04d", i)
				rs = append(rs, rate(fmt.Sprint(i+1), "100", func(r *contracts.Rate) { r.CPTCode, r.Type = code, contracts.Percentage }))
				items[i] = line(set(claims.CPTCode, code), set(claims.LineNumber, fmt.Sprint(i+1)), set(claims.BilledAmount, p))
			}
			e := engine(t, []contracts.Contract{c}, rs, Options{})
			e.NewPricer().PriceClaim(items)
			var sum money.Cents
			for i := range items {
				r := &items[i].Result
				if !r.Priced() {
					t.Fatalf("line %d: %s %s", i+1, r.Code, r.Message)
				}
				if got := r.Allowed.String(); got != tt.want[i] {
					t.Errorf("line %d allowed %s, want %s", i+1, got, tt.want[i])
				}
				if r.AllowedBeforeStopLoss-r.StopLossReduction != r.Allowed {
					t.Errorf("line %d: reduction does not add up", i+1)
				}
				if tt.fees != nil && r.AdminFee.String() != tt.fees[i] {
					t.Errorf("line %d admin fee %s, want %s", i+1, r.AdminFee, tt.fees[i])
				}
				if r.NetPayable != r.Allowed-r.AdminFee {
					t.Errorf("line %d: net payable does not add up", i+1)
				}
				sum += r.Allowed
			}
			if c.StopLoss > 0 {
				var pre money.Cents
				for _, p := range tt.pre {
					pre += cents(p)
				}
				capped := pre > c.StopLoss
				if capped && sum != c.StopLoss {
					t.Errorf("case total %s, want exactly the stop loss %s", sum, c.StopLoss)
				}
				for i := range items {
					if flagged := items[i].Result.Flags&claims.StopLossApplied != 0; flagged != capped {
						t.Errorf("line %d: STOP_LOSS_APPLIED = %v, want %v", i+1, flagged, capped)
					}
				}
			}
		})
	}
}

func TestStopLossFlagsEveryLineAndSkipsExceptions(t *testing.T) {
	c := contract("C1", func(c *contracts.Contract) { c.StopLoss = cents("100.00") })
	rs := []contracts.Rate{
		rate("1", "80", func(r *contracts.Rate) { r.CPTCode = "10001" }),
		rate("2", "80", func(r *contracts.Rate) { r.CPTCode = "10002" }),
		rate("3", "50", func(r *contracts.Rate) { r.CPTCode = "10003"; r.RequiresAuth = true }),
	}
	items := []claims.Item{
		line(set(claims.CPTCode, "10001"), set(claims.LineNumber, "1")),
		line(set(claims.CPTCode, "10002"), set(claims.LineNumber, "2")),
		line(set(claims.CPTCode, "10003"), set(claims.LineNumber, "3")), // PRIOR_AUTH_MISSING: no part in the case
		line(set(claims.CPTCode, "10001"), set(claims.LineNumber, "2")), // DUPLICATE_LINE
	}
	engine(t, []contracts.Contract{c}, rs, Options{}).NewPricer().PriceClaim(items)
	got := []string{}
	for i := range items {
		got = append(got, outcome(&items[i].Result))
	}
	want := []string{"C1 1/50.00 STOP_LOSS_APPLIED", "C1 2/50.00 STOP_LOSS_APPLIED", "PRIOR_AUTH_MISSING", "DUPLICATE_LINE"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestCasesAreClaimAndContract(t *testing.T) {
	c1 := contract("C1", func(c *contracts.Contract) { c.StopLoss = cents("100.00") })
	c2 := contract("C2", func(c *contracts.Contract) { c.VendorID = "V2"; c.StopLoss = cents("100.00") })
	rs := []contracts.Rate{rate("1", "80"), rate("2", "80", func(r *contracts.Rate) { r.ContractID = "C2" })}
	items := []claims.Item{
		line(set(claims.LineNumber, "1")),
		line(set(claims.LineNumber, "2"), set(claims.VendorID, "V2")),
	}
	engine(t, []contracts.Contract{c1, c2}, rs, Options{}).NewPricer().PriceClaim(items)
	for i := range items {
		if got := outcome(&items[i].Result); !strings.HasSuffix(got, "/80.00") {
			t.Errorf("line %d: %s: one line per contract stays under the stop loss", i+1, got)
		}
	}
}

func TestParseDefaultRate(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Percentage:60", "Percentage:60.00", true},
		{"Amount:25.00", "Amount:25.00", true},
		{"amount:25", "Amount:25.00", true},
		{"Percentage:201", "", false},
		{"Amount:0", "", false},
		{"Amount", "", false},
		{"Fee:10", "", false},
		{"Amount:1e3", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDefaultRate(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestEngineKeepsFullRatesOnlyForExplain checks that a pricing engine does
// not hold on to the schedule's rates (its compact index is all it needs),
// and that Explain asks for the option that keeps them.
func TestEngineKeepsFullRatesOnlyForExplain(t *testing.T) {
	v := sampleSchedule(t)
	e := New(v, Options{})
	if e.Schedule().Rates != nil || e.NumRates() != len(v.Rates) || len(v.Rates) == 0 {
		t.Errorf("pricing engine keeps %d rates, counts %d; want none kept, %d counted", len(e.Schedule().Rates), e.NumRates(), len(v.Rates))
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Explain on an engine built without Options.Explain did not panic")
			}
		}()
		e.ExplainLine(claims.Line{})
	}()
	if x := New(v, Options{Explain: true}); len(x.Schedule().Rates) != len(v.Rates) {
		t.Errorf("explaining engine keeps %d rates, want %d", len(x.Schedule().Rates), len(v.Rates))
	}
}

// TestCodeKeyOrdersAsStrings checks that packed code keys compare exactly
// as the codes do, and refuse the codes they cannot represent.
func TestCodeKeyOrdersAsStrings(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const alphabet = "019AJZaz-."
	gen := func() string {
		b := make([]byte, rng.IntN(9))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		a, b := gen(), gen()
		ka, okA := codeKey(a)
		kb, okB := codeKey(b)
		if !okA || !okB {
			t.Fatalf("codeKey refused %q or %q", a, b)
		}
		if got, want := cmp.Compare(ka, kb), strings.Compare(a, b); got != want {
			t.Fatalf("%q vs %q: keys compare %d, codes %d", a, b, got, want)
		}
	}
	for _, s := range []string{"123456789", "A\x00"} {
		if _, ok := codeKey(s); ok {
			t.Errorf("codeKey(%q) accepted a code it cannot represent", s)
		}
	}
}

// TestLongCodes prices codes longer than a packed key holds, exactly and in
// ranges, next to short codes of the same contract.
func TestLongCodes(t *testing.T) {
	c := contract("C1")
	rs := []contracts.Rate{
		rate("1", "10", func(r *contracts.Rate) { r.CPTCode = "ABCDEFGHIJ" }),
		rate("2", "20", func(r *contracts.Rate) {
			r.Kind, r.CPTCode, r.RangeStart, r.RangeEnd = contracts.KindCPT, "", "ABCDEFGH00", "ABCDEFGH99"
		}),
		rate("3", "30", func(r *contracts.Rate) {
			r.Kind, r.CPTCode, r.RangeStart, r.RangeEnd = contracts.KindCPT, "", "A0000", "B0000"
		}),
		rate("4", "40", func(r *contracts.Rate) { r.CPTCode = "99214" }),
	}
	e := engine(t, []contracts.Contract{c}, rs, Options{})
	for _, tt := range []struct{ code, want string }{
		{"ABCDEFGHIJ", "C1 1/10.00"},  // exact, long
		{"ABCDEFGH50", "C1 2/20.00"},  // long range beats the wider short one
		{"ABCDEFGH", "C1 3/30.00"},    // 8 bytes: below the long range, in the short one
		{"A12345678", "C1 3/30.00"},   // 9 bytes in a range of short bounds
		{"99214", "C1 4/40.00"},       // short exact
		{"ABCDEFGHIJK", "C1 3/30.00"}, // long, no exact rate
		{"C0000", "NO_RATE"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			it := line(set(claims.CPTCode, tt.code))
			e.NewPricer().PriceLine(&it)
			if got := outcome(&it.Result); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestExactTable finds every key of a crowded table, with buckets of one
// rate and of several, and finds nothing for keys it does not hold.
func TestExactTable(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ix := &rateIndex{}
			buckets := map[uint64][]int32{}
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			for i := 0; len(buckets) < n; i++ {
				k := rng.Uint64() | 1<<63 // never 0, never an absent key below
				for j := 0; j <= i%3; j++ {
					buckets[k] = append(buckets[k], int32(10*i+j))
				}
			}
			ix.exact = newExactTable(ix, buckets)
			if len(ix.exact.slots) < 2*n {
				t.Errorf("%d slots for %d keys, want at least %d", len(ix.exact.slots), n, 2*n)
			}
			displaced := 0 // keys away from their home slot: probing is tested
			for i, sl := range ix.exact.slots {
				if sl.key != 0 && ix.exact.home(sl.key) != uint64(i) {
					displaced++
				}
			}
			if n >= 100 && displaced == 0 {
				t.Errorf("no key of %d collided; the test does not exercise probing", n)
			}
			for k, want := range buckets {
				if got := ix.exactBucket(k); !slices.Equal(got, want) {
					t.Errorf("key %#x: bucket %v, want %v", k, got, want)
				}
			}
			for _, k := range []uint64{0, 1, 0x7f, 1 << 62, 1<<63 - 1} {
				if got := ix.exactBucket(k); got != nil {
					t.Errorf("absent key %#x: bucket %v", k, got)
				}
			}
		})
	}
	var empty rateIndex
	if got := empty.exactBucket(1 << 56); got != nil {
		t.Errorf("empty table: bucket %v", got)
	}
	empty.prefetchRate(1 << 56) // must not panic
	empty.prefetchRate(0)
}

// TestPrefetchChangesNoResult prices the same generated claims with and
// without prefetch hints, including hints for lines that are then priced
// in another order or not at all: every result must be the same.
func TestPrefetchChangesNoResult(t *testing.T) {
	s := synth.Schedule(synth.ScheduleOptions{Seed: 3, Contracts: 50, Rates: 20_000, BadRateShare: 0.01})
	e := New(contracts.Validate(s), Options{})
	g := synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 3, Lines: 5000})
	var items []claims.Item
	var starts []int
	var row synth.Row
	for g.Next(&row) {
		var it claims.Item
		row.Record(&it.Line.Raw)
		it.Line.Parse()
		if n := len(items); n == 0 || it.Line.Raw[claims.ClaimID] != items[n-1].Line.Raw[claims.ClaimID] {
			starts = append(starts, n)
		}
		items = append(items, it)
	}
	starts = append(starts, len(items))
	claim := func(dst []claims.Item, k int) []claims.Item {
		k %= len(starts) - 1
		return dst[starts[k]:starts[k+1]]
	}
	plain := slices.Clone(items)
	hinted := slices.Clone(items)
	p, q := e.NewPricer(), e.NewPricer()
	for k := 0; k < len(starts)-1; k++ {
		p.PriceClaim(claim(plain, k))
		q.Prefetch(claim(hinted, k+2))
		q.Prefetch(claim(hinted, 7*k+1)) // a hint never followed
		q.PriceClaim(claim(hinted, k))
	}
	for i := range plain {
		if plain[i].Result != hinted[i].Result {
			t.Fatalf("line %d: %+v with hints, %+v without", i, hinted[i].Result, plain[i].Result)
		}
	}
}

// TestVendorIDs finds the contracts of short vendor ids (looked up as
// packed keys) and long ones (looked up as strings).
func TestVendorIDs(t *testing.T) {
	long := "VENDOR-000000123"
	c1 := contract("C1")
	c2 := contract("C2", func(c *contracts.Contract) { c.VendorID = long })
	rs := []contracts.Rate{rate("1", "10"), rate("2", "20", func(r *contracts.Rate) { r.ContractID = "C2" })}
	e := engine(t, []contracts.Contract{c1, c2}, rs, Options{})
	for _, tt := range []struct{ vendor, want string }{
		{"V1", "C1 1/10.00"},
		{long, "C2 2/20.00"},
		{"V2", "NO_CONTRACT"},
		{"VENDOR-000000124", "NO_CONTRACT"},
		{"V1\x00", "NO_CONTRACT"},
	} {
		it := line(set(claims.VendorID, tt.vendor))
		e.NewPricer().PriceLine(&it)
		if got := outcome(&it.Result); got != tt.want {
			t.Errorf("vendor %q: got %s, want %s", tt.vendor, got, tt.want)
		}
	}
}

// TestPricerKeepsNoLineStrings prices lines whose text lives in one buffer
// that is rewritten between claims, as the pipeline reuses a batch's text:
// a Pricer that cached a line's vendor id string, not a copy, would see
// the new id through it and price V2's claim with V1's contract.
func TestPricerKeepsNoLineStrings(t *testing.T) {
	c1 := contract("C1")
	c2 := contract("C2", func(c *contracts.Contract) { c.VendorID = "V2" })
	rs := []contracts.Rate{rate("1", "10"), rate("2", "20", func(r *contracts.Rate) { r.ContractID = "C2" })}
	e := engine(t, []contracts.Contract{c1, c2}, rs, Options{})
	p := e.NewPricer()
	buf := make([]byte, 2)
	for _, tt := range []struct{ vendor, want string }{
		{"V1", "C1 1/10.00"}, {"V2", "C2 2/20.00"}, {"V1", "C1 1/10.00"},
	} {
		copy(buf, tt.vendor)
		it := line(set(claims.VendorID, unsafe.String(&buf[0], len(buf))))
		p.Prefetch(unsafe.Slice(&it, 1))
		p.PriceLine(&it)
		if got := outcome(&it.Result); got != tt.want {
			t.Errorf("vendor %s: got %s, want %s", tt.vendor, got, tt.want)
		}
	}
}
