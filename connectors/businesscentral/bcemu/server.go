package bcemu

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const maxRequestBody = 32 << 20

// ServeHTTP serves the token endpoint and the API.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == e.TokenPath() {
		e.serveToken(w, r)
		return
	}
	e.statMu.Lock()
	e.stats.Requests++
	e.stats.ByMethod[r.Method]++
	if r.Method != http.MethodGet {
		e.stats.WriteRequests++
	}
	e.statMu.Unlock()

	body, err := readAllLimit(r.Body, maxRequestBody)
	if err != nil {
		writeErr(w, http.StatusRequestEntityTooLarge, "BadRequest", err.Error())
		return
	}
	if !e.authorized(r) {
		e.count(func(s *Stats) { s.Unauthorized++ })
		w.Header().Set("WWW-Authenticate", `Bearer realm="", error="invalid_token"`)
		writeErr(w, http.StatusUnauthorized, "Authentication_InvalidCredentials", "The credentials provided are incorrect")
		return
	}
	if !e.allowRate() {
		e.count(func(s *Stats) { s.RateLimited++ })
		writeErr(w, http.StatusTooManyRequests, "Application_TooManyRequests",
			fmt.Sprintf("Number of requests exceeded the limit of %d over the time window of %d seconds.",
				e.opt.RateLimit, int(e.opt.RateWindow.Seconds())))
		return
	}
	select {
	case e.queue <- struct{}{}:
	default:
		e.count(func(s *Stats) { s.QueueFull++ })
		writeErr(w, http.StatusTooManyRequests, "Application_TooManyRequests", "Too many concurrent requests.")
		return
	}
	select {
	case e.proc <- struct{}{}:
	case <-r.Context().Done():
		<-e.queue
		return
	}
	e.statMu.Lock()
	e.cur++
	if e.cur > e.stats.MaxConcurrent {
		e.stats.MaxConcurrent = e.cur
	}
	e.statMu.Unlock()
	// The request stops counting as processed (and frees its places)
	// before any of its answer is sent: a client that sends its next
	// request as soon as it has an answer never makes the emulator see
	// more requests at once than the client has in flight, however the
	// goroutines are scheduled.
	released := false
	release := func() {
		if !released {
			released = true
			e.statMu.Lock()
			e.cur--
			e.statMu.Unlock()
			<-e.proc
			<-e.queue
		}
	}
	defer release()

	f, rng := e.decide(r, body)
	if d := f.Latency + time.Duration(rng.Float64()*float64(f.LatencyJitter)); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	x := rng.Float64()
	switch {
	case x < f.Throttle:
		release()
		e.count(func(s *Stats) { s.Throttled++ })
		if rng.Float64() < f.ThrottleRetryAfter {
			w.Header().Set("Retry-After", retryAfter(f.RetryAfter))
		}
		writeErr(w, http.StatusTooManyRequests, "Application_TooManyRequests", "Too many requests.")
		return
	case x < f.Throttle+f.Unavailable:
		release()
		e.count(func(s *Stats) { s.Unavailable++ })
		w.Header().Set("Retry-After", retryAfter(f.RetryAfter))
		writeErr(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable.")
		return
	}
	drop := r.Method != http.MethodGet && rng.Float64() < f.DropAfterCommit

	res := e.route(r, body)
	release()
	if drop && res.status < 300 {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				e.count(func(s *Stats) { s.Dropped++ })
				_ = conn.Close() // the point is to drop it; nothing to report
				return
			}
		}
	}
	for k, v := range res.header {
		w.Header()[k] = v
	}
	if len(res.body) > 0 {
		w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; charset=utf-8")
	}
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body) // client gone: nothing to do
}

func (e *Emulator) count(f func(*Stats)) {
	e.statMu.Lock()
	f(&e.stats)
	e.statMu.Unlock()
}

func retryAfter(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}

// decide returns the fault settings and a generator seeded from the seed,
// the request and how often the same request was seen.
func (e *Emulator) decide(r *http.Request, body []byte) (Faults, *rand.Rand) {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s %s\x00", r.Method, r.URL.RequestURI())
	h.Write(body)
	fp := h.Sum64()
	e.faultMu.Lock()
	f := e.faults
	e.seen[fp]++
	n := e.seen[fp]
	e.faultMu.Unlock()
	return f, rand.New(rand.NewPCG(e.opt.Seed^fp, uint64(n)))
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(errBody(code, msg)) // client gone: nothing to do
}

// ---- auth ----

