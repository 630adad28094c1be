// Package bcemu emulates the parts of the Microsoft Dynamics 365 Business
// Central web API that the businesscentral connector uses: the custom
// providerContracts and contractRates API pages, the standard vendors API,
// OData paging, $filter, JSON $batch with snapshot isolation, the Microsoft
// Entra client-credentials token endpoint, and the service protection limits
// (request rate per user, concurrent requests per user).
//
// The Emulator is an http.Handler, so tests run it with httptest.NewServer;
// cmd/bcemu serves it for demos. Faults (throttling, 503s, connections dropped
// after a write committed, latency) are injected deterministically from a
// seed: whether a request is faulted depends only on the seed, the request
// (method, URL, body) and how many times that same request was seen before.
//
// Like Business Central with API schema version 2.0, enum fields hold and
// return their values' names (the blank value is "_x0020_") and refuse
// anything else; and a contract whose number changes takes its rates along,
// as a rename does in Business Central.
//
// Tests can inspect the emulated company (Entities), change an entity as a
// Business Central user would (Edit), expire issued tokens (ExpireTokens) and
// read request counters (Stats).
package bcemu

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Entity set names served by the emulator.
const (
	SetContracts = "providerContracts"
	SetRates     = "contractRates"
	SetVendors   = "vendors"
)

// Scope is the only OAuth2 scope the token endpoint accepts.
const Scope = "https://api.businesscentral.dynamics.com/.default"

// Options configures an Emulator. Zero fields take the documented defaults.
type Options struct {
	Tenant      string // default "tenant"
	Environment string // default "production"
	Publisher   string // default "repricer"
	Group       string // default "contracts"
	CompanyID   string // default "11111111-2222-3333-4444-555555555555"

	ClientID     string // required client id; default "bcemu-client"
	ClientSecret string // required client secret; default "bcemu-secret"

	// TokenLifetime is how long an issued token is accepted. ExpiresIn is
	// what the token endpoint advertises; default TokenLifetime. A lifetime
	// shorter than ExpiresIn models a token the server stops accepting
	// before the client expects it to (the client then sees a 401).
	TokenLifetime time.Duration // default 60 minutes
	ExpiresIn     time.Duration

	MaxPageSize int // server page size; default 20000

	Concurrency int // requests processed at once per user; default 5
	QueueSize   int // requests waiting beyond Concurrency; default 10

	RateLimit  int           // requests per RateWindow per user; default 6000
	RateWindow time.Duration // default 5 minutes

	Faults Faults
	Seed   uint64

	// Now is the clock that decides token expiry and the rate window;
	// default time.Now. Tests pass a clock of their own so that what they
	// assert does not depend on how fast the machine is.
	Now func() time.Time
}

// Faults configures injected failures. Fractions are in [0, 1].
type Faults struct {
	Throttle           float64       // fraction of API requests answered 429
	ThrottleRetryAfter float64       // fraction of those 429s carrying Retry-After
	Unavailable        float64       // fraction answered 503 (with Retry-After)
	DropAfterCommit    float64       // fraction of writes committed, then the connection closed unanswered
	RetryAfter         time.Duration // Retry-After value, rounded up to whole seconds (min 1)
	Latency            time.Duration // added to every API request
	LatencyJitter      time.Duration // plus a deterministic random part up to this
}

// Stats are request counters.
type Stats struct {
	Requests       int64            // API requests received (token requests excluded)
	ByMethod       map[string]int64 // API requests by HTTP method
	WriteRequests  int64            // POST, PATCH and DELETE requests, $batch included
	Mutations      int64            // committed entity changes; each batch operation counts
	Batches        int64            // $batch requests processed
	BatchRollbacks int64            // snapshot batches rolled back
	Throttled      int64            // injected 429s
	RateLimited    int64            // 429s from the request-rate limit
	QueueFull      int64            // 429s from the concurrency queue
	Unavailable    int64            // injected 503s
	Dropped        int64            // writes committed and then dropped
	Unauthorized   int64            // 401s
	TokensIssued   int64
	MaxConcurrent  int // most requests processed at the same time
}

type entity = map[string]any

