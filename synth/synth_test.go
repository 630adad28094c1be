package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

func smallSchedule(seed int64) *contracts.Schedule {
	return Schedule(ScheduleOptions{Seed: seed, Contracts: 200, Rates: 20_000})
}

func csvBytes(t *testing.T, s *contracts.Schedule, opts ClaimOptions) []byte {
	t.Helper()
	opts.Schedule = s
	var buf bytes.Buffer
	if _, err := WriteCSV(context.Background(), &buf, Claims(opts)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDeterminism(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		output func(seed int64) []byte
	}{
		{"schedule bundle", func(seed int64) []byte {
			dir := t.TempDir()
			if err := bundle.Write(ctx, dir, smallSchedule(seed)); err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			for _, f := range []string{bundle.ContractsFile, bundle.RatesFile, bundle.KindsFile} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				h.Write(b)
			}
			return h.Sum(nil)
		}},
		{"claims csv", func(seed int64) []byte {
			return csvBytes(t, smallSchedule(seed), ClaimOptions{Seed: seed, Lines: 20_000})
		}},
		{"claims parquet", func(seed int64) []byte {
			var buf bytes.Buffer
			g := Claims(ClaimOptions{Schedule: smallSchedule(seed), Seed: seed, Lines: 20_000})
			if _, err := WriteParquet(ctx, &buf, g); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := tt.output(7), tt.output(7), tt.output(8)
			if !bytes.Equal(a, b) {
				t.Error("same seed gave different output")
			}
			if bytes.Equal(a, c) {
				t.Error("different seeds gave the same output")
			}
		})
	}
}

func TestScheduleValidates(t *testing.T) {
	tests := []struct {
		name            string
		opts            ScheduleOptions
		maxRejectedRate float64 // share of rates
	}{
		{"default shape", ScheduleOptions{Seed: 1, Contracts: 500, Rates: 100_000}, 0.001},
		{"few rates", ScheduleOptions{Seed: 2, Contracts: 100, Rates: 150}, 0.001},
		{"no rates", ScheduleOptions{Seed: 3, Contracts: 50, Rates: -1}, 0},
		{"bad share", ScheduleOptions{Seed: 4, Contracts: 100, Rates: 10_000, BadRateShare: 0.01}, 0.02},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Schedule(tt.opts)
			if len(s.Contracts) != tt.opts.Contracts {
				t.Fatalf("%d contracts, want %d", len(s.Contracts), tt.opts.Contracts)
			}
			if want := max(tt.opts.Rates, 0); len(s.Rates) != want {
				t.Fatalf("%d rates, want %d", len(s.Rates), want)
			}
			v := contracts.Validate(s)
			var rejectedRates, rejectedContracts int
			for _, is := range v.Issues {
				if is.Action != contracts.ActionRejected {
					continue
				}
				switch is.Entity {
				case "rate":
					rejectedRates++
				case "contract":
					rejectedContracts++
					t.Errorf("contract rejected: %s", is)
				}
			}
			if limit := int(tt.maxRejectedRate * float64(len(s.Rates))); rejectedRates > limit {
				t.Errorf("%d rates rejected, want at most %d", rejectedRates, limit)
			}
			if tt.opts.BadRateShare > 0 && rejectedRates == 0 {
				t.Error("BadRateShare produced no rejected rate")
			}
			statuses := map[contracts.Status]int{}
			for _, c := range s.Contracts {
				statuses[c.Status]++
			}
			if statuses[contracts.Active] < len(s.Contracts)/2 {
				t.Errorf("statuses %v: want mostly Active", statuses)
			}
		})
	}
}