func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenErr(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	} else {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		tokenErr(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	case subtle.ConstantTimeCompare([]byte(id), []byte(e.opt.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(e.opt.ClientSecret)) != 1:
		tokenErr(w, http.StatusUnauthorized, "invalid_client")
		return
	case r.PostForm.Get("scope") != Scope:
		tokenErr(w, http.StatusBadRequest, "invalid_scope")
		return
	}
	var raw [24]byte
	e.tokMu.Lock()
	for i := 0; i < len(raw); i += 8 {
		v := e.tokRng.Uint64()
		for j := 0; j < 8; j++ {
			raw[i+j] = byte(v >> (8 * j))
		}
	}
	tok := "emu." + hex.EncodeToString(raw[:])
	e.tokens[tok] = e.now().Add(e.opt.TokenLifetime)
	e.tokMu.Unlock()
	e.count(func(s *Stats) { s.TokensIssued++ })
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{ // client gone: nothing to do
		"token_type":   "Bearer",
		"expires_in":   int(e.opt.ExpiresIn.Seconds()),
		"access_token": tok,
	})
}

func tokenErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code}) // client gone: nothing to do
}

func (e *Emulator) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	e.tokMu.Lock()
	exp, ok := e.tokens[tok]
	e.tokMu.Unlock()
	return ok && e.now().Before(exp)
}

// now is the emulator's clock (Options.Now).
func (e *Emulator) now() time.Time {
	if e.opt.Now != nil {
		return e.opt.Now()
	}
	return time.Now()
}

func (e *Emulator) allowRate() bool {
	now := e.now()
	e.rateMu.Lock()
	defer e.rateMu.Unlock()
	cut := 0
	for cut < len(e.hits) && now.Sub(e.hits[cut]) >= e.opt.RateWindow {
		cut++
	}
	e.hits = e.hits[cut:]
	if len(e.hits) >= e.opt.RateLimit {
		return false
	}
	e.hits = append(e.hits, now)
	return true
}

// ---- routing ----

type result struct {
	status int
	header http.Header
	body   []byte
}

func errResult(status int, code, msg string) result {
	return result{status: status, body: errBody(code, msg)}
}

// apiRoot returns the API root path ("/v2.0/t/env/api/pub/grp/v1.0/") that
// path lies under, and the rest of the path.
func (e *Emulator) apiRoot(path string) (root, rest string, ok bool) {
	prefix := "/v2.0/" + e.opt.Tenant + "/" + e.opt.Environment + "/api/"
	for _, r := range []string{prefix + e.opt.Publisher + "/" + e.opt.Group + "/v1.0/", prefix + "v2.0/"} {
		if rest, ok := strings.CutPrefix(path, r); ok {
			return r, rest, true
		}
	}
	return "", "", false
}