// enums are the enum fields of each entity set with their values' API
// names, as Business Central's API schema 2.0 spells them: the AL value
// names, XML-encoded (the blank value " " is "_x0020_"). The first is the
// default (ordinal 0) of a new entity. A write of anything else (a caption,
// "", a number) is refused with 400, and reads return the names.
var enums = map[string]map[string][]string{
	SetContracts: {
		"status":          {"Draft", "Pending", "Active", "Expired", "Terminated"},
		"defaultRateType": {"_x0020_", "Percentage", "Amount"},
	},
	SetRates: {"rateType": {"_x0020_", "Percentage", "Amount"}},
}

// checkEnums returns a 400 status and error when a field of n holds no
// value of its enum, after giving absent enum fields their default.
func checkEnums(set string, n entity) (int, string, string) {
	for field, names := range enums[set] {
		v, ok := n[field]
		if !ok {
			n[field] = names[0]
			continue
		}
		if s, _ := v.(string); !slices.Contains(names, s) {
			return http.StatusBadRequest, "BadRequest",
				fmt.Sprintf("Cannot convert the literal '%v' to the expected type of the enum field '%s'.", v, field)
		}
	}
	return 0, "", ""
}

type table struct {
	keys []string
	rows map[string]entity         // by id
	uniq map[string]string         // key string -> id
	part map[string]map[string]any // first key field value -> ids
	made map[string]int            // key string -> creations, for ids
}

// Emulator is an emulated Business Central tenant with one company.
type Emulator struct {
	opt Options

	mu     sync.Mutex // guards tables, lastMod and writeSeq
	tables map[string]*table
	last   time.Time

	tokMu  sync.Mutex
	tokens map[string]time.Time
	tokRng *rand.Rand

	rateMu sync.Mutex
	hits   []time.Time

	faultMu sync.Mutex
	faults  Faults
	seen    map[uint64]int

	statMu sync.Mutex
	stats  Stats
	cur    int

	queue chan struct{}
	proc  chan struct{}
}

var _ http.Handler = (*Emulator)(nil)

// New returns an emulator with an empty company.
func New(opt Options) *Emulator {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&opt.Tenant, "tenant")
	def(&opt.Environment, "production")
	def(&opt.Publisher, "repricer")
	def(&opt.Group, "contracts")
	def(&opt.CompanyID, "11111111-2222-3333-4444-555555555555")
	def(&opt.ClientID, "bcemu-client")
	def(&opt.ClientSecret, "bcemu-secret")
	if opt.TokenLifetime <= 0 {
		opt.TokenLifetime = time.Hour
	}
	if opt.ExpiresIn <= 0 {
		opt.ExpiresIn = opt.TokenLifetime
	}
	if opt.MaxPageSize <= 0 {
		opt.MaxPageSize = 20000
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 5
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = 10
	}
	if opt.RateLimit <= 0 {
		opt.RateLimit = 6000
	}
	if opt.RateWindow <= 0 {
		opt.RateWindow = 5 * time.Minute
	}
	e := &Emulator{
		opt:    opt,
		tables: map[string]*table{},
		tokens: map[string]time.Time{},
		tokRng: rand.New(rand.NewPCG(opt.Seed, 0x70c3)),
		faults: opt.Faults,
		seen:   map[uint64]int{},
		queue:  make(chan struct{}, opt.Concurrency+opt.QueueSize),
		proc:   make(chan struct{}, opt.Concurrency),
	}
	e.stats.ByMethod = map[string]int64{}
	for name, keys := range map[string][]string{
		SetContracts: {"contractNumber"},
		SetRates:     {"contractNumber", "rateId"},
		SetVendors:   {"number"},
	} {
		e.tables[name] = &table{keys: keys, rows: map[string]entity{}, uniq: map[string]string{},
			part: map[string]map[string]any{}, made: map[string]int{}}
	}
	return e
}

// Options returns the effective options (defaults filled in).
func (e *Emulator) Options() Options { return e.opt }

// TokenPath is the path of the token endpoint on the emulator's server.
func (e *Emulator) TokenPath() string { return "/" + e.opt.Tenant + "/oauth2/v2.0/token" }

// SetFaults replaces the fault configuration.
func (e *Emulator) SetFaults(f Faults) {
	e.faultMu.Lock()
	e.faults = f
	e.faultMu.Unlock()
}

