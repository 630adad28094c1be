// Package repricer is the embeddable library facade of the repricer claims
// repricing engine: load a contract schedule, build an engine, and price
// claim lines one at a time, claim by claim, or whole files through the
// same pipeline the command line runs — with the same results, exceptions
// and books check.
//
// A typical ETL job:
//
//	sched, err := repricer.LoadBundle(ctx, "testdata/sample/contracts") // or LoadPostgres
//	if err != nil { ... }
//	eng := repricer.NewEngine(sched, repricer.Options{})
//	line, err := repricer.ParseLine(map[string]string{
//		"claim_id": "CLM001001", "line_number": "1", "vendor_id": "V001",
//		"cpt_code": "27447", "modifiers": "80", "specialty": "ORTHOPEDIC SURGERY",
//		"place_of_service": "11", "service_date": "2024-05-15", "billed_amount": "1400.00",
//	})
//	res := eng.PriceLine(line) // rate 1004: allowed 1150.00, admin fee 40.25, net 1109.75
//
// The facade only delegates: contract selection, rate matching and money
// arithmetic live in package rates, reference-data validation in
// contracts, file runs in pipeline. The types it hands out (claims.Line,
// claims.Result, contracts.Contract, rates.Explanation, pipeline.Summary)
// are those packages' own. The pricing rules are in docs/pricing.md; the library
// guide is docs/library.md.
package repricer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
)

// Schedule is a validated contract schedule: the contracts, rates and rate
// kinds a run prices with, plus the issues validation found. Rows that
// validation rejects stay out of pricing (a line that would use a rejected
// contract becomes CONTRACT_INVALID) and are listed by Issues.
type Schedule struct {
	v      *contracts.Validated
	source string
}

// LoadBundle reads and validates a contract bundle folder (contracts.csv,
// rates.csv and optional rate_kinds.csv). Rejected rows are not an error;
// see Issues. An unreadable bundle is a *bundle.FormatError.
func LoadBundle(ctx context.Context, dir string) (*Schedule, error) {
	s, err := bundle.Read(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("load contract bundle %s: %w", dir, err)
	}
	return &Schedule{v: contracts.Validate(s), source: "bundle:" + dir}, nil
}

// LoadPostgres reads and validates the schedule in the Postgres contract
// store named by url (postgres://…), as one consistent snapshot. The
// password never appears in errors or in Source.
func LoadPostgres(ctx context.Context, url string) (*Schedule, error) {
	s, err := postgres.LoadURL(ctx, url, postgres.Options{})
	if err != nil {
		return nil, fmt.Errorf("load contract store %s: %w", postgres.Redact(url), err)
	}
	return &Schedule{v: contracts.Validate(s), source: "postgres:" + postgres.Redact(url)}, nil
}

// NewSchedule validates a schedule built in code. kinds may be nil for the
// standard rate kinds and priorities. The slices are copied by validation.
func NewSchedule(cs []contracts.Contract, rs []contracts.Rate, kinds []contracts.RateKind) *Schedule {
	s := &contracts.Schedule{Contracts: cs, Rates: rs, Kinds: kinds}
	return &Schedule{v: contracts.Validate(s), source: "code"}
}

// Validated returns the validated schedule the engine prices with.
func (s *Schedule) Validated() *contracts.Validated { return s.v }

// Issues lists every rejected or suspicious reference row.
func (s *Schedule) Issues() []contracts.Issue { return s.v.Issues }

// Fingerprint identifies the reference data (order-independent).
func (s *Schedule) Fingerprint() string { return s.v.Fingerprint }

// Source describes where the schedule came from, without secrets.
func (s *Schedule) Source() string { return s.source }

// Calendar lists contract expirations, renewal notice deadlines and
// auto-renewals from today through today+within days (contracts.Calendar).
func (s *Schedule) Calendar(today contracts.Date, within int) []contracts.CalendarEntry {
	return contracts.Calendar(s.v, today, within)
}

// DefaultRate is a rate without criteria, e.g. the system default rate.
type DefaultRate = rates.DefaultRate

// ParseDefaultRate parses "Percentage:60" or "Amount:25.00".
func ParseDefaultRate(s string) (DefaultRate, error) { return rates.ParseDefaultRate(s) }

// Explanation is the step-by-step trace of one line's pricing.
type Explanation = rates.Explanation

// Summary is the account of a run: counts, money totals, books, inputs.
type Summary = pipeline.Summary

// Options are the engine settings that change results.
type Options struct {
	// SystemDefault is the tier-8 rate for lines no contract rate or
	// contract default covers; nil leaves them NO_RATE exceptions.
	SystemDefault *DefaultRate
}

// Engine prices claim lines against one schedule. It is safe for
// concurrent use.
type Engine struct {
	sched   *Schedule
	opts    Options
	eng     *rates.Engine
	explain bool      // eng keeps the rates Explain needs
	pricers sync.Pool // of *rates.Pricer: per-call scratch space
}

// NewEngine builds the rate index of s. Build it once and reuse it.
func NewEngine(s *Schedule, opts Options) *Engine {
	return newEngine(s, opts, rates.New(s.v, rates.Options{SystemDefault: opts.SystemDefault, Explain: true}), true)
}

