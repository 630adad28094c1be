package rates

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// bigContract returns one contract with n rates: exact codes with
// specialty and modifier variants, plus some ranges, as a large fee
// schedule looks.
func bigContract(n int) ([]contracts.Contract, []contracts.Rate, []string) {
	c := contract("C1", func(c *contracts.Contract) { c.HasDefaultRate, c.DefaultRateValue = true, fx("60") })
	rng := rand.New(rand.NewPCG(5, 5))
	var rs []contracts.Rate
	var codes []string
	for i := 0; len(rs) < n; i++ {
		code := fmt.Sprintf("%05d", 10000+i*3)
		codes = append(codes, code)
		rs = append(rs, rate(fmt.Sprint(len(rs)+1), "50", func(r *contracts.Rate) { r.CPTCode = code; r.Value = money.Fixed(1+rng.Int64N(900)) * money.FixedScale }))
		if i%3 == 0 {
			rs = append(rs, rate(fmt.Sprint(len(rs)+1), "60", func(r *contracts.Rate) { r.CPTCode, r.Modifier = code, "26" }))
		}
		if i%5 == 0 {
			rs = append(rs, rate(fmt.Sprint(len(rs)+1), "70", func(r *contracts.Rate) { r.CPTCode, r.Kind, r.Specialty = code, contracts.KindCPTSpecialty, "ORTHO" }))
		}
		if i%100 == 0 {
			rs = append(rs, rate(fmt.Sprint(len(rs)+1), "80", func(r *contracts.Rate) {
				r.CPTCode, r.RangeStart, r.RangeEnd, r.Type = "", code, fmt.Sprintf("%05d", 10000+i*3+600), contracts.Percentage
			}))
		}
	}
	return []contracts.Contract{c}, rs, codes
}

func benchLines(codes []string, n int) []claims.Item {
	rng := rand.New(rand.NewPCG(6, 6))
	items := make([]claims.Item, n)
	for i := range items {
		mods := []func(*claims.Line){set(claims.CPTCode, codes[rng.IntN(len(codes))]), set(claims.BilledAmount, fmt.Sprintf("%d.%02d", rng.IntN(2000), rng.IntN(100)))}
		if i%4 == 0 {
			mods = append(mods, set(claims.Modifiers, "26"))
		}
		if i%7 == 0 {
			mods = append(mods, set(claims.Specialty, "ORTHO"))
		}
		items[i] = line(mods...)
	}
	return items
}

// BenchmarkLookup compares the rate index with a linear scan over the
// contract's rates (the baseline) for one contract of 100k rates.
func BenchmarkLookup(b *testing.B) {
	cs, rs, codes := bigContract(100_000)
	e := engine(b, cs, rs, Options{})
	ix := e.contracts[0].index
	items := benchLines(codes, 4096)
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l := &items[i%len(items)].Line
			ix.lookup(l)
		}
	})
	irs := make([]indexedRate, len(rs))
	for k := range rs {
		irs[k] = newIndexedRate(&rs[k], e.sched.Priority)
	}
	b.Run("linear-scan-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l := &items[i%len(items)].Line
			var best *indexedRate
			for k := range irs {
				if irs[k].r.Active && matches(irs[k].r, l) && (best == nil || compareRates(irs[k], *best) < 0) {
					best = &irs[k]
				}
			}
		}
	})
}

// BenchmarkPriceClaim prices one-line claims end to end (contract, rate,
// amounts, stop loss, admin fee).
func BenchmarkPriceClaim(b *testing.B) {
	cs, rs, codes := bigContract(100_000)
	cs[0].StopLoss, cs[0].AdminFeePct, cs[0].LesserOfBilled = cents("5000.00"), fx("2.5"), true
	e := engine(b, cs, rs, Options{})
	items := benchLines(codes, 4096)
	p := e.NewPricer()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(items)
		p.PriceClaim(items[k : k+1])
	}
}

// BenchmarkAllowed compares the fixed-point amount arithmetic with the same
// computation in shopspring/decimal (the baseline).
func BenchmarkAllowed(b *testing.B) {
	type in struct {
		t             contracts.RateType
		v             money.Fixed
		billed        money.Cents
		units, priced int64
		lesser        bool
		dv, dbilled   decimal.Decimal
	}
	rng := rand.New(rand.NewPCG(8, 8))
	ins := make([]in, 1024)
	for i := range ins {
		x := in{t: contracts.Percentage, v: money.Fixed(rng.Int64N(150 * money.FixedScale)), billed: money.Cents(rng.Int64N(1_000_000)), units: 1, priced: 1, lesser: i%2 == 0}
		if i%2 == 0 {
			x.t, x.v = contracts.Amount, money.Fixed(1+rng.Int64N(500*money.FixedScale))
		}
		x.dv, x.dbilled = decimal.New(int64(x.v), -6), decimal.New(int64(x.billed), -2)
		ins[i] = x
	}
	b.Run("fixed-point", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			x := &ins[i%len(ins)]
			a, _ := Allowed(x.t, x.v, x.billed, x.units, x.priced, x.lesser)
			AdminFee(a, 2_500_000)
		}
	})
	b.Run("shopspring-baseline", func(b *testing.B) {
		b.ReportAllocs()
		fee := decimal.New(2_500_000, -6)
		for i := 0; i < b.N; i++ {
			x := &ins[i%len(ins)]
			a := oracleAllowed(x.t, x.dv, x.dbilled, x.units, x.priced, x.lesser)
			a.Mul(fee).Div(decimal.NewFromInt(100)).Round(2)
		}
	})
}
