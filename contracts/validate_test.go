package contracts

import (
	"maps"
	"strings"
	"testing"

	"github.com/repricer/repricer/money"
)

func mustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func baseContract(id string) Contract {
	return Contract{
		ID: id, Number: "CON-2024-0000" + id[len(id)-1:], VendorID: "V1", Status: Active,
		Effective: mustDate("2024-01-01"), Expiration: mustDate("2024-12-31"),
		DefaultRateType: Percentage, HasDefaultRate: true, DefaultRateValue: 60 * money.FixedScale,
	}
}

func baseRate(id string) Rate {
	return Rate{ID: id, ContractID: "C1", Kind: KindCPT, Type: Amount, Value: 50 * money.FixedScale,
		CPTCode: "99213", Effective: mustDate("2024-01-01"), Active: true}
}

func TestValidateContracts(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Contract)
		field  string // "" = accepted
		reason string
	}{
		{"valid", func(*Contract) {}, "", ""},
		{"expiration before effective", func(c *Contract) { c.Expiration = mustDate("2023-12-31") }, "expiration_date", "after"},
		{"expiration equal to effective", func(c *Contract) { c.Expiration = c.Effective }, "expiration_date", "after"},
		{"terminated without reason", func(c *Contract) { c.Status = Terminated }, "status_reason", "status_reason"},
		{"terminated with reason", func(c *Contract) { c.Status, c.StatusReason = Terminated, "breach" }, "", ""},
		{"TPA without name", func(c *Contract) { c.TPA = true }, "tpa_name", "tpa_name"},
		{"auto renewal without term", func(c *Contract) { c.AutoRenewal = true }, "renewal_term_months", "renewal_term_months"},
		{"admin fee over 100", func(c *Contract) { c.AdminFeePct = 101 * money.FixedScale }, "admin_fee_pct", "between 0 and 100"},
		{"negative stop loss", func(c *Contract) { c.StopLoss = -1 }, "stop_loss_amount", "positive"},
		{"no rate and no default", func(c *Contract) { c.HasDefaultRate = false; c.ID = "C2" }, "default_rate_value", "neither"},
		{"default percentage over 200", func(c *Contract) { c.DefaultRateValue = 201 * money.FixedScale }, "default_rate_value", "between 0 and 200"},
		{"load error", func(c *Contract) {
			c.LoadError = &FieldError{Field: "auto_renewal", Value: "yes", Reason: "must be true or false"}
		}, "auto_renewal", "must be true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseContract("C1")
			tt.mod(&c)
			v := Validate(&Schedule{Contracts: []Contract{c}, Rates: []Rate{baseRate("1")}})
			reason, rejected := v.Rejected[c.ID]
			if tt.field == "" {
				if rejected {
					t.Fatalf("rejected: %s", reason)
				}
				return
			}
			if !rejected {
				t.Fatalf("accepted; want rejection on %s", tt.field)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", reason, tt.reason)
			}
			found := false
			for _, is := range v.Issues {
				found = found || (is.ID == c.ID && is.Field == tt.field && is.Action == ActionRejected)
			}
			if !found {
				t.Errorf("no rejected issue on field %s: %v", tt.field, v.Issues)
			}
		})
	}
}

