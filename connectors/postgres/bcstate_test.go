package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/repricer/repricer/connectors/businesscentral"
	"github.com/repricer/repricer/connectors/businesscentral/bcemu"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/contracts"
)

// sameState fails unless got and want hold the same state (SyncedAt at the
// database's microsecond precision).
func sameState(t *testing.T, got, want businesscentral.ContractState) {
	t.Helper()
	if !got.SyncedAt.Equal(want.SyncedAt.Truncate(time.Microsecond)) {
		t.Errorf("%s: SyncedAt %v, want %v", want.ContractID, got.SyncedAt, want.SyncedAt)
	}
	got.SyncedAt, want.SyncedAt = time.Time{}, time.Time{}
	if want.Rates == nil {
		want.Rates = map[string]businesscentral.RateState{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("state\n got %+v\nwant %+v", got, want)
	}
}

func mustLoadState(t *testing.T, s *postgres.BCState) map[string]businesscentral.ContractState {
	t.Helper()
	m, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("load state: %v", err)
	}
	return m
}

func sampleState(id string, nRates int, at time.Time) businesscentral.ContractState {
	st := businesscentral.ContractState{
		ContractID: id, Number: "CON-" + id, BCID: "bc-" + id, ETag: `W/"JzE5Oy` + id + `;MDsn"`,
		HeaderHash: "hh-" + id, Hash: "h-" + id, BCModifiedAt: "2025-06-01T10:11:12.345Z",
		SyncedAt: at, Rates: map[string]businesscentral.RateState{},
	}
	for j := range nRates {
		rid := fmt.Sprintf("%s-R%03d", id, j)
		st.Rates[rid] = businesscentral.RateState{
			BCID: "bc-" + rid, ETag: `W/"` + rid + `"`, Hash: "rh-" + rid, BCModifiedAt: "2025-06-01T10:11:12.346Z",
		}
	}
	return st
}

