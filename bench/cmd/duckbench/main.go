// Command duckbench prices a claims Parquet file with one DuckDB SQL query,
// as a yardstick for repricer: the same contract selection, rate matching,
// unit, amount, lesser-of, stop-loss and admin-fee rules, written as SQL
// over the same Parquet input, with the result written as Parquet.
//
// It loads and validates the contract bundle with the product's own code
// (as repricer does before its timed run), loads the validated contracts
// and active rates into DuckDB tables, then times one COPY (query) TO
// statement. It prints one machine-readable line:
//
//	duckdb lines=N seconds=S lines_per_sec=R load_seconds=L priced=P
//
// See bench/README.md for the SQL and what it simplifies.
package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/contracts"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "duckbench:", err)
		os.Exit(1)
	}
}

type config struct {
	contracts, claims, out string
	threads                int
	memoryLimit            string
	ordered, printSQL      bool
	explain                bool
	check                  string
	copy                   bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("duckbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.contracts, "contracts", "", "contract bundle `DIR`")
	fs.StringVar(&cfg.claims, "claims", "", "claims Parquet `FILE`")
	fs.StringVar(&cfg.out, "out", "priced.parquet", "output Parquet `FILE`")
	fs.IntVar(&cfg.threads, "threads", 0, "DuckDB threads (0 = DuckDB's default, one per CPU)")
	fs.StringVar(&cfg.memoryLimit, "memory-limit", "", "DuckDB memory_limit, e.g. 8GB (default: DuckDB's)")
	fs.BoolVar(&cfg.ordered, "ordered", false, "keep input order in the output with ORDER BY, as repricer does (slow in DuckDB; see README)")
	fs.BoolVar(&cfg.printSQL, "print-sql", false, "print the pricing query and exit")
	fs.BoolVar(&cfg.explain, "explain", false, "print DuckDB's EXPLAIN ANALYZE of the query instead of timing it")
	fs.BoolVar(&cfg.copy, "copy", false, "instead of pricing, copy -claims (Parquet or CSV) to -out in the same format with one plain COPY: the floor of reading and writing the file")
	fs.StringVar(&cfg.check, "check", "", "instead of pricing, read repricer's output `DIR` (priced.parquet, exceptions.parquet) and print its totals")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.check != "" {
		return checkOutputs(ctx, cfg.check, stdout)
	}
	if cfg.copy {
		return copyClaims(ctx, cfg, stdout)
	}
	if cfg.printSQL {
		fmt.Fprintln(stdout, pricingSQL("claims.parquet", cfg.ordered))
		return nil
	}
	if cfg.contracts == "" || cfg.claims == "" {
		fs.Usage()
		return errors.New("-contracts and -claims are required")
	}

	loadStart := time.Now()
	s, err := bundle.Read(ctx, cfg.contracts)
	if err != nil {
		return err
	}
	v := contracts.Validate(s)

	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return fmt.Errorf("open duckdb: %w", err)
	}
	defer connector.Close()
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: the appender's tables stay visible
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	settings := []string{"SET preserve_insertion_order = true"}
	if cfg.threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", cfg.threads))
	}
	if cfg.memoryLimit != "" {
		settings = append(settings, "SET memory_limit = '"+strings.ReplaceAll(cfg.memoryLimit, "'", "")+"'")
	}
	for _, q := range append(settings, schemaSQL...) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	if err := conn.Raw(func(dc any) error { return loadReference(ctx, dc.(driver.Conn), v) }); err != nil {
		return fmt.Errorf("load reference data: %w", err)
	}
	loadSecs := time.Since(loadStart).Seconds()

	if cfg.explain {
		rows, err := conn.QueryContext(ctx, "EXPLAIN ANALYZE "+pricingSQL(cfg.claims, cfg.ordered))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			fmt.Fprintln(stdout, v)
		}
		return rows.Err()
	}
	q := "COPY (" + pricingSQL(cfg.claims, cfg.ordered) + ") TO " + quote(cfg.out) + " (FORMAT PARQUET, COMPRESSION SNAPPY, ROW_GROUP_SIZE 1048576)"
	start := time.Now()
	res, err := conn.ExecContext(ctx, q)
	if err != nil {
		return fmt.Errorf("pricing query: %w", err)
	}
	secs := time.Since(start).Seconds()
	lines, err := res.RowsAffected()
	if err != nil {
		return err
	}
	var priced int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+quote(cfg.out)+") WHERE code IS NULL").Scan(&priced); err != nil {
		return fmt.Errorf("count priced lines: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "duckdb lines=%d seconds=%.3f lines_per_sec=%.0f load_seconds=%.3f priced=%d\n",
		lines, secs, float64(lines)/max(secs, 1e-9), loadSecs, priced)
	return err
}

