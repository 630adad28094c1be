package rates

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

const (
	sampleBundle = "../testdata/sample/contracts"
	sampleClaims = "../testdata/sample/claims.csv"
)

func sampleSchedule(t testing.TB) *contracts.Validated {
	t.Helper()
	s, err := bundle.Read(context.Background(), sampleBundle)
	if err != nil {
		t.Fatal(err)
	}
	return contracts.Validate(s)
}

// sampleClaimGroups reads the sample claims and groups them by claim_id in
// input order, as the pipeline hands them to PriceClaim.
func sampleClaimGroups(t testing.TB) [][]claims.Item {
	t.Helper()
	f, err := os.Open(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := claimcsv.NewReader(f, sampleClaims, nil)
	if err != nil {
		t.Fatal(err)
	}
	var groups [][]claims.Item
	index := map[string]int{}
	for {
		var it claims.Item
		if err := rd.Read(&it.Line); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		key := strings.TrimSpace(it.Line.Raw[claims.ClaimID])
		k, ok := index[key]
		if !ok {
			k = len(groups)
			index[key] = k
			groups = append(groups, nil)
		}
		groups[k] = append(groups[k], it)
	}
	if len(groups) < 100 {
		t.Fatalf("read only %d sample claims", len(groups))
	}
	return groups
}

// checkExplainMatches prices every claim with PriceClaim and explains every
// line, and fails on any difference between the two results.
func checkExplainMatches(t *testing.T, e *Engine, groups [][]claims.Item) (lines int, codes map[string]int) {
	t.Helper()
	codes = map[string]int{}
	p := e.NewPricer()
	for _, g := range groups {
		priced := append([]claims.Item(nil), g...)
		p.PriceClaim(priced)
		for i := range g {
			x := e.Explain(g, i)
			got, want := x.Result(), priced[i].Result
			if got != want {
				t.Errorf("claim %s line %d: Explain gives\n  %+v\nPriceClaim gives\n  %+v\n%s", g[i].Line.ClaimID, g[i].Line.LineNumber, got, want, x)
			}
			if x.Outcome.Allowed != want.Allowed || x.Outcome.NetPayable != want.NetPayable || x.Outcome.Flags != want.Flags.String() {
				t.Errorf("claim %s line %d: outcome %+v disagrees with %+v", g[i].Line.ClaimID, g[i].Line.LineNumber, x.Outcome, want)
			}
			lines++
			codes[x.Outcome.Code+"|"+x.Outcome.Flags]++
		}
		if g[0].Result != (claims.Result{}) {
			t.Fatal("Explain modified its input")
		}
	}
	return lines, codes
}

func TestExplainMatchesPriceClaimOnSample(t *testing.T) {
	sys, err := ParseDefaultRate("Percentage:50")
	if err != nil {
		t.Fatal(err)
	}
	v := sampleSchedule(t)
	groups := sampleClaimGroups(t)
	for _, tt := range []struct {
		name string
		opts Options
	}{{"no system default", Options{Explain: true}}, {"system default", Options{SystemDefault: &sys, Explain: true}}} {
		t.Run(tt.name, func(t *testing.T) {
			lines, codes := checkExplainMatches(t, New(v, tt.opts), groups)
			if lines < 400 {
				t.Errorf("explained only %d lines", lines)
			}
			// The sample exercises the interesting paths; make sure the
			// comparison above covered them.
			for _, want := range []string{"STOP_LOSS_APPLIED", "CONTRACT_DEFAULT_RATE", "PRIOR_AUTH_MISSING|", "CONTRACT_OVERLAP|", "UNITS_CAPPED", "RATE_CONFLICT", "AUTO_RENEWED_TERM", "EXPIRED_CONTRACT_HONORED"} {
				found := false
				for k := range codes {
					if strings.Contains(k, want) {
						found = true
					}
				}
				if !found {
					t.Errorf("no explained line has %s; outcomes: %v", want, codes)
				}
			}
		})
	}
}

// TestExplainMatchesPriceClaimRandom compares Explain with PriceClaim on
// random schedules and claims built to hit every branch: overlapping and
// expired contracts, ranges, modifiers, places of service, unit limits,
// lesser-of, stop loss and ties between rates.
func TestExplainMatchesPriceClaimRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	codes := []string{"10000", "10005", "10010", "10020", "20000"}
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	for round := 0; round < 300; round++ {
		var cs []contracts.Contract
		var rs []contracts.Rate
		nc := 1 + rng.IntN(3)
		for k := 0; k < nc; k++ {
			id := fmt.Sprintf("C%d", k+1)
			start := contracts.DateOf(2022+rng.IntN(3), 1+rng.IntN(12), 1)
			c := contracts.Contract{
				ID: id, Number: fmt.Sprintf("CON-2024-%05d", k+1), VendorID: "V1",
				Status:    contracts.Statuses[rng.IntN(len(contracts.Statuses))],
				Effective: start, Expiration: start.AddMonths(6 + rng.IntN(18)),
				AutoRenewal: rng.IntN(4) == 0, LesserOfBilled: rng.IntN(2) == 0,
				TPA: rng.IntN(6) == 0, TPAName: "T", TPAMedicalNecessity: rng.IntN(2) == 0, TPAPriorAuthRequired: rng.IntN(2) == 0,
				AdminFeePct: money.Fixed(rng.IntN(5_000_000)),
			}
			if c.Status == contracts.Terminated {
				c.StatusReason = "lapsed"
			}
			if c.AutoRenewal {
				c.RenewalTermMonths = 12
			}
			if rng.IntN(2) == 0 {
				c.HasDefaultRate, c.DefaultRateType, c.DefaultRateValue = true, contracts.Percentage, money.Fixed(rng.IntN(150))*money.FixedScale
			}
			if rng.IntN(2) == 0 {
				c.StopLoss = money.Cents(10_000 + rng.IntN(200_000))
			}
			if rng.IntN(8) == 0 {
				c.ExcludedServices = []contracts.CodeRange{{Lo: "10005", Hi: "10010"}}
			}
			cs = append(cs, c)
			for n := rng.IntN(8); n > 0; n-- {
				r := contracts.Rate{
					ID: fmt.Sprint(len(rs) + 1), ContractID: id, Kind: contracts.KindCPT,
					Type: contracts.Amount, Value: money.Fixed(1+rng.IntN(3)) * 50 * money.FixedScale,
					Effective: c.Effective, Active: rng.IntN(8) != 0,
					RequiresAuth: rng.IntN(6) == 0, RequiresReview: rng.IntN(6) == 0,
				}
				if rng.IntN(2) == 0 {
					r.Type, r.Value = contracts.Percentage, money.Fixed(50+rng.IntN(3)*25)*money.FixedScale
				}
				switch rng.IntN(4) {
				case 0:
					r.CPTCode = pick(codes...)
				case 1:
					r.RangeStart = pick("10000", "10005")
					r.RangeEnd = pick("10010", "10020")
					if rng.IntN(3) == 0 { // a range that outranks exact CPT rates
						r.Kind, r.Specialty = contracts.KindCPTSpecialty, pick("ORTHO", "CARDIO")
					}
				case 2:
					r.Kind, r.Specialty = contracts.KindSpecialty, pick("ORTHO", "CARDIO")
				default:
					r.Kind, r.VisitKind = contracts.KindVisitKind, pick("OFFICE", "HOME")
				}
				if r.HasCPT() && rng.IntN(3) == 0 {
					r.Modifier = pick("26", "TC")
				}
				if rng.IntN(4) == 0 {
					r.PlaceOfService = []string{"11", "22"}
				}
				if rng.IntN(4) == 0 {
					r.MaxUnits = 1 + rng.IntN(3)
				}
				if rng.IntN(6) == 0 {
					r.MinUnits = 2
				}
				if rng.IntN(4) == 0 {
					r.End = r.Effective.AddMonths(3)
				}
				rs = append(rs, r)
			}
		}
		var opts Options
		if rng.IntN(2) == 0 {
			opts.SystemDefault = &DefaultRate{Type: contracts.Amount, Value: 25 * money.FixedScale}
		}
		opts.Explain = true
		sched := &contracts.Schedule{Contracts: cs, Rates: rs}
		if rng.IntN(2) == 0 { // kinds in another order: any class may come first
			sched.Kinds = contracts.DefaultRateKinds()
			for i, p := range rng.Perm(len(sched.Kinds)) {
				sched.Kinds[i].Priority = p + 1
			}
		}
		e := New(contracts.Validate(sched), opts)
		var claim []claims.Item
		for n := 1 + rng.IntN(5); n > 0; n-- {
			var it claims.Item
			l := &it.Line
			l.Raw[claims.ClaimID] = "CL1"
			l.Raw[claims.LineNumber] = fmt.Sprint(1 + rng.IntN(5))
			l.Raw[claims.VendorID] = pick("V1", "V1", "V1", "V2")
			l.Raw[claims.CPTCode] = pick(codes...)
			l.Raw[claims.Modifiers] = pick("", "26", "TC 26", "59")
			l.Raw[claims.Specialty] = pick("", "ORTHO", "CARDIO")
			l.Raw[claims.VisitKind] = pick("", "OFFICE", "HOME")
			l.Raw[claims.PlaceOfService] = pick("11", "22", "")
			l.Raw[claims.ServiceDate] = contracts.DateOf(2022+rng.IntN(4), 1+rng.IntN(12), 1+rng.IntN(28)).String()
			l.Raw[claims.Units] = fmt.Sprint(1 + rng.IntN(4))
			l.Raw[claims.BilledAmount] = fmt.Sprintf("%d.%02d", rng.IntN(3000), rng.IntN(100))
			l.Raw[claims.PriorAuthNumber] = pick("", "PA1")
			if rng.IntN(20) == 0 {
				l.Raw[claims.BilledAmount] = "x"
			}
			l.Parse()
			claim = append(claim, it)
		}
		checkExplainMatches(t, e, [][]claims.Item{claim})
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
	}
}

