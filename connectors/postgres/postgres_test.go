package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/contracts"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// writeBundle writes s as a bundle and reads it back, so that the rows
// carry their file and row.
func writeBundle(t *testing.T, s *contracts.Schedule) (string, *contracts.Schedule) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	if err := bundle.Write(ctx, dir, s); err != nil {
		t.Fatal(err)
	}
	read, err := bundle.Read(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, read
}

// sortSchedule orders rows by id, the order Load uses.
func sortSchedule(s *contracts.Schedule) {
	slices.SortStableFunc(s.Contracts, func(a, b contracts.Contract) int { return strings.Compare(a.ID, b.ID) })
	slices.SortStableFunc(s.Rates, func(a, b contracts.Rate) int { return strings.Compare(a.ID, b.ID) })
}

// sameFiles fails t unless dirs a and b hold byte-identical bundle files.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	for _, name := range []string{bundle.ContractsFile, bundle.RatesFile, bundle.KindsFile} {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs:\n--- %s\n%s\n--- %s\n%s", name, a, head(x), b, head(y))
		}
	}
}

func head(b []byte) string {
	lines := strings.SplitN(string(b), "\n", 6)
	return strings.Join(lines[:min(5, len(lines))], "\n")
}

func mustImport(t testing.TB, db *sqlx.DB, s *contracts.Schedule) *postgres.ImportReport {
	t.Helper()
	rep, err := postgres.Import(context.Background(), db, s)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return rep
}

func count(t testing.TB, db *sqlx.DB, q string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Open(t, pgtest.NewDatabase(t))

	st, err := postgres.MigrationStatus(ctx, db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) == 0 || slices.ContainsFunc(st, func(s postgres.MigrationState) bool { return s.Applied }) {
		t.Fatalf("status of an empty database = %+v, want every migration pending", st)
	}

	applied, err := postgres.MigrateUp(ctx, db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(st) || applied[len(applied)-1].Version != postgres.SchemaVersion() {
		t.Fatalf("applied %+v, want %d migrations up to %d", applied, len(st), postgres.SchemaVersion())
	}
	for _, table := range []string{"vendors", "contract_kinds", "contracts", "rate_kinds", "rates",
		"bc_sync_contracts", "bc_sync_rates", "amendments", "runs"} {
		if n := count(t, db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = '"+table+"'"); n != 1 {
			t.Errorf("table %s missing after migrate", table)
		}
	}
	if n := count(t, db, "SELECT count(*) FROM rate_kinds"); n != len(contracts.DefaultRateKinds()) {
		t.Errorf("rate_kinds seeded with %d rows, want %d", n, len(contracts.DefaultRateKinds()))
	}

	again, err := postgres.MigrateUp(ctx, db.DB)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %+v, %v; want nothing", again, err)
	}
	st, err = postgres.MigrationStatus(ctx, db.DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if !s.Applied || s.AppliedAt.IsZero() {
			t.Errorf("migration %d not applied after migrate: %+v", s.Version, s)
		}
	}

	// Down to empty and up again: the down migrations are complete.
	if err := postgres.MigrateDownTo(ctx, db.DB, 0); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> '"+postgres.MigrationsTable+"'"); n != 0 {
		t.Errorf("%d tables left after migrating down to 0", n)
	}
	if err := postgres.Migrate(ctx, db.DB); err != nil {
		t.Fatalf("migrate after down: %v", err)
	}
}

