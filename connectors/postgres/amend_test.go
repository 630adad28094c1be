package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

func amendDate(t *testing.T, s string) contracts.Date {
	t.Helper()
	d, err := contracts.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAmendPostgres(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	s, err := bundle.Read(ctx, "../../testdata/amend/base")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Import(ctx, db, s); err != nil {
		t.Fatal(err)
	}
	val, err := money.ParseFixed("85.00")
	if err != nil {
		t.Fatal(err)
	}
	a := contracts.Amendment{ID: "A-2024-RETRO", ContractID: "C100", Reason: "renegotiated",
		AmendmentDate: amendDate(t, "2024-09-01"), EffectiveDate: amendDate(t, "2024-03-01"),
		Replace: []string{"R100"},
		Add:     []contracts.Rate{{ID: "R110", Kind: contracts.KindCPT, Type: contracts.Amount, Value: val, CPTCode: "99213", Active: true}}}
	today := amendDate(t, "2024-09-20")

	tests := []struct {
		name string
		edit func(*contracts.Amendment)
		err  error
	}{
		{"not retroactive", func(a *contracts.Amendment) { a.Retroactive = false }, contracts.ErrRetroactive},
		{"unknown contract", func(a *contracts.Amendment) { a.ContractID, a.Retroactive = "C999", true }, contracts.ErrUnknownContract},
		{"unknown rate", func(a *contracts.Amendment) { a.Replace, a.Retroactive = []string{"R999"}, true }, contracts.ErrUnknownRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := a
			tt.edit(&b)
			_, err := postgres.ApplyAmendment(ctx, db, b, today)
			var ae *postgres.AmendError
			if !errors.Is(err, tt.err) || !errors.As(err, &ae) {
				t.Fatalf("err = %v, want %v in an *AmendError", err, tt.err)
			}
			log, err := postgres.Amendments(ctx, db, "")
			if err != nil || len(log) != 0 {
				t.Fatalf("refused amendment logged: %v %v", log, err)
			}
		})
	}

	a.Retroactive = true
	res, err := postgres.ApplyAmendment(ctx, db, a, today)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Replaced) != 1 || res.Replaced[0].Action != contracts.ActionEndDated || len(res.Added) != 1 {
		t.Errorf("applied = %+v", res)
	}
	if _, err := postgres.ApplyAmendment(ctx, db, a, today); !errors.Is(err, postgres.ErrAmendmentExists) {
		t.Errorf("second apply: %v, want ErrAmendmentExists", err)
	}

	got, err := postgres.Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	rates := map[string]contracts.Rate{}
	for _, r := range got.Rates {
		rates[r.ID] = r
	}
	if r := rates["R100"]; r.End != amendDate(t, "2024-02-29") || r.Effective != amendDate(t, "2024-01-01") {
		t.Errorf("R100 = %s..%s, want 2024-01-01..2024-02-29 (kept, end-dated)", r.Effective, r.End)
	}
	if r := rates["R110"]; r.Effective != amendDate(t, "2024-03-01") || r.ContractID != "C100" || r.Value != val {
		t.Errorf("R110 = %+v", r)
	}
	if len(got.Rates) != 5 {
		t.Errorf("%d rates, want 5", len(got.Rates))
	}
	// The database holds what contracts.Apply computes on the bundle.
	want, _, err := contracts.Apply(s, a, today)
	if err != nil {
		t.Fatal(err)
	}
	gf := (&contracts.Schedule{Rates: got.Rates}).Fingerprint()
	if wf := (&contracts.Schedule{Rates: want.Rates}).Fingerprint(); gf != wf {
		t.Errorf("rates fingerprint after amendment %s, want %s (as applied to the bundle)", gf, wf)
	}

	log, err := postgres.Amendments(ctx, db, "C100")
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].ID != a.ID || !log[0].Retroactive || log[0].EffectiveDate != a.EffectiveDate ||
		log[0].Rates["end_dated"] != 1 || log[0].Rates["added"] != 1 || log[0].AppliedAt.IsZero() {
		t.Errorf("amendment log = %+v", log)
	}
}