// readCSV parses generated CSV with the product's reader.
func readCSV(t *testing.T, b []byte) []claims.Item {
	t.Helper()
	rd, err := claimcsv.NewReader(bytes.NewReader(b), "claims.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	var items []claims.Item
	for {
		var it claims.Item
		if err := rd.Read(&it.Line); err == io.EOF {
			return items
		} else if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
}

func TestClaimsShape(t *testing.T) {
	s := smallSchedule(11)
	tests := []struct {
		name     string
		badShare float64
		wantBad  [2]float64 // share of INVALID_ROW + DUPLICATE_LINE lines
	}{
		{"default bad share", 0, [2]float64{0.006, 0.014}},
		{"five percent", 0.05, [2]float64{0.04, 0.06}},
		{"none", -1, [2]float64{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const lines = 30_000
			b := csvBytes(t, s, ClaimOptions{Seed: 3, Lines: lines, BadShare: tt.badShare})
			items := readCSV(t, b)
			if len(items) != lines {
				t.Fatalf("%d lines, want %d", len(items), lines)
			}
			// Grouped: a claim id never reappears once another began.
			closed := map[string]bool{}
			last := ""
			for _, it := range items {
				id := it.Line.Raw[claims.ClaimID]
				if id == last {
					continue
				}
				if closed[id] {
					t.Fatalf("claim %s is not contiguous", id)
				}
				closed[last] = true
				last = id
			}
			if n := len(closed); n < lines/8 || n > lines/2 {
				t.Errorf("%d claims for %d lines: want 1-10 lines a claim, about 3 on average", n, lines)
			}
			p := rates.New(contracts.Validate(s), rates.Options{}).NewPricer()
			priceClaims(p, items)
			var bad, priced int
			for _, it := range items {
				switch {
				case it.Result.Code == claims.InvalidRow || it.Result.Code == claims.DuplicateLine:
					bad++
				case it.Result.Priced():
					priced++
				}
			}
			share := float64(bad) / lines
			if share < tt.wantBad[0] || share > tt.wantBad[1] {
				t.Errorf("bad share %.4f, want %.3f..%.3f", share, tt.wantBad[0], tt.wantBad[1])
			}
			if pr := float64(priced) / lines; pr < 0.8 {
				t.Errorf("priced share %.3f, want > 0.8", pr)
			}
		})
	}
}

// priceClaims prices items claim by claim, as the pipeline does.
func priceClaims(p *rates.Pricer, items []claims.Item) {
	start := 0
	for i := 1; i <= len(items); i++ {
		if i == len(items) || items[i].Line.Raw[claims.ClaimID] != items[start].Line.Raw[claims.ClaimID] {
			p.PriceClaim(items[start:i])
			start = i
		}
	}
}

func TestRecordMatchesCSV(t *testing.T) {
	s := smallSchedule(5)
	b := csvBytes(t, s, ClaimOptions{Seed: 9, Lines: 5000, BadShare: 0.2})
	items := readCSV(t, b)
	g := Claims(ClaimOptions{Schedule: s, Seed: 9, Lines: 5000, BadShare: 0.2})
	var row Row
	var rec [claims.NumFields]string
	for i := 0; g.Next(&row); i++ {
		row.Record(&rec)
		if rec != items[i].Line.Raw {
			t.Fatalf("line %d: Record %q, CSV %q", i, rec, items[i].Line.Raw)
		}
	}
}

func TestParquet(t *testing.T) {
	s := smallSchedule(12)
	const lines = 150_000 // three record batches... and more
	g := Claims(ClaimOptions{Schedule: s, Seed: 1, Lines: lines})
	var buf bytes.Buffer
	n, err := WriteParquet(context.Background(), &buf, g)
	if err != nil || n != lines {
		t.Fatalf("WriteParquet = %d, %v", n, err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRows() != lines {
		t.Errorf("%d rows, want %d", pf.NumRows(), lines)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]arrow.Type{
		"claim_id": arrow.STRING, "line_number": arrow.INT64, "service_date": arrow.DATE32,
		"units": arrow.INT64, "billed_amount": arrow.DECIMAL128, "cpt_code": arrow.STRING,
	}
	for name, typ := range want {
		fs, ok := sc.FieldsByName(name)
		if !ok || fs[0].Type.ID() != typ {
			t.Errorf("column %s: %v, want %v", name, fs, typ)
		}
	}
	if d, ok := sc.FieldsByName("billed_amount"); ok {
		if dt := d[0].Type.(*arrow.Decimal128Type); dt.Precision != 18 || dt.Scale != 2 {
			t.Errorf("billed_amount is %v, want decimal(18,2)", dt)
		}
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	nulls := tbl.Column(int(claims.ServiceDate)).Data().NullN()
	if nulls == 0 || nulls > lines/50 {
		t.Errorf("%d null service dates, want a few bad rows", nulls)
	}
}

// TestStreamingMemory checks that the generator holds nothing that grows
// with the number of lines: its state after many lines is the state after
// few (the per-schedule indexes are fixed at Claims).
func TestStreamingMemory(t *testing.T) {
	s := smallSchedule(2)
	g := Claims(ClaimOptions{Schedule: s, Seed: 2, Lines: 200_000})
	var row Row
	size := func() int {
		n := cap(g.byRate) + cap(g.eligible) + cap(g.mainSpec) + cap(g.rateIdx)
		for _, r := range g.rateIdx {
			n += cap(r)
		}
		return n
	}
	g.Next(&row)
	before := size()
	allocs := testing.AllocsPerRun(1, func() {
		for i := 0; i < 100_000; i++ {
			g.Next(&row)
		}
	})
	if after := size(); after != before {
		t.Errorf("generator state grew from %d to %d", before, after)
	}
	if allocs > 10 {
		t.Errorf("%v allocations for 100k lines, want none", allocs)
	}
	// Writing discards lines as it goes.
	allocs = testing.AllocsPerRun(1, func() {
		g := Claims(ClaimOptions{Schedule: s, Seed: 2, Lines: 100_000})
		if _, err := WriteCSV(context.Background(), io.Discard, g); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1000 {
		t.Errorf("%v allocations writing 100k CSV lines", allocs)
	}
}

func TestCSVHeaderAndQuoting(t *testing.T) {
	b := csvBytes(t, smallSchedule(3), ClaimOptions{Seed: 4, Lines: 2000, BadShare: 0.3})
	header, _, _ := strings.Cut(string(b), "\n")
	if header != strings.Join(claims.FieldNames[:], ",") {
		t.Errorf("header %q", header)
	}
	for _, it := range readCSV(t, b) {
		if it.Line.Invalid != nil && it.Line.Invalid.Field == "row" {
			t.Fatalf("malformed CSV record: %v", it.Line.Invalid)
		}
	}
}

func BenchmarkClaimsCSV1M(b *testing.B) {
	s := Schedule(ScheduleOptions{Seed: 1, Contracts: 2000, Rates: 100_000})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := Claims(ClaimOptions{Schedule: s, Seed: int64(i), Lines: 1_000_000})
		if _, err := WriteCSV(context.Background(), io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1e6/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkClaimsParquet1M(b *testing.B) {
	s := Schedule(ScheduleOptions{Seed: 1, Contracts: 2000, Rates: 100_000})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := Claims(ClaimOptions{Schedule: s, Seed: int64(i), Lines: 1_000_000})
		if _, err := WriteParquet(context.Background(), io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1e6/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkSchedule1M(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Schedule(ScheduleOptions{Seed: int64(i)})
	}
}