func (e *Emulator) route(r *http.Request, body []byte) result {
	root, rest, ok := e.apiRoot(r.URL.Path)
	if !ok {
		return errResult(http.StatusNotFound, "BadRequest_NotFound", "No API found at this address.")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	origin := scheme + "://" + r.Host
	if rest == "$batch" {
		if r.Method != http.MethodPost {
			return errResult(http.StatusMethodNotAllowed, "BadRequest_MethodNotAllowed", "Use POST for $batch.")
		}
		return e.batch(origin, root, r.Header, body)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.exec(nil, origin, root, r.Method, rest, r.URL.Query(), r.Header, body)
	if r.Method != http.MethodGet && res.status < 300 {
		e.count(func(s *Stats) { s.Mutations++ })
	}
	return res
}

// exec runs one operation. e.mu must be held.
func (e *Emulator) exec(tx *txn, origin, root, method, rest string, q url.Values, h http.Header, body []byte) result {
	comp, rest, ok := strings.Cut(rest, "/")
	if !ok || comp != "companies("+e.opt.CompanyID+")" {
		return errResult(http.StatusNotFound, "BadRequest_NotFound", "The company was not found.")
	}
	set, id := rest, ""
	if i := strings.IndexByte(rest, '('); i >= 0 && strings.HasSuffix(rest, ")") {
		set, id = rest[:i], rest[i+1:len(rest)-1]
	}
	t := e.tables[set]
	if t == nil {
		return errResult(http.StatusNotFound, "BadRequest_NotFound", "Resource not found for the segment '"+set+"'.")
	}
	ctx := origin + root + "$metadata#companies(" + e.opt.CompanyID + ")/" + set
	one := func(status int, n entity) result {
		b, _ := json.Marshal(publicEntity(n, ctx+"/$entity"))
		hd := http.Header{}
		hd.Set("ETag", n["@odata.etag"].(string))
		return result{status: status, header: hd, body: b}
	}
	switch {
	case method == http.MethodGet && id == "":
		return e.list(t, origin+root+comp+"/"+set, ctx, q, h)
	case method == http.MethodGet:
		n, ok := t.rows[id]
		if !ok {
			return errResult(http.StatusNotFound, "BadRequest_NotFound", "The entity was not found.")
		}
		return one(http.StatusOK, n)
	case method == http.MethodPost && id == "":
		var fields map[string]any
		if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
			return errResult(http.StatusBadRequest, "BadRequest", "Invalid JSON body.")
		}
		st, eb, n := e.create(tx, set, t, fields)
		if st != http.StatusCreated {
			return result{status: st, body: eb}
		}
		return one(st, n)
	case (method == http.MethodPatch || method == http.MethodDelete) && id != "":
		old, ok := t.rows[id]
		if !ok {
			return errResult(http.StatusNotFound, "BadRequest_NotFound", "The entity was not found.")
		}
		match := h.Get("If-Match")
		if match == "" {
			return errResult(http.StatusBadRequest, "BadRequest_InvalidToken",
				"Could not validate the client concurrency token required by the service. Please provide a valid token in the client request.")
		}
		if match != "*" && match != old["@odata.etag"] {
			return errResult(http.StatusConflict, "Request_EntityChanged",
				"Another user has already changed the record.")
		}
		if method == http.MethodDelete {
			e.remove(tx, t, id)
			return result{status: http.StatusNoContent}
		}
		var fields map[string]any
		if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
			return errResult(http.StatusBadRequest, "BadRequest", "Invalid JSON body.")
		}
		n := copyEntity(old)
		for k, v := range fields {
			if !systemField(k) && !strings.HasPrefix(k, "@") {
				n[k] = v
			}
		}
		if st, code, msg := e.checkUnique(t, n, id); st != 0 {
			return errResult(st, code, msg)
		}
		if st, code, msg := checkEnums(set, n); st != 0 {
			return errResult(st, code, msg)
		}
		if st, code, msg := e.renameRelated(tx, set, old, n); st != 0 {
			return errResult(st, code, msg)
		}
		e.touch(n)
		e.put(tx, t, id, n)
		return one(http.StatusOK, n)
	}
	return errResult(http.StatusMethodNotAllowed, "BadRequest_MethodNotAllowed", "Method not allowed.")
}

type cond struct {
	field, op, value string
	when             time.Time
}

func parseFilter(s string) ([]cond, error) {
	if s == "" {
		return nil, nil
	}
	var out []cond
	for _, part := range strings.Split(s, " and ") {
		f := strings.SplitN(strings.TrimSpace(part), " ", 3)
		if len(f) != 3 || (f[1] != "eq" && f[1] != "gt") {
			return nil, fmt.Errorf("unsupported filter %q", part)
		}
		c := cond{field: f[0], op: f[1], value: f[2]}
		if strings.HasPrefix(c.value, "'") && strings.HasSuffix(c.value, "'") && len(c.value) >= 2 {
			c.value = strings.ReplaceAll(c.value[1:len(c.value)-1], "''", "'")
		} else if c.field == "lastModifiedDateTime" {
			t, err := time.Parse(time.RFC3339Nano, c.value)
			if err != nil {
				return nil, fmt.Errorf("bad date-time %q", c.value)
			}
			c.when = t
		} else {
			return nil, fmt.Errorf("unsupported literal %q", c.value)
		}
		if c.op == "gt" && c.field != "lastModifiedDateTime" {
			return nil, fmt.Errorf("gt is supported on lastModifiedDateTime only")
		}
		out = append(out, c)
	}
	return out, nil
}

func (c cond) match(n entity) bool {
	v := n[c.field]
	if c.field == "lastModifiedDateTime" {
		t, err := time.Parse(time.RFC3339Nano, v.(string))
		if err != nil {
			return false
		}
		if c.op == "gt" {
			return t.After(c.when)
		}
		return t.Equal(c.when)
	}
	s, ok := v.(string)
	if !ok {
		s = fmt.Sprint(v)
	}
	return s == c.value
}

