package businesscentral

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/repricer/repricer/connectors/businesscentral/bcemu"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// env is an emulator behind an httptest server and a client pointed at it.
type env struct {
	emu *bcemu.Emulator
	srv *httptest.Server
	c   *Client
}

// newEnv starts an emulator (wrapped by wrap, if set) and a client.
func newEnv(t testing.TB, opt bcemu.Options, wrap func(http.Handler) http.Handler, mod func(*Config)) *env {
	t.Helper()
	if opt.Seed == 0 {
		opt.Seed = 42
	}
	e := bcemu.New(opt)
	var h http.Handler = e
	if wrap != nil {
		h = wrap(e)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	o := e.Options()
	cfg := Config{
		BaseURL: srv.URL, Tenant: o.Tenant, Environment: o.Environment, Publisher: o.Publisher, Group: o.Group,
		CompanyID: o.CompanyID, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		TokenURL:   srv.URL + e.TokenPath(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		MaxRetries: 10, Seed: 7, HTTPClient: srv.Client(),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: e, srv: srv, c: c}
}

// genData returns nc contracts with nr rates in total (nc even).
func genData(nc, nr int) ([]contracts.Contract, []contracts.Rate) {
	cs := make([]contracts.Contract, nc)
	rs := make([]contracts.Rate, 0, nr)
	base := nr / nc
	statuses := []contracts.Status{contracts.Active, contracts.Pending, contracts.Expired, contracts.Draft, contracts.Terminated}
	for i := range cs {
		id := fmt.Sprintf("C%05d", i)
		c := contracts.Contract{
			ID: id, Number: fmt.Sprintf("PC-%05d", i), VendorID: fmt.Sprintf("V%03d", i%50),
			Status: statuses[i%len(statuses)], Effective: contracts.DateOf(2024, 1+i%12, 1+i%28),
			AutoRenewal: i%3 == 0, RenewalTermMonths: 12 * (i % 3), RenewalNoticeDays: 30,
			TPA: i%7 == 0, DefaultRateType: contracts.Percentage, DefaultRateValue: money.Fixed(650_000 + i*7),
			HasDefaultRate: i%2 == 0, StopLoss: money.Cents(int64(i)*10_007 + 5), AdminFeePct: money.Fixed(25_000),
			LesserOfBilled: i%4 == 0, UpdatedAt: "2025-06-01T00:00:00Z",
		}
		if i%5 != 0 {
			c.Expiration = contracts.DateOf(2027, 12, 31)
		}
		if c.TPA {
			c.TPAName = "TPA's \"Name\" " + id
		}
		if i%3 == 1 { // blank enum values, as in the store (BC: _x0020_)
			c.DefaultRateType, c.DefaultRateValue, c.HasDefaultRate = 0, 0, false
		}
		if i%6 == 0 {
			c.ExcludedServices = []contracts.CodeRange{{Lo: "90000", Hi: "90999"}, {Lo: "J1100", Hi: "J1100"}}
		}
		cs[i] = c
		n := base
		d := (i/2*37)%(base/2+1) - base/4
		if i%2 == 0 {
			n += d
		} else {
			n -= d
		}
		for j := 0; j < n; j++ {
			r := contracts.Rate{
				ID: fmt.Sprintf("%s-R%04d", id, j), ContractID: id, Kind: contracts.KindCPT,
				Type: contracts.Amount, Value: money.Fixed(int64(1_000_000 + j*12_345 + i)),
				CPTCode: fmt.Sprintf("%05d", 10000+j), Effective: contracts.DateOf(2024, 1, 1), Active: true,
			}
			if j%3 == 0 {
				r.Type, r.Value = contracts.Percentage, money.Fixed(int64(800_000+j)) // 0.8000xx, six places
				r.PlaceOfService = []string{"11", "22"}
			}
			if j%7 == 5 {
				r.Type = 0 // blank
			}
			if j%10 == 0 {
				r.End = contracts.DateOf(2026, 6, 30)
				r.MinUnits, r.MaxUnits = 1, 4
			}
			rs = append(rs, r)
		}
	}
	return cs, rs
}

// decodeEntity converts an emulator entity into T.
func decodeEntity[T any](t testing.TB, m map[string]any) T {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// checkConsistent fails unless Business Central holds exactly cs and rs
// and the state matches what Business Central holds.
func checkConsistent(t testing.TB, e *bcemu.Emulator, store *MemoryState, cs []contracts.Contract, rs []contracts.Rate) {
	t.Helper()
	byID := map[string][]*contracts.Rate{}
	for i := range rs {
		byID[rs[i].ContractID] = append(byID[rs[i].ContractID], &rs[i])
	}
	states, err := store.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bcContracts := map[string]remoteContract{}
	for _, m := range e.Entities(bcemu.SetContracts) {
		r := decodeEntity[remoteContract](t, m)
		if _, dup := bcContracts[r.ContractNumber]; dup {
			t.Fatalf("duplicate contract %s in BC", r.ContractNumber)
		}
		bcContracts[r.ContractNumber] = r
	}
	bcRates := map[string]remoteRate{}
	for _, m := range e.Entities(bcemu.SetRates) {
		r := decodeEntity[remoteRate](t, m)
		k := r.ContractNumber + "/" + r.RateID
		if _, dup := bcRates[k]; dup {
			t.Fatalf("duplicate rate %s in BC", k)
		}
		bcRates[k] = r
	}
	if len(bcContracts) != len(cs) || len(bcRates) != len(rs) {
		t.Fatalf("BC holds %d contracts and %d rates, want %d and %d", len(bcContracts), len(bcRates), len(cs), len(rs))
	}
	bad := 0
	for i := range cs {
		c := &cs[i]
		d := newDesired(c, byID[c.ID])
		r, ok := bcContracts[c.Number]
		st := states[c.ID]
		switch {
		case !ok:
			t.Errorf("contract %s missing in BC", c.Number)
		case r.ContractPayload != d.header:
			t.Errorf("contract %s differs in BC:\n got %+v\nwant %+v", c.Number, r.ContractPayload, d.header)
		case st.BCID != r.ID || st.ETag != r.ETag || st.Hash != d.hash || st.HeaderHash != r.hash():
			t.Errorf("state of %s inconsistent: %+v vs BC id %s etag %s", c.Number, st, r.ID, r.ETag)
		}
		if len(st.Rates) != len(d.rates) {
			t.Errorf("state of %s has %d rates, want %d", c.Number, len(st.Rates), len(d.rates))
		}
		for id, p := range d.rates {
			br, ok := bcRates[c.Number+"/"+id]
			rst := st.Rates[id]
			switch {
			case !ok:
				t.Errorf("rate %s/%s missing in BC", c.Number, id)
			case br.RatePayload != p:
				t.Errorf("rate %s/%s differs in BC:\n got %+v\nwant %+v", c.Number, id, br.RatePayload, p)
			case rst.BCID != br.ID || rst.ETag != br.ETag || rst.Hash != br.hash():
				t.Errorf("state of rate %s/%s inconsistent", c.Number, id)
			}
		}
		if t.Failed() {
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
}