func TestBCStateSaveLoad(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	s := postgres.NewBCState(db)
	if m := mustLoadState(t, s); len(m) != 0 {
		t.Fatalf("empty database: %d states", len(m))
	}
	at := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)

	a := sampleState("A", 3, at)
	incomplete := sampleState("B", 0, at)
	incomplete.Hash, incomplete.Rates = "", nil // mid-sync, no rates yet
	quoted := sampleState("C'; DROP TABLE bc_sync_rates; --", 2, at)
	quoted.Number = "PC \"quoted\" 'n' ünï"

	// Replacing A: a rate dropped, one changed, one added, header changed.
	a2 := a.Clone()
	a2.Rates = maps.Clone(a.Rates)
	delete(a2.Rates, "A-R000")
	r := a2.Rates["A-R001"]
	r.ETag, r.Hash = `W/"new"`, "rh-new"
	a2.Rates["A-R001"] = r
	a2.Rates["A-NEW"] = businesscentral.RateState{BCID: "bc-A-NEW", ETag: `W/"n"`, Hash: "rh-n"}
	a2.ETag, a2.Hash, a2.SyncedAt = `W/"a2"`, "h-a2", at.Add(time.Hour)

	steps := []struct {
		name string
		save businesscentral.ContractState
		want map[string]businesscentral.ContractState
	}{
		{"first contract", a, map[string]businesscentral.ContractState{"A": a}},
		{"incomplete contract without rates", incomplete, map[string]businesscentral.ContractState{"A": a, "B": incomplete}},
		{"awkward text", quoted, map[string]businesscentral.ContractState{"A": a, "B": incomplete, quoted.ContractID: quoted}},
		{"replace drops removed rates", a2, map[string]businesscentral.ContractState{"A": a2, "B": incomplete, quoted.ContractID: quoted}},
		{"replace with no rates", sampleState("A", 0, at), map[string]businesscentral.ContractState{
			"A": sampleState("A", 0, at), "B": incomplete, quoted.ContractID: quoted}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			before := maps.Clone(step.save.Rates)
			if err := s.Save(ctx, step.save); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(before, step.save.Rates) {
				t.Fatal("Save modified the state's rates")
			}
			got := mustLoadState(t, s)
			if len(got) != len(step.want) {
				t.Fatalf("loaded %d states, want %d", len(got), len(step.want))
			}
			for id, w := range step.want {
				sameState(t, got[id], w)
			}
		})
	}

	t.Run("zero SyncedAt is the time of the save", func(t *testing.T) {
		st := sampleState("Z", 1, time.Time{})
		if err := s.Save(ctx, st); err != nil {
			t.Fatal(err)
		}
		got := mustLoadState(t, s)["Z"]
		if time.Since(got.SyncedAt) > time.Minute || got.SyncedAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("SyncedAt %v, want about now", got.SyncedAt)
		}
	})

	t.Run("a rate may move between contracts", func(t *testing.T) {
		x, y := sampleState("X", 1, at), sampleState("Y", 0, at)
		y.Rates["X-R000"] = x.Rates["X-R000"] // same rate id and BC id in two states
		for _, st := range []businesscentral.ContractState{x, y} {
			if err := s.Save(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		got := mustLoadState(t, s)
		sameState(t, got["X"], x)
		sameState(t, got["Y"], y)
	})

	t.Run("failed saves keep the previous state", func(t *testing.T) {
		prev := mustLoadState(t, s)["A"]
		bad := sampleState("A", 2, at)
		bad.Rates["A-\x00"] = businesscentral.RateState{BCID: "x"} // NUL: refused by the rate insert, after the header upsert
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		cases := []struct {
			name  string
			ctx   context.Context
			st    businesscentral.ContractState
			table string
		}{
			{"bad rate row", ctx, bad, postgres.TableBCSyncRates},
			{"cancelled context", cancelled, sampleState("A", 5, at), ""},
			{"no contract id", ctx, sampleState("", 1, at), ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				err := s.Save(c.ctx, c.st)
				var se *postgres.StateError
				if !errors.As(err, &se) || se.Op != "save" || se.ContractID != c.st.ContractID {
					t.Fatalf("Save = %v, want a *StateError for save %q", err, c.st.ContractID)
				}
				if se.Table != c.table {
					t.Errorf("failed on table %q, want %q: %v", se.Table, c.table, err)
				}
				got := mustLoadState(t, s)
				sameState(t, got["A"], prev)
				if _, ok := got[""]; ok {
					t.Error("state saved under an empty id")
				}
			})
		}
	})

	t.Run("load fails with a typed error", func(t *testing.T) {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		m, err := s.Load(cancelled)
		var se *postgres.StateError
		if m != nil || !errors.As(err, &se) || se.Op != "load" || !errors.Is(err, context.Canceled) {
			t.Fatalf("Load = %v, %v; want nil and a *StateError wrapping context.Canceled", m, err)
		}
	})

	t.Run("forget", func(t *testing.T) {
		n, err := s.Forget(ctx, "A", "X", "nope")
		if err != nil || n != 2 {
			t.Fatalf("Forget = %d, %v; want 2", n, err)
		}
		got := mustLoadState(t, s)
		if _, ok := got["A"]; ok {
			t.Error("A still has state")
		}
		if count(t, db, "SELECT count(*) FROM bc_sync_rates WHERE contract_id IN ('A', 'X')") != 0 {
			t.Error("rates of forgotten contracts remain")
		}
		if _, ok := got["Y"]; !ok {
			t.Error("Y forgotten too")
		}
	})
}

func TestBCStateCheck(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		version int64 // migrate to this version; -1: latest
		want    error
	}{
		{"current schema", -1, nil},
		{"before 00005", 4, postgres.ErrStateSchema},
		{"empty database", 0, postgres.ErrStateSchema},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := pgtest.DB(t)
			if c.version >= 0 {
				if err := postgres.MigrateDownTo(ctx, db.DB, c.version); err != nil {
					t.Fatal(err)
				}
			}
			s := postgres.NewBCState(db)
			err := s.Check(ctx)
			var se *postgres.StateError
			if c.want == nil && err != nil || c.want != nil && (!errors.Is(err, c.want) || !errors.As(err, &se)) {
				t.Fatalf("Check = %v, want %v", err, c.want)
			}
			if c.want != nil {
				if _, err := s.Load(ctx); !errors.Is(err, c.want) {
					t.Errorf("Load = %v, want %v", err, c.want)
				}
			}
		})
	}
}

