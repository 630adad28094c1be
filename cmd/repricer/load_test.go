package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

// sameRun fails unless runs a and b wrote byte-identical files, and the
// same summary but for its timings and run id.
func sameRun(t *testing.T, a, b string) {
	t.Helper()
	entries, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 4 {
		t.Fatalf("%s holds only %d files", a, len(entries))
	}
	for _, e := range entries {
		x, err1 := os.ReadFile(filepath.Join(a, e.Name()))
		y, err2 := os.ReadFile(filepath.Join(b, e.Name()))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", e.Name(), err1, err2)
		}
		if e.Name() == "summary.json" || e.Name() == "_SUCCESS.json" {
			x, y = withoutTimings(t, x), withoutTimings(t, y)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between %s and %s", e.Name(), a, b)
		}
	}
}

func withoutTimings(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"timings", "run_id", "started_at", "finished_at", "files"} {
		delete(m, k)
	}
	out, _ := json.Marshal(m)
	return out
}

// pricesDiffer fails when runs a and b priced alike: a change to the
// schedule that prices no line differently proves nothing.
func pricesDiffer(t *testing.T, a, b string) {
	t.Helper()
	p1, err1 := os.ReadFile(filepath.Join(a, "priced.csv"))
	p2, err2 := os.ReadFile(filepath.Join(b, "priced.csv"))
	if err1 != nil || err2 != nil || bytes.Equal(p1, p2) {
		t.Errorf("the change to the schedule priced no line differently (%v, %v)", err1, err2)
	}
}

// TestScheduleCache prices from the compiled image and from the source
// and gets the same files, and never prices a changed source from its old
// image: a folder whose rates change, a database whose rates are updated.
func TestScheduleCache(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	src := cleanSample(t, filepath.Join(dir, "bundle"))
	n := 0
	reprice := func(contracts, cacheDir string, extra ...string) string {
		t.Helper()
		n++
		out := filepath.Join(dir, "run", strings.Repeat("x", n))
		args := append([]string{"reprice", "--contracts", contracts, "--claims", sampleClaims, "--out", out, "-q",
			"--ledger", "none", "--schedule-cache", cacheDir}, extra...)
		if status, _, stderr := runCLI(t, args...); status != 0 {
			t.Fatalf("reprice: %s", stderr)
		}
		return out
	}
	compile := func(contracts, want string) {
		t.Helper()
		status, stdout, stderr := runCLI(t, "contracts", "compile", "--contracts", contracts, "--schedule-cache", cache)
		if status != 0 || !strings.Contains(stdout, want) {
			t.Fatalf("compile: status %d, want %q in\n%s%s", status, want, stdout, stderr)
		}
	}

	t.Run("folder", func(t *testing.T) {
		fresh := reprice(src, "off")
		compile(src, ": compiled in ")
		compile(src, ": up to date in ")
		sameRun(t, fresh, reprice(src, cache))
		sameRun(t, reprice(src, "off", "--format", "parquet"), reprice(src, cache, "--format", "parquet"))

		ratesFile := filepath.Join(src, "rates.csv")
		b, err := os.ReadFile(ratesFile)
		if err != nil {
			t.Fatal(err)
		}
		// Rate 1001 (27447, Amount 1850.00) becomes 1900.00.
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			if f := strings.Split(l, ","); f[0] == "1001" && f[3] == "Amount" {
				f[4] = "1900.00"
				lines[i] = strings.Join(f, ",")
			}
		}
		changed := strings.Join(lines, "\n")
		if changed == string(b) {
			t.Fatal("no rate 1001 to change")
		}
		if err := os.WriteFile(ratesFile, []byte(changed), 0o644); err != nil {
			t.Fatal(err)
		}
		after := reprice(src, cache)
		sameRun(t, reprice(src, "off"), after)
		pricesDiffer(t, fresh, after)
		compile(src, ": up to date in ") // the run compiled the changed schedule
	})

	t.Run("database", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		if status, _, stderr := runCLI(t, "db", "migrate", "--db", url); status != 0 {
			t.Fatalf("migrate: %s", stderr)
		}
		if status, _, stderr := runCLI(t, "contracts", "import", "--from", cleanSample(t, filepath.Join(dir, "clean")), "--to", url); status != 0 {
			t.Fatalf("import: %s", stderr)
		}
		compile(url, ": compiled in ")
		fresh := reprice(url, "off")
		sameRun(t, fresh, reprice(url, cache))
		db := pgtest.Open(t, url)
		if _, err := db.ExecContext(context.Background(), `UPDATE rates SET rate_value = rate_value * 2 WHERE rate_type = 'Amount'`); err != nil {
			t.Fatal(err)
		}
		after := reprice(url, cache)
		sameRun(t, reprice(url, "off"), after)
		pricesDiffer(t, fresh, after)
		compile(url, ": up to date in ")
	})
}
