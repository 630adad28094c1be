package load_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/rates"
	"github.com/repricer/repricer/synth"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	sampleContracts = "../testdata/sample/contracts"
	sampleClaims    = "../testdata/sample/claims.csv"
)

// stream is load.Stream with the engine options and a statement timeout.
func stream(ctx context.Context, src string, timeout time.Duration, opts rates.Options) (*rates.Engine, string, error) {
	return load.Stream(ctx, src, load.Options{Rates: opts, Postgres: postgres.Options{StatementTimeout: timeout}})
}

// TestStreamedBundleMatchesWholeLoad checks that building the engine while
// reading a bundle's rates (load.Stream) gives exactly what loading the
// whole schedule, validating it and indexing it gives: the same issues,
// rejections and fingerprint, and the same price for every line.
func TestStreamedBundleMatchesWholeLoad(t *testing.T) {
	ctx := context.Background()
	sample, err := bundle.Read(ctx, sampleContracts)
	if err != nil {
		t.Fatal(err)
	}
	sampleLines := readClaims(t, sampleClaims)
	synthetic := synth.Schedule(synth.ScheduleOptions{Seed: 5, Contracts: 40, Rates: 6000, BadRateShare: 0.05})
	var synthLines []claims.Item
	g := synth.Claims(synth.ClaimOptions{Schedule: synthetic, Seed: 5, Lines: 4000, BadShare: 0.05})
	var row synth.Row
	for g.Next(&row) {
		var it claims.Item
		row.Record(&it.Line.Raw)
		it.Line.Parse()
		synthLines = append(synthLines, it)
	}
	sys, err := rates.ParseDefaultRate("Percentage:50")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		s     *contracts.Schedule
		lines []claims.Item
		opts  rates.Options
	}{
		{"sample", sample, sampleLines, rates.Options{}},
		{"sample with a system default", sample, sampleLines, rates.Options{SystemDefault: &sys}},
		{"synthetic with bad rates", synthetic, synthLines, rates.Options{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sorted := *tt.s
			sorted.Rates = slices.Clone(tt.s.Rates)
			// A repeated id, whose second row validation rejects.
			dup := sorted.Rates[len(sorted.Rates)/2]
			dup.Value++
			sorted.Rates = append(sorted.Rates, dup)
			slices.SortStableFunc(sorted.Rates, func(a, b contracts.Rate) int { return strings.Compare(a.ID, b.ID) })
			if err := bundle.Write(ctx, dir, &sorted); err != nil {
				t.Fatal(err)
			}
			streamed, _, err := stream(ctx, dir, 0, tt.opts)
			if err != nil {
				t.Fatalf("load.Stream: %v", err)
			}
			whole, err := bundle.Read(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			wv := contracts.Validate(whole)
			want := rates.New(wv, tt.opts)
			if len(wv.Issues) == 0 && tt.name != "sample with a system default" {
				t.Errorf("no schedule issues: the bundle does not exercise rejection")
			}
			if got, want := streamed.Schedule(), want.Schedule(); !reflect.DeepEqual(got, want) {
				t.Errorf("validated schedules differ:\n streamed %d issues, %d rejected, fingerprint %s\n whole    %d issues, %d rejected, fingerprint %s",
					len(got.Issues), len(got.Rejected), got.Fingerprint, len(want.Issues), len(want.Rejected), want.Fingerprint)
			}
			if streamed.NumRates() != want.NumRates() {
				t.Errorf("streamed %d rates, whole %d", streamed.NumRates(), want.NumRates())
			}
			got, exp := priceAll(streamed, tt.lines), priceAll(want, tt.lines)
			priced := 0
			for i := range got {
				if got[i] != exp[i] {
					t.Fatalf("line %d: streamed %s, whole %s", i+1, got[i], exp[i])
				}
				if !strings.HasPrefix(got[i], "code ") {
					priced++
				}
			}
			if priced == 0 {
				t.Error("no line was priced")
			}
		})
	}
}

