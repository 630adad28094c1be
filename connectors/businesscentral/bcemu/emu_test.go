package bcemu

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

func token(t *testing.T, srv *httptest.Server, e *Emulator) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"bcemu-client"},
		"client_secret": {"bcemu-secret"}, "scope": {Scope}}
	resp, err := srv.Client().PostForm(srv.URL+e.TokenPath(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, `"access_token":"`)
	if i < 0 {
		t.Fatalf("no token in %s", s)
	}
	s = s[i+len(`"access_token":"`):]
	return s[:strings.IndexByte(s, '"')]
}

// The service limits, exactly: requests beyond the concurrency and queue
// are refused while the others are held (their latency ends only when the
// test lets them go), and the request-rate window is on a clock that does
// not move, so neither depends on the machine's speed.
func TestLimits(t *testing.T) {
	fixed := time.Unix(1_000_000, 0)
	tests := []struct {
		name          string
		opt           Options
		n             int
		hold          int   // requests held until the others are answered
		wantQueueFull int64 // 429s from the queue
		wantRate      int64 // 429s from the rate limit
		maxConcurrent int
	}{
		{"queue full answers 429", Options{Concurrency: 2, QueueSize: 1, Faults: Faults{Latency: time.Hour}}, 12, 3, 9, 0, 2},
		{"rate limit answers 429", Options{RateLimit: 5, RateWindow: time.Minute}, 8, 0, 0, 3, 5},
		{"within limits", Options{}, 5, 0, 0, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opt.Now = func() time.Time { return fixed }
			e := New(tt.opt)
			srv := httptest.NewServer(e)
			defer srv.Close()
			tok := token(t, srv, e)
			u := srv.URL + "/v2.0/tenant/production/api/repricer/contracts/v1.0/companies(" + e.Options().CompanyID + ")/providerContracts"
			ctx, release := context.WithCancel(t.Context())
			defer release()
			var answered sync.WaitGroup
			answered.Add(tt.n - tt.hold)
			g := new(errgroup.Group)
			for i := 0; i < tt.n; i++ {
				g.Go(func() error {
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
					if err != nil {
						return err
					}
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := srv.Client().Do(req)
					if err != nil {
						if ctx.Err() != nil {
							return nil // a held request, let go
						}
						return err
					}
					answered.Done()
					return resp.Body.Close()
				})
			}
			answered.Wait()
			release() // the held requests end
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			st := e.Stats()
			if st.QueueFull != tt.wantQueueFull || st.RateLimited != tt.wantRate {
				t.Errorf("queue-full %d, rate-limited %d; want %d and %d: %+v", st.QueueFull, st.RateLimited, tt.wantQueueFull, tt.wantRate, st)
			}
			if st.MaxConcurrent > tt.maxConcurrent {
				t.Errorf("max concurrent %d > %d", st.MaxConcurrent, tt.maxConcurrent)
			}
		})
	}
}
