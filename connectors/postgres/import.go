package postgres

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// ImportCounts counts what an import did to one table.
type ImportCounts struct {
	Inserted  int // new rows
	Updated   int // existing rows whose values changed
	Unchanged int // existing rows already holding the same values
	Retired   int // rates: current rows of an imported contract missing from the bundle
}

// ImportReport is what Import wrote.
type ImportReport struct {
	NewVendors int
	Kinds      ImportCounts
	Contracts  ImportCounts
	Rates      ImportCounts
	// Issues are the findings contracts.Validate makes on the imported
	// schedule: rows the database accepts but a run will reject or warn
	// about (for example a rate above its contract's stop loss). They are
	// imported as they are; a run from the database reports them exactly as
	// a run from the bundle would.
	Issues []contracts.Issue
	// Fingerprint is the imported schedule's Fingerprint.
	Fingerprint string
	Duration    time.Duration
}

// Import writes s (typically read by bundle.Read) into the database in one
// transaction: either every row is stored or, on any error, nothing is.
//
// Refused (the import fails with an *ImportError listing every refused row
// with its file, row, field and reason, and writes nothing):
//   - a row a reader could not parse (its LoadError is set);
//   - a row breaking a rule the database enforces: a missing or malformed
//     required value, an unknown status, rate type or rate kind, a value out
//     of range, dates out of order, a malformed code or code range, a
//     duplicate id or contract_number (within the bundle or against a
//     contract already stored), overlapping in-force contracts of one
//     vendor, a rate whose contract is neither in the bundle nor stored.
//
// Imported as they are, and listed in ImportReport.Issues: rows that only
// fail the business rules contracts.Validate applies at run time (a rate
// above stop loss or outside its contract's term, a kind's required fields
// missing, a Terminated contract without a reason, ...).
//
// Semantics: each contract in s replaces the stored one with the same
// contract_id (inserted when new) and the rates in s are upserted by
// rate_id. A stored current rate of a contract in s that s no longer lists
// is retired: kept with retired_at set, and no longer loaded. Contracts not
// in s, and their rates, are left alone. Rate kinds in s update the stored
// priorities; vendors are created as needed. Importing the same schedule
// twice changes nothing the second time.
func Import(ctx context.Context, db *sqlx.DB, s *contracts.Schedule) (*ImportReport, error) {
	return importKeeping(ctx, db, s, nil)
}

// importKeeping is Import, except that the stored rates whose ids are in
// keep are not retired when s does not list them (ImportAccepted keeps the
// stored row of a rate whose new row it refused).
func importKeeping(ctx context.Context, db *sqlx.DB, s *contracts.Schedule, keep []string) (rep *ImportReport, err error) {
	start := time.Now()
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("postgres: import: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the import already failed; nothing was written
			rep = nil
		}
	}()
	rep = &ImportReport{}
	if err := importTx(ctx, tx, s, keep, rep); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("postgres: import: commit: %w", asConstraintError(err))
	}
	v := contracts.Validate(s)
	rep.Issues = v.Issues
	rep.Fingerprint = v.Fingerprint
	rep.Duration = time.Since(start)
	return rep, nil
}

