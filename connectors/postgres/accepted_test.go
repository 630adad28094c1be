package postgres_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/contracts"
)

// refusedList formats refused rows as "file:line id field" for comparison.
func refusedList(rows []postgres.RowError) string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s:%d %s %s", filepath.Base(r.File), r.Line, r.ID, r.Field))
	}
	return strings.Join(out, "\n")
}

// TestImportAcceptedKeepsStoredRows re-imports a stored schedule with
// ImportAccepted where one rate's new row is refused (a typo in its kind)
// and one stored contract's new row is refused (with a changed rate): the
// refused rows are listed in file order, the stored rate is neither retired nor changed,
// and no rate of the refused contract is written onto the stored one.
func TestImportAcceptedKeepsStoredRows(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	_, first := writeBundle(t, genSchedule(3, 2))
	mustImport(t, db, first)

	s := genSchedule(3, 2)
	s.Rates[0].Kind = "CPTT"                                                 // C000000-R000000: refused
	s.Contracts[1].Status = "Lapsed"                                         // C000001: refused
	s.Rates[2].Type, s.Rates[2].Value = contracts.Amount, 7_000_000          // C000001-R000000: a change that must not land
	s.Kinds = append(s.Kinds, contracts.RateKind{Kind: "NOPE", Priority: 1}) // refused; listed last, in file order
	_, read := writeBundle(t, s)
	rep, refused, err := postgres.ImportAccepted(ctx, db, read)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"contracts.csv:3 C000001 status",
		"rates.csv:2 C000000-R000000 rate_kind",
		"rates.csv:4 C000001-R000000 contract_id",
		"rates.csv:5 C000001-R000001 contract_id",
		"rate_kinds.csv:8 NOPE kind",
	}, "\n")
	if got := refusedList(refused); got != want {
		t.Errorf("refused:\n%s\nwant:\n%s", got, want)
	}
	if rep.Rates.Retired != 0 || rep.Rates.Inserted+rep.Rates.Updated != 0 {
		t.Errorf("rates %+v: want nothing retired or written", rep.Rates)
	}
	loaded, err := postgres.Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Fingerprint() != first.Fingerprint() {
		t.Error("the store changed: refused rows must leave the stored rows as they were")
	}
}

