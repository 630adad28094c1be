package rates_test

import (
	"sync"
	"testing"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
	"github.com/repricer/repricer/synth"
)

var (
	scaleOnce   sync.Once
	scaleEngine *rates.Engine
	scaleItems  []claims.Item
	scaleStarts []int // where each claim starts in scaleItems, and len(scaleItems)
)

// scaleSetup builds the end-to-end benchmark's schedule (2,000 contracts,
// 1M rates) and 256k claim lines from the same generator, grouped by claim.
func scaleSetup() {
	s := synth.Schedule(synth.ScheduleOptions{Seed: 1, Contracts: 2000, Rates: 1_000_000})
	scaleEngine = rates.New(contracts.Validate(s), rates.Options{})
	g := synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 1, Lines: 256 << 10})
	var row synth.Row
	for g.Next(&row) {
		var it claims.Item
		row.Record(&it.Line.Raw)
		it.Line.Parse()
		if n := len(scaleItems); n == 0 || it.Line.Raw[claims.ClaimID] != scaleItems[n-1].Line.Raw[claims.ClaimID] {
			scaleStarts = append(scaleStarts, n)
		}
		scaleItems = append(scaleItems, it)
	}
	scaleStarts = append(scaleStarts, len(scaleItems))
}

// BenchmarkPriceAtScale prices claims against a 1M-rate schedule, where
// lookups miss the cache as they do in a real run (BenchmarkPriceClaim uses
// one contract that stays cached). It reports ns per line.
func BenchmarkPriceAtScale(b *testing.B) {
	scaleOnce.Do(scaleSetup)
	nclaims := len(scaleStarts) - 1
	claim := func(i int) []claims.Item {
		i %= nclaims
		return scaleItems[scaleStarts[i]:scaleStarts[i+1]]
	}
	for _, prefetch := range []bool{false, true} {
		name := "plain"
		if prefetch {
			name = "prefetch"
		}
		b.Run(name, func(b *testing.B) {
			p := scaleEngine.NewPricer()
			lines := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if prefetch {
					p.Prefetch(claim(i + 2))
				}
				c := claim(i)
				p.PriceClaim(c)
				lines += len(c)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
		})
	}
}