func TestValidateOverlap(t *testing.T) {
	tests := []struct {
		name     string
		status   Status
		eff, exp string
		vendor   string
		rejected bool
	}{
		{"overlapping active", Active, "2024-12-31", "2025-12-31", "V1", true},
		{"adjacent", Active, "2025-01-01", "2025-12-31", "V1", false},
		{"other vendor", Active, "2024-06-01", "2025-12-31", "V2", false},
		{"draft overlapping is fine", Draft, "2024-06-01", "2025-12-31", "V1", false},
		{"pending overlapping is fine", Pending, "2024-06-01", "2025-12-31", "V1", false},
		{"expired overlapping", Expired, "2023-06-01", "2024-01-01", "V1", true},
		{"terminated overlapping", Terminated, "2024-03-01", "2024-04-01", "V1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := baseContract("C1")
			b := baseContract("C2")
			b.Status, b.StatusReason, b.VendorID = tt.status, "reason", tt.vendor
			b.Effective, b.Expiration = mustDate(tt.eff), mustDate(tt.exp)
			v := Validate(&Schedule{Contracts: []Contract{a, b}})
			_, ra := v.Rejected["C1"]
			_, rb := v.Rejected["C2"]
			if ra != tt.rejected || rb != tt.rejected {
				t.Errorf("rejected C1=%v C2=%v, want both %v (%v)", ra, rb, tt.rejected, v.Rejected)
			}
		})
	}
}

func TestValidateRates(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Rate)
		field string
	}{
		{"valid", func(*Rate) {}, ""},
		{"percentage 200 ok", func(r *Rate) { r.Type, r.Value = Percentage, 200*money.FixedScale }, ""},
		{"percentage 0 ok", func(r *Rate) { r.Type, r.Value = Percentage, 0 }, ""},
		{"percentage over 200", func(r *Rate) { r.Type, r.Value = Percentage, 200*money.FixedScale+1 }, "rate_value"},
		{"negative percentage", func(r *Rate) { r.Type, r.Value = Percentage, -1 }, "rate_value"},
		{"zero amount", func(r *Rate) { r.Value = 0 }, "rate_value"},
		{"amount above stop loss", func(r *Rate) { r.Value = 1000*money.FixedScale + 1 }, "rate_value"},
		{"amount equal to stop loss", func(r *Rate) { r.Value = 1000 * money.FixedScale }, ""},
		{"end before effective", func(r *Rate) { r.End = mustDate("2023-12-31") }, "end_date"},
		{"effective before contract", func(r *Rate) { r.Effective = mustDate("2023-12-31") }, "effective_date"},
		{"effective after contract", func(r *Rate) { r.Effective = mustDate("2025-01-01") }, "effective_date"},
		{"range end before start", func(r *Rate) { r.CPTCode, r.RangeStart, r.RangeEnd = "", "99215", "99211" }, "cpt_range_end"},
		{"half a range", func(r *Rate) { r.CPTCode, r.RangeStart = "", "99211" }, "cpt_range_end"},
		{"code and range", func(r *Rate) { r.RangeStart, r.RangeEnd = "99211", "99215" }, "cpt_code"},
		{"CPT kind without cpt", func(r *Rate) { r.CPTCode = "" }, "cpt_code"},
		{"modifier kind without modifier", func(r *Rate) { r.Kind, r.Specialty = KindCPTModifierSpecialty, "ORTHO" }, "modifier"},
		{"specialty kind without specialty", func(r *Rate) { r.Kind = KindCPTSpecialty }, "specialty"},
		{"visit kind without visit kind", func(r *Rate) { r.Kind, r.CPTCode = KindVisitKind, "" }, "visit_kind"},
		{"specialty visit kind needs both", func(r *Rate) { r.Kind, r.Specialty = KindSpecialtyVisitKind, "ORTHO" }, "visit_kind"},
		{"unknown kind", func(r *Rate) { r.Kind = "HCPCS" }, "rate_kind"},
		{"unknown contract", func(r *Rate) { r.ContractID = "C9" }, "contract_id"},
		{"max below min", func(r *Rate) { r.MinUnits, r.MaxUnits = 3, 2 }, "max_units"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseContract("C1")
			c.StopLoss = 100000
			r := baseRate("1")
			tt.mod(&r)
			v := Validate(&Schedule{Contracts: []Contract{c}, Rates: []Rate{r}})
			var got string
			for _, is := range v.Issues {
				if is.Entity == "rate" && is.Action == ActionRejected {
					got = is.Field
				}
			}
			if got != tt.field {
				t.Fatalf("rejected field %q, want %q (%v)", got, tt.field, v.Issues)
			}
			if accepted := len(v.Rates) == 1; accepted != (tt.field == "") {
				t.Errorf("accepted = %v", accepted)
			}
		})
	}
}