// TestRejectRateAgreesWithMatches holds the traced criteria to the real
// matcher for every sample rate against every sample line.
func TestRejectRateAgreesWithMatches(t *testing.T) {
	v := sampleSchedule(t)
	n := 0
	for _, g := range sampleClaimGroups(t) {
		for i := range g {
			l := &g[i].Line
			if l.Invalid != nil {
				continue
			}
			for k := range v.Rates {
				r := &v.Rates[k]
				crit, _ := rejectRate(r, l)
				want := r.Active && matches(r, l)
				if got := crit == criterionMatched; got != want {
					t.Errorf("rate %s, line %s/%d: rejectRate says %q, matches says %v", r.ID, l.ClaimID, l.LineNumber, crit, want)
				}
				if want {
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rate matched any sample line")
	}
}

// TestDecidingCriterionAgreesWithCompareRates checks that the tie-break
// named for every ordered pair of indexed rates is the one compareRates
// decides on: rate_id exactly when compareKey ties.
func TestDecidingCriterionAgreesWithCompareRates(t *testing.T) {
	e := New(sampleSchedule(t), Options{Explain: true})
	byID := map[string]*contracts.Rate{}
	for i := range e.sched.Rates {
		byID[e.sched.Rates[i].ID] = &e.sched.Rates[i]
	}
	pairs := 0
	for k := range e.contracts {
		ix := e.contracts[k].index
		full := func(pos int) *indexedRate {
			rec := &ix.rates[pos]
			ir := newIndexedRate(byID[e.ids[rec.idOff:rec.idOff+rec.idLen]], e.sched.Priority)
			return &ir
		}
		for a := range ix.rates {
			for b := a + 1; b < len(ix.rates); b++ {
				ra, rb := full(a), full(b)
				if compareRates(*ra, *rb) >= 0 {
					t.Fatalf("index of %s is not sorted at %d", e.contracts[k].c.ID, a)
				}
				crit, detail := decidingCriterion(ra, rb)
				tie := compareKey(ra, rb) == 0
				if tie != (crit == TieRateID) {
					t.Errorf("%s over %s: criterion %s (%s), compareKey tie = %v", ra.r.ID, rb.r.ID, crit, detail, tie)
				}
				if inGroup := int32(b) < ix.rates[a].tieEnd; inGroup != tie {
					t.Errorf("%s over %s: tieEnd %d puts position %d in its tie group = %v, compareKey tie = %v", ra.r.ID, rb.r.ID, ix.rates[a].tieEnd, b, inGroup, tie)
				}
				pairs++
			}
		}
	}
	if pairs < 20 {
		t.Fatalf("only %d pairs compared", pairs)
	}
}

func sampleLine(t *testing.T, raw map[claims.Field]string) claims.Line {
	t.Helper()
	var l claims.Line
	l.Raw[claims.ClaimID], l.Raw[claims.LineNumber] = "X1", "1"
	l.Raw[claims.ServiceDate], l.Raw[claims.Units] = "2024-05-15", "1"
	for f, v := range raw {
		l.Raw[f] = v
	}
	l.Parse()
	if l.Invalid != nil {
		t.Fatal(l.Invalid)
	}
	return l
}

func TestExplainTraces(t *testing.T) {
	e := New(sampleSchedule(t), Options{Explain: true})
	type raw = map[claims.Field]string
	tests := []struct {
		name  string
		line  raw
		check func(t *testing.T, x *Explanation)
	}{
		{"nested range wins on range start", raw{claims.VendorID: "V001", claims.CPTCode: "27450", claims.BilledAmount: "1000.00"}, func(t *testing.T, x *Explanation) {
			rt := x.Rate
			if rt == nil || rt.WinnerID != "1007" || rt.Conflict {
				t.Fatalf("rate trace %+v, want winner 1007 without conflict", rt)
			}
			want := map[string]string{"1006": TieRangeStart, "1005": TieRangeStart}
			for _, tb := range rt.TieBreaks {
				if want[tb.Loser] != tb.Criterion {
					t.Errorf("tie-break %+v", tb)
				}
				delete(want, tb.Loser)
			}
			if len(want) > 0 {
				t.Errorf("missing tie-breaks against %v", want)
			}
			if x.Contract.ChosenID != "C001" || x.Outcome.Allowed.String() != "950.00" {
				t.Errorf("contract %s allowed %s", x.Contract.ChosenID, x.Outcome.Allowed)
			}
		}},
		{"modifier rejects and exact code beats specialty", raw{claims.VendorID: "V001", claims.CPTCode: "73560", claims.Specialty: "ORTHOPEDIC SURGERY", claims.BilledAmount: "200.00"}, func(t *testing.T, x *Explanation) {
			got := map[string]string{}
			for _, c := range x.Rate.Candidates {
				got[c.ID] = c.Criterion
				if c.Accepted {
					got[c.ID] = fmt.Sprint("rank ", c.Rank)
				}
			}
			want := map[string]string{"1008": "rank 1", "1009": RejectModifier, "1010": "rank 2"}
			for id, w := range want {
				if got[id] != w {
					t.Errorf("rate %s: %q, want %q (all %v)", id, got[id], w, got)
				}
			}
			if len(x.Rate.TieBreaks) != 1 || x.Rate.TieBreaks[0].Criterion != TiePriority {
				t.Errorf("tie-breaks %+v", x.Rate.TieBreaks)
			}
			if x.Rate.Others == 0 {
				t.Error("the other rates of C001 are not counted")
			}
		}},
		{"rate conflict", raw{claims.VendorID: "V009", claims.CPTCode: "99204", claims.BilledAmount: "300.00"}, func(t *testing.T, x *Explanation) {
			if !x.Rate.Conflict || x.Rate.WinnerID != "9001" || strings.Join(x.Rate.ConflictWith, ",") != "9002" {
				t.Errorf("rate trace %+v", x.Rate)
			}
			if !strings.Contains(x.Outcome.Flags, "RATE_CONFLICT") {
				t.Errorf("flags %q", x.Outcome.Flags)
			}
		}},
		{"same value tie is no conflict", raw{claims.VendorID: "V009", claims.CPTCode: "12001", claims.BilledAmount: "300.00"}, func(t *testing.T, x *Explanation) {
			if x.Rate.Conflict || len(x.Rate.TieBreaks) != 1 || x.Rate.TieBreaks[0].Criterion != TieRateID {
				t.Errorf("rate trace %+v", x.Rate)
			}
		}},
		{"overlap lists both contracts", raw{claims.VendorID: "V007", claims.CPTCode: "93306", claims.ServiceDate: "2024-11-15", claims.BilledAmount: "480.00"}, func(t *testing.T, x *Explanation) {
			if x.Outcome.Code != "CONTRACT_OVERLAP" || len(x.Contract.Considered) != 2 {
				t.Fatalf("outcome %+v, considered %+v", x.Outcome, x.Contract.Considered)
			}
			for _, c := range x.Contract.Considered {
				if c.Verdict != VerdictInForce || c.Rejected == "" {
					t.Errorf("contract %+v", c)
				}
			}
		}},
		{"units capped and pro-rated", raw{claims.VendorID: "V004", claims.CPTCode: "97124", claims.Units: "4", claims.ServiceDate: "2024-03-01", claims.BilledAmount: "100.00"}, func(t *testing.T, x *Explanation) {
			names := []string{}
			for _, s := range x.Steps {
				names = append(names, s.Name)
			}
			if got := strings.Join(names, ","); !strings.HasPrefix(got, "rate,units,pro-rate,percentage,round") {
				t.Errorf("steps %s", got)
			}
			if x.Outcome.PricedUnits != 2 || x.Outcome.AllowedBeforeStopLoss.String() != "35.00" || !strings.Contains(x.Outcome.Flags, "AUTO_RENEWED_TERM") {
				t.Errorf("outcome %+v", x.Outcome)
			}
		}},
		{"draft covering the date is not active", raw{claims.VendorID: "V008", claims.CPTCode: "80053", claims.BilledAmount: "50.00"}, func(t *testing.T, x *Explanation) {
			if x.Outcome.Code != "CONTRACT_NOT_ACTIVE" || len(x.Contract.Considered) != 2 ||
				x.Contract.Considered[0].Verdict != VerdictNotPriceable || x.Contract.Considered[1].Verdict != VerdictNotActive {
				t.Errorf("outcome %+v considered %+v", x.Outcome, x.Contract.Considered)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.ExplainLine(sampleLine(t, tt.line))
			tt.check(t, x)
			if _, err := json.Marshal(x); err != nil {
				t.Fatal(err)
			}
			if s := x.String(); !strings.Contains(s, "Result") || !strings.Contains(s, x.Line.CPT) {
				t.Errorf("String() lacks the result or the code:\n%s", s)
			}
		})
	}
}

func TestExplainStopLossCase(t *testing.T) {
	e := New(sampleSchedule(t), Options{Explain: true})
	for _, g := range sampleClaimGroups(t) {
		if g[0].Line.ClaimID != "CLM001047" {
			continue
		}
		var sum money.Cents
		for i := range g {
			x := e.Explain(g, i)
			if x.Outcome.Code != "" {
				continue
			}
			sl := x.StopLoss
			if sl == nil || !sl.Applied || sl.StopLoss.String() != "1500.00" {
				t.Fatalf("line %d: stop loss trace %+v", i+1, sl)
			}
			explained := 0
			for _, cl := range sl.Lines {
				if cl.Explained {
					explained++
					if cl.LineNumber != g[i].Line.LineNumber || cl.Allowed != x.Outcome.Allowed {
						t.Errorf("line %d: case line %+v, outcome allowed %s", i+1, cl, x.Outcome.Allowed)
					}
				}
			}
			if explained != 1 {
				t.Errorf("line %d: %d case lines marked as explained", i+1, explained)
			}
			sum += x.Outcome.Allowed
		}
		if sum.String() != "1500.00" {
			t.Errorf("case total %s, want the stop loss 1500.00", sum)
		}
		return
	}
	t.Fatal("CLM001047 is not in the sample")
}