func TestImportLoadMatchesBundle(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	orig, fromBundle := writeBundle(t, genSchedule(40, 30))
	rep := mustImport(t, db, fromBundle)
	if rep.Contracts.Inserted != 40 || rep.Rates.Inserted != 1200 || rep.NewVendors != 20 {
		t.Errorf("report = %+v, want 40 contracts, 1200 rates, 20 vendors inserted", rep)
	}

	loaded, err := postgres.Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loaded.Fingerprint(), fromBundle.Fingerprint(); got != want {
		t.Errorf("Load fingerprint %s, bundle.Read fingerprint %s", got, want)
	}
	if got, want := contracts.Validate(loaded).Fingerprint, rep.Fingerprint; got != want {
		t.Errorf("validated fingerprint %s, import report %s", got, want)
	}
	if loaded.Rates[0].Source.File != postgres.SourceRates || loaded.Rates[0].Source.Row != 1 {
		t.Errorf("rate source = %+v", loaded.Rates[0].Source)
	}

	// The bundle was written in id order, so writing the loaded schedule
	// must give the same bytes.
	fromDB := t.TempDir()
	if err := bundle.Write(ctx, fromDB, loaded); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, orig, fromDB)

	// Round trip through Export, too.
	exported, err := postgres.Export(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	exportDir := t.TempDir()
	if err := bundle.Write(ctx, exportDir, exported); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, orig, exportDir)
}

func TestLoadOrderIsByID(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	s := genSchedule(6, 5)
	slices.Reverse(s.Contracts)
	slices.Reverse(s.Rates)
	_, shuffled := writeBundle(t, s)
	mustImport(t, db, shuffled)
	loaded, err := postgres.Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Fingerprint() != shuffled.Fingerprint() {
		t.Error("fingerprints differ for a bundle in reverse order")
	}
	sortSchedule(shuffled)
	a, b := t.TempDir(), t.TempDir()
	if err := bundle.Write(ctx, a, shuffled); err != nil {
		t.Fatal(err)
	}
	if err := bundle.Write(ctx, b, loaded); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, a, b)
}