func TestValidateDuplicatesAndKinds(t *testing.T) {
	c := baseContract("C1")
	dupNumber := baseContract("C2")
	dupNumber.Number = c.Number
	dupNumber.VendorID = "V2"
	v := Validate(&Schedule{
		Kinds:     []RateKind{{Kind: KindCPT, Priority: 3}, {Kind: KindCPT, Priority: 4}, {Kind: "HCPCS", Priority: 2}, {Kind: KindSpecialty, Priority: 100}},
		Contracts: []Contract{c, c, dupNumber},
		Rates:     []Rate{baseRate("1"), baseRate("1")},
	})
	if len(v.Contracts) != 2 {
		t.Errorf("duplicate contract_id kept: %d contracts", len(v.Contracts))
	}
	if _, ok := v.Rejected["C2"]; !ok {
		t.Error("duplicate contract_number accepted")
	}
	if len(v.Rates) != 1 {
		t.Errorf("duplicate rate_id kept: %d rates", len(v.Rates))
	}
	// A rejected row (SPECIALTY at 100) leaves its kind at the default.
	if v.Priority[KindCPT] != 3 || v.Priority["HCPCS"] != 0 || v.Priority[KindSpecialty] != 5 {
		t.Errorf("priorities %v", v.Priority)
	}
	if n := len(v.Issues); n != 6 {
		t.Errorf("%d issues, want 6: %v", n, v.Issues)
	}
}

func TestTransitions(t *testing.T) {
	allowed := map[[2]Status]bool{
		{Draft, Pending}: true, {Pending, Active}: true, {Active, Active}: true, {Active, Expired}: true,
		{Active, Terminated}: true, {Expired, Active}: true, {Expired, Pending}: true, {Terminated, Pending}: true,
	}
	for _, from := range Statuses {
		for _, to := range Statuses {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				c := Contract{ID: "C1", Status: from}
				err := c.Transition(to, "reason")
				if want := allowed[[2]Status{from, to}]; (err == nil) != want {
					t.Fatalf("Transition err = %v, want allowed=%v", err, want)
				}
				if err != nil && c.Status != from {
					t.Error("a refused transition changed the status")
				}
			})
		}
	}
	c := Contract{ID: "C1", Status: Active}
	if err := c.Transition(Terminated, ""); err == nil {
		t.Error("terminating without a reason was allowed")
	}
}

func TestFingerprintIgnoresOrderAndSource(t *testing.T) {
	a := &Schedule{Contracts: []Contract{baseContract("C1"), baseContract("C2")}, Rates: []Rate{baseRate("1"), baseRate("2")}}
	b := &Schedule{Contracts: []Contract{baseContract("C2"), baseContract("C1")}, Rates: []Rate{baseRate("2"), baseRate("1")}}
	b.Contracts[0].Source = Source{File: "x.csv", Row: 9}
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("fingerprint depends on order or source")
	}
	b.Rates[0].Value++
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("fingerprint ignores a rate value")
	}
}

func TestRatesOfRejectedContractsAreDropped(t *testing.T) {
	a, b := baseContract("C1"), baseContract("C2")
	b.Effective = mustDate("2024-06-01")
	b.Expiration = mustDate("2025-06-01")
	r1, r2 := baseRate("1"), baseRate("2")
	r2.ContractID = "C2"
	r2.Effective = b.Effective
	v := Validate(&Schedule{Contracts: []Contract{a, b}, Rates: []Rate{r1, r2}})
	if len(v.Rejected) != 2 || len(v.Rates) != 0 {
		t.Errorf("%d rejected contracts, %d rates kept; want 2 and 0", len(v.Rejected), len(v.Rates))
	}
}