// TestImportAcceptedOverlapsOnlyStored imports a contract whose term
// overlaps two stored contracts of its vendor: it is refused (once per
// overlap) and the import finishes. (It used to retry the same import
// forever: run with -timeout to see it fail.)
func TestImportAcceptedOverlapsOnlyStored(t *testing.T) {
	db := pgtest.DB(t)
	d := contracts.DateOf
	mustImport(t, db, &contracts.Schedule{Contracts: []contracts.Contract{
		{ID: "S1", VendorID: "V1", Status: contracts.Active, Effective: d(2020, 1, 1), Expiration: d(2020, 12, 31)},
		{ID: "S2", VendorID: "V1", Status: contracts.Active, Effective: d(2021, 1, 1), Expiration: d(2021, 12, 31)},
	}})
	s := &contracts.Schedule{Contracts: []contracts.Contract{
		{ID: "A", VendorID: "V1", Status: contracts.Active, Effective: d(2020, 6, 1), Expiration: d(2021, 6, 30)},
		{ID: "B", VendorID: "V2", Status: contracts.Active, Effective: d(2020, 6, 1), Expiration: d(2021, 6, 30)},
	}}
	rep, refused, err := postgres.ImportAccepted(context.Background(), db, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := refusedList(refused), "contracts:0 A effective_date\ncontracts:0 A effective_date"; got != want {
		t.Errorf("refused:\n%s\nwant:\n%s", got, want)
	}
	if rep.Contracts.Inserted != 1 {
		t.Errorf("contracts %+v: want B inserted", rep.Contracts)
	}
}

// TestRefusedKindRowsPriceAlike: a rate_kinds row the store refuses
// ("CPT,abc", "CPT,0") leaves CPT at its default priority in a folder run
// too, and a valid row after a refused one sets the priority in both; so a
// folder and the store it was imported into (ImportAccepted) agree.
func TestRefusedKindRowsPriceAlike(t *testing.T) {
	abc := &contracts.FieldError{Field: "priority", Value: "abc", Reason: "not a whole number"}
	tests := []struct {
		name  string
		kinds []contracts.RateKind
		want  int
	}{
		{"unparsable", []contracts.RateKind{{Kind: contracts.KindCPT, LoadError: abc}}, 3},
		{"out of range", []contracts.RateKind{{Kind: contracts.KindCPT, Priority: 0}}, 3},
		{"out of range then valid", []contracts.RateKind{{Kind: contracts.KindCPT, Priority: 0}, {Kind: contracts.KindCPT, Priority: 9}}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := pgtest.DB(t)
			s := genSchedule(2, 3)
			s.Kinds = tt.kinds
			folder := contracts.Validate(s)
			if _, _, err := postgres.ImportAccepted(ctx, db, s); err != nil {
				t.Fatal(err)
			}
			loaded, err := postgres.Load(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			store := contracts.Validate(loaded)
			if f, st := folder.Priority[contracts.KindCPT], store.Priority[contracts.KindCPT]; f != tt.want || st != tt.want {
				t.Errorf("CPT priority: folder %d, store %d, want %d in both", f, st, tt.want)
			}
			if len(folder.Rates) != len(store.Rates) {
				t.Errorf("usable rates: folder %d, store %d", len(folder.Rates), len(store.Rates))
			}
		})
	}
}

// TestImportAcceptedOverlapGroups: of contracts whose terms overlap, each
// is kept in file order unless it overlaps a stored contract or one kept
// before it; a contract refused for another reason keeps nothing out.
func TestImportAcceptedOverlapGroups(t *testing.T) {
	d := contracts.DateOf
	con := func(id, number string, from, to contracts.Date) contracts.Contract {
		return contracts.Contract{ID: id, Number: number, VendorID: "V1", Status: contracts.Active, Effective: from, Expiration: to}
	}
	tests := []struct {
		name    string
		stored  []contracts.Contract
		bundle  []contracts.Contract
		refused string
	}{
		{
			name: "two separate pairs",
			bundle: []contracts.Contract{
				con("A", "", d(2020, 1, 1), d(2020, 12, 31)), con("B", "", d(2020, 6, 1), d(2021, 5, 31)),
				con("C", "", d(2023, 1, 1), d(2023, 12, 31)), con("D", "", d(2023, 6, 1), d(2024, 5, 31)),
			},
			refused: "contracts:0 B effective_date\ncontracts:0 D effective_date",
		},
		{
			name: "a chain",
			bundle: []contracts.Contract{
				con("A", "", d(2020, 1, 1), d(2020, 12, 31)), con("B", "", d(2020, 6, 1), d(2021, 5, 31)),
				con("C", "", d(2021, 3, 1), d(2021, 12, 31)),
			},
			refused: "contracts:0 B effective_date\ncontracts:0 B effective_date", // once per overlap
		},
		{
			name:   "the first overlaps a stored contract",
			stored: []contracts.Contract{con("S", "", d(2019, 1, 1), d(2020, 2, 28))},
			bundle: []contracts.Contract{
				con("A", "", d(2020, 1, 1), d(2020, 12, 31)), con("B", "", d(2020, 6, 1), d(2021, 5, 31)),
			},
			refused: "contracts:0 A effective_date\ncontracts:0 A effective_date",
		},
		{
			name:   "the first is refused for its number",
			stored: []contracts.Contract{con("S", "CON-2019-00001", d(2019, 1, 1), d(2019, 12, 31))},
			bundle: []contracts.Contract{
				con("A", "CON-2019-00001", d(2020, 1, 1), d(2020, 12, 31)), con("B", "", d(2020, 6, 1), d(2021, 5, 31)),
			},
			refused: "contracts:0 A contract_number\ncontracts:0 A effective_date",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := pgtest.DB(t)
			if tt.stored != nil {
				mustImport(t, db, &contracts.Schedule{Contracts: tt.stored})
			}
			_, refused, err := postgres.ImportAccepted(context.Background(), db, &contracts.Schedule{Contracts: tt.bundle})
			if err != nil {
				t.Fatal(err)
			}
			if got := refusedList(refused); got != tt.refused {
				t.Errorf("refused:\n%s\nwant:\n%s", got, tt.refused)
			}
		})
	}
}