// bcEnv is an emulator behind an httptest server and a client for it.
type bcEnv struct {
	emu *bcemu.Emulator
	c   *businesscentral.Client
}

func newBCEnv(t *testing.T, faults bcemu.Faults) *bcEnv {
	t.Helper()
	e := bcemu.New(bcemu.Options{Seed: 42, Faults: faults})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	o := e.Options()
	c, err := businesscentral.New(businesscentral.Config{
		BaseURL: srv.URL, Tenant: o.Tenant, Environment: o.Environment, Publisher: o.Publisher, Group: o.Group,
		CompanyID: o.CompanyID, ClientID: o.ClientID, ClientSecret: o.ClientSecret, TokenURL: srv.URL + e.TokenPath(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxRetries: 10, Seed: 7,
		HTTPClient: srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &bcEnv{emu: e, c: c}
}

// checkBCMatchesState fails unless Business Central holds exactly the
// contracts and rates of s, and the state in Postgres records exactly what
// Business Central holds (ids and ETags), each contract completely synced.
func checkBCMatchesState(t *testing.T, e *bcemu.Emulator, store *postgres.BCState, s *contracts.Schedule) {
	t.Helper()
	states := mustLoadState(t, store)
	type entity = map[string]any
	bcContracts := map[string]entity{}
	for _, m := range e.Entities(bcemu.SetContracts) {
		n := m["contractNumber"].(string)
		if _, dup := bcContracts[n]; dup {
			t.Fatalf("contract %s twice in BC", n)
		}
		bcContracts[n] = m
	}
	bcRates := map[string]entity{}
	for _, m := range e.Entities(bcemu.SetRates) {
		k := m["contractNumber"].(string) + "/" + m["rateId"].(string)
		if _, dup := bcRates[k]; dup {
			t.Fatalf("rate %s twice in BC", k)
		}
		bcRates[k] = m
	}
	if len(bcContracts) != len(s.Contracts) || len(bcRates) != len(s.Rates) {
		t.Fatalf("BC holds %d contracts, %d rates; want %d, %d", len(bcContracts), len(bcRates), len(s.Contracts), len(s.Rates))
	}
	if len(states) != len(s.Contracts) {
		t.Fatalf("%d contract states, want %d", len(states), len(s.Contracts))
	}
	nRates := map[string]int{}
	for _, r := range s.Rates {
		nRates[r.ContractID]++
		st := states[r.ContractID].Rates[r.ID]
		b := bcRates[states[r.ContractID].Number+"/"+r.ID]
		if b == nil || st.BCID != b["id"] || st.ETag != b["@odata.etag"] || st.BCModifiedAt != b["lastModifiedDateTime"] || st.Hash == "" {
			t.Errorf("rate %s: state %+v, BC %v", r.ID, st, b)
		}
	}
	for _, c := range s.Contracts {
		st := states[c.ID]
		b := bcContracts[c.Number]
		switch {
		case b == nil:
			t.Errorf("contract %s missing in BC", c.Number)
		case st.Number != c.Number || st.BCID != b["id"] || st.ETag != b["@odata.etag"] || st.Hash == "" || st.HeaderHash == "":
			t.Errorf("contract %s: state %+v, BC id %v etag %v", c.Number, st, b["id"], b["@odata.etag"])
		case len(st.Rates) != nRates[c.ID]:
			t.Errorf("contract %s: %d rate states, want %d", c.Number, len(st.Rates), nRates[c.ID])
		}
	}
}

// TestBCStateSync syncs a Postgres contract store to the emulator with the
// sync state in Postgres: through injected faults, then unchanged, then
// after one rate changed in the store.
func TestBCStateSync(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	_, s := writeBundle(t, genSchedule(50, 6))
	mustImport(t, db, s)
	e := newBCEnv(t, bcemu.Faults{
		Throttle: 0.1, ThrottleRetryAfter: 0.1, Unavailable: 0.05, DropAfterCommit: 0.05,
		RetryAfter: time.Second, Latency: 200 * time.Microsecond, LatencyJitter: time.Millisecond,
	})
	store := postgres.NewBCState(db)
	sync := func(t *testing.T) (*businesscentral.Report, *contracts.Schedule, bcemu.Stats) {
		t.Helper()
		loaded, err := postgres.Load(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		before := e.emu.Stats()
		rep, err := businesscentral.NewSyncer(e.c, store, businesscentral.Options{}).Sync(ctx, loaded.Contracts, loaded.Rates)
		if err != nil {
			t.Fatal(err)
		}
		after := e.emu.Stats()
		return rep, loaded, bcemu.Stats{
			Requests: after.Requests - before.Requests, WriteRequests: after.WriteRequests - before.WriteRequests,
			Mutations: after.Mutations - before.Mutations, Dropped: after.Dropped - before.Dropped,
			Throttled: after.Throttled - before.Throttled, Unavailable: after.Unavailable - before.Unavailable,
		}
	}

	t.Run("first sync through faults", func(t *testing.T) {
		rep, loaded, st := sync(t)
		t.Logf("first sync: %d requests (%d retries); injected 429 %d, 503 %d, dropped after commit %d",
			rep.Requests, rep.Retries, st.Throttled, st.Unavailable, st.Dropped)
		if rep.Created != 50 || rep.Failed != 0 || rep.Conflicts != 0 {
			t.Fatalf("report: created %d failed %d conflicts %d: %+v", rep.Created, rep.Failed, rep.Conflicts, rep.Results)
		}
		if st.Throttled == 0 || st.Unavailable == 0 || st.Dropped == 0 {
			t.Errorf("no fault injected: %+v", st)
		}
		checkBCMatchesState(t, e.emu, store, loaded)
	})
	e.emu.SetFaults(bcemu.Faults{}) // exact request counts from here on

	t.Run("second sync writes nothing", func(t *testing.T) {
		rep, loaded, st := sync(t)
		if st.WriteRequests != 0 || rep.Unchanged != 50 {
			t.Fatalf("second sync: %d write requests, %d unchanged", st.WriteRequests, rep.Unchanged)
		}
		checkBCMatchesState(t, e.emu, store, loaded)
	})

	t.Run("one rate changed in the store", func(t *testing.T) {
		changed := genSchedule(50, 6)
		i := 7*6 + 1                     // contract 7, rate 1: an Amount
		changed.Rates[i].Value += 10_000 // one cent
		target := changed.Rates[i].ContractID
		_, changed = writeBundle(t, changed)
		if rep := mustImport(t, db, changed); rep.Rates.Updated != 1 {
			t.Fatalf("import updated %d rates, want 1", rep.Rates.Updated)
		}
		rep, loaded, st := sync(t)
		for _, r := range rep.Results {
			switch {
			case r.ContractID == target && (r.Action != businesscentral.ActionUpdate || r.RatesUpdated != 1 ||
				r.HeaderWritten || r.RatesCreated+r.RatesDeleted != 0):
				t.Errorf("changed contract: %+v", r)
			case r.ContractID != target && r.Action != businesscentral.ActionUnchanged:
				t.Errorf("%s: %s, want unchanged", r.ContractID, r.Action)
			}
		}
		if st.WriteRequests != 1 || st.Mutations != 1 {
			t.Errorf("%d write requests, %d mutations; want 1 and 1", st.WriteRequests, st.Mutations)
		}
		checkBCMatchesState(t, e.emu, store, loaded)
		for _, m := range e.emu.Entities(bcemu.SetRates) {
			if m["rateId"] == changed.Rates[i].ID {
				got, err := decimal.NewFromString(fmt.Sprint(m["value"]))
				if want := decimal.RequireFromString(changed.Rates[i].Value.String()); err != nil || !got.Equal(want) {
					t.Errorf("BC holds value %v for the changed rate, want %s", m["value"], want)
				}
			}
		}
	})
}