func TestValidateSharesRatesOnlyWhenAllAreAccepted(t *testing.T) {
	c := baseContract("C1")
	all := []Rate{baseRate("1"), baseRate("2")}
	v := Validate(&Schedule{Contracts: []Contract{c}, Rates: all})
	if len(v.Rates) != 2 || &v.Rates[0] != &all[0] {
		t.Errorf("all rates accepted: got %d rates, shared=%v; want the schedule's own slice", len(v.Rates), len(v.Rates) > 0 && &v.Rates[0] == &all[0])
	}
	if cap(v.Rates) != len(v.Rates) {
		t.Errorf("shared slice has spare capacity %d: an append would write into the schedule", cap(v.Rates))
	}

	bad := baseRate("2")
	bad.Value = -1
	some := []Rate{baseRate("1"), bad, baseRate("3")}
	v = Validate(&Schedule{Contracts: []Contract{c}, Rates: some})
	if len(v.Rates) != 2 || v.Rates[0].ID != "1" || v.Rates[1].ID != "3" || &v.Rates[0] == &some[0] {
		t.Errorf("one rate rejected: got %+v, want a copy of rates 1 and 3", v.Rates)
	}
	if some[1].ID != "2" || some[2].ID != "3" {
		t.Errorf("validation changed the schedule's rates: %+v", some)
	}
}

// A kind list names the priorities it overrides; the kinds it does not
// name keep their standard priorities (a folder's partial rate_kinds.csv
// and the database's full table mean the same schedule).
func TestPartialKindListOverrides(t *testing.T) {
	tests := []struct {
		name   string
		listed []RateKind
		want   map[string]int
	}{
		{"none", nil, map[string]int{KindCPTModifierSpecialty: 1, KindCPTSpecialty: 2, KindCPT: 3, KindSpecialtyVisitKind: 4, KindSpecialty: 5, KindVisitKind: 6}},
		{"one", []RateKind{{Kind: KindCPT, Priority: 9}}, map[string]int{KindCPTModifierSpecialty: 1, KindCPTSpecialty: 2, KindCPT: 9, KindSpecialtyVisitKind: 4, KindSpecialty: 5, KindVisitKind: 6}},
		// A rejected row overrides nothing: a store refuses it and keeps
		// the kind at its priority, and a folder must price the same.
		{"rejected override", []RateKind{{Kind: KindCPT, Priority: 0}}, map[string]int{KindCPTModifierSpecialty: 1, KindCPTSpecialty: 2, KindCPT: 3, KindSpecialtyVisitKind: 4, KindSpecialty: 5, KindVisitKind: 6}},
		{"unparsable override", []RateKind{{Kind: KindCPT, LoadError: &FieldError{Field: "priority", Value: "abc", Reason: "not a whole number"}}}, map[string]int{KindCPTModifierSpecialty: 1, KindCPTSpecialty: 2, KindCPT: 3, KindSpecialtyVisitKind: 4, KindSpecialty: 5, KindVisitKind: 6}},
		{"rejected then valid", []RateKind{{Kind: KindCPT, Priority: 0}, {Kind: KindCPT, Priority: 9}}, map[string]int{KindCPTModifierSpecialty: 1, KindCPTSpecialty: 2, KindCPT: 9, KindSpecialtyVisitKind: 4, KindSpecialty: 5, KindVisitKind: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Validate(&Schedule{Kinds: tt.listed})
			if !maps.Equal(v.Priority, tt.want) {
				t.Errorf("priorities %v, want %v", v.Priority, tt.want)
			}
		})
	}
	partial := &Schedule{Kinds: []RateKind{{Kind: KindCPT, Priority: 3}}}
	full := &Schedule{Kinds: DefaultRateKinds()}
	if Validate(partial).Fingerprint != Validate(full).Fingerprint {
		t.Error("a partial kind list and the full list with the same priorities fingerprint differently")
	}
}