func TestReimport(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	_, s := writeBundle(t, genSchedule(4, 10))
	mustImport(t, db, s)

	t.Run("same bundle changes nothing", func(t *testing.T) {
		before := count(t, db, "SELECT count(*) FROM rates WHERE updated_at <> created_at")
		rep := mustImport(t, db, s)
		want := postgres.ImportReport{
			Kinds:     postgres.ImportCounts{Unchanged: 6},
			Contracts: postgres.ImportCounts{Unchanged: 4},
			Rates:     postgres.ImportCounts{Unchanged: 40},
		}
		if rep.Kinds != want.Kinds || rep.Contracts != want.Contracts || rep.Rates != want.Rates || rep.NewVendors != 0 {
			t.Errorf("re-import report = %+v, want %+v", rep, want)
		}
		if after := count(t, db, "SELECT count(*) FROM rates WHERE updated_at <> created_at"); after != before {
			t.Errorf("re-import touched %d rates", after-before)
		}
	})

	t.Run("changed bundle replaces contracts and retires dropped rates", func(t *testing.T) {
		changed := genSchedule(4, 10)
		changed.Contracts[0].TPAName, changed.Contracts[0].TPA = "Other TPA", true
		changed.Rates[1].Value += 1_000_000
		dropped := changed.Rates[2].ID
		changed.Rates = slices.Delete(changed.Rates, 2, 3)
		changed.Kinds[0].Priority = 9
		_, changed = writeBundle(t, changed)
		rep := mustImport(t, db, changed)
		if rep.Contracts.Updated != 1 || rep.Rates.Updated != 1 || rep.Rates.Retired != 1 || rep.Kinds.Updated != 1 {
			t.Errorf("report = %+v, want 1 contract, 1 rate and 1 kind updated, 1 rate retired", rep)
		}
		loaded, err := postgres.Load(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if loaded.Fingerprint() != changed.Fingerprint() {
			t.Error("loaded schedule differs from the re-imported bundle")
		}
		if n := count(t, db, "SELECT count(*) FROM rates WHERE retired_at IS NOT NULL AND rate_id = '"+dropped+"'"); n != 1 {
			t.Errorf("dropped rate %s is not kept as retired history", dropped)
		}
		if n := count(t, db, "SELECT count(*) FROM rates WHERE end_date IS NOT NULL AND retired_at IS NULL"); n == 0 {
			t.Error("no end-dated rates kept")
		}

		// Bringing the rate back revives it.
		rep = mustImport(t, db, s)
		if rep.Rates.Updated != 2 || rep.Rates.Inserted != 0 {
			t.Errorf("revive report = %+v, want 2 rates updated (one revived)", rep.Rates)
		}
	})
}

func TestImportBusinessRejectionsAreImported(t *testing.T) {
	db := pgtest.DB(t)
	s := genSchedule(2, 4)
	s.Contracts[0].StopLoss = 1000 // $10.00
	s.Rates[1].Type, s.Rates[1].Value = contracts.Amount, 50_000_000
	_, s = writeBundle(t, s)
	rep := mustImport(t, db, s)
	found := false
	for _, is := range rep.Issues {
		if is.ID == s.Rates[1].ID && is.Action == contracts.ActionRejected && strings.Contains(is.Message, "stop loss") {
			found = true
		}
	}
	if !found {
		t.Errorf("issues %v do not report the rate above stop loss", rep.Issues)
	}
	if n := count(t, db, "SELECT count(*) FROM rates"); n != 8 {
		t.Errorf("%d rates stored, want 8", n)
	}
}

func TestImportRefusesBadRows(t *testing.T) {
	ctx := context.Background()
	type want struct {
		file  string
		row   int
		field string
		text  string
	}
	tests := []struct {
		name   string
		stored *contracts.Schedule // imported first
		edit   func(s *contracts.Schedule)
		csv    func(t *testing.T, dir string) // edits the bundle files
		want   []want
	}{
		{
			name: "duplicate contract_number in the bundle",
			edit: func(s *contracts.Schedule) { s.Contracts[3].Number = s.Contracts[1].Number },
			want: []want{{bundle.ContractsFile, 4, "contract_number", "already used by contract C000001"}},
		},
		{
			name:   "contract_number of a stored contract",
			stored: genSchedule(1, 1),
			edit: func(s *contracts.Schedule) {
				s.Contracts = s.Contracts[1:]
				s.Rates = s.Rates[1:]
				s.Contracts[0].Number = "CON-2024-00000"
			},
			want: []want{{bundle.ContractsFile, 1, "contract_number", "stored contract C000000"}},
		},
		{
			name: "overlapping active contracts of one vendor",
			edit: func(s *contracts.Schedule) {
				s.Contracts[1].Status = contracts.Active
				s.Contracts[1].Effective = contracts.DateOf(2022, 12, 31) // the day C000000 ends
			},
			want: []want{
				{bundle.ContractsFile, 1, "effective_date", "overlaps contract C000001"},
				{bundle.ContractsFile, 2, "effective_date", "overlaps contract C000000"},
			},
		},
		{
			name:   "overlap with a stored contract",
			stored: genSchedule(1, 0),
			edit: func(s *contracts.Schedule) {
				s.Contracts[1].ID, s.Contracts[1].Number, s.Contracts[1].Status = "C900000", "CON-2024-90000", contracts.Active
				s.Contracts[1].Effective = contracts.DateOf(2021, 6, 1)
				s.Contracts = s.Contracts[1:2]
				s.Rates = nil
			},
			want: []want{{bundle.ContractsFile, 1, "effective_date", "overlaps stored contract C000000"}},
		},
		{
			name: "bad enums and unparsable fields",
			csv: func(t *testing.T, dir string) {
				replaceInFile(t, filepath.Join(dir, bundle.ContractsFile), ",Expired,", ",Lapsed,")
				replaceInFile(t, filepath.Join(dir, bundle.RatesFile), "C000000-R000001,C000000,CPT_SPECIALTY,Amount", "C000000-R000001,C000000,CPT_SPECIALTY,Fixed")
				replaceInFile(t, filepath.Join(dir, bundle.RatesFile), "C000000-R000002,C000000,CPT,", "C000000-R000002,C000000,CPT_NOPE,")
			},
			want: []want{
				{bundle.ContractsFile, 2, "status", "must be one of"},
				{bundle.RatesFile, 2, "rate_type", "must be Percentage or Amount"},
				{bundle.RatesFile, 3, "rate_kind", "unknown rate kind"},
			},
		},
		{
			name: "rate of a missing contract and out-of-range values",
			edit: func(s *contracts.Schedule) {
				s.Rates[0].ContractID = "C777777"
				s.Rates[2].Value = 250_000_000 // a 250% percentage
				s.Rates[3].End = s.Rates[3].Effective - 1
				s.Contracts[2].AdminFeePct = 101_000_000
			},
			want: []want{
				{bundle.ContractsFile, 3, "admin_fee_pct", "between 0 and 100"},
				{bundle.RatesFile, 3, "rate_value", "between 0 and 200"},
				{bundle.RatesFile, 4, "end_date", "before effective_date"},
				{bundle.RatesFile, 1, "contract_id", "neither in the bundle nor stored"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := pgtest.DB(t)
			if tt.stored != nil {
				_, st := writeBundle(t, tt.stored)
				mustImport(t, db, st)
			}
			s := genSchedule(4, 3)
			if tt.edit != nil {
				tt.edit(s)
			}
			dir := t.TempDir()
			if err := bundle.Write(ctx, dir, s); err != nil {
				t.Fatal(err)
			}
			if tt.csv != nil {
				tt.csv(t, dir)
			}
			read, err := bundle.Read(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			beforeC := count(t, db, "SELECT count(*) FROM contracts")
			beforeR := count(t, db, "SELECT count(*) FROM rates")
			beforeV := count(t, db, "SELECT count(*) FROM vendors")

			rep, err := postgres.Import(ctx, db, read)
			var ie *postgres.ImportError
			if !errors.As(err, &ie) {
				t.Fatalf("Import = %+v, %v; want *ImportError", rep, err)
			}
			if rep != nil {
				t.Errorf("a refused import returned a report")
			}
			if len(ie.Rows) != len(tt.want) {
				t.Errorf("refused rows:\n%v\nwant %d rows", err, len(tt.want))
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(ie.Rows, func(r postgres.RowError) bool {
					return filepath.Base(r.File) == w.file && r.Row == w.row && r.Field == w.field && strings.Contains(r.Reason, w.text)
				}) {
					t.Errorf("no refused row %s:%d field %s %q in\n%v", w.file, w.row, w.field, w.text, err)
				}
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tt.want[0].file)) {
				t.Errorf("message does not name the file: %v", err)
			}
			if c, r, v := count(t, db, "SELECT count(*) FROM contracts"), count(t, db, "SELECT count(*) FROM rates"), count(t, db, "SELECT count(*) FROM vendors"); c != beforeC || r != beforeR || v != beforeV {
				t.Errorf("refused import wrote rows: contracts %d->%d, rates %d->%d, vendors %d->%d", beforeC, c, beforeR, r, beforeV, v)
			}
		})
	}
}

func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAwkwardTextRoundTrips(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	s := genSchedule(2, 6)
	s.Contracts[0].TPAName = `Acme "Quoted" \ TPA, (Inc)`
	s.Contracts[0].StatusReason = "line1\nline2"
	s.Rates[0].Specialty = `A "B" \C, (D)`
	s.Rates[2].Specialty = `"`
	s.Rates[3].VisitKind = `(X)`
	s.Rates[4].Specialty = `Ä É`
	s.Rates[1].PlaceOfService = []string{`"1"`, `\2`, `(3)`}
	dir, read := writeBundle(t, s)
	mustImport(t, db, read)
	loaded, err := postgres.Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Fingerprint() != read.Fingerprint() {
		for i := range read.Rates {
			if a, b := bundle.RateRecord(&read.Rates[i]), bundle.RateRecord(&loaded.Rates[i]); !slices.Equal(a, b) {
				t.Errorf("rate %d:\nbundle %q\nloaded %q", i, a, b)
			}
		}
		t.Fatal("fingerprints differ")
	}
	out := t.TempDir()
	if err := bundle.Write(ctx, out, loaded); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dir, out)
}
