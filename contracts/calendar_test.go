package contracts

import (
	"strings"
	"testing"
)

func TestCalendar(t *testing.T) {
	ct := func(id, vendor string, st Status, eff, exp string, mods ...func(*Contract)) Contract {
		c := Contract{ID: id, Number: "CON-2024-0000" + id[len(id)-1:], VendorID: vendor, Status: st,
			Effective: mustDate(eff), Expiration: mustDate(exp), HasDefaultRate: true, DefaultRateType: Percentage, DefaultRateValue: 50}
		if st == Terminated {
			c.StatusReason = "lapsed"
		}
		for _, m := range mods {
			m(&c)
		}
		return c
	}
	auto := func(months int) func(*Contract) {
		return func(c *Contract) { c.AutoRenewal, c.RenewalTermMonths = true, months }
	}
	notice := func(days int) func(*Contract) { return func(c *Contract) { c.RenewalNoticeDays = days } }
	tests := []struct {
		name   string
		cs     []Contract
		today  string
		within int
		want   []string // date event contract
	}{
		{name: "expiration and default notice", cs: []Contract{ct("C1", "V1", Active, "2024-01-01", "2025-03-31")},
			today: "2025-01-01", within: 90,
			want: []string{"2025-03-01 renewal_notice_deadline C1", "2025-03-31 expiration C1"}},
		{name: "window bounds are inclusive", cs: []Contract{ct("C1", "V1", Active, "2024-01-01", "2025-03-31")},
			today: "2025-03-01", within: 30,
			want: []string{"2025-03-01 renewal_notice_deadline C1", "2025-03-31 expiration C1"}},
		{name: "outside the window", cs: []Contract{ct("C1", "V1", Active, "2024-01-01", "2025-03-31")},
			today: "2025-04-01", within: 365, want: nil},
		{name: "notice days set, deadline before today", cs: []Contract{ct("C1", "V1", Active, "2024-01-01", "2025-03-31", notice(120))},
			today: "2025-01-01", within: 90, want: []string{"2025-03-31 expiration C1"}},
		{name: "auto-renewal rolls terms to the current one", cs: []Contract{ct("C1", "V1", Active, "2021-07-01", "2023-06-30", auto(12), notice(90))},
			today: "2025-06-01", within: 60, want: []string{"2025-06-30 auto_renewal C1"}},
		{name: "auto-renewal notice in the window", cs: []Contract{ct("C1", "V1", Expired, "2021-07-01", "2023-06-30", auto(12), notice(90))},
			today: "2025-03-01", within: 150, want: []string{"2025-04-01 renewal_notice_deadline C1", "2025-06-30 auto_renewal C1"}},
		{name: "auto-renewal at its original expiration", cs: []Contract{ct("C1", "V1", Active, "2024-01-01", "2024-12-31", auto(6))},
			today: "2024-12-31", within: 0, want: []string{"2024-12-31 auto_renewal C1"}},
		{name: "a successor stops the roll", cs: []Contract{
			ct("C1", "V1", Active, "2021-07-01", "2023-06-30", auto(12)),
			ct("C2", "V1", Active, "2025-07-01", "2026-06-30")},
			today: "2025-06-01", within: 60, want: nil},
		{name: "over contracts have no events", cs: []Contract{
			ct("C1", "V1", Terminated, "2024-01-01", "2025-03-31"),
			ct("C2", "V2", Expired, "2024-01-01", "2025-03-31")},
			today: "2025-01-01", within: 120, want: nil},
		{name: "sorted by date then contract", cs: []Contract{
			ct("C2", "V2", Pending, "2024-01-01", "2025-02-28"),
			ct("C1", "V1", Active, "2024-01-01", "2025-02-28"),
			ct("C3", "V3", Draft, "2024-01-01", "2025-01-15")},
			today: "2025-01-01", within: 60,
			want: []string{"2025-01-15 expiration C3", "2025-01-29 renewal_notice_deadline C1", "2025-01-29 renewal_notice_deadline C2",
				"2025-02-28 expiration C1", "2025-02-28 expiration C2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Validate(&Schedule{Contracts: tt.cs})
			today := mustDate(tt.today)
			var got []string
			for _, e := range Calendar(v, today, tt.within) {
				got = append(got, e.Day+" "+e.Event+" "+e.ContractID)
				if e.DaysLeft != int(e.Date-today) || e.Detail == "" {
					t.Errorf("entry %+v", e)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestCalendarNotesRejectedContracts(t *testing.T) {
	c := Contract{ID: "C1", Number: "CON-2024-00001", VendorID: "V1", Status: Active, TPA: true,
		Effective: mustDate("2024-01-01"), Expiration: mustDate("2024-12-31"), HasDefaultRate: true, DefaultRateType: Percentage, DefaultRateValue: 50}
	v := Validate(&Schedule{Contracts: []Contract{c}})
	if v.Rejected["C1"] == "" {
		t.Fatal("a TPA contract without tpa_name should be rejected")
	}
	got := Calendar(v, mustDate("2024-12-01"), 31)
	if len(got) != 2 || !strings.Contains(got[1].Detail, "rejected by validation") {
		t.Errorf("entries %+v", got)
	}
}