func newEngine(s *Schedule, opts Options, eng *rates.Engine, explain bool) *Engine {
	e := &Engine{sched: s, opts: opts, eng: eng, explain: explain}
	e.pricers.New = func() any { return e.eng.NewPricer() }
	return e
}

// LoadEngine loads the schedule at src (a bundle folder or a postgres://
// URL) and builds an engine the way `repricer reprice` does, in bounded
// memory (package load): each rate is validated and indexed as it is read,
// and only the engine's compact index is kept — for 1M rates about 110 MB
// instead of the 350 MB of LoadBundle and NewEngine. Results are the same.
// The engine's Schedule has the contracts, issues and fingerprint but no
// rates, and Explain returns ErrNoExplain.
func LoadEngine(ctx context.Context, src string, opts Options) (*Engine, error) {
	eng, desc, err := load.Engine(ctx, src, load.Options{Rates: rates.Options{SystemDefault: opts.SystemDefault}})
	if err != nil {
		if postgres.IsURL(src) {
			src = postgres.Redact(src)
		}
		return nil, fmt.Errorf("load schedule %s: %w", src, err)
	}
	return newEngine(&Schedule{v: eng.Schedule(), source: desc}, opts, eng, false), nil
}

// Schedule returns the schedule the engine prices with.
func (e *Engine) Schedule() *Schedule { return e.sched }

// Rates returns the underlying pricing engine, for callers that manage
// their own rates.Pricer per goroutine.
func (e *Engine) Rates() *rates.Engine { return e.eng }

// PriceLine prices one line as a claim of its own (stop loss over that one
// line). A line that failed ParseLine comes back as INVALID_ROW.
func (e *Engine) PriceLine(line claims.Line) claims.Result {
	return e.PriceClaim([]claims.Line{line})[0]
}

// PriceClaim prices lines and returns their results in the same order.
// Lines are grouped by claim_id (keeping their order), so each claim is
// priced as a whole: repeated line numbers are DUPLICATE_LINE and stop loss
// applies per (claim, contract) case. Invalid lines are INVALID_ROW.
func (e *Engine) PriceClaim(lines []claims.Line) []claims.Result {
	p := e.pricers.Get().(*rates.Pricer)
	defer e.pricers.Put(p)
	out := make([]claims.Result, len(lines))
	for _, idx := range groupByClaim(lines) {
		items := make([]claims.Item, len(idx))
		for k, i := range idx {
			items[k].Line = lines[i]
		}
		p.PriceClaim(items)
		for k, i := range idx {
			out[i] = items[k].Result
		}
	}
	return out
}

