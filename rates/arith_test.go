package rates

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// oracleAllowed is docs/pricing.md steps 4-5 written plainly with shopspring/decimal,
// the reference the fixed-point implementation is checked against.
func oracleAllowed(t contracts.RateType, value, billed decimal.Decimal, units, priced int64, lesser bool) decimal.Decimal {
	pu, u := decimal.NewFromInt(priced), decimal.NewFromInt(units)
	// Division is the only inexact step; keep enough digits that rounding to
	// cents afterwards is exact for these magnitudes.
	effBilled := billed.Mul(pu).DivRound(u, 30)
	var amt decimal.Decimal
	if t == contracts.Percentage {
		amt = effBilled.Mul(value).Div(decimal.NewFromInt(100))
	} else {
		amt = value.Mul(pu)
	}
	if lesser && amt.GreaterThan(effBilled) {
		amt = effBilled
	}
	return roundHalfAway(amt)
}

func roundHalfAway(x decimal.Decimal) decimal.Decimal {
	// decimal.Round rounds half away from zero.
	return x.Round(2)
}

func TestAllowedMatchesDecimalOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		typ := contracts.Percentage
		value := money.Fixed(rng.Int64N(200*money.FixedScale + 1))
		if rng.IntN(2) == 0 {
			typ = contracts.Amount
			value = money.Fixed(1 + rng.Int64N(5000*money.FixedScale))
		}
		if rng.IntN(4) == 0 { // round values are common in real schedules
			value -= value % (money.FixedScale / 100)
			if value == 0 {
				value = money.FixedScale
			}
		}
		billed := money.Cents(rng.Int64N(10_000_000))
		units := 1 + rng.Int64N(12)
		priced := units
		if rng.IntN(3) == 0 {
			priced = 1 + rng.Int64N(units)
		}
		lesser := rng.IntN(2) == 0
		got, err := Allowed(typ, value, billed, units, priced, lesser)
		if err != nil {
			t.Fatal(err)
		}
		want := oracleAllowed(typ, decimal.New(int64(value), -6), decimal.New(int64(billed), -2), units, priced, lesser)
		if got.String() != want.StringFixed(2) {
			t.Fatalf("%s %s billed %s units %d/%d lesser %v: got %s, want %s", typ, value, billed, priced, units, lesser, got, want.StringFixed(2))
		}
	}
}

func TestAllowedLargeValuesStayExact(t *testing.T) {
	tests := []struct {
		name          string
		typ           contracts.RateType
		value         string
		billed        string
		units, priced int64
		want          string
	}{
		{"max billed at 200%", contracts.Percentage, "200", "1000000000.00", 1, 1, "2000000000.00"},
		{"max billed capped units", contracts.Percentage, "199.999999", "999999999.99", 7, 3, "857142852.85"},
		{"large amount many units", contracts.Amount, "99999.999999", "1.00", 1000000, 1000000, "99999999999.00"},
		{"half cent rounds up", contracts.Percentage, "50", "0.01", 1, 1, "0.01"},
		{"just under half rounds down", contracts.Percentage, "49.999999", "0.01", 1, 1, "0.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Allowed(tt.typ, fx(tt.value), cents(tt.billed), tt.units, tt.priced, false)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			want := oracleAllowed(tt.typ, decimal.RequireFromString(tt.value), decimal.RequireFromString(tt.billed), tt.units, tt.priced, false)
			if want.StringFixed(2) != tt.want {
				t.Errorf("oracle says %s: the table is wrong", want.StringFixed(2))
			}
		})
	}
}

func TestAdminFeeMatchesDecimalOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100000; i++ {
		allowed := money.Cents(rng.Int64N(100_000_000))
		pct := money.Fixed(rng.Int64N(100*money.FixedScale + 1))
		want := decimal.New(int64(allowed), -2).Mul(decimal.New(int64(pct), -6)).Div(decimal.NewFromInt(100)).Round(2)
		if got := AdminFee(allowed, pct); got.String() != want.StringFixed(2) {
			t.Fatalf("fee of %s at %s%%: got %s, want %s", allowed, pct, got, want.StringFixed(2))
		}
	}
}