// ImportAccepted imports the rows of s that the database accepts and
// leaves out the rows Import would refuse, with what depends on them (the
// rates of a refused contract, even when that contract is stored), in one
// transaction. It returns every row it left out, each with its file, line,
// field and reason; the import of the rest is as Import's, except that a
// stored rate whose new row is left out stays as stored (it is not
// retired). A schedule whose rows are all refused imports nothing and
// returns them all.
func ImportAccepted(ctx context.Context, db *sqlx.DB, s *contracts.Schedule) (*ImportReport, []RowError, error) {
	cur := *s
	// Positions of cur's rows in s, to report refused rows against s.
	kindAt, contractAt, rateAt := positions(len(s.Kinds)), positions(len(s.Contracts)), positions(len(s.Rates))
	var refused []RowError
	var keep []string // ids of refused rates: their stored rows stay
	for {
		rep, err := importKeeping(ctx, db, &cur, keep)
		var ie *ImportError
		if !errors.As(err, &ie) {
			sortRows(refused) // in bundle order, whichever round refused them
			return rep, refused, err
		}
		// Of contracts whose terms overlap, each is kept in file order
		// unless it overlaps a stored contract or one kept before it, as
		// the first of duplicate rows would be; a contract refused for
		// another reason keeps nothing out.
		overlapsOf := map[int][]int{}
		refusedFor := map[int]bool{} // contracts refused for another reason
		for _, r := range ie.Rows {
			switch {
			case r.Entity != "contract":
			case r.Constraint == overlapConstraint:
				overlapsOf[r.index] = append(overlapsOf[r.index], r.other)
			default:
				refusedFor[r.index] = true
			}
		}
		kept := map[int]bool{}
		for _, i := range slices.Sorted(maps.Keys(overlapsOf)) {
			if !refusedFor[i] && !slices.ContainsFunc(overlapsOf[i], func(j int) bool { return j < 0 || kept[j] }) {
				kept[i] = true
			}
		}
		drop := map[string]map[int]bool{"rate_kind": {}, "contract": {}, "rate": {}}
		for _, r := range ie.Rows {
			if drop[r.Entity] == nil {
				return nil, refused, err // not a row of s: nothing to leave out
			}
			if r.Entity == "contract" && r.Constraint == overlapConstraint && kept[r.index] {
				continue
			}
			drop[r.Entity][r.index] = true
			switch r.Entity {
			case "rate_kind":
				r.index = kindAt[r.index]
			case "contract":
				r.index = contractAt[r.index]
			case "rate":
				keep = append(keep, cur.Rates[r.index].ID)
				r.index = rateAt[r.index]
			}
			refused = append(refused, r)
		}
		// The rates of a contract that is left out go with it, also when
		// the contract is stored (they must not be written onto the stored
		// version).
		left := map[string]bool{}
		for i := range cur.Contracts {
			if !drop["contract"][i] {
				left[cur.Contracts[i].ID] = true
			}
		}
		gone := map[string]bool{}
		for i := range drop["contract"] {
			if id := cur.Contracts[i].ID; !left[id] {
				gone[id] = true
			}
		}
		for j := range cur.Rates {
			r := &cur.Rates[j]
			if !gone[r.ContractID] || drop["rate"][j] {
				continue
			}
			drop["rate"][j] = true
			file, row, line := srcOf(r.Source, bundleRates, rateAt[j])
			refused = append(refused, RowError{index: rateAt[j], File: file, Row: row, Line: line, Entity: "rate", ID: r.ID,
				Field: "contract_id", Value: r.ContractID, Reason: "its contract is refused", Constraint: "rates_contract_id_fkey"})
			keep = append(keep, r.ID)
		}
		if len(drop["rate_kind"])+len(drop["contract"])+len(drop["rate"]) == 0 {
			return nil, refused, err // nothing left to leave out: never retry the same import
		}
		cur.Kinds, kindAt = without(cur.Kinds, kindAt, drop["rate_kind"])
		cur.Contracts, contractAt = without(cur.Contracts, contractAt, drop["contract"])
		cur.Rates, rateAt = without(cur.Rates, rateAt, drop["rate"])
	}
}

