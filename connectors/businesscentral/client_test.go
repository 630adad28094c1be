package businesscentral

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/repricer/repricer/connectors/businesscentral/bcemu"
)

// failFirst answers the first n API requests with status (and Retry-After
// when set), then passes requests to the emulator.
func failFirst(n int64, status int, retryAfter string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		var seen atomic.Int64
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/tenant/oauth2/v2.0/token" && seen.Add(1) <= n {
				if retryAfter != "" {
					w.Header().Set("Retry-After", retryAfter)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"error":{"code":"Test_%d","message":"injected"}}`, status)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestClientErrors(t *testing.T) {
	body := ContractPayload{ContractNumber: "PC-1", Status: "Active", DefaultRateType: BlankEnum}
	type outcome struct {
		is         []error // errors.Is must hold for each
		isNot      []error
		requests   int64         // API requests the client sent
		minElapsed time.Duration // the waits between attempts, added up
		maxElapsed time.Duration
	}
	tests := []struct {
		name   string
		opt    bcemu.Options
		wrap   func(http.Handler) http.Handler
		mod    func(*Config)
		before func(t *testing.T, e *env) string // returns entity URL for the call
		call   func(t *testing.T, e *env, u string) error
		want   outcome
	}{
		{
			name: "429 then success, backoff without Retry-After",
			wrap: failFirst(3, 429, ""),
			call: func(t *testing.T, e *env, u string) error {
				return e.c.List(t.Context(), e.c.EntityURL(ContractsSet), "", func(json.RawMessage) error { return nil })
			},
			want: outcome{requests: 4, maxElapsed: 2 * time.Second},
		},
		{
			name: "503 honours Retry-After",
			wrap: failFirst(1, 503, "1"),
			call: func(t *testing.T, e *env, u string) error {
				return e.c.List(t.Context(), e.c.EntityURL(ContractsSet), "", func(json.RawMessage) error { return nil })
			},
			want: outcome{requests: 2, minElapsed: time.Second, maxElapsed: 3 * time.Second},
		},
		{
			name: "retries exhausted is retryable",
			wrap: failFirst(100, 504, ""),
			mod:  func(c *Config) { c.MaxRetries = 3 },
			call: func(t *testing.T, e *env, u string) error {
				return e.c.Get(t.Context(), e.c.EntityURL(ContractsSet), nil)
			},
			want: outcome{is: []error{ErrRetryable}, isNot: []error{ErrFatal, ErrConflict}, requests: 4},
		},
		{
			name: "expired token refreshed once",
			before: func(t *testing.T, e *env) string {
				if err := e.c.Get(t.Context(), e.c.EntityURL(ContractsSet), nil); err != nil {
					t.Fatal(err)
				}
				e.emu.ExpireTokens()
				return ""
			},
			call: func(t *testing.T, e *env, u string) error {
				return e.c.Get(t.Context(), e.c.EntityURL(ContractsSet), nil)
			},
			want: outcome{requests: 3},
		},
		{
			name: "401 twice is fatal",
			wrap: failFirst(2, 401, ""),
			call: func(t *testing.T, e *env, u string) error {
				return e.c.Get(t.Context(), e.c.EntityURL(ContractsSet), nil)
			},
			want: outcome{is: []error{ErrFatal}, isNot: []error{ErrRetryable}, requests: 2},
		},
		{
			name: "bad secret is a fatal AuthError",
			mod:  func(c *Config) { c.ClientSecret = "wrong" },
			call: func(t *testing.T, e *env, u string) error {
				err := e.c.Get(t.Context(), e.c.EntityURL(ContractsSet), nil)
				var ae *AuthError
				if !errors.As(err, &ae) {
					t.Errorf("error %v is not an AuthError", err)
				}
				return err
			},
			want: outcome{is: []error{ErrFatal}, isNot: []error{ErrRetryable}, requests: 0},
		},
		{
			name:   "PATCH without If-Match is 400 BadRequest_InvalidToken",
			before: createOne(body),
			call: func(t *testing.T, e *env, u string) error {
				err := e.c.Update(t.Context(), u, "", body, nil)
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != CodeInvalidToken {
					t.Errorf("error %v, want 400 %s", err, CodeInvalidToken)
				}
				return err
			},
			want: outcome{is: []error{ErrFatal}, isNot: []error{ErrRetryable, ErrConflict}, requests: 2},
		},
		{
			name:   "PATCH with stale ETag is a conflict",
			before: createOne(body),
			call: func(t *testing.T, e *env, u string) error {
				return e.c.Update(t.Context(), u, `W/"stale"`, body, nil)
			},
			want: outcome{is: []error{ErrConflict}, isNot: []error{ErrFatal, ErrRetryable}, requests: 2},
		},
		{
			name:   "duplicate key",
			before: createOne(body),
			call: func(t *testing.T, e *env, u string) error {
				return e.c.Create(t.Context(), e.c.EntityURL(ContractsSet), body, nil)
			},
			want: outcome{is: []error{ErrDuplicateKey, ErrFatal}, isNot: []error{ErrConflict, ErrRetryable}, requests: 2},
		},
		{
			name: "not found",
			call: func(t *testing.T, e *env, u string) error {
				return e.c.Get(t.Context(), e.c.EntityURL(ContractsSet)+"(00000000-0000-0000-0000-000000000000)", nil)
			},
			want: outcome{is: []error{ErrNotFound, ErrFatal}, requests: 1},
		},
		{
			name: "POST answer lost after commit: retry meets the unique key",
			opt:  bcemu.Options{Faults: bcemu.Faults{DropAfterCommit: 1}},
			call: func(t *testing.T, e *env, u string) error {
				err := e.c.Create(t.Context(), e.c.EntityURL(ContractsSet), body, nil)
				if n := len(e.emu.Entities(bcemu.SetContracts)); n != 1 {
					t.Errorf("%d contracts in BC, want 1", n)
				}
				return err
			},
			want: outcome{is: []error{ErrDuplicateKey}, requests: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opt, tt.wrap, tt.mod)
			var u string
			if tt.before != nil {
				u = tt.before(t, e)
			}
			// The waits between attempts are recorded, not timed: what they
			// add up to does not depend on the machine's speed.
			var mu sync.Mutex
			var waited time.Duration
			e.c.sleep = func(ctx context.Context, d time.Duration) error {
				mu.Lock()
				waited += d
				mu.Unlock()
				return ctx.Err()
			}
			err := tt.call(t, e, u)
			elapsed := waited
			if len(tt.want.is) == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for _, k := range tt.want.is {
				if !errors.Is(err, k) {
					t.Errorf("error %v is not %v", err, k)
				}
			}
			for _, k := range tt.want.isNot {
				if errors.Is(err, k) {
					t.Errorf("error %v is %v", err, k)
				}
			}
			if got := e.c.Stats().Requests; got != tt.want.requests {
				t.Errorf("client sent %d requests, want %d", got, tt.want.requests)
			}
			if elapsed < tt.want.minElapsed || (tt.want.maxElapsed > 0 && elapsed > tt.want.maxElapsed) {
				t.Errorf("waited %v between attempts, want [%v, %v]", elapsed, tt.want.minElapsed, tt.want.maxElapsed)
			}
		})
	}
}

func createOne(body ContractPayload) func(t *testing.T, e *env) string {
	return func(t *testing.T, e *env) string {
		var out remoteContract
		if err := e.c.Create(t.Context(), e.c.EntityURL(ContractsSet), body, &out); err != nil {
			t.Fatal(err)
		}
		return e.c.EntityURL(ContractsSet) + "(" + out.ID + ")"
	}
}

func TestClientPagingAndFilter(t *testing.T) {
	e := newEnv(t, bcemu.Options{}, nil, func(c *Config) { c.PageSize = 7 })
	for i := 0; i < 50; i++ {
		if _, err := e.emu.Insert(bcemu.SetContracts, map[string]any{"contractNumber": "N" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		filter   string
		want     int
		requests int64
	}{
		{"all, 8 pages", "", 50, 8},
		{"by number", "contractNumber eq " + QuoteString("N7"), 1, 1},
		{"quoted literal", "contractNumber eq " + QuoteString("O'Brien"), 0, 1},
		{"delta, nothing newer", "lastModifiedDateTime gt 2999-01-01T00:00:00Z", 0, 1},
		{"delta, all", "lastModifiedDateTime gt 2000-01-01T00:00:00Z", 50, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.c.Stats().Requests
			seen := map[string]bool{}
			err := e.c.List(t.Context(), e.c.EntityURL(ContractsSet), tt.filter, func(raw json.RawMessage) error {
				var r remoteContract
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				if seen[r.ID] {
					t.Errorf("entity %s listed twice", r.ID)
				}
				seen[r.ID] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != tt.want {
				t.Errorf("listed %d, want %d", len(seen), tt.want)
			}
			if got := e.c.Stats().Requests - before; got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
		})
	}
}

func TestClientBatch(t *testing.T) {
	e := newEnv(t, bcemu.Options{}, nil, nil)
	post := func(n string) BatchOp {
		return BatchOp{Method: http.MethodPost, URL: e.c.Relative(ContractsSet), Body: ContractPayload{ContractNumber: n, Status: "Draft", DefaultRateType: BlankEnum}}
	}
	tests := []struct {
		name      string
		ops       []BatchOp
		wantErr   bool
		wantIndex int
		wantCount int // contracts in BC afterwards
	}{
		{"two creates", []BatchOp{post("A"), post("B")}, false, 0, 2},
		{"duplicate rolls back the whole batch", []BatchOp{post("C"), post("A")}, true, 1, 2},
		{"too many operations", make([]BatchOp, MaxBatchOperations+1), true, -1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.c.Batch(t.Context(), tt.ops)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			var be *BatchError
			if tt.wantIndex >= 0 && tt.wantErr {
				if !errors.As(err, &be) || be.Index != tt.wantIndex || !errors.Is(err, ErrDuplicateKey) {
					t.Errorf("error %v, want BatchError at %d", err, tt.wantIndex)
				}
			}
			if !tt.wantErr && len(res) != len(tt.ops) {
				t.Errorf("%d results for %d ops", len(res), len(tt.ops))
			}
			if n := len(e.emu.Entities(bcemu.SetContracts)); n != tt.wantCount {
				t.Errorf("%d contracts in BC, want %d", n, tt.wantCount)
			}
		})
	}
}

// The client keeps at most Concurrency requests in flight. The server
// here counts a request as done before it answers, so that what it sees
// can never exceed what the client has in flight, whatever the machine's
// speed: the maximum is exact.
func TestClientRespectsConcurrency(t *testing.T) {
	var mu sync.Mutex
	cur, most := 0, 0
	inner := bcemu.New(bcemu.Options{Seed: 42})
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == inner.TokenPath() {
				h.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			cur++
			most = max(most, cur)
			mu.Unlock()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			mu.Lock()
			cur--
			mu.Unlock()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	e := newEnv(t, bcemu.Options{}, wrap, func(c *Config) { c.Concurrency = 5 })
	g, ctx := errgroup.WithContext(t.Context())
	for i := 0; i < 60; i++ {
		g.Go(func() error { return e.c.Get(ctx, e.c.EntityURL(ContractsSet), nil) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if most > 5 {
		t.Errorf("the server saw %d requests at once; the client allows 5", most)
	}
}

// fakeClock is a clock tests move: by hand (Add), or by sleeping on it,
// which advances it at once, so that a test sees the limiter's schedule,
// not the machine's speed.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.Add(d)
	return ctx.Err()
}

// The client-side rate limit: of many concurrent callers, never more than
// n start in any window, by the limiter's own clock.
func TestWindowLimiter(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	l := &windowLimiter{n: 20, window: 500 * time.Millisecond, now: clock.Now, sleep: clock.Sleep}
	var mu sync.Mutex
	var starts []time.Time
	g, ctx := errgroup.WithContext(t.Context())
	for i := 0; i < 200; i++ {
		g.Go(func() error {
			at, err := l.acquire(ctx)
			if err != nil {
				return err
			}
			mu.Lock()
			starts = append(starts, at)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for i := range starts {
		j := i
		for j < len(starts) && starts[j].Sub(starts[i]) < l.window {
			j++
		}
		if j-i > l.n {
			t.Fatalf("%d requests started within %v of %v; the limit is %d", j-i, l.window, starts[i], l.n)
		}
	}
	if span := starts[len(starts)-1].Sub(starts[0]); span < 9*l.window {
		t.Errorf("200 requests at 20 per %v spanned only %v", l.window, span)
	}
}