func (e *Emulator) list(t *table, self, ctx string, q url.Values, h http.Header) result {
	conds, err := parseFilter(q.Get("$filter"))
	if err != nil {
		return errResult(http.StatusBadRequest, "BadRequest", err.Error())
	}
	if q.Has("$skip") {
		return errResult(http.StatusBadRequest, "BadRequest", "$skip is not supported; follow @odata.nextLink.")
	}
	candidates := t.rows
	for _, c := range conds {
		if c.op == "eq" && c.field == t.keys[0] {
			ids := t.part[c.value]
			candidates = make(map[string]entity, len(ids))
			for id := range ids {
				candidates[id] = t.rows[id]
			}
			break
		}
	}
	var ids []string
	for id, n := range candidates {
		ok := true
		for _, c := range conds {
			if !c.match(n) {
				ok = false
				break
			}
		}
		if ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if tok := q.Get("$skiptoken"); tok != "" {
		after, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return errResult(http.StatusBadRequest, "BadRequest", "Invalid skip token.")
		}
		i := sort.SearchStrings(ids, string(after))
		for i < len(ids) && ids[i] <= string(after) {
			i++
		}
		ids = ids[i:]
	}
	size := e.opt.MaxPageSize
	hd := http.Header{}
	for _, p := range h.Values("Prefer") {
		for _, pp := range strings.Split(p, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(pp), "odata.maxpagesize="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 && n < size {
					size = n
					hd.Set("Preference-Applied", "odata.maxpagesize="+v)
				}
			}
		}
	}
	var next string
	if len(ids) > size {
		ids = ids[:size]
		nq := url.Values{}
		for k, v := range q {
			if k != "$skiptoken" {
				nq[k] = v
			}
		}
		nq.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(ids[len(ids)-1])))
		next = self + "?" + nq.Encode()
	}
	var b bytes.Buffer
	b.WriteString(`{"@odata.context":`)
	cb, _ := json.Marshal(ctx)
	b.Write(cb)
	b.WriteString(`,"value":[`)
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		eb, _ := json.Marshal(publicEntity(t.rows[id], ""))
		b.Write(eb)
	}
	b.WriteByte(']')
	if next != "" {
		b.WriteString(`,"@odata.nextLink":`)
		nb, _ := json.Marshal(next)
		b.Write(nb)
	}
	b.WriteByte('}')
	return result{status: http.StatusOK, header: hd, body: b.Bytes()}
}

// ---- $batch ----

type batchRequest struct {
	Method  string            `json:"method"`
	ID      string            `json:"id"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

type batchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// MaxBatchOperations is the most operations one $batch may hold.
const MaxBatchOperations = 100

func (e *Emulator) batch(origin, root string, h http.Header, body []byte) result {
	var req struct {
		Requests []batchRequest `json:"requests"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return errResult(http.StatusBadRequest, "BadRequest", "Invalid batch body.")
	}
	if len(req.Requests) > MaxBatchOperations {
		return errResult(http.StatusBadRequest, "BadRequest",
			fmt.Sprintf("The batch contains %d operations; at most %d are allowed.", len(req.Requests), MaxBatchOperations))
	}
	snapshot := strings.EqualFold(h.Get("Isolation"), "snapshot")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count(func(s *Stats) { s.Batches++ })
	tx := &txn{}
	var out []batchResponse
	var muts int64
	failed := false
	for _, br := range req.Requests {
		u, err := url.Parse(br.URL)
		var res result
		if err != nil {
			res = errResult(http.StatusBadRequest, "BadRequest", "Invalid URL.")
		} else {
			path := u.Path
			if !u.IsAbs() && !strings.HasPrefix(path, "/") {
				path = root + path
			}
			_, rest, ok := e.apiRoot(path)
			if !ok {
				res = errResult(http.StatusNotFound, "BadRequest_NotFound", "No API found at this address.")
			} else {
				hh := http.Header{}
				for k, v := range br.Headers {
					hh.Set(k, v)
				}
				res = e.exec(tx, origin, root, strings.ToUpper(br.Method), rest, u.Query(), hh, br.Body)
			}
		}
		resp := batchResponse{ID: br.ID, Status: res.status, Body: res.body}
		if len(res.body) > 0 || res.header.Get("ETag") != "" {
			resp.Headers = map[string]string{}
			if len(res.body) > 0 {
				resp.Headers["content-type"] = "application/json; odata.metadata=minimal"
			}
			if et := res.header.Get("ETag"); et != "" {
				resp.Headers["etag"] = et
			}
		}
		if res.status >= 400 {
			failed = true
			if snapshot {
				out = []batchResponse{resp}
			} else {
				out = append(out, resp)
			}
			break
		}
		if !strings.EqualFold(br.Method, http.MethodGet) {
			muts++
		}
		out = append(out, resp)
	}
	if failed && snapshot {
		for i := len(tx.undo) - 1; i >= 0; i-- {
			tx.undo[i]()
		}
		muts = 0
		e.count(func(s *Stats) { s.BatchRollbacks++ })
	}
	e.count(func(s *Stats) { s.Mutations += muts })
	b, _ := json.Marshal(map[string]any{"responses": out})
	return result{status: http.StatusOK, body: b}
}
