package contracts_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

func day(t *testing.T, s string) contracts.Date {
	t.Helper()
	d, err := contracts.ParseDate(s)
	if err != nil {
		t.Fatalf("date %q: %v", s, err)
	}
	return d
}

func amount(t *testing.T, s string) money.Fixed {
	t.Helper()
	f, err := money.ParseFixed(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// amendSchedule has contract C1 (2024) with three rates of 99213 and a rate
// of contract C2.
func amendSchedule(t *testing.T) *contracts.Schedule {
	t.Helper()
	rate := func(id, contract, value, eff, end string) contracts.Rate {
		r := contracts.Rate{ID: id, ContractID: contract, Kind: contracts.KindCPT, Type: contracts.Amount,
			Value: amount(t, value), CPTCode: "99213", Effective: day(t, eff), Active: true}
		if end != "" {
			r.End = day(t, end)
		}
		return r
	}
	return &contracts.Schedule{
		Contracts: []contracts.Contract{
			{ID: "C1", Number: "CON-2024-00001", VendorID: "V1", Status: contracts.Active, Effective: day(t, "2024-01-01"), Expiration: day(t, "2024-12-31")},
			{ID: "C2", Number: "CON-2024-00002", VendorID: "V2", Status: contracts.Active, Effective: day(t, "2024-01-01"), Expiration: day(t, "2024-12-31")},
		},
		Rates: []contracts.Rate{
			rate("R-OPEN", "C1", "100.00", "2024-01-01", ""),
			rate("R-LATE", "C1", "110.00", "2024-09-01", ""),
			rate("R-OLD", "C1", "90.00", "2024-01-01", "2024-02-29"),
			rate("R-C2", "C2", "50.00", "2024-01-01", ""),
		},
	}
}

func newRate(t *testing.T, id, value string) contracts.Rate {
	return contracts.Rate{ID: id, Kind: contracts.KindCPT, Type: contracts.Amount, Value: amount(t, value), CPTCode: "99213", Active: true}
}

func TestApplyRefusals(t *testing.T) {
	base := func(t *testing.T) contracts.Amendment {
		return contracts.Amendment{ID: "A1", ContractID: "C1", Reason: "renegotiated",
			AmendmentDate: day(t, "2024-06-01"), EffectiveDate: day(t, "2024-07-01"),
			Replace: []string{"R-OPEN"}, Add: []contracts.Rate{newRate(t, "R-NEW", "120.00")}}
	}
	tests := []struct {
		name  string
		edit  func(t *testing.T, a *contracts.Amendment)
		today string
		err   error
		field string
	}{
		{"no id", func(t *testing.T, a *contracts.Amendment) { a.ID = "" }, "2024-06-01", contracts.ErrAmendmentField, "amendment_id"},
		{"no reason", func(t *testing.T, a *contracts.Amendment) { a.Reason = " " }, "2024-06-01", contracts.ErrAmendmentField, "reason"},
		{"no effective date", func(t *testing.T, a *contracts.Amendment) { a.EffectiveDate = 0 }, "2024-06-01", contracts.ErrAmendmentField, "effective_date"},
		{"unknown contract", func(t *testing.T, a *contracts.Amendment) { a.ContractID = "C9" }, "2024-06-01", contracts.ErrUnknownContract, "contract_id"},
		{"unknown rate", func(t *testing.T, a *contracts.Amendment) { a.Replace = []string{"R-NOPE"} }, "2024-06-01", contracts.ErrUnknownRate, "replace"},
		{"rate of another contract", func(t *testing.T, a *contracts.Amendment) { a.Replace = []string{"R-C2"} }, "2024-06-01", contracts.ErrRateOfOther, "replace"},
		{"replace listed twice", func(t *testing.T, a *contracts.Amendment) { a.Replace = []string{"R-OPEN", "R-OPEN"} }, "2024-06-01", contracts.ErrReplaceTwice, "replace"},
		{"past effective date without retroactive", func(t *testing.T, a *contracts.Amendment) {}, "2024-07-02", contracts.ErrRetroactive, "effective_date"},
		{"effective before amendment date without retroactive", func(t *testing.T, a *contracts.Amendment) {
			a.EffectiveDate = day(t, "2024-05-01")
		}, "2024-01-01", contracts.ErrRetroactive, "effective_date"},
		{"outside contract term", func(t *testing.T, a *contracts.Amendment) {
			a.EffectiveDate, a.Retroactive = day(t, "2025-01-01"), true
		}, "2024-06-01", contracts.ErrOutsideTerm, "effective_date"},
		{"new rate reuses an id", func(t *testing.T, a *contracts.Amendment) { a.Add[0].ID = "R-LATE" }, "2024-06-01", contracts.ErrDuplicateRate, "rate_id"},
		{"new rate of another contract", func(t *testing.T, a *contracts.Amendment) { a.Add[0].ContractID = "C2" }, "2024-06-01", contracts.ErrRateOfOther, "contract_id"},
		{"new rate before effective date", func(t *testing.T, a *contracts.Amendment) { a.Add[0].Effective = day(t, "2024-06-30") }, "2024-06-01", contracts.ErrRateBeforeEffect, "effective_date"},
		{"new rate invalid", func(t *testing.T, a *contracts.Amendment) { a.Add[0].Value = 0 }, "2024-06-01", contracts.ErrInvalidRate, "rate_value"},
		{"new rate without id", func(t *testing.T, a *contracts.Amendment) { a.Add[0].ID = "" }, "2024-06-01", contracts.ErrAmendmentField, "rate_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := amendSchedule(t)
			before := s.Fingerprint()
			a := base(t)
			tt.edit(t, &a)
			got, res, err := contracts.Apply(s, a, day(t, tt.today))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Apply error = %v, want %v", err, tt.err)
			}
			var ae *contracts.AmendmentError
			if !errors.As(err, &ae) || ae.Field != tt.field || ae.AmendmentID != a.ID {
				t.Errorf("error %#v: want an *AmendmentError for field %s", err, tt.field)
			}
			if got != nil || res != nil {
				t.Errorf("refused amendment returned a schedule")
			}
			if s.Fingerprint() != before {
				t.Errorf("input schedule modified")
			}
		})
	}
}