// ExpireTokens makes every token issued so far invalid.
func (e *Emulator) ExpireTokens() {
	e.tokMu.Lock()
	for k := range e.tokens {
		e.tokens[k] = time.Time{}
	}
	e.tokMu.Unlock()
}

// Stats returns a copy of the request counters.
func (e *Emulator) Stats() Stats {
	e.statMu.Lock()
	defer e.statMu.Unlock()
	s := e.stats
	s.ByMethod = make(map[string]int64, len(e.stats.ByMethod))
	for k, v := range e.stats.ByMethod {
		s.ByMethod[k] = v
	}
	return s
}

// Entities returns copies of every entity of a set, ordered by id.
func (e *Emulator) Entities(set string) []map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tables[set]
	if t == nil {
		return nil
	}
	out := make([]map[string]any, 0, len(t.rows))
	for _, id := range sortedIDs(t.rows) {
		out = append(out, copyEntity(t.rows[id]))
	}
	return out
}

// Edit changes fields of an entity as a Business Central user would: the
// entity gets a new ETag and lastModifiedDateTime.
func (e *Emulator) Edit(set, id string, fields map[string]any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tables[set]
	if t == nil {
		return fmt.Errorf("bcemu: no entity set %q", set)
	}
	old, ok := t.rows[id]
	if !ok {
		return fmt.Errorf("bcemu: %s(%s) not found", set, id)
	}
	n := copyEntity(old)
	for k, v := range fields {
		if !systemField(k) {
			n[k] = v
		}
	}
	if st, _, _ := e.checkUnique(t, n, id); st != 0 {
		return fmt.Errorf("bcemu: edit of %s(%s) would duplicate a key", set, id)
	}
	if st, _, msg := checkEnums(set, n); st != 0 {
		return fmt.Errorf("bcemu: edit of %s(%s): %s", set, id, msg)
	}
	e.touch(n)
	e.put(nil, t, id, n)
	return nil
}

// Insert adds an entity as a Business Central user would and returns its id.
func (e *Emulator) Insert(set string, fields map[string]any) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tables[set]
	if t == nil {
		return "", fmt.Errorf("bcemu: no entity set %q", set)
	}
	st, _, n := e.create(nil, set, t, fields)
	if st != http.StatusCreated {
		return "", fmt.Errorf("bcemu: insert into %s failed with status %d", set, st)
	}
	return n["id"].(string), nil
}

// ---- storage ----

func systemField(k string) bool {
	return k == "id" || k == "@odata.etag" || k == "lastModifiedDateTime" || strings.HasPrefix(k, "@odata.")
}

func copyEntity(m entity) entity {
	n := make(entity, len(m))
	for k, v := range m {
		n[k] = v
	}
	return n
}