// groupByClaim returns the positions of lines grouped by claim_id, claims
// in order of first appearance; invalid lines form a group of their own.
func groupByClaim(lines []claims.Line) [][]int {
	var groups [][]int
	at := map[string]int{}
	for i := range lines {
		l := &lines[i]
		if l.Invalid != nil {
			groups = append(groups, []int{i})
			continue
		}
		g, ok := at[l.ClaimID]
		if !ok {
			g = len(groups)
			at[l.ClaimID] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// ErrLineIndex reports an Explain index outside the lines given.
var ErrLineIndex = errors.New("line index out of range")

// ErrNoExplain reports Explain on an engine from LoadEngine, which keeps
// no rates to explain with.
var ErrNoExplain = errors.New("the engine was loaded without its rates (LoadEngine); build it with NewEngine to explain")

// Explain traces how lines[i] is priced among lines (the other lines of
// its claim matter for duplicates and stop loss; lines of other claims are
// ignored). The trace's Result equals what PriceClaim returns for it.
func (e *Engine) Explain(lines []claims.Line, i int) (*Explanation, error) {
	if !e.explain {
		return nil, ErrNoExplain
	}
	if i < 0 || i >= len(lines) {
		return nil, fmt.Errorf("explain line %d of %d: %w", i, len(lines), ErrLineIndex)
	}
	var items []claims.Item
	at := 0
	for _, g := range groupByClaim(lines) {
		if !contains(g, i) {
			continue
		}
		for k, j := range g {
			if j == i {
				at = k
			}
			items = append(items, claims.Item{Line: lines[j]})
		}
	}
	return e.eng.Explain(items, at), nil
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// RunConfig describes a file run. Exactly one of Claims and Input is used:
// Claims when it is not empty, else Input read as CSV.
type RunConfig struct {
	// Claims are claim files (.csv, .parquet or .pq), read in order.
	Claims []string
	// Input is CSV claim lines, for callers that stream from elsewhere.
	Input io.Reader
	// OutDir receives priced.*, exceptions.*, schedule_issues.csv and
	// summary.json when the run succeeds, and nothing otherwise.
	OutDir string
	// Format of the priced and exception files: "csv" (default) or "parquet".
	Format string
	// Workers pricing in parallel; 0 means one per CPU.
	Workers int
	// Mapping renames input columns: canonical name -> name in the file.
	Mapping map[string]string
}

// ErrNoClaims reports a RunConfig with neither Claims nor Input.
var ErrNoClaims = errors.New("no claims: set RunConfig.Claims or RunConfig.Input")

// Run prices claim files into cfg.OutDir through pipeline.Run: the same
// outputs, books check and atomic publication as `repricer reprice`.
func (e *Engine) Run(ctx context.Context, cfg RunConfig) (*Summary, error) {
	if err := claims.CheckMapping(cfg.Mapping); err != nil {
		return nil, err
	}
	files := cfg.Claims
	if len(files) == 0 {
		if cfg.Input == nil {
			return nil, ErrNoClaims
		}
		files = []string{"-"}
	}
	pc := pipeline.Config{
		Engine: e.eng, Claims: files, Stdin: cfg.Input, OutDir: cfg.OutDir,
		Format: cfg.Format, Workers: cfg.Workers, Mapping: cfg.Mapping,
		ReferenceSource: e.sched.source,
	}
	if e.opts.SystemDefault != nil {
		pc.SystemDefaultRate = e.opts.SystemDefault.String()
	}
	sum, err := pipeline.Run(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("repricing run: %w", err)
	}
	return sum, nil
}

// StreamOptions tune PriceCSV and PriceRecords.
type StreamOptions struct {
	// Mapping renames input columns: canonical name -> name in the input.
	// A canonical name that is not one is a *claims.MappingError.
	Mapping map[string]string
	// Buffered holds all lines in memory and groups claims itself, for
	// input whose claims may be scattered. Without it memory stays bounded
	// and a scattered claim fails the call with pipeline.ErrUngrouped.
	Buffered bool
	// Workers pricing in parallel; 0 means one per CPU.
	Workers int
}

// PriceCSV prices the CSV claim lines read from in and writes the priced
// lines and the exceptions as CSV to priced and exceptions, touching no
// file: for ETL jobs that stream. Rows are written as they are priced, so
// when PriceCSV fails (for example the books do not balance) the caller
// must discard what it received.
func (e *Engine) PriceCSV(ctx context.Context, in io.Reader, priced, exceptions io.Writer, opts StreamOptions) (*Summary, error) {
	if err := claims.CheckMapping(opts.Mapping); err != nil {
		return nil, err
	}
	r, err := claimcsv.NewReader(in, "input", opts.Mapping)
	if err != nil {
		return nil, err
	}
	w, err := claimcsv.NewWriter(priced, exceptions)
	if err != nil {
		return nil, err
	}
	return e.stream(ctx, r, w, opts)
}

// PriceRecords prices claim lines held as Arrow record batches (columns
// named as in the claim files; see docs/parquet.md for the accepted types)
// and hands the priced and exception rows back as record batches of
// claimparquet.PricedSchema and ExceptionSchema. Each batch is released
// when the function it is given to returns; Retain it to keep it.
func (e *Engine) PriceRecords(ctx context.Context, rr array.RecordReader, priced, exceptions func(arrow.RecordBatch) error, opts StreamOptions) (*Summary, error) {
	if err := claims.CheckMapping(opts.Mapping); err != nil {
		return nil, err
	}
	r, err := claimparquet.NewRecordReader(ctx, rr, "records", opts.Mapping)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	w, err := claimparquet.NewRecordWriter(priced, exceptions)
	if err != nil {
		return nil, err
	}
	return e.stream(ctx, r, w, opts)
}

func (e *Engine) stream(ctx context.Context, r pipeline.LineReader, w pipeline.ResultWriter, opts StreamOptions) (*Summary, error) {
	sc := pipeline.StreamConfig{Engine: e.eng, Sources: []pipeline.LineReader{r}, Writer: w,
		Buffered: opts.Buffered, Workers: opts.Workers, ReferenceSource: e.sched.source}
	if e.opts.SystemDefault != nil {
		sc.SystemDefaultRate = e.opts.SystemDefault.String()
	}
	return pipeline.Stream(ctx, sc)
}

// LineError is a ParseLine input that cannot be priced: an unknown column
// or a field that fails to parse (Field is the column).
type LineError struct {
	Field  string
	Reason string
}

func (e *LineError) Error() string { return "claim line field " + e.Field + ": " + e.Reason }

// ParseLine builds a claim line from canonical column names (claim_id,
// line_number, vendor_id, member_id, provider_npi, cpt_code, modifiers,
// specialty, visit_kind, place_of_service, service_date, units,
// billed_amount, prior_auth_number; case-insensitive) to values, parsed
// exactly as a claim file row is. It returns a *LineError for an unknown
// column or a missing or malformed field.
func ParseLine(values map[string]string) (claims.Line, error) {
	var l claims.Line
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := claims.FieldByName(k)
		if !ok {
			return claims.Line{}, &LineError{Field: k, Reason: "unknown column; known columns are " + strings.Join(claims.FieldNames[:], ", ")}
		}
		l.Raw[f] = values[k]
	}
	l.Parse()
	if l.Invalid != nil {
		return l, &LineError{Field: l.Invalid.Field, Reason: l.Invalid.Reason}
	}
	return l, nil
}