func TestApplyEndDatesAndKeepsHistory(t *testing.T) {
	tests := []struct {
		name        string
		today       string
		retroactive bool
		effective   string
		replace     []string
		wantChanges []contracts.RateChange
		wantRates   map[string]string // rate id -> "effective..end active"
	}{
		{
			name: "future amendment", today: "2024-06-01", effective: "2024-07-01",
			replace: []string{"R-OPEN", "R-LATE", "R-OLD"},
			wantChanges: []contracts.RateChange{
				{RateID: "R-OPEN", Action: contracts.ActionEndDated, NewEnd: day(t, "2024-06-30")},
				{RateID: "R-LATE", Action: contracts.ActionDeactivated},
				{RateID: "R-OLD", Action: contracts.ActionAlreadyEnded, OldEnd: day(t, "2024-02-29"), NewEnd: day(t, "2024-02-29")},
			},
			wantRates: map[string]string{
				"R-OPEN": "2024-01-01..2024-06-30 true", "R-LATE": "2024-09-01.. false",
				"R-OLD": "2024-01-01..2024-02-29 true", "R-C2": "2024-01-01.. true", "R-NEW": "2024-07-01.. true",
			},
		},
		{
			name: "retroactive amendment", today: "2024-10-01", retroactive: true, effective: "2024-02-01",
			replace: []string{"R-OLD"},
			wantChanges: []contracts.RateChange{
				{RateID: "R-OLD", Action: contracts.ActionEndDated, OldEnd: day(t, "2024-02-29"), NewEnd: day(t, "2024-01-31")},
			},
			wantRates: map[string]string{
				"R-OPEN": "2024-01-01.. true", "R-LATE": "2024-09-01.. true",
				"R-OLD": "2024-01-01..2024-01-31 true", "R-C2": "2024-01-01.. true", "R-NEW": "2024-02-01.. true",
			},
		},
		{
			name: "effective today is not retroactive", today: "2024-07-01", effective: "2024-07-01",
			wantRates: map[string]string{
				"R-OPEN": "2024-01-01.. true", "R-LATE": "2024-09-01.. true",
				"R-OLD": "2024-01-01..2024-02-29 true", "R-C2": "2024-01-01.. true", "R-NEW": "2024-07-01.. true",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := amendSchedule(t)
			before := s.Fingerprint()
			beforeRates := append([]contracts.Rate(nil), s.Rates...)
			a := contracts.Amendment{ID: "A1", ContractID: "C1", Reason: "renegotiated",
				AmendmentDate: day(t, "2024-06-01"), EffectiveDate: day(t, tt.effective), Retroactive: tt.retroactive,
				Replace: tt.replace, Add: []contracts.Rate{newRate(t, "R-NEW", "120.00")}}
			got, res, err := contracts.Apply(s, a, day(t, tt.today))
			if err != nil {
				t.Fatal(err)
			}
			if s.Fingerprint() != before || !reflect.DeepEqual(s.Rates, beforeRates) {
				t.Fatal("input schedule modified")
			}
			if !reflect.DeepEqual(res.Replaced, tt.wantChanges) {
				t.Errorf("changes = %+v, want %+v", res.Replaced, tt.wantChanges)
			}
			if len(res.Added) != 1 || res.Added[0].ContractID != "C1" || res.Added[0].Effective != day(t, tt.effective) {
				t.Errorf("added = %+v", res.Added)
			}
			gotRates := map[string]string{}
			for _, r := range got.Rates {
				gotRates[r.ID] = r.Effective.String() + ".." + r.End.String() + " " + map[bool]string{true: "true", false: "false"}[r.Active]
			}
			if !reflect.DeepEqual(gotRates, tt.wantRates) {
				t.Errorf("rates = %v, want %v", gotRates, tt.wantRates)
			}
			v := contracts.Validate(got)
			for _, is := range v.Issues {
				t.Errorf("amended schedule has issue: %s", is)
			}
		})
	}
}

func TestSupersede(t *testing.T) {
	s := amendSchedule(t)
	base := contracts.Amendment{ID: "FS", ContractID: "C1", Reason: "fee schedule",
		AmendmentDate: day(t, "2024-06-01"), EffectiveDate: day(t, "2024-07-01")}
	t.Run("replaces in-force rates with the prefix", func(t *testing.T) {
		a, err := contracts.Supersede(s, base, "R-O", nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"R-OPEN"}; !reflect.DeepEqual(a.Replace, want) {
			t.Errorf("replace = %v, want %v (R-OLD ended before)", a.Replace, want)
		}
	})
	t.Run("refuses an older schedule", func(t *testing.T) {
		_, err := contracts.Supersede(s, base, "R-", nil)
		if !errors.Is(err, contracts.ErrScheduleOrder) {
			t.Fatalf("err = %v, want ErrScheduleOrder (R-LATE starts after)", err)
		}
	})
}
