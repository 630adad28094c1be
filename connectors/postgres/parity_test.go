package postgres_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
	"github.com/repricer/repricer/synth"
)

// go test ./connectors/postgres -run Parity -parity-bundles 500 for a long
// session; CI runs 50.
var parityBundles = flag.Int("parity-bundles", 50, "random bundles TestStoreFolderParity imports and prices")

// TestStoreFolderParity generates random contract bundles — every status,
// overlapping terms, every rate kind, ranges, modifiers, place-of-service
// lists, amounts with up to six decimals, partial and full rate_kinds.csv,
// and rows of every kind the store refuses — imports each into a fresh
// database with ImportAccepted, and prices one claim file three ways: from
// the store, from a folder of the rows the store accepted (in the bundle's
// order), and from the store's export. Priced and exception files must be
// byte-identical; schedule issues must agree with the export's but for
// where a row lives (a file, or postgres:...).
func TestStoreFolderParity(t *testing.T) {
	if testing.Short() {
		t.Skip("imports into PostgreSQL")
	}
	ctx := context.Background()
	seed := uint64(os.Getpid())
	t.Logf("bundles from seed %d", seed)
	for n := range *parityBundles {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(n)))
			dir := t.TempDir()
			s := randomBundle(rng)
			src := filepath.Join(dir, "bundle")
			if err := bundle.Write(ctx, src, s); err != nil {
				t.Fatal(err)
			}
			appendGarbage(t, rng, src, s)
			read, err := bundle.Read(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			db := pgtest.DB(t)
			if _, _, err := postgres.ImportAccepted(ctx, db, read); err != nil {
				t.Fatalf("import: %v", err)
			}
			stored, err := postgres.Load(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			exported, err := postgres.Export(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			exportDir := filepath.Join(dir, "exported")
			if err := bundle.Write(ctx, exportDir, exported); err != nil {
				t.Fatal(err)
			}
			fromExport, err := bundle.Read(ctx, exportDir)
			if err != nil {
				t.Fatal(err)
			}
			accepted := acceptedRows(read, stored)

			claims := filepath.Join(dir, "claims.csv")
			f, err := os.Create(claims)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := synth.WriteCSV(ctx, f, synth.Claims(synth.ClaimOptions{Schedule: s, Seed: int64(n), Lines: 1500})); err != nil {
				t.Fatal(err)
			}
			f.Close()
			price := func(name string, sched *contracts.Schedule) string {
				out := filepath.Join(dir, name)
				e := rates.New(contracts.Validate(sched), rates.Options{})
				if _, err := pipeline.Run(ctx, pipeline.Config{Engine: e, Claims: []string{claims}, OutDir: out, Workers: 2}); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return out
			}
			store, folder, export := price("store", stored), price("folder", accepted), price("export", fromExport)
			for _, name := range []string{"priced.csv", "exceptions.csv"} {
				want := mustRead(t, filepath.Join(store, name))
				for _, other := range []string{folder, export} {
					if got := mustRead(t, filepath.Join(other, name)); !bytes.Equal(want, got) {
						t.Fatalf("%s of %s differs from the store's", name, filepath.Base(other))
					}
				}
			}
			a := maskColumn(t, mustRead(t, filepath.Join(store, pipeline.ScheduleIssuesFile)), 2)
			b := maskColumn(t, mustRead(t, filepath.Join(export, pipeline.ScheduleIssuesFile)), 2)
			if !bytes.Equal(a, b) {
				t.Fatalf("schedule issues of the store and of its export differ:\n%s\n---\n%s", a, b)
			}
		})
	}
}

