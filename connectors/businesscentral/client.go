package businesscentral

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// DefaultScope is the OAuth2 scope of the Business Central API.
const DefaultScope = "https://api.businesscentral.dynamics.com/.default"

// MaxBatchOperations is the most operations Business Central accepts in one
// $batch request.
const MaxBatchOperations = 100

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	BaseURL     string // default "https://api.businesscentral.dynamics.com"
	Tenant      string // Entra tenant id or domain (required)
	Environment string // e.g. "production" (required)
	Publisher   string // API publisher of the custom pages (required)
	Group       string // API group of the custom pages (required)
	APIVersion  string // API version of the custom pages; default "v1.0"
	CompanyID   string // company SystemId (required)

	ClientID string // Entra application (client) id (required)
	// ClientSecret is the application's secret. The caller reads it from the
	// environment or a file; it is never logged.
	ClientSecret string
	TokenURL     string // default "https://login.microsoftonline.com/{Tenant}/oauth2/v2.0/token"
	Scope        string // default DefaultScope

	Concurrency int           // requests in flight at once; default 5 (the per-user limit)
	MaxRetries  int           // retries of a retryable failure; default 8
	MinBackoff  time.Duration // first backoff; default 500ms
	MaxBackoff  time.Duration // backoff cap; default 60s
	// RateLimit requests at most per RateWindow are sent (client-side, so
	// the service limit is not hit); default 6000 per 5 minutes.
	RateLimit  int
	RateWindow time.Duration
	Timeout    time.Duration // per attempt; default 2 minutes
	PageSize   int           // Prefer: odata.maxpagesize; 0 = server default

	HTTPClient *http.Client // default: a client with no overall timeout
	Seed       uint64       // seeds backoff jitter; 0 = from the clock
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.businesscentral.dynamics.com"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.APIVersion == "" {
		cfg.APIVersion = "v1.0"
	}
	for _, f := range []struct{ name, v string }{
		{"Tenant", cfg.Tenant}, {"Environment", cfg.Environment}, {"Publisher", cfg.Publisher},
		{"Group", cfg.Group}, {"CompanyID", cfg.CompanyID}, {"ClientID", cfg.ClientID}, {"ClientSecret", cfg.ClientSecret},
	} {
		if f.v == "" {
			return cfg, fmt.Errorf("businesscentral: config: %s is required", f.name)
		}
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = "https://login.microsoftonline.com/" + url.PathEscape(cfg.Tenant) + "/oauth2/v2.0/token"
	}
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 5
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 8
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 6000
	}
	if cfg.RateWindow <= 0 {
		cfg.RateWindow = 5 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	return cfg, nil
}

// Client calls the Business Central API of one company. It is safe for
// concurrent use; at most Config.Concurrency requests are in flight.
type Client struct {
	cfg     Config
	apiRoot string // .../api/{publisher}/{group}/{version}/
	stdRoot string // .../api/v2.0/
	company string // "companies({id})"
	tokens  *tokenCache
	sem     chan struct{}
	limit   *windowLimiter

	rngMu sync.Mutex
	rng   *rand.Rand

	// sleep waits between attempts (the package's sleep; tests record
	// the waits instead of timing them).
	sleep func(context.Context, time.Duration) error

	requests, retries, refreshes atomic.Int64
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	env := c.BaseURL + "/v2.0/" + url.PathEscape(c.Tenant) + "/" + url.PathEscape(c.Environment) + "/api/"
	return &Client{
		cfg:     c,
		apiRoot: env + url.PathEscape(c.Publisher) + "/" + url.PathEscape(c.Group) + "/" + url.PathEscape(c.APIVersion) + "/",
		stdRoot: env + "v2.0/",
		company: "companies(" + c.CompanyID + ")",
		tokens: &tokenCache{lock: make(chan struct{}, 1), hc: c.HTTPClient, now: time.Now, cc: clientcredentials.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: c.TokenURL, Scopes: []string{c.Scope},
			// One request per attempt (no probing of the two styles);
			// Entra accepts the secret in the form.
			AuthStyle: oauth2.AuthStyleInParams,
		}},
		sem:   make(chan struct{}, c.Concurrency),
		limit: &windowLimiter{n: c.RateLimit, window: c.RateWindow},
		rng:   rand.New(rand.NewPCG(c.Seed, 0xbc)),
		sleep: sleep,
	}, nil
}

// ClientStats are the client's counters.
type ClientStats struct {
	Requests       int64 // HTTP requests sent to the API (attempts, retries included)
	Retries        int64 // attempts beyond the first
	TokenRefreshes int64 // tokens dropped after a 401
}

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	return ClientStats{Requests: c.requests.Load(), Retries: c.retries.Load(), TokenRefreshes: c.refreshes.Load()}
}

// EntityURL returns the address of a custom-API entity set of the company,
// e.g. EntityURL("providerContracts").
func (c *Client) EntityURL(set string) string { return c.apiRoot + c.company + "/" + set }

// StandardURL returns the address of a standard v2.0 API entity set of the
// company, e.g. StandardURL("vendors").
func (c *Client) StandardURL(set string) string { return c.stdRoot + c.company + "/" + set }

