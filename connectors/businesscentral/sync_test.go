package businesscentral

import (
	"encoding/json"
	"flag"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repricer/repricer/connectors/businesscentral/bcemu"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// TestSyncLargeWithFaults is the main proof: every contract and rate (200
// and 20,000, or 2,000 and 200,000 with -bc-large) reaches Business Central
// exactly, through throttling, 503s, connections dropped after commit and
// latency; a second sync writes nothing. It logs the request count and
// wall time.
// bcLarge: by default TestSyncLargeWithFaults syncs a tenth of the full
// size, which meets the same faults in a tenth of the time (the full size
// took over ten minutes under GOMAXPROCS=1 beside a CPU hog).
var bcLarge = flag.Bool("bc-large", false, "TestSyncLargeWithFaults at 2,000 contracts and 200,000 rates")

func TestSyncLargeWithFaults(t *testing.T) {
	nc, nr := 200, 20_000
	if *bcLarge {
		nc, nr = 2000, 200_000
	}
	cs, rs := genData(nc, nr)
	if len(rs) != nr {
		t.Fatalf("generated %d rates, want %d", len(rs), nr)
	}
	faults := bcemu.Faults{
		Throttle: 0.02, ThrottleRetryAfter: 0.25, Unavailable: 0.01, DropAfterCommit: 0.02,
		RetryAfter: time.Second, Latency: time.Millisecond, LatencyJitter: 2 * time.Millisecond,
	}
	e := newEnv(t, bcemu.Options{Faults: faults}, nil, nil)
	store := NewMemoryState()
	s := NewSyncer(e.c, store, Options{})

	rep, err := s.Sync(t.Context(), cs, rs)
	if err != nil {
		t.Fatal(err)
	}
	st := e.emu.Stats()
	t.Logf("first sync: %d contracts, %d rates: %d requests (%d retries), wall %v; emulator: %d requests, max concurrent %d, "+
		"injected 429 %d, 503 %d, dropped-after-commit %d, rolled-back batches %d, rate-limited %d, queue-full %d",
		nc, nr, rep.Requests, rep.Retries, time.Duration(rep.WallMillis)*time.Millisecond, st.Requests, st.MaxConcurrent,
		st.Throttled, st.Unavailable, st.Dropped, st.BatchRollbacks, st.RateLimited, st.QueueFull)
	// Rates created by a batch whose answer was lost are found by the
	// re-read, not counted as created by this run; consistency is checked
	// against Business Central below.
	if rep.Created != nc || rep.Failed != 0 || rep.Conflicts != 0 || rep.RatesCreated > nr {
		t.Fatalf("report: created %d failed %d conflicts %d rates created %d", rep.Created, rep.Failed, rep.Conflicts, rep.RatesCreated)
	}
	if st.Throttled == 0 || st.Unavailable == 0 || st.Dropped == 0 {
		t.Fatalf("faults not exercised: %+v", st)
	}
	checkConsistent(t, e.emu, store, cs, rs)

	// Within the documented limits: at most 5 requests processed at once,
	// and few enough requests that even at full speed the run fits the
	// 6,000 requests per 5 minutes budget.
	if st.MaxConcurrent > 5 {
		t.Errorf("max concurrent requests %d > 5", st.MaxConcurrent)
	}
	if st.Requests > 6000 {
		t.Errorf("%d requests > 6000 per 5 minutes", st.Requests)
	}
	if st.RateLimited != 0 || st.QueueFull != 0 {
		t.Errorf("service limits hit: rate %d, queue %d", st.RateLimited, st.QueueFull)
	}

	before := e.emu.Stats()
	rep2, err := s.Sync(t.Context(), cs, rs)
	if err != nil {
		t.Fatal(err)
	}
	after := e.emu.Stats()
	t.Logf("second sync: %d requests (reads only), wall %v", rep2.Requests, time.Duration(rep2.WallMillis)*time.Millisecond)
	if w := after.WriteRequests - before.WriteRequests; w != 0 || rep2.Unchanged != nc {
		t.Fatalf("second sync: %d write requests, %d unchanged; want 0 and %d", w, rep2.Unchanged, nc)
	}
	if _, err := json.Marshal(rep2); err != nil {
		t.Fatal(err)
	}
}

func TestSyncConflict(t *testing.T) {
	cs, rs := genData(6, 60)
	e := newEnv(t, bcemu.Options{}, nil, nil)
	store := NewMemoryState()
	if rep, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs); err != nil || rep.Created != 6 {
		t.Fatalf("initial sync: %v %+v", err, rep)
	}
	idOf := map[string]string{}
	for _, m := range e.emu.Entities(bcemu.SetContracts) {
		idOf[m["contractNumber"].(string)] = m["id"].(string)
	}
	// Contract 0: changed in BC and in the source. Contract 1: changed in
	// BC only. Contract 2: one of its rates changed in BC.
	for _, edit := range []struct{ n, field, v string }{
		{cs[0].Number, "statusReason", "edited in BC"},
		{cs[1].Number, "tpaName", "edited in BC"},
	} {
		if err := e.emu.Edit(bcemu.SetContracts, idOf[edit.n], map[string]any{edit.field: edit.v}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range e.emu.Entities(bcemu.SetRates) {
		if m["contractNumber"] == cs[2].Number {
			if err := e.emu.Edit(bcemu.SetRates, m["id"].(string), map[string]any{"value": "99.99"}); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	cs[0].Status, cs[0].StatusReason = contracts.Terminated, "source change"

	rep, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Action{cs[0].Number: ActionConflict, cs[1].Number: ActionConflict, cs[2].Number: ActionConflict}
	for _, r := range rep.Results {
		w, ok := want[r.Number]
		if !ok {
			w = ActionUnchanged
		}
		if r.Action != w {
			t.Errorf("%s: action %s (%s), want %s", r.Number, r.Action, r.Detail, w)
		}
	}
	for _, m := range e.emu.Entities(bcemu.SetContracts) {
		switch m["contractNumber"] {
		case cs[0].Number:
			if m["statusReason"] != "edited in BC" || m["status"] != string(contracts.Active) {
				t.Errorf("conflicting contract was overwritten: %v %v", m["status"], m["statusReason"])
			}
		case cs[1].Number:
			if m["tpaName"] != "edited in BC" {
				t.Errorf("contract changed in BC was overwritten")
			}
		}
	}

	rep, err = NewSyncer(e.c, store, Options{Force: true}).Sync(t.Context(), cs, rs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Updated != 3 || rep.Conflicts != 0 || rep.Failed != 0 {
		t.Fatalf("forced sync: updated %d conflicts %d failed %d: %+v", rep.Updated, rep.Conflicts, rep.Failed, rep.Results)
	}
	checkConsistent(t, e.emu, store, cs, rs)
}

func TestSyncTokenExpiresMidSync(t *testing.T) {
	cs, rs := genData(200, 4000)
	// The server stops accepting a token after 150 ms although it tells the
	// client it lives an hour: the client meets 401s mid-sync. The server's
	// clock moves 1 ms per request it asks the time for, so a token lives
	// for a fixed number of requests, however fast the machine is.
	var ticks atomic.Int64
	start := time.Unix(0, 0)
	clock := func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Millisecond) }
	e := newEnv(t, bcemu.Options{TokenLifetime: 150 * time.Millisecond, ExpiresIn: time.Hour, Now: clock}, nil, nil)
	store := NewMemoryState()
	rep, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs)
	if err != nil {
		t.Fatal(err)
	}
	st := e.emu.Stats()
	if st.Unauthorized == 0 || e.c.Stats().TokenRefreshes == 0 || st.TokensIssued < 2 {
		t.Fatalf("token never expired mid-sync: %+v %+v", st, e.c.Stats())
	}
	if rep.Failed != 0 || rep.Created != len(cs) {
		t.Fatalf("report: %+v", rep)
	}
	checkConsistent(t, e.emu, store, cs, rs)
}

func TestSyncAmendedRates(t *testing.T) {
	cs, rs := genData(10, 300)
	e := newEnv(t, bcemu.Options{}, nil, nil)
	store := NewMemoryState()
	if _, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs); err != nil {
		t.Fatal(err)
	}
	target := cs[3].ID
	var idx []int
	for i := range rs {
		if rs[i].ContractID == target {
			idx = append(idx, i)
		}
	}
	rs[idx[0]].Value += money.Fixed(1) // amended by one millionth: exact values matter
	removed := rs[idx[1]].ID
	added := rs[idx[2]]
	added.ID, added.CPTCode = target+"-NEW", "99999"
	rs = append(rs[:idx[1]], rs[idx[1]+1:]...)
	rs = append(rs, added)

	before := e.emu.Stats()
	rep, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs)
	if err != nil {
		t.Fatal(err)
	}
	after := e.emu.Stats()
	for _, r := range rep.Results {
		if r.ContractID == target {
			if r.Action != ActionUpdate || r.HeaderWritten || r.RatesCreated != 1 || r.RatesUpdated != 1 || r.RatesDeleted != 1 {
				t.Errorf("amended contract: %+v", r)
			}
		} else if r.Action != ActionUnchanged {
			t.Errorf("%s: %s, want unchanged", r.Number, r.Action)
		}
	}
	if m := after.Mutations - before.Mutations; m != 3 {
		t.Errorf("%d entities changed, want 3", m)
	}
	if w := after.WriteRequests - before.WriteRequests; w != 1 {
		t.Errorf("%d write requests, want 1 batch", w)
	}
	for _, m := range e.emu.Entities(bcemu.SetRates) {
		if m["rateId"] == removed {
			t.Errorf("removed rate still in BC")
		}
	}
	checkConsistent(t, e.emu, store, cs, rs)
}