// randomBundle is a synthetic schedule made awkward: partial kind lists,
// six-decimal amounts, place-of-service lists, overlapping contracts, and
// rows the store refuses or a run rejects.
func randomBundle(rng *rand.Rand) *contracts.Schedule {
	s := synth.Schedule(synth.ScheduleOptions{Seed: rng.Int64(), Contracts: 6 + rng.IntN(20), Rates: 50 + rng.IntN(300), BadRateShare: 0.05})
	switch rng.IntN(3) {
	case 0:
		s.Kinds = nil // no rate_kinds.csv
	case 1: // a partial list
		all := contracts.DefaultRateKinds()
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		s.Kinds = all[:1+rng.IntN(3)]
		for i := range s.Kinds {
			s.Kinds[i].Priority = 1 + rng.IntN(20)
		}
	default:
		s.Kinds = contracts.DefaultRateKinds()
	}
	for i := range s.Rates {
		r := &s.Rates[i]
		switch rng.IntN(12) {
		case 0:
			if r.Type == contracts.Amount { // a per-unit price with up to six decimals
				r.Value = money.Fixed(1 + rng.Int64N(50_000_000))
			}
		case 1:
			r.PlaceOfService = []string{"11", "22"}[:1+rng.IntN(2)]
		case 2: // refused by the store: a percentage above 200
			r.Type, r.Value = contracts.Percentage, money.Fixed(250*money.FixedScale)
		case 3: // refused: ends before it starts
			if r.Effective > 0 {
				r.End = r.Effective - 1
			}
		case 4: // refused: a rate of no contract
			r.ContractID = "NOPE-" + r.ContractID
		}
	}
	if len(s.Contracts) > 2 && rng.IntN(2) == 0 { // a second in-force term over the first one
		c := s.Contracts[0]
		c.ID, c.Number, c.Status = c.ID+"-TWIN", "", contracts.Active
		s.Contracts = append(s.Contracts, c)
	}
	if len(s.Contracts) > 3 { // rejected at run time, imported as it is
		s.Contracts[1].Status, s.Contracts[1].StatusReason = contracts.Terminated, ""
	}
	return s
}

// appendGarbage adds rows no reader can parse and rows the store refuses.
func appendGarbage(t *testing.T, rng *rand.Rand, dir string, s *contracts.Schedule) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, bundle.RatesFile), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cid := s.Contracts[rng.IntN(len(s.Contracts))].ID
	// Columns: rate_id, contract_id, rate_kind, rate_type, rate_value, ...
	// as bundle.Write lays them out; the rest stay empty.
	hdr := csvHeader(t, filepath.Join(dir, bundle.RatesFile))
	row := func(vals map[string]string) {
		rec := make([]string, len(hdr))
		for i, h := range hdr {
			rec[i] = vals[h]
		}
		w := csv.NewWriter(f)
		_ = w.Write(rec)
		w.Flush()
	}
	row(map[string]string{"rate_id": "G1", "contract_id": cid, "rate_kind": "CPT", "rate_type": "Amount", "rate_value": "abc", "cpt_code": "99213", "effective_date": "2024-01-01", "active": "true"})
	row(map[string]string{"rate_id": "G2", "contract_id": cid, "rate_kind": "CPT", "rate_type": "Amount", "rate_value": "10", "cpt_code": "99213", "effective_date": "2024-13-40", "active": "true"})
	row(map[string]string{"rate_id": "G3", "contract_id": cid, "rate_kind": "NOT_A_KIND", "rate_type": "Amount", "rate_value": "10", "cpt_code": "99213", "effective_date": "2024-01-01", "active": "true"})
}