// Request is one HTTP request. URL is absolute.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Response is a successful (2xx) response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// counters lets a caller attribute requests and retries to its own work.
type counters struct{ requests, retries atomic.Int64 }

type countersKey struct{}

func withCounters(ctx context.Context, c *counters) context.Context {
	return context.WithValue(ctx, countersKey{}, c)
}

const (
	maxErrorBody    = 64 << 10
	maxResponseBody = 256 << 20
)

// Do sends req, retrying retryable failures with exponential backoff and
// full jitter (or Retry-After when the response has it), and refreshing the
// token once on a 401. A non-2xx final response is an *APIError.
//
// Requests other than GET are retried too: callers make writes safe to
// repeat (unique keys, If-Match), see Sync.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	ctr, _ := ctx.Value(countersKey{}).(*counters)
	refreshed := false
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.retries.Add(1)
			if ctr != nil {
				ctr.retries.Add(1)
			}
		}
		resp, err := c.once(ctx, req, ctr)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("businesscentral: %s %s: %w", req.Method, redact(req.URL), context.Cause(ctx))
		}
		var auth *AuthError
		if errors.As(err, &auth) { // the token cache already retried what can be
			return nil, err
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && !refreshed {
			refreshed = true
			c.refreshes.Add(1)
			attempt-- // a token refresh is not a retry of a failure
			continue
		}
		if !errors.Is(err, ErrRetryable) {
			return nil, err
		}
		last = err
		if attempt >= c.cfg.MaxRetries {
			return nil, &RetriesExhaustedError{Attempts: attempt + 1, Last: last}
		}
		wait := c.backoff(attempt)
		if ae != nil && ae.RetryAfter > 0 {
			wait = ae.RetryAfter + c.jitter(c.cfg.MinBackoff)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("businesscentral: %s %s: %w", req.Method, redact(req.URL), err)
		}
	}
}

func (c *Client) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return time.Duration(c.rng.Int64N(int64(d)))
}