func positions(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

// without returns rows and their positions less the indexes in drop.
func without[T any](rows []T, at []int, drop map[int]bool) ([]T, []int) {
	if len(drop) == 0 {
		return rows, at
	}
	var keep []T
	var keepAt []int
	for i := range rows {
		if !drop[i] {
			keep, keepAt = append(keep, rows[i]), append(keepAt, at[i])
		}
	}
	return keep, keepAt
}

// Column lists, in bundle order, shared by the staging tables, COPY and the
// upserts.
var (
	contractCols = []string{
		"contract_id", "contract_number", "vendor_id", "status", "status_reason",
		"effective_date", "expiration_date", "auto_renewal", "renewal_term_months",
		"renewal_notice_days", "tpa_agreement", "tpa_name", "tpa_medical_necessity",
		"tpa_prior_auth_required", "default_rate_type", "default_rate_value",
		"stop_loss_amount", "admin_fee_pct", "excluded_services", "lesser_of_billed", "source_updated_at",
	}
	rateCols = []string{
		"rate_id", "contract_id", "rate_kind", "rate_type", "rate_value", "specialty",
		"visit_kind", "cpt_code", "cpt_range_start", "cpt_range_end", "modifier",
		"place_of_service", "effective_date", "end_date", "min_units", "max_units",
		"requires_auth", "requires_review", "active",
	}
)

func importTx(ctx context.Context, tx *sqlx.Tx, s *contracts.Schedule, keep []string, rep *ImportReport) error {
	refused, bad := precheck(s)
	// One import at a time; readers (Load) are not blocked.
	if _, err := tx.ExecContext(ctx, `LOCK TABLE contracts, rates IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("postgres: import: lock: %w", err)
	}
	for _, q := range []string{
		`CREATE TEMP TABLE stage_contracts ON COMMIT DROP AS
			SELECT 0 AS src_row, ` + strings.Join(contractCols, ", ") + ` FROM contracts WITH NO DATA`,
		`CREATE TEMP TABLE stage_rates ON COMMIT DROP AS
			SELECT 0 AS src_row, ` + strings.Join(rateCols, ", ") + ` FROM rates WITH NO DATA`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("postgres: import: staging: %w", err)
		}
	}
	// Rows the precheck refused are not staged, so that the checks below
	// still report every other refused row.
	if err := copyRows(ctx, tx, "stage_contracts", contractCols, len(s.Contracts), func(i int, vals []driver.Value) bool {
		if bad.contracts[i] {
			return false
		}
		contractValues(&s.Contracts[i], vals)
		return true
	}); err != nil {
		return err
	}
	if err := copyRows(ctx, tx, "stage_rates", rateCols, len(s.Rates), func(i int, vals []driver.Value) bool {
		if bad.rates[i] {
			return false
		}
		rateValues(&s.Rates[i], vals)
		return true
	}); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `ANALYZE stage_contracts; ANALYZE stage_rates`); err != nil {
		return fmt.Errorf("postgres: import: analyze: %w", err)
	}
	rows, err := checkStaged(ctx, tx, s)
	if err != nil {
		return err
	}
	if refused = append(refused, rows...); len(refused) > 0 {
		sortRows(refused)
		return &ImportError{Rows: refused}
	}
	return upsert(ctx, tx, s, keep, rep)
}

// sortRows orders refused rows as the bundle files are read: contracts,
// rates, rate kinds, each by file and row.
func sortRows(rows []RowError) {
	slices.SortStableFunc(rows, func(a, b RowError) int {
		return cmp.Or(cmp.Compare(fileOrder(a.Entity), fileOrder(b.Entity)), cmp.Compare(a.File, b.File), cmp.Compare(a.Row, b.Row))
	})
}

// fileOrder orders refused rows as the bundle files are read.
func fileOrder(entity string) int {
	switch entity {
	case "contract":
		return 0
	case "rate":
		return 1
	}
	return 2
}

// copyRows streams the rows fill accepts of n into table with COPY FROM
// STDIN. Each row gets its index in src_row.
func copyRows(ctx context.Context, tx *sqlx.Tx, table string, cols []string, n int, fill func(int, []driver.Value) bool) (err error) {
	stmt, err := tx.PrepareContext(ctx, `COPY `+table+` (src_row, `+strings.Join(cols, ", ")+`) FROM STDIN`)
	if err != nil {
		return fmt.Errorf("postgres: import: copy %s: %w", table, err)
	}
	defer closeInto(&err, stmt)
	vals := make([]driver.Value, len(cols)+1)
	args := make([]any, len(vals))
	for i := 0; i < n; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		clear(vals)
		vals[0] = int64(i)
		if !fill(i, vals[1:]) {
			continue
		}
		for j, v := range vals {
			args[j] = v
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("postgres: import: copy %s row %d: %w", table, i+1, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("postgres: import: copy %s: %w", table, err)
	}
	return nil
}

func nullStr(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int) driver.Value {
	if n == 0 {
		return nil
	}
	return int64(n)
}

func dateVal(d contracts.Date) driver.Value {
	if d.IsZero() {
		return nil
	}
	return d.String()
}

// arrayLiteral formats codes as a PostgreSQL text[] literal.
func arrayLiteral(codes []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range codes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(c); j++ {
			if c[j] == '"' || c[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func contractValues(c *contracts.Contract, v []driver.Value) {
	var excl []string
	for _, r := range c.ExcludedServices {
		if r.Lo == r.Hi {
			excl = append(excl, r.Lo)
		} else {
			excl = append(excl, r.Lo+"-"+r.Hi)
		}
	}
	var defVal, stop driver.Value
	if c.HasDefaultRate {
		defVal = c.DefaultRateValue.String()
	}
	if c.StopLoss != 0 {
		stop = c.StopLoss.String()
	}
	copy(v, []driver.Value{
		c.ID, nullStr(c.Number), c.VendorID, string(c.Status), c.StatusReason,
		dateVal(c.Effective), dateVal(c.Expiration), c.AutoRenewal, nullInt(c.RenewalTermMonths),
		nullInt(c.RenewalNoticeDays), c.TPA, c.TPAName, c.TPAMedicalNecessity,
		c.TPAPriorAuthRequired, nullStr(c.DefaultRateType.String()), defVal,
		stop, c.AdminFeePct.String(), arrayLiteral(excl), c.LesserOfBilled, c.UpdatedAt,
	})
}

func rateValues(r *contracts.Rate, v []driver.Value) {
	v[0], v[1], v[2], v[3], v[4] = r.ID, r.ContractID, r.Kind, r.Type.String(), r.Value.String()
	v[5], v[6], v[7], v[8], v[9], v[10] = r.Specialty, r.VisitKind, r.CPTCode, r.RangeStart, r.RangeEnd, r.Modifier
	v[11], v[12], v[13], v[14], v[15] = arrayLiteral(r.PlaceOfService), dateVal(r.Effective), dateVal(r.End), nullInt(r.MinUnits), nullInt(r.MaxUnits)
	v[16], v[17], v[18] = r.RequiresAuth, r.RequiresReview, r.Active
}

// overlapConstraint keeps the terms of a vendor's in-force contracts apart.
const overlapConstraint = "contracts_vendor_term_excl"

// inForce lists the statuses whose terms may not overlap per vendor.
const inForce = `('Active', 'Expired', 'Terminated')`

// checkStaged finds the refused rows that need the stored data to be seen:
// contract numbers and overlapping terms against stored contracts, and
// rates whose contract is nowhere.
func checkStaged(ctx context.Context, tx *sqlx.Tx, s *contracts.Schedule) ([]RowError, error) {
	var out []RowError
	contract := func(i int) (string, int, int) { return srcOf(s.Contracts[i].Source, bundleContracts, i) }
	rate := func(i int) (string, int, int) { return srcOf(s.Rates[i].Source, bundleRates, i) }

	type numberClash struct {
		Row   int    `db:"src_row"`
		ID    string `db:"contract_id"`
		Num   string `db:"contract_number"`
		Other string `db:"other"`
	}
	var clashes []numberClash
	if err := tx.SelectContext(ctx, &clashes, `SELECT s.src_row, s.contract_id, s.contract_number, c.contract_id AS other
		FROM stage_contracts s JOIN contracts c
		  ON c.contract_number = s.contract_number AND c.contract_id <> s.contract_id
		WHERE NOT EXISTS (SELECT 1 FROM stage_contracts x WHERE x.contract_id = c.contract_id)
		ORDER BY s.src_row`); err != nil {
		return nil, fmt.Errorf("postgres: import: check contract numbers: %w", err)
	}
	for _, c := range clashes {
		file, row, line := contract(c.Row)
		out = append(out, RowError{index: c.Row, File: file, Row: row, Line: line, Entity: "contract", ID: c.ID, Field: "contract_number", Value: c.Num,
			Reason: "contract_number already used by stored contract " + c.Other, Constraint: "contracts_contract_number_key"})
	}

	type overlap struct {
		Row      int           `db:"src_row"`
		ID       string        `db:"contract_id"`
		Other    string        `db:"other"`
		OtherRow sql.NullInt64 `db:"other_row"`
		Eff      string        `db:"eff"`
		Exp      string        `db:"exp"`
		OEff     string        `db:"oeff"`
		OExp     string        `db:"oexp"`
	}
	var overlaps []overlap
	if err := tx.SelectContext(ctx, &overlaps, `WITH merged AS (
			SELECT src_row, contract_id, vendor_id, effective_date, expiration_date
			FROM stage_contracts WHERE status IN `+inForce+`
			UNION ALL
			SELECT NULL, c.contract_id, c.vendor_id, c.effective_date, c.expiration_date
			FROM contracts c
			WHERE c.status IN `+inForce+`
			  AND NOT EXISTS (SELECT 1 FROM stage_contracts x WHERE x.contract_id = c.contract_id))
		SELECT a.src_row, a.contract_id, b.contract_id AS other, b.src_row AS other_row,
			a.effective_date::text AS eff, a.expiration_date::text AS exp,
			b.effective_date::text AS oeff, b.expiration_date::text AS oexp
		FROM merged a JOIN merged b
		  ON a.vendor_id = b.vendor_id AND a.contract_id <> b.contract_id
		 AND daterange(a.effective_date, a.expiration_date, '[]') && daterange(b.effective_date, b.expiration_date, '[]')
		WHERE a.src_row IS NOT NULL
		ORDER BY a.src_row, b.contract_id`); err != nil {
		return nil, fmt.Errorf("postgres: import: check overlaps: %w", err)
	}
	for _, o := range overlaps {
		file, row, line := contract(o.Row)
		where, other := "stored contract "+o.Other, -1
		if o.OtherRow.Valid {
			other = int(o.OtherRow.Int64)
			where = fmt.Sprintf("contract %s (%s)", o.Other, locOf(s.Contracts[other].Source, bundleContracts, other))
		}
		out = append(out, RowError{index: o.Row, other: other, File: file, Row: row, Line: line, Entity: "contract", ID: o.ID, Field: "effective_date",
			Reason:     fmt.Sprintf("term %s..%s overlaps %s (%s..%s) of the same vendor; in-force contracts of a vendor may not overlap", o.Eff, o.Exp, where, o.OEff, o.OExp),
			Constraint: overlapConstraint})
	}

	type orphan struct {
		Row      int    `db:"src_row"`
		ID       string `db:"rate_id"`
		Contract string `db:"contract_id"`
	}
	var orphans []orphan
	if err := tx.SelectContext(ctx, &orphans, `SELECT r.src_row, r.rate_id, r.contract_id FROM stage_rates r
		WHERE NOT EXISTS (SELECT 1 FROM stage_contracts c WHERE c.contract_id = r.contract_id)
		  AND NOT EXISTS (SELECT 1 FROM contracts c WHERE c.contract_id = r.contract_id)
		ORDER BY r.src_row`); err != nil {
		return nil, fmt.Errorf("postgres: import: check rate contracts: %w", err)
	}
	inBundle := make(map[string]bool, len(s.Contracts))
	for i := range s.Contracts {
		inBundle[s.Contracts[i].ID] = true
	}
	for _, o := range orphans {
		if inBundle[o.Contract] {
			continue // its contract was refused, and is reported
		}
		file, row, line := rate(o.Row)
		out = append(out, RowError{index: o.Row, File: file, Row: row, Line: line, Entity: "rate", ID: o.ID, Field: "contract_id", Value: o.Contract,
			Reason: "contract is neither in the bundle nor stored", Constraint: "rates_contract_id_fkey"})
	}
	return out, nil
}

// upsert moves the staged rows into the tables.
func upsert(ctx context.Context, tx *sqlx.Tx, s *contracts.Schedule, keep []string, rep *ImportReport) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO vendors (vendor_id)
		SELECT DISTINCT vendor_id FROM stage_contracts ON CONFLICT DO NOTHING`)
	if err != nil {
		return fmt.Errorf("postgres: import: vendors: %w", asConstraintError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("postgres: import: vendors: %w", err)
	}
	rep.NewVendors = int(n)

	for _, k := range s.Kinds {
		var inserted sql.NullBool
		err := tx.QueryRowxContext(ctx, `INSERT INTO rate_kinds (kind, priority) VALUES ($1, $2)
			ON CONFLICT (kind) DO UPDATE SET priority = EXCLUDED.priority, updated_at = now()
			WHERE rate_kinds.priority <> EXCLUDED.priority
			RETURNING (xmax = 0)`, k.Kind, k.Priority).Scan(&inserted)
		switch {
		case err == sql.ErrNoRows:
			rep.Kinds.Unchanged++
		case err != nil:
			return fmt.Errorf("postgres: import: rate kind %s: %w", k.Kind, asConstraintError(err))
		case inserted.Bool:
			rep.Kinds.Inserted++
		default:
			rep.Kinds.Updated++
		}
	}

	if err := upsertTable(ctx, tx, "contracts", "contract_id", contractCols, "", &rep.Contracts); err != nil {
		return err
	}
	rep.Contracts.Unchanged = len(s.Contracts) - rep.Contracts.Inserted - rep.Contracts.Updated
	if err := upsertTable(ctx, tx, "rates", "rate_id", rateCols, "retired_at = NULL", &rep.Rates); err != nil {
		return err
	}
	rep.Rates.Unchanged = len(s.Rates) - rep.Rates.Inserted - rep.Rates.Updated

	if keep == nil {
		keep = []string{} // pq.Array sends a nil slice as NULL, and <> ALL(NULL) is never true
	}
	res, err = tx.ExecContext(ctx, `UPDATE rates r SET retired_at = now(), updated_at = now()
		WHERE r.retired_at IS NULL
		  AND r.contract_id IN (SELECT contract_id FROM stage_contracts)
		  AND NOT EXISTS (SELECT 1 FROM stage_rates x WHERE x.rate_id = r.rate_id)
		  AND r.rate_id <> ALL($1)`, pq.Array(keep))
	if err != nil {
		return fmt.Errorf("postgres: import: retire rates: %w", err)
	}
	if n, err = res.RowsAffected(); err != nil {
		return fmt.Errorf("postgres: import: retire rates: %w", err)
	}
	rep.Rates.Retired = int(n)
	return nil
}

// upsertTable inserts the staged rows of table, updating the stored rows
// whose values differ (and only those, so updated_at tracks real changes).
// extraSet is an additional SET clause that also counts as a change when
// the stored row is retired.
func upsertTable(ctx context.Context, tx *sqlx.Tx, table, key string, cols []string, extraSet string, counts *ImportCounts) error {
	var set, stored, excluded []string
	for _, c := range cols {
		if c == key {
			continue
		}
		set = append(set, c+" = EXCLUDED."+c)
		stored = append(stored, table+"."+c)
		excluded = append(excluded, "EXCLUDED."+c)
	}
	set = append(set, "updated_at = now()")
	changed := "(" + strings.Join(stored, ", ") + ") IS DISTINCT FROM (" + strings.Join(excluded, ", ") + ")"
	if extraSet != "" {
		set = append(set, extraSet)
		changed = "(" + changed + " OR " + table + ".retired_at IS NOT NULL)"
	}
	q := `WITH up AS (
		INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `)
		SELECT ` + strings.Join(cols, ", ") + ` FROM stage_` + table + ` ORDER BY ` + key + `
		ON CONFLICT (` + key + `) DO UPDATE SET ` + strings.Join(set, ", ") + `
		WHERE ` + changed + `
		RETURNING (xmax = 0) AS inserted)
	SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`
	if err := tx.QueryRowxContext(ctx, q).Scan(&counts.Inserted, &counts.Updated); err != nil {
		return fmt.Errorf("postgres: import: %s: %w", table, asConstraintError(err))
	}
	return nil
}

// Default file names for rows without a Source (schedules built in code).
const (
	bundleContracts = "contracts"
	bundleRates     = "rates"
	bundleKinds     = "rate_kinds"
)

// srcOf returns the file and row of a schedule row, falling back to the
// entity name and the row's position.
func srcOf(src contracts.Source, def string, i int) (file string, row, line int) {
	if src.File == "" {
		return def, i + 1, 0
	}
	return src.File, src.Row, src.Line
}

// locOf is where a row came from, as FILE:LINE (see contracts.Source.Loc).
func locOf(src contracts.Source, def string, i int) string {
	if src.File == "" {
		return contracts.Source{File: def, Row: i + 1}.Loc()
	}
	return src.Loc()
}

// precheck applies the rules the database enforces on single rows and
// within the schedule, so that every refused row is reported at once
// (the database itself stops at the first violation).
func precheck(s *contracts.Schedule) ([]RowError, refusedRows) {
	var out []RowError
	bad := refusedRows{contracts: map[int]bool{}, rates: map[int]bool{}}
	kinds := map[string]bool{}
	for i := range s.Kinds {
		k := &s.Kinds[i]
		file, row, line := srcOf(k.Source, bundleKinds, i)
		bad := func(field, value, reason, constraint string) {
			out = append(out, RowError{index: i, File: file, Row: row, Line: line, Entity: "rate_kind", ID: k.Kind, Field: field, Value: value, Reason: reason, Constraint: constraint})
		}
		// In the order contracts.Validate checks a kind row: a row that
		// is refused for itself does not make a later row of its kind a
		// duplicate (the later row sets the priority in a folder run too).
		switch _, known := contracts.KindRequirements[k.Kind]; {
		case k.LoadError != nil:
			bad(k.LoadError.Field, k.LoadError.Value, k.LoadError.Reason, "")
		case !known:
			bad("kind", k.Kind, "unknown rate kind", "rate_kinds_kind_check")
		case k.Priority < 1 || k.Priority > 99:
			bad("priority", strconv.Itoa(k.Priority), "priority must be between 1 and 99", "rate_kinds_priority_check")
		case kinds[k.Kind]:
			bad("kind", k.Kind, "rate kind listed twice", "rate_kinds_pkey")
		default:
			kinds[k.Kind] = true
		}
	}

	ids := map[string]int{}
	numbers := map[string]int{}
	for i := range s.Contracts {
		c := &s.Contracts[i]
		file, row, line := srcOf(c.Source, bundleContracts, i)
		if e := checkContract(c, ids, numbers, s); e != nil {
			e.index, e.File, e.Row, e.Line, e.Entity, e.ID = i, file, row, line, "contract", c.ID
			out = append(out, *e)
			bad.contracts[i] = true
		}
		if _, dup := ids[c.ID]; !dup {
			ids[c.ID] = i
		}
		if _, dup := numbers[c.Number]; !dup && c.Number != "" {
			numbers[c.Number] = i
		}
	}
	rateIDs := map[string]int{}
	for i := range s.Rates {
		r := &s.Rates[i]
		file, row, line := srcOf(r.Source, bundleRates, i)
		if e := checkRate(r, rateIDs, s); e != nil {
			e.index, e.File, e.Row, e.Line, e.Entity, e.ID = i, file, row, line, "rate", r.ID
			out = append(out, *e)
			bad.rates[i] = true
		}
		if _, dup := rateIDs[r.ID]; !dup {
			rateIDs[r.ID] = i
		}
	}
	return out, bad
}

// refusedRows holds the indexes of the rows the precheck refused.
type refusedRows struct{ contracts, rates map[int]bool }

func fieldErr(field, value, reason, constraint string) *RowError {
	return &RowError{Field: field, Value: value, Reason: reason, Constraint: constraint}
}

func loadErr(fe *contracts.FieldError) *RowError {
	return &RowError{Field: fe.Field, Value: fe.Value, Reason: fe.Reason}
}

func intRange(n int) bool { return n >= 0 && n <= math.MaxInt32 }

func checkContract(c *contracts.Contract, ids, numbers map[string]int, s *contracts.Schedule) *RowError {
	if c.LoadError != nil {
		return loadErr(c.LoadError)
	}
	where := func(j int) string { return locOf(s.Contracts[j].Source, bundleContracts, j) }
	switch {
	case c.ID == "":
		return fieldErr("contract_id", "", "contract_id is required", "contracts_contract_id_check")
	case hasKey(ids, c.ID):
		return fieldErr("contract_id", c.ID, "duplicate contract_id (first at "+where(ids[c.ID])+")", "contracts_pkey")
	case c.Number != "" && hasKey(numbers, c.Number):
		return fieldErr("contract_number", c.Number, "contract_number already used by contract "+s.Contracts[numbers[c.Number]].ID+" ("+where(numbers[c.Number])+")", "contracts_contract_number_key")
	case c.VendorID == "":
		return fieldErr("vendor_id", "", "vendor_id is required", "vendors_vendor_id_check")
	case !validStatus(c.Status):
		return fieldErr("status", string(c.Status), "status must be one of Draft, Pending, Active, Expired, Terminated", "contracts_status_check")
	case c.Effective.IsZero():
		return fieldErr("effective_date", "", "effective_date is required", "")
	case c.Expiration.IsZero():
		return fieldErr("expiration_date", "", "expiration_date is required", "")
	case c.Expiration <= c.Effective:
		return fieldErr("expiration_date", c.Expiration.String(), "expiration_date must be after effective_date "+c.Effective.String(), "contracts_term_check")
	case !intRange(c.RenewalTermMonths):
		return fieldErr("renewal_term_months", strconv.Itoa(c.RenewalTermMonths), "renewal_term_months must be positive", "contracts_renewal_term_months_check")
	case !intRange(c.RenewalNoticeDays):
		return fieldErr("renewal_notice_days", strconv.Itoa(c.RenewalNoticeDays), "renewal_notice_days must be positive", "contracts_renewal_notice_days_check")
	case c.HasDefaultRate && c.DefaultRateType == 0:
		return fieldErr("default_rate_type", "", "a default_rate_value needs a default_rate_type", "contracts_default_rate_value_check")
	case c.HasDefaultRate && rateValueProblem(c.DefaultRateType, c.DefaultRateValue) != "":
		return fieldErr("default_rate_value", c.DefaultRateValue.String(), rateValueProblem(c.DefaultRateType, c.DefaultRateValue), "contracts_default_rate_value_check")
	case c.StopLoss < 0:
		return fieldErr("stop_loss_amount", c.StopLoss.String(), "stop_loss_amount must be positive", "contracts_stop_loss_amount_check")
	case c.StopLoss >= 1e18:
		return fieldErr("stop_loss_amount", c.StopLoss.String(), "value out of range", "")
	case c.AdminFeePct < 0 || c.AdminFeePct > 100*money.FixedScale:
		return fieldErr("admin_fee_pct", c.AdminFeePct.String(), "admin_fee_pct must be between 0 and 100", "contracts_admin_fee_pct_check")
	}
	for _, r := range c.ExcludedServices {
		if !codeOK(r.Lo) || !codeOK(r.Hi) || strings.Contains(r.Lo+r.Hi, "-") || r.Hi < r.Lo {
			return fieldErr("excluded_services", r.Lo+"-"+r.Hi, "not a code or an ascending code range A-B", "contracts_excluded_services_check")
		}
	}
	return nil
}

// hasKey reports whether key was already recorded.
func hasKey(m map[string]int, key string) bool {
	_, ok := m[key]
	return ok
}

func validStatus(st contracts.Status) bool {
	for _, s := range contracts.Statuses {
		if st == s {
			return true
		}
	}
	return false
}

// codeOK mirrors repricer_codes_ok: non-empty, trimmed, no comma.
func codeOK(c string) bool {
	return c != "" && c == strings.TrimSpace(c) && !strings.Contains(c, ",")
}

// rateValueProblem mirrors the rate value checks of the database.
func rateValueProblem(t contracts.RateType, v money.Fixed) string {
	switch t {
	case contracts.Percentage:
		if v < 0 || v > 200*money.FixedScale {
			return "a percentage must be between 0 and 200"
		}
	case contracts.Amount:
		if v <= 0 {
			return "an amount must be greater than 0"
		}
	}
	if v > 999_999_999_999*money.FixedScale || v < -999_999_999_999*money.FixedScale {
		return "value out of range"
	}
	return ""
}

func checkRate(r *contracts.Rate, ids map[string]int, s *contracts.Schedule) *RowError {
	if r.LoadError != nil {
		return loadErr(r.LoadError)
	}
	if first, dup := ids[r.ID]; dup {
		return fieldErr("rate_id", r.ID, "duplicate rate_id (first at "+locOf(s.Rates[first].Source, bundleRates, first)+")", "rates_pkey")
	}
	_, knownKind := contracts.KindRequirements[r.Kind]
	switch {
	case r.ID == "":
		return fieldErr("rate_id", "", "rate_id is required", "rates_rate_id_check")
	case r.ContractID == "":
		return fieldErr("contract_id", "", "contract_id is required", "rates_contract_id_fkey")
	case !knownKind:
		return fieldErr("rate_kind", r.Kind, "unknown rate kind", "rates_rate_kind_fkey")
	case r.Type != contracts.Percentage && r.Type != contracts.Amount:
		return fieldErr("rate_type", r.Type.String(), "rate_type must be Percentage or Amount", "rates_rate_type_check")
	case rateValueProblem(r.Type, r.Value) != "":
		return fieldErr("rate_value", r.Value.String(), rateValueProblem(r.Type, r.Value), "rates_rate_value_check")
	case r.Effective.IsZero():
		return fieldErr("effective_date", "", "effective_date is required", "")
	case !r.End.IsZero() && r.End < r.Effective:
		return fieldErr("end_date", r.End.String(), "end_date is before effective_date "+r.Effective.String(), "rates_end_date_check")
	case r.CPTCode != "" && (r.RangeStart != "" || r.RangeEnd != ""):
		return fieldErr("cpt_code", r.CPTCode, "give either cpt_code or a cpt range, not both", "rates_cpt_check")
	case (r.RangeStart == "") != (r.RangeEnd == ""):
		return fieldErr("cpt_range_end", r.RangeEnd, "a cpt range needs both cpt_range_start and cpt_range_end", "rates_cpt_check")
	case r.RangeEnd < r.RangeStart:
		return fieldErr("cpt_range_end", r.RangeEnd, "cpt_range_end is before cpt_range_start", "rates_cpt_check")
	case r.MinUnits < 0 || r.MinUnits > math.MaxInt32:
		return fieldErr("min_units", strconv.Itoa(r.MinUnits), "min_units must be positive", "rates_min_units_check")
	case r.MaxUnits < 0 || r.MaxUnits > math.MaxInt32:
		return fieldErr("max_units", strconv.Itoa(r.MaxUnits), "max_units must be positive", "rates_max_units_check")
	case r.MaxUnits > 0 && r.MinUnits > 0 && r.MaxUnits < r.MinUnits:
		return fieldErr("max_units", strconv.Itoa(r.MaxUnits), "max_units is below min_units", "rates_units_check")
	}
	for _, c := range r.PlaceOfService {
		if !codeOK(c) {
			return fieldErr("place_of_service", c, "a place of service code must be non-empty, trimmed and without commas", "rates_place_of_service_check")
		}
	}
	return nil
}