// copyClaims copies the claims file to cfg.out in its format with one
// COPY statement and prints
//
//	duckdb_copy lines=N seconds=S lines_per_sec=R
func copyClaims(ctx context.Context, cfg config, stdout io.Writer) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the settings hold for the COPY's connection
	settings := []string{"SET preserve_insertion_order = true"}
	if cfg.threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", cfg.threads))
	}
	if cfg.memoryLimit != "" {
		settings = append(settings, "SET memory_limit = '"+strings.ReplaceAll(cfg.memoryLimit, "'", "")+"'")
	}
	for _, q := range settings {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	q := "COPY (SELECT * FROM read_parquet(" + quote(cfg.claims) + ")) TO " + quote(cfg.out) + " (FORMAT PARQUET, COMPRESSION SNAPPY)"
	if strings.HasSuffix(cfg.claims, ".csv") {
		q = "COPY (SELECT * FROM read_csv(" + quote(cfg.claims) + ")) TO " + quote(cfg.out) + " (FORMAT CSV, HEADER)"
	}
	start := time.Now()
	res, err := db.ExecContext(ctx, q)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	secs := time.Since(start).Seconds()
	lines, err := res.RowsAffected()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "duckdb_copy lines=%d seconds=%.3f lines_per_sec=%.0f\n", lines, secs, float64(lines)/max(secs, 1e-9))
	return err
}

// checkOutputs reads every column of repricer's Parquet outputs with DuckDB
// and prints one line of counts and totals, which bench/run.sh compares
// with repricer's summary.json: a file DuckDB misreads cannot match.
//
//	check priced=N exceptions=N billed=C allowed=C net=C rates=N claims=N first_date=D
func checkOutputs(ctx context.Context, dir string, stdout io.Writer) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	priced, exc := quote(dir+"/priced.parquet"), quote(dir+"/exceptions.parquet")
	var n, ne, rates, claimIDs int64
	var billed, allowed, net, first string
	q := `SELECT count(*), CAST(sum(billed_amount) AS VARCHAR), CAST(sum(allowed_amount) AS VARCHAR),
		CAST(sum(net_payable) AS VARCHAR), count(DISTINCT rate_id), count(DISTINCT claim_id), CAST(min(service_date) AS VARCHAR)
		FROM read_parquet(` + priced + `)`
	if err := db.QueryRowContext(ctx, q).Scan(&n, &billed, &allowed, &net, &rates, &claimIDs, &first); err != nil {
		return fmt.Errorf("read %s: %w", priced, err)
	}
	// Every column of every row, so that a page DuckDB cannot decode fails.
	for _, f := range []string{priced, exc} {
		if _, err := db.ExecContext(ctx, "SELECT max(COLUMNS(*)) FROM read_parquet("+f+")"); err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+exc+")").Scan(&ne); err != nil {
		return fmt.Errorf("read %s: %w", exc, err)
	}
	_, err = fmt.Fprintf(stdout, "check priced=%d exceptions=%d billed=%s allowed=%s net=%s rates=%d claims=%d first_date=%s\n",
		n, ne, billed, allowed, net, rates, claimIDs, first)
	return err
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// schemaSQL creates the reference tables. Money is in integer cents and
// rate values and percentages in integer millionths, as in the engine;
// empty optional criteria are NULL. Rates are split by how they name the
// code (exact, range, none) so that each join has its own table.
var schemaSQL = []string{
	`CREATE TABLE contracts (
		cidx INTEGER, contract_id VARCHAR, contract_number VARCHAR, vendor_id VARCHAR,
		priceable BOOLEAN, terminated BOOLEAN, auto_renew BOOLEAN, eff DATE, exp DATE,
		tpa_mn BOOLEAN, tpa_pa BOOLEAN, def_type VARCHAR, def_value BIGINT,
		stop_loss BIGINT, admin_micro BIGINT, lesser BOOLEAN, rejected BOOLEAN)`,
	`CREATE TABLE exclusions (cidx INTEGER, lo VARCHAR, hi VARCHAR)`,
	rateTable("rates_exact"), rateTable("rates_range"), rateTable("rates_crit"),
}