func TestSyncDryRunAndLostCreate(t *testing.T) {
	cs, rs := genData(30, 900)
	e := newEnv(t, bcemu.Options{}, nil, nil)
	store := NewMemoryState()
	rep, err := NewSyncer(e.c, store, Options{DryRun: true}).Sync(t.Context(), cs, rs)
	if err != nil {
		t.Fatal(err)
	}
	if st := e.emu.Stats(); st.WriteRequests != 0 || rep.Created != 30 || rep.RatesCreated != 900 {
		t.Fatalf("dry run: %d writes, report %+v", st.WriteRequests, rep)
	}
	if m, _ := store.Load(t.Context()); len(m) != 0 {
		t.Fatalf("dry run saved state")
	}

	// A first sync whose state was lost (e.g. every answer dropped after
	// commit, or the state store wiped): the next sync must find the
	// contracts by number and create nothing twice.
	if _, err := NewSyncer(e.c, NewMemoryState(), Options{}).Sync(t.Context(), cs[:10], rs); err != nil {
		t.Fatal(err)
	}
	rep, err = NewSyncer(e.c, store, Options{ListThreshold: 5}).Sync(t.Context(), cs, rs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created != 20 || rep.Unchanged != 10 || rep.Failed != 0 {
		t.Fatalf("report: created %d unchanged %d failed %d", rep.Created, rep.Unchanged, rep.Failed)
	}
	checkConsistent(t, e.emu, store, cs, rs)
}
