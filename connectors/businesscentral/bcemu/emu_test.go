package bcemu

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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

func TestLimits(t *testing.T) {
	tests := []struct {
		name          string
		opt           Options
		n             int
		wantLimited   bool // some requests must get 429 from the limit
		checkRate     bool
		maxConcurrent int
	}{
		{"queue full answers 429", Options{Concurrency: 2, QueueSize: 1, Faults: Faults{Latency: 50 * time.Millisecond}}, 12, true, false, 2},
		{"rate limit answers 429", Options{RateLimit: 5, RateWindow: time.Minute}, 8, true, true, 5},
		{"within limits", Options{}, 5, false, false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(tt.opt)
			srv := httptest.NewServer(e)
			defer srv.Close()
			tok := token(t, srv, e)
			u := srv.URL + "/v2.0/tenant/production/api/repricer/contracts/v1.0/companies(" + e.Options().CompanyID + ")/providerContracts"
			g, ctx := errgroup.WithContext(t.Context())
			for i := 0; i < tt.n; i++ {
				g.Go(func() error {
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
					if err != nil {
						return err
					}
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := srv.Client().Do(req)
					if err != nil {
						return err
					}
					return resp.Body.Close()
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			st := e.Stats()
			limited := st.QueueFull+st.RateLimited > 0
			if limited != tt.wantLimited {
				t.Errorf("limited %v, want %v: %+v", limited, tt.wantLimited, st)
			}
			if tt.checkRate && st.RateLimited != int64(tt.n-5) {
				t.Errorf("rate limited %d, want %d", st.RateLimited, tt.n-5)
			}
			if st.MaxConcurrent > tt.maxConcurrent {
				t.Errorf("max concurrent %d > %d", st.MaxConcurrent, tt.maxConcurrent)
			}
		})
	}
}