func rateTable(name string) string {
	return `CREATE TABLE ` + name + ` (
		cidx INTEGER, rate_id VARCHAR, id_rank BIGINT, kind VARCHAR, priority INTEGER, class INTEGER,
		cpt VARCHAR, rs VARCHAR, re VARCHAR, modifier VARCHAR, spec VARCHAR, vk VARCHAR, pos VARCHAR,
		eff DATE, end_date DATE, min_units BIGINT, max_units BIGINT, req_auth BOOLEAN, req_review BOOLEAN,
		rtype VARCHAR, rvalue BIGINT, optional INTEGER)`
}

func date(d contracts.Date) any {
	if d == 0 {
		return nil
	}
	y, m, day := d.Civil()
	return time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC)
}

func str(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// loadReference appends the validated schedule to the reference tables.
func loadReference(ctx context.Context, dc driver.Conn, v *contracts.Validated) error {
	idx := map[string]int32{}
	ca, err := duckdb.NewAppenderFromConn(dc, "", "contracts")
	if err != nil {
		return err
	}
	xa, err := duckdb.NewAppenderFromConn(dc, "", "exclusions")
	if err != nil {
		return errors.Join(err, ca.Close())
	}
	for i := range v.Contracts {
		c := &v.Contracts[i]
		idx[c.ID] = int32(i)
		_, rejected := v.Rejected[c.ID]
		var defType any
		if c.HasDefaultRate {
			defType = c.DefaultRateType.String()
		}
		if err := ca.AppendRow(int32(i), c.ID, c.Number, c.VendorID,
			c.Status.Priceable(), c.Status == contracts.Terminated, c.AutoRenewal && c.RenewalTermMonths > 0,
			date(c.Effective), date(c.Expiration), c.TPA && c.TPAMedicalNecessity, c.TPA && c.TPAPriorAuthRequired,
			defType, int64(c.DefaultRateValue), int64(c.StopLoss), int64(c.AdminFeePct), c.LesserOfBilled, rejected); err != nil {
			return errors.Join(err, ca.Close(), xa.Close())
		}
		for _, x := range c.ExcludedServices {
			if err := xa.AppendRow(int32(i), x.Lo, x.Hi); err != nil {
				return errors.Join(err, ca.Close(), xa.Close())
			}
		}
	}
	if err := errors.Join(ca.Close(), xa.Close()); err != nil {
		return err
	}

	// The final tie-break is the smallest rate id, numerically when both
	// ids are whole numbers: rank the ids once here, as the engine does.
	order := make([]int32, len(v.Rates))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareIDs(v.Rates[a].ID, v.Rates[b].ID) })
	rank := make([]int64, len(v.Rates))
	for k, i := range order {
		rank[i] = int64(k)
	}
	apps := map[string]*duckdb.Appender{}
	for _, t := range []string{"rates_exact", "rates_range", "rates_crit"} {
		a, err := duckdb.NewAppenderFromConn(dc, "", t)
		if err != nil {
			return err
		}
		apps[t] = a
	}
	closeAll := func() error {
		return errors.Join(apps["rates_exact"].Close(), apps["rates_range"].Close(), apps["rates_crit"].Close())
	}
	for i := range v.Rates {
		if i%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return errors.Join(err, closeAll())
			}
		}
		r := &v.Rates[i]
		if !r.Active {
			continue
		}
		table, class := "rates_crit", 2
		switch {
		case r.CPTCode != "":
			table, class = "rates_exact", 0
		case r.IsRange():
			table, class = "rates_range", 1
		}
		optional := 0
		if r.Modifier != "" && !contracts.KindRequirements[r.Kind].Modifier {
			optional++
		}
		var pos any
		if len(r.PlaceOfService) > 0 {
			pos = "," + strings.Join(r.PlaceOfService, ",") + ","
		}
		if err := apps[table].AppendRow(idx[r.ContractID], r.ID, rank[i], r.Kind, int32(v.Priority[r.Kind]), int32(class),
			str(r.CPTCode), str(r.RangeStart), str(r.RangeEnd), str(r.Modifier), str(r.Specialty), str(r.VisitKind), pos,
			date(r.Effective), date(r.End), int64(r.MinUnits), int64(r.MaxUnits), r.RequiresAuth, r.RequiresReview,
			r.Type.String(), int64(r.Value), int32(optional+boolInt(len(r.PlaceOfService) > 0))); err != nil {
			return errors.Join(err, closeAll())
		}
	}
	return closeAll()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareIDs is the engine's rate id order.
func compareIDs(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		switch {
		case na < nb:
			return -1
		case na > nb:
			return 1
		}
		return 0
	}
	return strings.Compare(a, b)
}
