package amendment

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
)

const amendData = "../testdata/amend"

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadFolder(t *testing.T) {
	a, err := ReadFolder(context.Background(), filepath.Join(amendData, "retro"))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "A-2024-RETRO" || !a.Retroactive || !reflect.DeepEqual(a.Replace, []string{"R100", "R102"}) || len(a.Add) != 2 ||
		a.Add[0].ID != "R110" || a.EffectiveDate.String() != "2024-03-01" {
		t.Errorf("ReadFolder = %+v", a)
	}
	const header = "amendment_id,contract_id,reason,amendment_date,effective_date,retroactive\n"
	tests := []struct {
		name, body, column string
		row                int
	}{
		{"bad date", header + "A,C100,r,2024-13-01,2024-10-01,false\n", "amendment_date", 1},
		{"bad retroactive", header + "A,C100,r,2024-09-01,2024-10-01,yes\n", "retroactive", 1},
		{"two records", header + "A,C100,r,2024-09-01,2024-10-01,false\nB,C100,r,2024-09-01,2024-10-01,false\n", "", 0},
		{"missing column", "amendment_id,contract_id\nA,C100\n", "reason", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, File, tt.body)
			var fe *bundle.FormatError
			if _, err := ReadFolder(context.Background(), dir); !errors.As(err, &fe) || fe.Column != tt.column || fe.Row != tt.row {
				t.Errorf("err = %v, want a FormatError at row %d column %q", err, tt.row, tt.column)
			}
		})
	}
}

// TestApplyBundleLog applies two amendments to a bundle in turn: the log
// grows, round-trips through its files, and an id is applied once.
func TestApplyBundleLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	retro, err := ReadFolder(ctx, filepath.Join(amendData, "retro"))
	if err != nil {
		t.Fatal(err)
	}
	future, err := ReadFolder(ctx, filepath.Join(amendData, "future"))
	if err != nil {
		t.Fatal(err)
	}
	today := contracts.DateOf(2024, 9, 20)
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	if _, err := Apply(ctx, filepath.Join(amendData, "base"), first, []contracts.Amendment{retro}, today, postgres.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, first, second, []contracts.Amendment{future}, today, postgres.Options{}); err != nil {
		t.Fatal(err)
	}
	log, err := ReadLog(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Amendments) != 2 || log.Amendments[0].ID != retro.ID || log.Amendments[1].ID != future.ID {
		t.Fatalf("log amendments %+v", log.Amendments)
	}
	want := []RateAction{
		{AmendmentID: "A-2024-RETRO", RateID: "R100", Action: contracts.ActionEndDated, NewEnd: contracts.DateOf(2024, 2, 29)},
		{AmendmentID: "A-2024-RETRO", RateID: "R102", Action: contracts.ActionEndDated, NewEnd: contracts.DateOf(2024, 2, 29)},
		{AmendmentID: "A-2024-RETRO", RateID: "R110", Action: ActionAdded},
		{AmendmentID: "A-2024-RETRO", RateID: "R111", Action: ActionAdded},
	}
	if !reflect.DeepEqual(log.Rates[:4], want) {
		t.Errorf("log rates %+v\nwant %+v", log.Rates[:4], want)
	}
	// Writing what was read gives the same files.
	again := t.TempDir()
	if err := log.Write(ctx, again); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{LogFile, LogRatesFile} {
		a, _ := os.ReadFile(filepath.Join(second, f))
		b, _ := os.ReadFile(filepath.Join(again, f))
		if string(a) != string(b) {
			t.Errorf("%s does not round-trip:\n%s\n%s", f, a, b)
		}
	}
	_, err = Apply(ctx, second, filepath.Join(dir, "third"), []contracts.Amendment{retro}, today, postgres.Options{})
	if !errors.Is(err, ErrApplied) || !Refused(err) {
		t.Errorf("second application: %v, want ErrApplied", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "third")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused amendment wrote a bundle: %v", err)
	}
}

func TestProposed(t *testing.T) {
	ctx := context.Background()
	base, err := bundle.Read(ctx, filepath.Join(amendData, "base"))
	if err != nil {
		t.Fatal(err)
	}
	next, err := Proposed(ctx, base, filepath.Join(amendData, "retro"), contracts.DateOf(2024, 9, 20))
	if err != nil || len(next.Rates) != 6 {
		t.Errorf("amendment folder: %v", err)
	}
	if s, err := Proposed(ctx, base, filepath.Join(amendData, "base"), 0); err != nil || len(s.Rates) != 4 {
		t.Errorf("bundle folder: %v", err)
	}
	if _, err := Proposed(ctx, base, t.TempDir(), 0); !errors.Is(err, ErrNotProposal) {
		t.Errorf("empty folder: %v", err)
	}
}