// TestEngineFallsBackForUnsortedRates checks that a bundle whose rates
// are not in rate_id order is loaded whole, with the same result.
func TestEngineFallsBackForUnsortedRates(t *testing.T) {
	ctx := context.Background()
	if _, _, err := stream(ctx, sampleContracts, 0, rates.Options{}); !errors.Is(err, load.ErrUnsorted) {
		t.Fatalf("load.Stream of the sample (ids 1001..14004 in file order): %v, want ErrUnsorted", err)
	}
	e, desc, err := load.Engine(ctx, sampleContracts, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := bundle.Read(ctx, sampleContracts)
	if err != nil {
		t.Fatal(err)
	}
	want := rates.New(contracts.Validate(s), rates.Options{})
	if desc != "bundle:"+sampleContracts || e.Schedule().Fingerprint != want.Schedule().Fingerprint || e.NumRates() != want.NumRates() {
		t.Errorf("load.Engine: %s, fingerprint %s, %d rates; want %s, %d rates", desc, e.Schedule().Fingerprint, e.NumRates(),
			want.Schedule().Fingerprint, want.NumRates())
	}
}

func readClaims(t *testing.T, path string) []claims.Item {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := claimcsv.NewReader(f, filepath.Base(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	var items []claims.Item
	for {
		var it claims.Item
		if err := rd.Read(&it.Line); errors.Is(err, io.EOF) {
			return items
		} else if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
}

// priceAll prices lines claim by claim and describes each result.
func priceAll(e *rates.Engine, lines []claims.Item) []string {
	items := slices.Clone(lines)
	p := e.NewPricer()
	for start, i := 0, 1; i <= len(items); i++ {
		if i == len(items) || items[i].Line.Raw[claims.ClaimID] != items[start].Line.Raw[claims.ClaimID] {
			p.PriceClaim(items[start:i])
			start = i
		}
	}
	out := make([]string, len(items))
	for i := range items {
		r := &items[i].Result
		if !r.Priced() {
			out[i] = "code " + r.Code.String() + ": " + r.Message
			continue
		}
		out[i] = fmt.Sprintf("%s %s %s %s/%s/%s/%s %v %v", r.Contract.ID, r.RateID, r.RateKind, r.AllowedBeforeStopLoss,
			r.Allowed, r.AdminFee, r.NetPayable, r.Flags, r.ReviewByRate)
	}
	return out
}

// TestStreamedDatabaseMatchesWholeLoad streams the (cleaned) sample from
// Postgres, whose rates come in rate_id order, and checks it against
// loading the whole schedule.
func TestStreamedDatabaseMatchesWholeLoad(t *testing.T) {
	ctx := context.Background()
	url := sampleDatabase(t)
	streamed, _, err := stream(ctx, url, time.Minute, rates.Options{})
	if err != nil {
		t.Fatalf("load.Stream: %v (the database returns rates in rate_id order)", err)
	}
	stored, err := postgres.LoadURL(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := rates.New(contracts.Validate(stored), rates.Options{})
	if !reflect.DeepEqual(streamed.Schedule(), want.Schedule()) || streamed.NumRates() != want.NumRates() || want.NumRates() == 0 {
		t.Errorf("streamed: %d rates, fingerprint %s; whole: %d rates, fingerprint %s",
			streamed.NumRates(), streamed.Schedule().Fingerprint, want.NumRates(), want.Schedule().Fingerprint)
	}
	lines := readClaims(t, sampleClaims)
	if got, exp := priceAll(streamed, lines), priceAll(want, lines); !slices.Equal(got, exp) {
		t.Errorf("prices differ")
	}
}

// sampleDatabase imports the sample into a new database, without the rows
// the database refuses (an overlapping contract and malformed rates), and
// returns its URL.
func sampleDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	s, err := bundle.Read(ctx, sampleContracts)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.DropRefused(s)
	url := pgtest.NewDatabase(t)
	db := pgtest.Open(t, url)
	if err := postgres.Migrate(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Import(ctx, db, s); err != nil {
		t.Fatal(err)
	}
	return url
}
