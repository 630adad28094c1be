package businesscentral

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repricer/repricer/connectors/businesscentral/bcemu"
	"github.com/repricer/repricer/contracts"
)

func TestEnumNames(t *testing.T) {
	for _, tt := range []struct{ value, name string }{
		{"", "_x0020_"},
		{"Percentage", "Percentage"},
		{"Prod. Order", "Prod_x002E__x0020_Order"},
		{"snake_case", "snake_case"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := EnumName(tt.value); got != tt.name {
				t.Errorf("EnumName(%q) = %q, want %q", tt.value, got, tt.name)
			}
			if got := EnumValue(tt.name); got != tt.value {
				t.Errorf("EnumValue(%q) = %q, want %q", tt.name, got, tt.value)
			}
		})
	}
	if got := EnumValue(" "); got != "" { // schema 1.0 sends the caption
		t.Errorf("EnumValue(\" \") = %q, want blank", got)
	}
}

// Blank enum values reach BC as _x0020_ (the emulator, like BC's schema
// 2.0, refuses ""), read back equal, and a second sync writes nothing.
func TestSyncBlankEnums(t *testing.T) {
	cs, rs := genData(6, 120)
	blankRates := 0
	for i := range rs {
		if rs[i].Type == 0 {
			blankRates++
		}
	}
	if cs[1].DefaultRateType != 0 || blankRates == 0 {
		t.Fatal("test data has no blank enum values")
	}
	e := newEnv(t, bcemu.Options{}, nil, nil)
	store := NewMemoryState()
	rep, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs)
	if err != nil || rep.Created != len(cs) || rep.Failed != 0 {
		t.Fatalf("first sync: %v; %+v", err, rep.Results)
	}
	checkConsistent(t, e.emu, store, cs, rs)
	for _, m := range e.emu.Entities(bcemu.SetContracts) {
		if m["contractNumber"] == cs[1].Number && m["defaultRateType"] != BlankEnum {
			t.Errorf("blank defaultRateType stored as %q", m["defaultRateType"])
		}
	}
	before := e.emu.Stats()
	rep, err = NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs)
	if err != nil || rep.Unchanged != len(cs) {
		t.Fatalf("second sync: %v; %+v", err, rep.Results)
	}
	if w := e.emu.Stats().WriteRequests - before.WriteRequests; w != 0 {
		t.Errorf("no-change sync sent %d writes", w)
	}
	// A blank value read in schema 1.0's spelling (the caption " ")
	// hashes as the blank that was written: no false conflict.
	for _, m := range e.emu.Entities(bcemu.SetContracts) {
		if m["contractNumber"] == cs[1].Number {
			r := decodeEntity[remoteContract](t, m)
			want := r.hash()
			r.DefaultRateType = " "
			if r.hash() != want {
				t.Errorf("blank spelled \" \" hashes differently")
			}
		}
	}
}

// tokenCounter counts the requests to the token endpoint and, while
// answer is set, answers them itself.
type tokenCounter struct {
	n      atomic.Int64
	mu     sync.Mutex
	answer func(w http.ResponseWriter, n int64) bool // true: answered
}

