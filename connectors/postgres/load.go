package postgres

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Source file names Load puts into contracts.Source (the row is the
// 1-based position in the table's load order).
const (
	SourceContracts = "postgres:contracts"
	SourceRates     = "postgres:rates"
	SourceKinds     = "postgres:rate_kinds"
)

// Load reads the reference data of a run — every rate kind, every contract
// and every current (not retired) rate — into the model the bundle reader
// produces. Everything is read in one REPEATABLE READ READ ONLY transaction,
// so the schedule is one consistent snapshot even while an import commits.
// Rows are streamed in primary-key order (kinds by priority, contracts by
// contract_id, rates by rate_id) straight into the schedule.
//
// Repeated values (contract ids in rates, kinds, specialties, codes, place
// of service lists) share one string or slice each; treat them as read-only.
//
// On any failure — a dropped connection, a cancelled context, a value the
// model cannot hold — Load returns a *LoadError and no schedule.
func Load(ctx context.Context, db *sqlx.DB) (*contracts.Schedule, error) {
	return load(ctx, db, nil)
}

// LoadStream is Load for a caller that validates and indexes rates as they
// come instead of holding them all: in the same snapshot, it calls header
// with the kinds and contracts (Rates empty), then rate for each rate in
// rate_id order. rate must not keep r, which is reused. An error from
// header or rate stops the load and is returned as is; a failure of the
// database is a *LoadError.
func LoadStream(ctx context.Context, db *sqlx.DB, header func(*contracts.Schedule) error, rate func(r *contracts.Rate) error) error {
	_, err := loadWith(ctx, db, nil, header, rate)
	return err
}

// Export reads the database into a schedule for bundle.Write. It is Load:
// the same snapshot guarantee and order, with every rate kind included.
func Export(ctx context.Context, db *sqlx.DB) (*contracts.Schedule, error) {
	return load(ctx, db, nil)
}

// LoadURL opens the database at url, loads it and closes it: the one call
// a run needs for --contracts postgres://...
func LoadURL(ctx context.Context, url string, opts Options) (s *contracts.Schedule, err error) {
	err = WithDB(ctx, url, opts, func(db *sqlx.DB) error {
		s, err = Load(ctx, db)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// rowHook, when set, is called after each rate row is read (tests).
type rowHook func(table string, n int)

// epoch is the day number PostgreSQL dates are sent relative to.
var epochOffset = int32(contracts.DateOf(1970, 1, 1))

func load(ctx context.Context, db *sqlx.DB, hook rowHook) (*contracts.Schedule, error) {
	return loadWith(ctx, db, hook, nil, nil)
}

// loadWith reads the snapshot; with rate set, rates go to it instead of
// into the schedule, after header has had the kinds and contracts.
func loadWith(ctx context.Context, db *sqlx.DB, hook rowHook, header func(*contracts.Schedule) error, rate func(*contracts.Rate) error) (s *contracts.Schedule, err error) {
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, &LoadError{Err: err}
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the load already failed; the rollback error adds nothing
			s = nil
			return
		}
		if cerr := tx.Commit(); cerr != nil {
			s, err = nil, &LoadError{Err: cerr}
		}
	}()

	var nContracts, nRates int
	if err := tx.QueryRowxContext(ctx, `SELECT (SELECT count(*) FROM contracts),
		(SELECT count(*) FROM rates WHERE retired_at IS NULL)`).Scan(&nContracts, &nRates); err != nil {
		return nil, &LoadError{Err: err}
	}
	s = &contracts.Schedule{Contracts: make([]contracts.Contract, 0, nContracts)}
	if rate == nil {
		s.Rates = make([]contracts.Rate, 0, nRates)
		rate = func(r *contracts.Rate) error {
			s.Rates = append(s.Rates, *r)
			return nil
		}
	}
	in := newInterner()
	if err := loadKinds(ctx, tx, s); err != nil {
		return nil, err
	}
	if err := loadContracts(ctx, tx, s, in); err != nil {
		return nil, err
	}
	if header != nil {
		if err := header(s); err != nil {
			return nil, err
		}
	}
	if err := loadRates(ctx, tx, in, hook, rate); err != nil {
		return nil, err
	}
	return s, nil
}

func loadKinds(ctx context.Context, tx *sqlx.Tx, s *contracts.Schedule) (err error) {
	rows, err := tx.QueryxContext(ctx, `SELECT kind, priority FROM rate_kinds ORDER BY priority, kind`)
	if err != nil {
		return &LoadError{Table: "rate_kinds", Err: err}
	}
	defer closeInto(&err, rows)
	n := 0
	for rows.Next() {
		n++
		k := contracts.RateKind{Source: contracts.Source{File: SourceKinds, Row: n}}
		if err := rows.Scan(&k.Kind, &k.Priority); err != nil {
			return &LoadError{Table: "rate_kinds", Row: n - 1, Err: err}
		}
		s.Kinds = append(s.Kinds, k)
	}
	if err := rows.Err(); err != nil {
		return &LoadError{Table: "rate_kinds", Row: n, Err: err}
	}
	return nil
}

// Dates are sent as day offsets from 1970-01-01 cast to numeric: lib/pq
// hands numeric values over as raw bytes, without allocating.
const contractsQuery = `SELECT contract_id, coalesce(contract_number, ''), vendor_id, status, status_reason,
	(effective_date - DATE '1970-01-01')::numeric, (expiration_date - DATE '1970-01-01')::numeric,
	auto_renewal, coalesce(renewal_term_months, 0)::numeric, coalesce(renewal_notice_days, 0)::numeric,
	tpa_agreement, tpa_name, tpa_medical_necessity, tpa_prior_auth_required,
	coalesce(default_rate_type, ''), default_rate_value, stop_loss_amount, admin_fee_pct,
	array_to_string(excluded_services, ','), lesser_of_billed, source_updated_at
FROM contracts ORDER BY contract_id`

func loadContracts(ctx context.Context, tx *sqlx.Tx, s *contracts.Schedule, in *interner) (err error) {
	rows, err := tx.QueryxContext(ctx, contractsQuery)
	if err != nil {
		return &LoadError{Table: "contracts", Err: err}
	}
	defer closeInto(&err, rows)
	var (
		status, rateType, excluded                  string
		eff, exp, term, notice, defVal, stop, admin sql.RawBytes
	)
	n := 0
	for rows.Next() {
		n++
		s.Contracts = append(s.Contracts, contracts.Contract{Source: contracts.Source{File: SourceContracts, Row: n}})
		c := &s.Contracts[len(s.Contracts)-1]
		if err := rows.Scan(&c.ID, &c.Number, &c.VendorID, &status, &c.StatusReason,
			&eff, &exp, &c.AutoRenewal, &term, &notice,
			&c.TPA, &c.TPAName, &c.TPAMedicalNecessity, &c.TPAPriorAuthRequired,
			&rateType, &defVal, &stop, &admin, &excluded, &c.LesserOfBilled, &c.UpdatedAt); err != nil {
			return &LoadError{Table: "contracts", Row: n - 1, Err: err}
		}
		c.VendorID = in.str(c.VendorID)
		p := parser{table: "contracts", id: c.ID}
		c.Status = contracts.Status(in.str(status))
		c.Effective = p.date("effective_date", eff)
		c.Expiration = p.date("expiration_date", exp)
		c.RenewalTermMonths = p.int("renewal_term_months", term)
		c.RenewalNoticeDays = p.int("renewal_notice_days", notice)
		c.DefaultRateType = p.rateType("default_rate_type", rateType, true)
		if defVal != nil {
			c.DefaultRateValue, c.HasDefaultRate = p.fixed("default_rate_value", defVal), true
		}
		if stop != nil {
			c.StopLoss = p.cents("stop_loss_amount", stop)
		}
		c.AdminFeePct = p.fixed("admin_fee_pct", admin)
		if excluded != "" {
			for _, item := range strings.Split(excluded, ",") {
				lo, hi, isRange := strings.Cut(item, "-")
				if !isRange {
					hi = lo
				}
				c.ExcludedServices = append(c.ExcludedServices, contracts.CodeRange{Lo: in.str(lo), Hi: in.str(hi)})
			}
		}
		if p.err != nil {
			return &LoadError{Table: "contracts", Row: n - 1, Err: p.err}
		}
	}
	if err := rows.Err(); err != nil {
		return &LoadError{Table: "contracts", Row: n, Err: err}
	}
	return nil
}

// The repeated text columns of a rate travel as one record value: lib/pq
// hands types it does not decode (record, numeric) over as raw bytes, so
// the loader interns them without allocating a string per column.
const ratesQuery = `SELECT rate_id,
	ROW(contract_id, rate_kind, rate_type, specialty, visit_kind, cpt_code,
	    cpt_range_start, cpt_range_end, modifier, array_to_string(place_of_service, ','),
	    rate_value, effective_date - DATE '1970-01-01', end_date - DATE '1970-01-01',
	    coalesce(min_units, 0), coalesce(max_units, 0)),
	requires_auth, requires_review, active
FROM rates WHERE retired_at IS NULL ORDER BY rate_id`

// rateFields is the number of fields in the record of ratesQuery.
const rateFields = 15

// hookEvery is how often the test hook is called while reading rates.
const hookEvery = 1000

func loadRates(ctx context.Context, tx *sqlx.Tx, in *interner, hook rowHook, fn func(*contracts.Rate) error) (err error) {
	rows, err := tx.QueryxContext(ctx, ratesQuery)
	if err != nil {
		return &LoadError{Table: "rates", Err: err}
	}
	defer closeInto(&err, rows)
	var (
		record  sql.RawBytes
		f       [rateFields][]byte
		scratch []byte
	)
	n := 0
	var rt contracts.Rate
	for rows.Next() {
		n++
		rt = contracts.Rate{Source: contracts.Source{File: SourceRates, Row: n}}
		r := &rt
		if err := rows.Scan(&r.ID, &record, &r.RequiresAuth, &r.RequiresReview, &r.Active); err != nil {
			return &LoadError{Table: "rates", Row: n - 1, Err: err}
		}
		p := parser{table: "rates", id: r.ID}
		if scratch, err = splitRecord(record, f[:], scratch[:0]); err != nil {
			return &LoadError{Table: "rates", Row: n - 1, Err: &ValueError{Table: "rates", ID: r.ID, Column: "(record)", Value: string(record), Err: err}}
		}
		r.ContractID = in.bytes(f[0])
		r.Kind = in.bytes(f[1])
		r.Type = p.rateType("rate_type", unsafeString(f[2]), false)
		r.Specialty = in.bytes(f[3])
		r.VisitKind = in.bytes(f[4])
		r.CPTCode = in.bytes(f[5])
		r.RangeStart = in.bytes(f[6])
		r.RangeEnd = in.bytes(f[7])
		r.Modifier = in.bytes(f[8])
		r.PlaceOfService = in.list(f[9])
		r.Value = p.fixed("rate_value", f[10])
		r.Effective = p.date("effective_date", f[11])
		if len(f[12]) > 0 { // NULL: open-ended
			r.End = p.date("end_date", f[12])
		}
		r.MinUnits = p.int("min_units", f[13])
		r.MaxUnits = p.int("max_units", f[14])
		if p.err != nil {
			return &LoadError{Table: "rates", Row: n - 1, Err: p.err}
		}
		if err := fn(r); err != nil {
			return err
		}
		if hook != nil && n%hookEvery == 0 {
			hook("rates", n)
		}
	}
	if err := rows.Err(); err != nil {
		return &LoadError{Table: "rates", Row: n, Err: err}
	}
	return nil
}

var errRecord = errors.New("malformed record value")

// splitRecord splits the text form of a record, "(a,b,\"c d\",,...)",
// into exactly len(fields) fields. Unquoted fields point into rec; quoted
// fields are unescaped into scratch (returned for reuse). A NULL field and
// an empty one both come back empty.
func splitRecord(rec []byte, fields [][]byte, scratch []byte) ([]byte, error) {
	if len(rec) < 2 || rec[0] != '(' || rec[len(rec)-1] != ')' {
		return scratch, errRecord
	}
	body := rec[1 : len(rec)-1]
	// Reserve scratch so that appends never move earlier fields.
	if cap(scratch) < len(body) {
		scratch = make([]byte, 0, 2*len(body))
	}
	i, f := 0, 0
	for {
		if f == len(fields) {
			return scratch, errRecord
		}
		if i < len(body) && body[i] == '"' {
			start := len(scratch)
			i++
			for {
				if i >= len(body) {
					return scratch, errRecord
				}
				c := body[i]
				if c == '\\' && i+1 < len(body) {
					scratch = append(scratch, body[i+1])
					i += 2
					continue
				}
				if c == '"' {
					if i+1 < len(body) && body[i+1] == '"' {
						scratch = append(scratch, '"')
						i += 2
						continue
					}
					i++
					break
				}
				scratch = append(scratch, c)
				i++
			}
			fields[f] = scratch[start:len(scratch):len(scratch)]
		} else {
			j := i
			for j < len(body) && body[j] != ',' {
				j++
			}
			fields[f] = body[i:j]
			i = j
		}
		f++
		if i == len(body) {
			break
		}
		if body[i] != ',' {
			return scratch, errRecord
		}
		i++
	}
	if f != len(fields) {
		return scratch, errRecord
	}
	return scratch, nil
}

// parser converts raw column values, keeping the first failure.
type parser struct {
	table, id string
	err       error
}

func (p *parser) fail(column string, raw []byte, err error) {
	if p.err == nil {
		p.err = &ValueError{Table: p.table, ID: p.id, Column: column, Value: string(raw), Err: err}
	}
}

// int parses a whole number sent as numeric text.
func (p *parser) int(column string, raw []byte) int {
	if raw == nil {
		p.fail(column, raw, errNull)
		return 0
	}
	neg := false
	if len(raw) > 0 && raw[0] == '-' {
		neg, raw = true, raw[1:]
	}
	if len(raw) == 0 || len(raw) > 18 {
		p.fail(column, raw, strconv.ErrSyntax)
		return 0
	}
	n := 0
	for _, c := range raw {
		if c < '0' || c > '9' {
			p.fail(column, raw, strconv.ErrSyntax)
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n
}

func (p *parser) date(column string, raw []byte) contracts.Date {
	days := p.int(column, raw)
	return contracts.Date(int32(days) + epochOffset)
}

func (p *parser) fixed(column string, raw []byte) money.Fixed {
	if raw == nil {
		p.fail(column, raw, errNull)
		return 0
	}
	f, err := money.ParseFixed(unsafeString(raw))
	if err != nil {
		p.fail(column, raw, err)
	}
	return f
}

func (p *parser) cents(column string, raw []byte) money.Cents {
	c, err := money.ParseCents(unsafeString(raw))
	if err != nil {
		p.fail(column, raw, err)
	}
	return c
}

func (p *parser) rateType(column, s string, optional bool) contracts.RateType {
	switch s {
	case "Percentage":
		return contracts.Percentage
	case "Amount":
		return contracts.Amount
	case "":
		if optional {
			return 0
		}
	}
	p.fail(column, []byte(s), errors.New("not a rate type"))
	return 0
}

// interner shares one copy of each repeated string and code list.
type interner struct {
	strs  map[string]string
	lists map[string][]string
}

func newInterner() *interner {
	return &interner{strs: map[string]string{"": ""}, lists: map[string][]string{"": nil}}
}

func (in *interner) str(s string) string {
	if v, ok := in.strs[s]; ok {
		return v
	}
	in.strs[s] = s
	return s
}

// bytes returns the shared copy of the string b holds.
func (in *interner) bytes(b []byte) string {
	if v, ok := in.strs[string(b)]; ok { // no allocation for the lookup
		return v
	}
	v := string(b)
	in.strs[v] = v
	return v
}

// list returns the shared code list of a comma-joined list.
func (in *interner) list(joined []byte) []string {
	if v, ok := in.lists[string(joined)]; ok {
		return v
	}
	parts := strings.Split(string(joined), ",")
	for i, p := range parts {
		parts[i] = in.str(p)
	}
	in.lists[string(joined)] = parts
	return parts
}