func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func keyString(t *table, n entity) (string, bool) {
	var b strings.Builder
	for i, k := range t.keys {
		v, ok := n[k].(string)
		if !ok || v == "" {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// checkUnique returns a non-zero status and error code when n's key is
// missing or held by an entity other than selfID.
func (e *Emulator) checkUnique(t *table, n entity, selfID string) (int, string, string) {
	ks, ok := keyString(t, n)
	if !ok {
		return http.StatusBadRequest, "BadRequest", "key fields " + strings.Join(t.keys, ", ") + " must be set"
	}
	if other, dup := t.uniq[ks]; dup && other != selfID {
		return http.StatusConflict, "Internal_EntityWithSameKeyExists",
			"The record already exists. Identification fields and values: " + strings.Join(t.keys, ",")
	}
	return 0, "", ""
}

// txn is an undo log for a snapshot batch.
type txn struct{ undo []func() }

func (e *Emulator) put(tx *txn, t *table, id string, n entity) {
	old, had := t.rows[id]
	if had {
		e.unindex(t, id, old)
	}
	t.rows[id] = n
	e.index(t, id, n)
	if tx != nil {
		tx.undo = append(tx.undo, func() {
			e.unindex(t, id, n)
			delete(t.rows, id)
			if had {
				t.rows[id] = old
				e.index(t, id, old)
			}
		})
	}
}

func (e *Emulator) remove(tx *txn, t *table, id string) {
	old, had := t.rows[id]
	if !had {
		return
	}
	e.unindex(t, id, old)
	delete(t.rows, id)
	if tx != nil {
		tx.undo = append(tx.undo, func() {
			t.rows[id] = old
			e.index(t, id, old)
		})
	}
}

func (e *Emulator) index(t *table, id string, n entity) {
	if ks, ok := keyString(t, n); ok {
		t.uniq[ks] = id
	}
	p, _ := n[t.keys[0]].(string)
	if t.part[p] == nil {
		t.part[p] = map[string]any{}
	}
	t.part[p][id] = nil
}

func (e *Emulator) unindex(t *table, id string, n entity) {
	if ks, ok := keyString(t, n); ok && t.uniq[ks] == id {
		delete(t.uniq, ks)
	}
	p, _ := n[t.keys[0]].(string)
	delete(t.part[p], id)
	if len(t.part[p]) == 0 {
		delete(t.part, p)
	}
}

// touch gives n a new ETag and lastModifiedDateTime. ETags are derived from
// the entity id and a per-entity version, so they are reproducible.
func (e *Emulator) touch(n entity) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(e.last) {
		now = e.last.Add(time.Millisecond)
	}
	e.last = now
	ver, _ := n["@emu.version"].(int)
	ver++
	n["@emu.version"] = ver
	id, _ := n["id"].(string)
	h := fnv.New64a()
	fmt.Fprintf(h, "%s;%d", id, ver)
	n["@odata.etag"] = fmt.Sprintf(`W/"JzE5OyR%016x%d;MDsn"`, h.Sum64(), ver)
	n["lastModifiedDateTime"] = now.Format("2006-01-02T15:04:05.000Z")
}

// renameRelated does what Business Central does when a record's primary
// key changes: related records follow. A contract whose contractNumber
// changes takes its rates along (each rate gets a new ETag). It returns a
// non-zero status when a rate of the new number already exists.
func (e *Emulator) renameRelated(tx *txn, set string, old, n entity) (int, string, string) {
	from, _ := old["contractNumber"].(string)
	to, _ := n["contractNumber"].(string)
	if set != SetContracts || from == to || from == "" {
		return 0, "", ""
	}
	rates := e.tables[SetRates]
	ids := sortedIDs(rates.part[from])
	renamed := make([]entity, len(ids))
	for i, id := range ids { // all or nothing: check every key first
		renamed[i] = copyEntity(rates.rows[id])
		renamed[i]["contractNumber"] = to
		if st, code, msg := e.checkUnique(rates, renamed[i], id); st != 0 {
			return st, code, msg
		}
	}
	for i, id := range ids {
		e.touch(renamed[i])
		e.put(tx, rates, id, renamed[i])
	}
	return 0, "", ""
}

func (e *Emulator) newID(set string, t *table, ks string) string {
	t.made[ks]++
	h := fnv.New128a()
	var seed [8]byte
	binary.LittleEndian.PutUint64(seed[:], e.opt.Seed)
	h.Write(seed[:])
	fmt.Fprintf(h, "%s\x00%s\x00%d", set, ks, t.made[ks])
	b := h.Sum(nil)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (e *Emulator) create(tx *txn, set string, t *table, fields map[string]any) (int, []byte, entity) {
	n := entity{}
	for k, v := range fields {
		if !systemField(k) && !strings.HasPrefix(k, "@") {
			n[k] = v
		}
	}
	if st, code, msg := e.checkUnique(t, n, ""); st != 0 {
		return st, errBody(code, msg), nil
	}
	if st, code, msg := checkEnums(set, n); st != 0 {
		return st, errBody(code, msg), nil
	}
	ks, _ := keyString(t, n)
	id := e.newID(set, t, ks)
	n["id"] = id
	e.touch(n)
	e.put(tx, t, id, n)
	return http.StatusCreated, nil, n
}

func errBody(code, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	return b
}

// publicEntity is n without emulator bookkeeping fields.
func publicEntity(n entity, context string) map[string]any {
	m := make(map[string]any, len(n)+1)
	for k, v := range n {
		if !strings.HasPrefix(k, "@emu.") {
			m[k] = v
		}
	}
	if context != "" {
		m["@odata.context"] = context
	}
	return m
}

func readAllLimit(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("request body larger than %d bytes", n)
	}
	return b, nil
}