// backoff is "full jitter": uniform in [0, min(MaxBackoff, MinBackoff*2^n)],
// but at least MinBackoff/2.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.MinBackoff << min(attempt, 30)
	if d <= 0 || d > c.cfg.MaxBackoff {
		d = c.cfg.MaxBackoff
	}
	return c.cfg.MinBackoff/2 + c.jitter(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// once sends one attempt.
func (c *Client) once(ctx context.Context, req Request, ctr *counters) (*Response, error) {
	if err := c.limit.wait(ctx); err != nil {
		return nil, err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-c.sem }()

	tok, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(actx, req.Method, req.URL, body)
	if err != nil {
		return nil, fmt.Errorf("businesscentral: building request: %w", err)
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	hr.Header.Set("Authorization", "Bearer "+tok)
	hr.Header.Set("Accept", "application/json")
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json; IEEE754Compatible=true")
	}
	c.requests.Add(1)
	if ctr != nil {
		ctr.requests.Add(1)
	}
	resp, err := c.cfg.HTTPClient.Do(hr)
	if err != nil {
		return nil, &NetworkError{Method: req.Method, URL: redact(req.URL), Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
		cerr := resp.Body.Close()
		if rerr == nil {
			rerr = cerr
		}
		if rerr != nil {
			return nil, &NetworkError{Method: req.Method, URL: redact(req.URL), Err: rerr}
		}
		return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // best effort: the status decides
	_ = resp.Body.Close()                                       // error path; the status is what matters
	ae := &APIError{
		Method: req.Method, URL: redact(req.URL), Status: resp.StatusCode,
		Retryable:  retryableStatus(resp.StatusCode),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After")),
	}
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(b, &eb) == nil {
		ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
	}
	if resp.StatusCode == http.StatusUnauthorized {
		c.tokens.invalidate(tok)
	}
	return nil, ae
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// ---- token cache ----

// tokenCache holds the client-credentials token. It is refreshed when
// tokenMargin of its lifetime is left, or when a 401 invalidates it.
type tokenCache struct {
	lock    chan struct{} // one slot: held while the token is read or fetched
	cc      clientcredentials.Config
	hc      *http.Client
	access  string
	renewAt time.Time // by now; zero: no expiry advertised
	// refused is a definite refusal or an unreachable token endpoint:
	// every later call returns it without asking again.
	refused *AuthError
	// now is the clock that decides expiry; time.Now unless a test sets it.
	now func() time.Time
}

// maxTokenMargin caps the margin before a token's expiry: a token is
// renewed when a tenth of its lifetime, at most this, is left.
const maxTokenMargin = 10 * time.Second

// tokenMargin is how long before its expiry a token of the given lifetime
// is renewed: a tenth of the lifetime, at most maxTokenMargin. (oauth2's
// fixed 10 s margin would renew a token living less than that before
// every request.)
func tokenMargin(lifetime time.Duration) time.Duration {
	return min(lifetime/10, maxTokenMargin)
}

// token returns a valid access token, fetching one when needed. Network
// errors and 429/5xx answers of the token endpoint are retried here, under
// the cache's lock, so that all requests of the run wait on one backoff;
// a definite refusal (another status, or an answer without an access
// token) is not retried. Either way, a failure is an *AuthError that every
// later call returns at once.
func (c *Client) token(ctx context.Context) (string, error) {
	t := c.tokens
	select {
	case t.lock <- struct{}{}:
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	defer func() { <-t.lock }()
	if t.refused != nil {
		return "", t.refused
	}
	if t.access != "" && (t.renewAt.IsZero() || t.now().Before(t.renewAt)) {
		return t.access, nil
	}
	t.access = ""
	for attempt := 0; ; attempt++ {
		start := t.now()
		tok, wait, err := t.fetch(ctx)
		if err == nil {
			t.access, t.renewAt = tok.AccessToken, time.Time{}
			lifetime := time.Duration(tok.ExpiresIn) * time.Second
			if lifetime <= 0 && !tok.Expiry.IsZero() {
				lifetime = time.Until(tok.Expiry)
			}
			if lifetime > 0 {
				t.renewAt = start.Add(lifetime - tokenMargin(lifetime))
			}
			return t.access, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("businesscentral: POST %s: %w", t.cc.TokenURL, context.Cause(ctx))
		}
		var ae *AuthError
		if errors.As(err, &ae) { // a definite refusal
			t.refused = ae
			return "", ae
		}
		if attempt >= c.cfg.MaxRetries {
			t.refused = &AuthError{TokenURL: t.cc.TokenURL, Err: &RetriesExhaustedError{Attempts: attempt + 1, Last: err}}
			return "", t.refused
		}
		c.retries.Add(1)
		if wait <= 0 {
			wait = c.backoff(attempt)
		} else {
			wait += c.jitter(c.cfg.MinBackoff)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return "", fmt.Errorf("businesscentral: POST %s: %w", t.cc.TokenURL, err)
		}
	}
}

// fetch asks the token endpoint once. A retryable failure (no answer, or
// 429/5xx) is a *NetworkError or *APIError with the Retry-After to wait;
// a definite refusal is an *AuthError.
func (t *tokenCache) fetch(ctx context.Context) (*oauth2.Token, time.Duration, error) {
	base := t.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	p := &tokenProbe{base: base}
	hc := *t.hc
	hc.Transport = p
	tok, err := t.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, &hc))
	if err == nil {
		return tok, 0, nil
	}
	u := t.cc.TokenURL
	switch {
	case p.err != nil || p.status == 0:
		return nil, 0, &NetworkError{Method: http.MethodPost, URL: u, Err: err}
	case retryableStatus(p.status) || p.status >= 500:
		return nil, p.retryAfter, &APIError{Method: http.MethodPost, URL: u, Status: p.status, Retryable: true, RetryAfter: p.retryAfter}
	}
	ae := &AuthError{TokenURL: u, Status: p.status, Err: err}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		ae.Code, ae.Description = re.ErrorCode, re.ErrorDescription
	}
	return nil, 0, ae
}

// tokenProbe is the transport of one token request: it records whether
// an answer came and its status, so that a failure can be classified
// without reading oauth2's error strings.
type tokenProbe struct {
	base       http.RoundTripper
	status     int
	retryAfter time.Duration
	err        error // transport error, or an error reading the body
}

func (p *tokenProbe) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.base.RoundTrip(r)
	if err != nil {
		p.err = err
		return nil, err
	}
	p.status = resp.StatusCode
	p.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	resp.Body = &probeBody{ReadCloser: resp.Body, p: p}
	return resp, nil
}

type probeBody struct {
	io.ReadCloser
	p *tokenProbe
}

func (b *probeBody) Read(q []byte) (int, error) {
	n, err := b.ReadCloser.Read(q)
	if err != nil && err != io.EOF {
		b.p.err = err
	}
	return n, err
}

func (t *tokenCache) invalidate(access string) {
	t.lock <- struct{}{}
	if t.access == access {
		t.access = ""
	}
	<-t.lock
}

// ---- client-side rate limit ----

// windowLimiter lets at most n requests start in any window.
type windowLimiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	starts []time.Time
	// The clock: time.Now and sleep unless a test sets them.
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

func (l *windowLimiter) wait(ctx context.Context) error {
	_, err := l.acquire(ctx)
	return err
}

// acquire waits for a start and returns its time by the limiter's clock.
func (l *windowLimiter) acquire(ctx context.Context) (time.Time, error) {
	now, sleepFor := time.Now, sleep
	if l.now != nil {
		now, sleepFor = l.now, l.sleep
	}
	for {
		l.mu.Lock()
		now := now()
		cut := 0
		for cut < len(l.starts) && now.Sub(l.starts[cut]) >= l.window {
			cut++
		}
		l.starts = l.starts[cut:]
		if len(l.starts) < l.n {
			l.starts = append(l.starts, now)
			l.mu.Unlock()
			return now, nil
		}
		d := l.window - now.Sub(l.starts[0])
		l.mu.Unlock()
		if err := sleepFor(ctx, d); err != nil {
			return time.Time{}, err
		}
	}
}