func csvHeader(t *testing.T, path string) []string {
	t.Helper()
	b := mustRead(t, path)
	rec, err := csv.NewReader(bytes.NewReader(b)).Read()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// acceptedRows is read less the contracts and rates the store did not
// keep, in read's order (the folder a user would fix by hand).
func acceptedRows(read, stored *contracts.Schedule) *contracts.Schedule {
	keptC, keptR := map[string]bool{}, map[string]bool{}
	for _, c := range stored.Contracts {
		keptC[c.ID] = true
	}
	for _, r := range stored.Rates {
		keptR[r.ID] = true
	}
	out := *read
	out.Contracts = slices.DeleteFunc(slices.Clone(read.Contracts), func(c contracts.Contract) bool { return !keptC[c.ID] })
	out.Rates = slices.DeleteFunc(slices.Clone(read.Rates), func(r contracts.Rate) bool { return !keptR[r.ID] })
	keptK := map[string]bool{}
	for _, k := range stored.Kinds {
		keptK[k.Kind] = true
	}
	// The bundle's own kind list (perhaps partial), less what the store
	// refused: the store holds all six kinds.
	out.Kinds = slices.DeleteFunc(slices.Clone(read.Kinds), func(k contracts.RateKind) bool { return !keptK[k.Kind] || k.LoadError != nil })
	return &out
}

func maskColumn(t *testing.T, data []byte, i int) []byte {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for _, r := range recs {
		if i < len(r) {
			r[i] = ""
		}
		_ = w.Write(r)
	}
	w.Flush()
	return b.Bytes()
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The store holds per-unit amounts with up to six decimals, as the folder
// does (a drug code paid 0.107 a unit), and gives them back exactly.
func TestStoreHoldsSixDecimalAmounts(t *testing.T) {
	ctx := context.Background()
	s := synth.Schedule(synth.ScheduleOptions{Seed: 3, Contracts: 4, Rates: 40})
	want := map[string]money.Fixed{}
	for i := range s.Rates {
		if r := &s.Rates[i]; r.Type == contracts.Amount && len(want) < 3 {
			r.Value = money.Fixed(107_000 + int64(len(want))) // 0.107000, 0.107001, 0.107002
			want[r.ID] = r.Value
		}
	}
	if len(want) == 0 {
		t.Fatal("the schedule has no amount rate")
	}
	db := pgtest.DB(t)
	if _, err := postgres.Import(ctx, db, s); err != nil {
		t.Fatalf("import of amounts with six decimals: %v", err)
	}
	stored, err := postgres.Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range stored.Rates {
		if v, ok := want[r.ID]; ok && r.Value != v {
			t.Errorf("rate %s: stored %s, imported %s", r.ID, r.Value, v)
		}
	}
}

// contracts export, then import of what it wrote into another store, then
// export again, gives byte-identical bundles.
func TestExportImportExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 9))
	s := randomBundle(rng)
	first := pgtest.DB(t)
	if _, _, err := postgres.ImportAccepted(ctx, first, s); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dirs := []string{filepath.Join(dir, "one"), filepath.Join(dir, "two")}
	e1, err := postgres.Export(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Write(ctx, dirs[0], e1); err != nil {
		t.Fatal(err)
	}
	again, err := bundle.Read(ctx, dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	second := pgtest.DB(t)
	if _, err := postgres.Import(ctx, second, again); err != nil {
		t.Fatalf("import of an export: %v", err)
	}
	e2, err := postgres.Export(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Write(ctx, dirs[1], e2); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bundle.ContractsFile, bundle.RatesFile, bundle.KindsFile} {
		a, b := mustRead(t, filepath.Join(dirs[0], name)), mustRead(t, filepath.Join(dirs[1], name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs after export, import and export", name)
		}
	}
}

// Every refused row is listed, however many there are.
func TestImportErrorListsEveryRow(t *testing.T) {
	var rows []postgres.RowError
	for i := range 226 {
		rows = append(rows, postgres.RowError{File: "rates.csv", Row: i + 1, Line: i + 2, Entity: "rate", ID: fmt.Sprint(i), Field: "rate_value", Reason: "bad"})
	}
	msg := (&postgres.ImportError{Rows: rows}).Error()
	if n := strings.Count(msg, "\n  rates.csv:"); n != 226 || strings.Contains(msg, "more") {
		t.Fatalf("the message lists %d of 226 rows", n)
	}
	if !strings.Contains(msg, "rates.csv:227: rate 225") {
		t.Error("rows are not named by their line (the header is line 1)")
	}
}
