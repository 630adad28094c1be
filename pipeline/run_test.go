package pipeline

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
	"github.com/repricer/repricer/rates"
)

func readCSV(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestSampleCoversEveryCodeAndFlag(t *testing.T) {
	seen := map[string]bool{}
	for _, dir := range []string{"sample", "sample-system-default"} {
		golden := filepath.Join("..", "testdata", "golden", dir)
		for _, rec := range readCSV(t, filepath.Join(golden, "exceptions.csv"))[1:] {
			seen[rec[4]] = true
		}
		for _, rec := range readCSV(t, filepath.Join(golden, "priced.csv"))[1:] {
			for _, f := range strings.Split(rec[len(rec)-1], ";") {
				seen[f] = true
			}
		}
	}
	for _, c := range claims.AllCodes() {
		if !seen[c.String()] {
			t.Errorf("the sample has no %s exception", c)
		}
	}
	for f := claims.Flags(1); f != 0 && f <= claims.UnitsCapped; f <<= 1 {
		if !seen[f.String()] {
			t.Errorf("the sample has no line flagged %s", f)
		}
	}
}

// TestUngroupedInputPricesLikeGrouped shuffles the sample's lines so that
// claims are scattered: the run must fall back to the buffered mode and
// price every line exactly as the grouped run did.
func TestUngroupedInputPricesLikeGrouped(t *testing.T) {
	dir := t.TempDir()
	recs := readCSV(t, sampleClaims)
	header, body := recs[0], recs[1:]
	rng := rand.New(rand.NewPCG(7, 7))
	rng.Shuffle(len(body), func(i, j int) { body[i], body[j] = body[j], body[i] })
	shuffled := filepath.Join(dir, "shuffled.csv")
	f, err := os.Create(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(header)
	w.WriteAll(body)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	e := sampleEngine(t, rates.Options{})
	grouped, err := Run(context.Background(), Config{Engine: e, Claims: []string{sampleClaims}, OutDir: filepath.Join(dir, "a"), BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	scattered, err := Run(context.Background(), Config{Engine: e, Claims: []string{shuffled}, OutDir: filepath.Join(dir, "b"), BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if grouped.Settings.Mode != "streaming" || scattered.Settings.Mode != "buffered" {
		t.Fatalf("modes %s/%s, want streaming/buffered", grouped.Settings.Mode, scattered.Settings.Mode)
	}
	if grouped.Totals != scattered.Totals || grouped.Counts != scattered.Counts {
		t.Errorf("totals differ:\n%+v\n%+v", grouped.Totals, scattered.Totals)
	}
	byKey := func(path string) map[string]string {
		m := map[string]string{}
		for _, rec := range readCSV(t, path)[1:] {
			m[rec[0]+"/"+rec[1]+"/"+rec[5]] = strings.Join(rec, ",")
		}
		return m
	}
	a, b := byKey(filepath.Join(dir, "a", "priced.csv")), byKey(filepath.Join(dir, "b", "priced.csv"))
	if len(a) != len(b) {
		t.Fatalf("%d vs %d priced lines", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("line %s:\n grouped   %s\n scattered %s", k, v, b[k])
		}
	}
}

func TestRerunIsByteIdentical(t *testing.T) {
	dir := t.TempDir()
	e := sampleEngine(t, rates.Options{})
	for _, sub := range []string{"a", "b"} {
		workers := map[string]int{"a": 1, "b": 4}[sub]
		if _, err := Run(context.Background(), Config{Engine: e, Claims: []string{sampleClaims}, OutDir: filepath.Join(dir, sub), Workers: workers, BatchSize: 5}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"priced.csv", "exceptions.csv", ScheduleIssuesFile} {
		a, _ := os.ReadFile(filepath.Join(dir, "a", name))
		b, _ := os.ReadFile(filepath.Join(dir, "b", name))
		if string(a) != string(b) || len(a) == 0 {
			t.Errorf("%s differs between reruns", name)
		}
	}
}

func TestFailedRunPublishesNothing(t *testing.T) {
	dir := t.TempDir()
	badHeader := filepath.Join(dir, "bad.csv")
	os.WriteFile(badHeader, []byte("claim_id,line_number,vendor_id\nC1,1,V1\n"), 0o644)
	tests := []struct {
		name   string
		claims []string
		usage  bool
	}{
		{"missing required column in second file", []string{sampleClaims, badHeader}, false},
		{"missing file", []string{filepath.Join(dir, "nope.csv")}, true},
		{"unknown extension", []string{filepath.Join(dir, "claims.xlsx")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(tt.name, " ", "-"))
			_, err := Run(context.Background(), Config{Engine: sampleEngine(t, rates.Options{}), Claims: tt.claims, OutDir: out})
			if err == nil {
				t.Fatal("run succeeded")
			}
			var ue *UsageError
			if errors.As(err, &ue) != tt.usage {
				t.Errorf("usage error = %v, want %v: %v", !tt.usage, tt.usage, err)
			}
			entries, _ := os.ReadDir(out)
			if len(entries) != 0 {
				t.Errorf("output folder holds %d entries after a failed run", len(entries))
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		out := filepath.Join(dir, "out-cancelled")
		if _, err := Run(ctx, Config{Engine: sampleEngine(t, rates.Options{}), Claims: []string{sampleClaims}, OutDir: out}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if entries, _ := os.ReadDir(out); len(entries) != 0 {
			t.Errorf("output folder holds %d entries after a cancelled run", len(entries))
		}
	})
}

func TestBooksCheckCatchesLoss(t *testing.T) {
	tl := newTally()
	it := claims.Item{}
	it.Line.Billed, it.Line.BilledOK = 1000, true
	it.Result.Code = claims.NoContract
	tl.add(&it)
	var s Summary
	if err := tl.fill(&s, 2, 1000); err == nil {
		t.Error("a lost line balanced the books")
	}
	if err := tl.fill(&s, 1, 1001); err == nil {
		t.Error("a lost cent balanced the books")
	}
	if err := tl.fill(&s, 1, 1000); err != nil || !s.Books.Balanced {
		t.Errorf("balanced books rejected: %v", err)
	}
}

// TestRandomSchedulesBalance is a property test: for random schedules and
// claim files (with invalid rows, duplicates and scattered claims), every
// run balances its books and no case is allowed more than its stop loss.
func TestRandomSchedulesBalance(t *testing.T) {
	iterations := 60
	if testing.Short() {
		iterations = 10
	}
	for seed := uint64(1); seed <= uint64(iterations); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			sched := randomSchedule(rng)
			v := contracts.Validate(sched)
			dir := t.TempDir()
			path := filepath.Join(dir, "claims.csv")
			writeRandomClaims(t, rng, path, sched)
			sum, err := Run(context.Background(), Config{Engine: rates.New(v, rates.Options{}), Claims: []string{path}, OutDir: dir, Workers: 1 + rng.IntN(3), BatchSize: 1 + rng.IntN(20)})
			if err != nil {
				t.Fatal(err)
			}
			if !sum.Books.Balanced {
				t.Fatal("books not balanced")
			}
			stop := map[string]money.Cents{}
			for _, c := range v.Contracts {
				stop[c.ID] = c.StopLoss
			}
			cases := map[string]money.Cents{}
			for _, rec := range readCSV(t, filepath.Join(dir, "priced.csv"))[1:] {
				allowed, err := money.ParseCents(rec[24])
				if err != nil {
					t.Fatal(err)
				}
				cases[rec[0]+"|"+rec[14]] += allowed
			}
			for k, total := range cases {
				contract := k[strings.Index(k, "|")+1:]
				if s := stop[contract]; s > 0 && total > s {
					t.Errorf("case %s allowed %s over stop loss %s", k, total, s)
				}
			}
		})
	}
}

func randomSchedule(rng *rand.Rand) *contracts.Schedule {
	s := &contracts.Schedule{}
	statuses := contracts.Statuses
	for i := 0; i < 2+rng.IntN(6); i++ {
		eff := contracts.DateOf(2023+rng.IntN(2), 1+rng.IntN(12), 1)
		c := contracts.Contract{
			ID: fmt.Sprintf("C%d", i), Number: fmt.Sprintf("CON-2024-%05d", i), VendorID: fmt.Sprintf("V%d", rng.IntN(3)),
			Status: statuses[rng.IntN(len(statuses))], StatusReason: "r", Effective: eff, Expiration: eff.AddMonths(6 + rng.IntN(18)),
			AutoRenewal: rng.IntN(3) == 0, RenewalTermMonths: 12, LesserOfBilled: rng.IntN(2) == 0,
			AdminFeePct: money.Fixed(rng.Int64N(10 * money.FixedScale)),
		}
		if rng.IntN(2) == 0 {
			c.StopLoss = money.Cents(5000 + rng.Int64N(200000))
		}
		if rng.IntN(2) == 0 {
			c.HasDefaultRate, c.DefaultRateType, c.DefaultRateValue = true, contracts.Percentage, money.Fixed(rng.Int64N(150*money.FixedScale))
		}
		s.Contracts = append(s.Contracts, c)
		for j := 0; j < rng.IntN(12); j++ {
			r := contracts.Rate{
				ID: fmt.Sprintf("%d%02d", i, j), ContractID: c.ID, Kind: contracts.KindCPT, Type: contracts.Amount,
				Value: money.Fixed(1+rng.Int64N(3000)) * money.FixedScale / 10, CPTCode: fmt.Sprintf("9921%d", rng.IntN(6)),
				Effective: eff, Active: rng.IntN(8) != 0, MaxUnits: rng.IntN(4),
			}
			if rng.IntN(3) == 0 {
				r.Type, r.Value = contracts.Percentage, money.Fixed(rng.Int64N(200*money.FixedScale))
			}
			if rng.IntN(4) == 0 {
				r.CPTCode, r.RangeStart, r.RangeEnd = "", "99210", fmt.Sprintf("9921%d", 1+rng.IntN(8))
			}
			s.Rates = append(s.Rates, r)
		}
	}
	return s
}

func writeRandomClaims(t testing.TB, rng *rand.Rand, path string, s *contracts.Schedule) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(claims.FieldNames[:])
	var rows [][]string
	for c := 0; c < 50+rng.IntN(150); c++ {
		vendor := fmt.Sprintf("V%d", rng.IntN(4))
		date := contracts.DateOf(2023+rng.IntN(3), 1+rng.IntN(12), 1+rng.IntN(28)).String()
		for l := 1; l <= 1+rng.IntN(6); l++ {
			billed := fmt.Sprintf("%d.%02d", rng.IntN(5000), rng.IntN(100))
			line := fmt.Sprint(l)
			switch rng.IntN(20) {
			case 0:
				billed = "x"
			case 1:
				line = "1" // duplicate
			case 2:
				date = "2024-13-01"
			}
			rows = append(rows, []string{fmt.Sprintf("CL%d", c), line, vendor, "M1", "N1", fmt.Sprintf("9921%d", rng.IntN(8)),
				"", "", "", "11", date, fmt.Sprint(rng.IntN(4)), billed, ""})
		}
	}
	if rng.IntN(3) == 0 {
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	}
	w.WriteAll(rows)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

var _ io.Reader = (*ctxReader)(nil)

// spread maps claim numbers to hashes in no order, so that spilled runs
// interleave when merged.
func spread(n uint64) uint64 { return n * 0x9e3779b97f4a7c15 }

func TestClaimCheck(t *testing.T) {
	var c claimCheck
	const n = 2*max(recentClaims, logChunk) + 10 // beyond the window, and several spilled runs
	for h := uint64(1); h <= n; h++ {
		if c.recentlySeen(spread(h)) {
			t.Fatalf("claim %d seen before it was added", h)
		}
		if err := c.add(spread(h)); err != nil {
			t.Fatal(err)
		}
	}
	if !c.recentlySeen(spread(n-recentClaims)) || !c.recentlySeen(spread(n)) || c.recentlySeen(spread(n+1)) {
		t.Errorf("the recent claims are not the last %d added", recentClaims)
	}
	if c.recentlySeen(spread(1)) {
		t.Errorf("claim 1 is still among the recent ones after %d more", n-1)
	}
	if err := c.add(spread(1)); err != nil { // far beyond the window: only the final check finds it
		t.Fatal(err)
	}
	spill := c.spill.Name()
	repeat, err := c.repeated()
	if err != nil || !repeat {
		t.Errorf("repeated() = %v, %v; want true", repeat, err)
	}
	if _, err := os.Stat(spill); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spill file left behind: %v", err)
	}
}

func TestClaimCheckNoRepeat(t *testing.T) {
	for _, n := range []uint64{10, logChunk, 3*logChunk + 7} {
		var c claimCheck
		for h := uint64(1); h <= n; h++ {
			if err := c.add(spread(h)); err != nil {
				t.Fatal(err)
			}
		}
		if repeat, err := c.repeated(); err != nil || repeat {
			t.Errorf("%d distinct claims: repeated() = %v, %v", n, repeat, err)
		}
	}
}

// TestUngroupedFarApart runs input whose one scattered claim reappears
// after more claims than the early check remembers: the final check must
// still catch it and the run redo the work with every line in memory.
func TestUngroupedFarApart(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and prices 525k lines")
	}
	var b strings.Builder
	b.WriteString("claim_id,line_number,vendor_id,cpt_code,service_date,billed_amount\n")
	row := func(claim, line int) {
		fmt.Fprintf(&b, "C%07d,%d,V001,27447,2024-05-15,100.00\n", claim, line)
	}
	const between = 2*recentClaims + 1 // more than the early check can hold
	row(0, 1)
	for c := 1; c <= between; c++ {
		row(c, 1)
	}
	row(0, 2)
	path := filepath.Join(t.TempDir(), "claims.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), Config{Engine: sampleEngine(t, rates.Options{}), Claims: []string{path}, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Settings.Mode != "buffered" || sum.Counts.InputLines != between+2 {
		t.Errorf("mode %q, %d lines; want buffered, %d", sum.Settings.Mode, sum.Counts.InputLines, between+2)
	}
}

func TestClaimSet(t *testing.T) {
	var s claimSet
	rng := rand.New(rand.NewPCG(1, 1))
	seen := map[uint64]bool{}
	for i := 0; i < 50000; i++ {
		h := rng.Uint64() % 100000 // repeats, and 0
		if s.has(h) != seen[h] {
			t.Fatalf("has(%d) = %v, want %v", h, s.has(h), seen[h])
		}
		s.add(h)
		seen[h] = true
	}
	if s.n != len(seen) {
		t.Errorf("%d entries, want %d", s.n, len(seen))
	}
}