func (c *tokenCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			n := c.n.Add(1)
			c.mu.Lock()
			answer := c.answer
			c.mu.Unlock()
			if answer != nil && answer(w, n) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// recordSleeps makes the client record its waits instead of sleeping.
func recordSleeps(c *Client) *[]time.Duration {
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return waits
}

// A definite refusal of the token endpoint ends the sync at once: one
// token request, no API request, one message naming the token URL and the
// OAuth error code, every contract not synced. A 503 is retried on the
// run's one backoff.
func TestSyncAuthFailsFast(t *testing.T) {
	cs, rs := genData(12, 120)
	tests := []struct {
		name     string
		secret   string
		answer   func(w http.ResponseWriter, n int64) bool
		wantErr  []string // in the message; nil: the sync succeeds
		tokens   int64
		sleeps   int
		notFatal bool
	}{
		{name: "wrong secret", secret: "wrong", wantErr: []string{"/tenant/oauth2/v2.0/token", `"invalid_client"`, "401"}, tokens: 1},
		{name: "no access token in a 200", answer: func(w http.ResponseWriter, n int64) bool {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"token_type":"Bearer"}`))
			return true
		}, wantErr: []string{"/tenant/oauth2/v2.0/token", "HTTP 200 without an access token"}, tokens: 1},
		{name: "unreadable answer", answer: func(w http.ResponseWriter, n int64) bool {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`<html>proxy says no</html>`))
			return true
		}, wantErr: []string{"/tenant/oauth2/v2.0/token", "HTTP 400"}, tokens: 1},
		{name: "503 twice, then a token", answer: func(w http.ResponseWriter, n int64) bool {
			if n > 2 {
				return false
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}, tokens: 3, sleeps: 2},
		{name: "unreachable: 503 every time", answer: func(w http.ResponseWriter, n int64) bool {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}, wantErr: []string{"/tenant/oauth2/v2.0/token", "giving up after 4 attempts"}, tokens: 4, sleeps: 3, notFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := &tokenCounter{answer: tt.answer}
			e := newEnv(t, bcemu.Options{}, tc.wrap, func(c *Config) {
				c.MaxRetries = 3
				if tt.secret != "" {
					c.ClientSecret = tt.secret
				}
			})
			waits := recordSleeps(e.c)
			rep, err := NewSyncer(e.c, NewMemoryState(), Options{}).Sync(t.Context(), cs, rs)
			if rep == nil {
				t.Fatal("no report")
			}
			if got := tc.n.Load(); got != tt.tokens {
				t.Errorf("%d token requests, want %d", got, tt.tokens)
			}
			if len(*waits) != tt.sleeps {
				t.Errorf("%d waits, want %d", len(*waits), tt.sleeps)
			}
			if tt.wantErr == nil {
				if err != nil || rep.Created != len(cs) {
					t.Fatalf("sync: %v; created %d", err, rep.Created)
				}
				return
			}
			var ae *AuthError
			if !errors.As(err, &ae) || errors.Is(err, ErrFatal) == tt.notFatal {
				t.Errorf("error %v: want an AuthError, fatal %v", err, !tt.notFatal)
			}
			for _, s := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), s) || !strings.Contains(rep.Stopped, s) {
					t.Errorf("error %v / stopped %q does not say %q", err, rep.Stopped, s)
				}
			}
			if n := e.emu.Stats().Requests; n != 0 {
				t.Errorf("%d API requests without a token", n)
			}
			if rep.NotSynced != len(cs) || rep.Failed != 0 {
				t.Errorf("report: %d not synced, %d failed; want %d and 0", rep.NotSynced, rep.Failed, len(cs))
			}
		})
	}
}

// A 5 s token is renewed when a tenth of its life is left, not before
// every request (oauth2's fixed margin is 10 s).
func TestTokenMarginProportional(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	e := newEnv(t, bcemu.Options{TokenLifetime: 5 * time.Second, Now: clock.Now}, nil, nil)
	e.c.tokens.now = clock.Now
	get := func() {
		t.Helper()
		if err := e.c.Get(t.Context(), e.c.EntityURL(ContractsSet), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		advance time.Duration
		tokens  int64
	}{
		{0, 1},
		{time.Second, 1},
		{3400 * time.Millisecond, 1}, // 4.4 s: more than 0.5 s left
		{200 * time.Millisecond, 2},  // 4.6 s: renewed
		{4 * time.Second, 2},
	} {
		clock.Add(step.advance)
		get()
		if got := e.emu.Stats().TokensIssued; got != step.tokens {
			t.Fatalf("at %v: %d tokens issued, want %d", clock.Now().Sub(time.Unix(1_000_000, 0)), got, step.tokens)
		}
	}
	if st := e.emu.Stats(); st.Unauthorized != 0 {
		t.Errorf("%d requests with an expired token", st.Unauthorized)
	}
}

// bcNumbers returns the contract numbers and the rate count per number
// Business Central holds.
func bcNumbers(e *bcemu.Emulator) map[string]int {
	out := map[string]int{}
	for _, m := range e.Entities(bcemu.SetContracts) {
		out[m["contractNumber"].(string)] += 0
	}
	for _, m := range e.Entities(bcemu.SetRates) {
		out[m["contractNumber"].(string)]++
	}
	return out
}

func resultOf(rep *Report, id string) ContractResult {
	for _, r := range rep.Results {
		if r.ContractID == id {
			return r
		}
	}
	return ContractResult{}
}

// Contracts that leave the schedule are listed in the plan, the dry run
// and the report; only Prune deletes them (rates first, with If-Match),
// and then their state is forgotten. A retained contract (in the schedule,
// not synced) is not removed; one changed in BC is a conflict.
func TestSyncRemovedContracts(t *testing.T) {
	cs, rs := genData(6, 120)
	e := newEnv(t, bcemu.Options{}, nil, nil)
	store := NewMemoryState()
	if _, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs); err != nil {
		t.Fatal(err)
	}
	gone, retained, edited := cs[1], cs[2], cs[3]
	nGone := bcNumbers(e.emu)[gone.Number]
	kept := []string{retained.ID}
	left := append([]contracts.Contract{cs[0]}, cs[4:]...)

	steps := []struct {
		name      string
		opt       Options
		want      map[string]Action // by contract id
		deleted   int               // rates deleted (or, dry run, to delete)
		writes    bool
		inBC      []string // numbers BC must still hold
		notInBC   []string
		forgotten []string // state gone
	}{
		{name: "listed, left alone", opt: Options{Retained: kept},
			want: map[string]Action{gone.ID: ActionRemoved, edited.ID: ActionRemoved, retained.ID: ""},
			inBC: []string{gone.Number, retained.Number, edited.Number}},
		{name: "dry run of prune", opt: Options{Retained: kept, Prune: true, DryRun: true},
			want:    map[string]Action{gone.ID: ActionDeleted, edited.ID: ActionConflict, retained.ID: ""},
			deleted: nGone, inBC: []string{gone.Number, edited.Number}},
		{name: "prune", opt: Options{Retained: kept, Prune: true},
			want:    map[string]Action{gone.ID: ActionDeleted, edited.ID: ActionConflict, retained.ID: ""},
			deleted: nGone, writes: true, inBC: []string{retained.Number, edited.Number}, notInBC: []string{gone.Number},
			forgotten: []string{gone.ID}},
		{name: "prune with force deletes the edited one", opt: Options{Retained: kept, Prune: true, Force: true},
			want:   map[string]Action{gone.ID: "", edited.ID: ActionDeleted, retained.ID: ""},
			writes: true, inBC: []string{retained.Number}, notInBC: []string{edited.Number}, forgotten: []string{edited.ID}},
		{name: "nothing left to remove", opt: Options{Retained: kept, Prune: true},
			want: map[string]Action{gone.ID: "", edited.ID: "", retained.ID: ""}},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if i == 1 { // a BC user edits a contract that left the schedule
				for _, m := range e.emu.Entities(bcemu.SetContracts) {
					if m["contractNumber"] == edited.Number {
						if err := e.emu.Edit(bcemu.SetContracts, m["id"].(string), map[string]any{"statusReason": "kept in BC"}); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			before := e.emu.Stats()
			rep, err := NewSyncer(e.c, store, st.opt).Sync(t.Context(), left, rs)
			if err != nil {
				t.Fatal(err)
			}
			for id, want := range st.want {
				if got := resultOf(rep, id); got.Action != want {
					t.Errorf("%s: %q (%s), want %q", id, got.Action, got.Detail, want)
				}
			}
			if got := resultOf(rep, gone.ID); got.RatesDeleted != st.deleted && st.want[gone.ID] != "" {
				t.Errorf("rates deleted %d, want %d", got.RatesDeleted, st.deleted)
			}
			if w := e.emu.Stats().WriteRequests - before.WriteRequests; (w > 0) != st.writes {
				t.Errorf("%d write requests, want writes %v", w, st.writes)
			}
			if rep.Unchanged != len(left) {
				t.Errorf("%d unchanged, want %d", rep.Unchanged, len(left))
			}
			held := bcNumbers(e.emu)
			for _, n := range st.inBC {
				if _, ok := held[n]; !ok {
					t.Errorf("%s no longer in BC", n)
				}
			}
			for _, n := range st.notInBC {
				if _, ok := held[n]; ok {
					t.Errorf("%s (or %d of its rates) still in BC", n, held[n])
				}
			}
			states, _ := store.Load(t.Context())
			for _, id := range st.forgotten {
				if _, ok := states[id]; ok {
					t.Errorf("state of %s kept", id)
				}
			}
		})
	}
}

// A contract renamed in the store (same id, new number) is renamed in BC,
// its rates along, whether or not the sync state survived: no twin.
func TestSyncRenamedContract(t *testing.T) {
	for _, lostState := range []bool{false, true} {
		name := "with state"
		if lostState {
			name = "state lost"
		}
		t.Run(name, func(t *testing.T) {
			cs, rs := genData(4, 80)
			e := newEnv(t, bcemu.Options{}, nil, nil)
			store := NewMemoryState()
			if _, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs); err != nil {
				t.Fatal(err)
			}
			old := cs[1].Number
			cs[1].Number = "PC-RENAMED"
			if lostState {
				store = NewMemoryState()
			}
			rep, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs)
			if err != nil || rep.Failed+rep.Conflicts != 0 {
				t.Fatalf("sync: %v %+v", err, rep.Results)
			}
			if _, ok := bcNumbers(e.emu)[old]; ok {
				t.Errorf("%s still in BC", old)
			}
			if lostState {
				states, _ := store.Load(t.Context())
				if len(states) != len(cs) {
					t.Fatalf("state of %d contracts", len(states))
				}
			}
			checkConsistent(t, e.emu, store, cs, rs)
			before := e.emu.Stats()
			if rep, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs); err != nil || rep.Unchanged != len(cs) {
				t.Fatalf("resync: %v %+v", err, rep)
			}
			if w := e.emu.Stats().WriteRequests - before.WriteRequests; w != 0 {
				t.Errorf("resync wrote %d times", w)
			}
		})
	}
}

// A sync stopped midway (SIGTERM in the command: a cancelled context with
// the signal as its cause) still returns the report: what was done, the
// rest not synced, and why it stopped.
func TestSyncStoppedMidway(t *testing.T) {
	cs, rs := genData(40, 400)
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	stopAfter := int64(15)
	var seen atomic.Int64
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/token") && seen.Add(1) == stopAfter {
				cancel(errors.New("SIGTERM received"))
			}
			next.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, bcemu.Options{}, wrap, func(c *Config) { c.Concurrency = 2 })
	store := NewMemoryState()
	rep, err := NewSyncer(e.c, store, Options{Concurrency: 2}).Sync(ctx, cs, rs)
	if err == nil || rep == nil {
		t.Fatalf("error %v, report %v: want both", err, rep)
	}
	if !strings.Contains(rep.Stopped, "SIGTERM received") || !strings.Contains(err.Error(), "SIGTERM received") {
		t.Errorf("stopped %q does not say why", rep.Stopped)
	}
	if rep.NotSynced == 0 || rep.Created == 0 || rep.Created+rep.NotSynced+rep.Failed != len(cs) || len(rep.Results) != len(cs) {
		t.Errorf("report: created %d, not synced %d, failed %d of %d", rep.Created, rep.NotSynced, rep.Failed, len(cs))
	}
	states, _ := store.Load(t.Context())
	complete := 0
	for _, st := range states {
		if st.Hash != "" {
			complete++
		}
	}
	if complete != rep.Created {
		t.Errorf("%d complete states, %d reported created", complete, rep.Created)
	}
}

// A contract that leaves the schedule while a new one takes its number:
// the new contract adopts the BC card, the old one is listed as removed
// (naming the new one) and nothing is deleted, with or without prune.
func TestSyncRemovedNumberReused(t *testing.T) {
	for _, prune := range []bool{false, true} {
		t.Run(map[bool]string{false: "listed", true: "prune"}[prune], func(t *testing.T) {
			cs, rs := genData(4, 40)
			e := newEnv(t, bcemu.Options{}, nil, nil)
			store := NewMemoryState()
			if _, err := NewSyncer(e.c, store, Options{}).Sync(t.Context(), cs, rs); err != nil {
				t.Fatal(err)
			}
			old := cs[2].ID
			cs[2].ID = "NEW-ID" // same number, another contract
			for i := range rs {
				if rs[i].ContractID == old {
					rs[i].ContractID = "NEW-ID"
				}
			}
			rep, err := NewSyncer(e.c, store, Options{Prune: prune}).Sync(t.Context(), cs, rs)
			if err != nil || rep.Failed+rep.Conflicts+rep.Deleted != 0 || rep.Removed != 1 {
				t.Fatalf("sync: %v %+v", err, rep.Results)
			}
			if r := resultOf(rep, old); !strings.Contains(r.Detail, "NEW-ID") {
				t.Errorf("removed contract: %+v", r)
			}
			checkConsistent(t, e.emu, store, cs, rs)
		})
	}
}
