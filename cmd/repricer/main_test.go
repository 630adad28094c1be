package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

// envAsMain makes the test binary run as the repricer command itself (its
// main, with os.Args after the flag), so that tests can kill, signal and
// pipe a real process.
const envAsMain = "REPRICER_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envAsMain) == "1" {
		os.Args = append([]string{"repricer"}, os.Args[2:]...) // drop the test binary's "-test.run=^$"
		main()
	}
	// Runs that name no ledger record to the default one in the user's
	// state folder: in tests, one under the temporary folder, never the
	// user's own.
	os.Setenv("XDG_STATE_HOME", filepath.Join(os.TempDir(), "repricer-test-state"))
	// Likewise the schedule images: in a folder of this test binary's own,
	// which its re-executed runs share and which goes away with it.
	cache, err := os.MkdirTemp("", "repricer-test-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", cache)
	code := pgtest.Run(m)
	os.RemoveAll(cache)
	os.Exit(code)
}

const (
	sampleContracts = "../../testdata/sample/contracts"
	sampleClaims    = "../../testdata/sample/claims.csv"
)

// cli runs the command line in-process and returns its exit status.
func runCLI(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"repricer"}, args...), strings.NewReader(""), &out, &errOut)
	status = report(err, &errOut)
	return status, out.String(), errOut.String()
}

func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"success", []string{"reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--out", filepath.Join(dir, "ok"), "-q"}, 0, ""},
		{"unknown flag", []string{"reprice", "--bogus"}, 2, "flag provided but not defined"},
		{"missing out", []string{"reprice", "--contracts", sampleContracts, "--claims", sampleClaims}, 2, "--out is required"},
		{"missing claims file", []string{"reprice", "--contracts", sampleContracts, "--claims", "nope.csv", "--out", filepath.Join(dir, "x")}, 2, "nope.csv"},
		{"bad system default", []string{"reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--out", filepath.Join(dir, "x"), "--system-default-rate", "Fee:1"}, 2, "Percentage:N"},
		{"bad map", []string{"reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--out", filepath.Join(dir, "x"), "--map", "billed_amount"}, 2, "CANONICAL=NAME"},
		{"contracts folder missing", []string{"reprice", "--contracts", "nowhere", "--claims", sampleClaims, "--out", filepath.Join(dir, "x")}, 2, "nowhere"},
		{"bundle without rates.csv", []string{"reprice", "--contracts", dir, "--claims", sampleClaims, "--out", filepath.Join(dir, "x")}, 2, "contracts.csv"},
		{"unreachable database", []string{"reprice", "--contracts", "postgres://repricer:secret@127.0.0.1:1/none?connect_timeout=1", "--claims", sampleClaims, "--out", filepath.Join(dir, "db")}, 1, "127.0.0.1:1"},
		{"validate with rejections", []string{"contracts", "validate", "--contracts", sampleContracts}, 1, "rows rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, stderr := runCLI(t, tt.args...)
			if status != tt.status {
				t.Errorf("exit status %d, want %d; stderr:\n%s", status, tt.status, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.stderr)
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("stderr shows the database password: %s", stderr)
			}
		})
	}
	for _, sub := range []string{"x", "db"} {
		if entries, _ := os.ReadDir(filepath.Join(dir, sub)); len(entries) > 0 {
			t.Errorf("failed run left %d entries in %s", len(entries), sub)
		}
	}
}

// TestPostgresRunMatchesBundleRun imports the sample bundle into Postgres
// and checks that pricing from the database gives byte-identical priced and
// exception files to pricing from the bundle.
func TestPostgresRunMatchesBundleRun(t *testing.T) {
	dir := t.TempDir()
	clean := cleanSample(t, filepath.Join(dir, "clean"))
	url := pgtest.NewDatabase(t)
	if status, _, stderr := runCLI(t, "db", "migrate", "--db", url); status != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	if status, _, stderr := runCLI(t, "db", "migrate", "--db", url); status != 0 {
		t.Fatalf("second migrate: %s", stderr)
	}
	// The sample holds rows the database refuses: the import must refuse
	// the whole bundle and write nothing.
	status, _, stderr := runCLI(t, "contracts", "import", "--from", sampleContracts, "--to", url)
	if status != 1 || !strings.Contains(stderr, "rates.csv:61: rate 14005") {
		t.Fatalf("import of the sample: status %d, stderr %s", status, stderr)
	}
	status, stdout, stderr := runCLI(t, "contracts", "import", "--from", clean, "--to", url)
	if status != 0 {
		t.Fatalf("import: %s", stderr)
	}
	if !strings.Contains(stdout, "contracts: 14 new") {
		t.Errorf("import output: %s", stdout)
	}
	for _, run := range []struct{ name, contracts string }{{"bundle", clean}, {"postgres", url}} {
		if status, _, stderr := runCLI(t, "reprice", "--contracts", run.contracts, "--claims", sampleClaims, "--out", filepath.Join(dir, run.name), "-q"); status != 0 {
			t.Fatalf("%s run: %s", run.name, stderr)
		}
	}
	for _, name := range []string{"priced.csv", "exceptions.csv"} {
		a, _ := os.ReadFile(filepath.Join(dir, "bundle", name))
		b, _ := os.ReadFile(filepath.Join(dir, "postgres", name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the bundle run and the Postgres run", name)
		}
	}
	// Export writes a bundle that prices the same way again.
	export := filepath.Join(dir, "exported")
	if status, _, stderr := runCLI(t, "contracts", "export", "--from", url, "--to", export); status != 0 {
		t.Fatalf("export: %s", stderr)
	}
	if status, _, stderr := runCLI(t, "reprice", "--contracts", export, "--claims", sampleClaims, "--out", filepath.Join(dir, "exported-run"), "-q"); status != 0 {
		t.Fatalf("run on export: %s", stderr)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "bundle", "priced.csv"))
	b, _ := os.ReadFile(filepath.Join(dir, "exported-run", "priced.csv"))
	if !bytes.Equal(a, b) {
		t.Error("the exported bundle prices differently")
	}
}

// cleanSample writes the sample bundle without the rows a database refuses
// (an overlapping contract and malformed rates) and returns its folder.
func cleanSample(t *testing.T, dir string) string {
	t.Helper()
	ctx := context.Background()
	s, err := bundle.Read(ctx, sampleContracts)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.DropRefused(s)
	if err := bundle.Write(ctx, dir, s); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPipeThrough pipes CSV through reprice on standard input and output,
// as `extract | repricer reprice --claims - --out - | load` does, and gets
// the same priced rows as the file run.
func TestPipeThrough(t *testing.T) {
	claims, err := os.ReadFile(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"repricer", "reprice", "--contracts", sampleContracts, "--claims", "-", "--out", "-",
		"--side-out", filepath.Join(dir, "side"), "--ledger", "none"}, bytes.NewReader(claims), &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, stderr := runCLI(t, "reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--out", filepath.Join(dir, "file"), "-q"); status != 0 {
		t.Fatal(stderr)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "file", "priced.csv"))
	if len(want) == 0 || !bytes.Equal(out.Bytes(), want) {
		t.Errorf("priced rows on standard output differ from the file run (%d vs %d bytes)", out.Len(), len(want))
	}
	for _, name := range []string{"exceptions.csv", "summary.json", "schedule_issues.csv"} {
		if _, err := os.Stat(filepath.Join(dir, "side", name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "side", "priced.csv")); err == nil {
		t.Error("priced.csv was published in --side-out as well")
	}
	if status, _, _ := runCLI(t, "reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--out", "-"); status != 2 {
		t.Errorf("--out - without --side-out: status %d", status)
	}
}

func TestArrowOutput(t *testing.T) {
	dir := t.TempDir()
	if status, _, stderr := runCLI(t, "reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--out", dir, "--format", "arrow", "-q"); status != 0 {
		t.Fatal(stderr)
	}
	f, err := os.Open(filepath.Join(dir, "priced.arrows"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := ipc.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	rows := 0
	for rd.Next() {
		rows += int(rd.RecordBatch().NumRows())
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	if rows != 365 {
		t.Errorf("%d priced rows in the Arrow stream, want 365", rows)
	}
}

func TestStdinClaims(t *testing.T) {
	claims, err := os.ReadFile(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"repricer", "reprice", "--contracts", sampleContracts, "--claims", "-", "--out", filepath.Join(dir, "stdin"), "-q"},
		bytes.NewReader(claims), &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, stderr := runCLI(t, "reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--out", filepath.Join(dir, "file"), "-q"); status != 0 {
		t.Fatal(stderr)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "stdin", "priced.csv"))
	b, _ := os.ReadFile(filepath.Join(dir, "file", "priced.csv"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("claims on standard input price differently from the same file")
	}
}

// TestLedgerAndCompare runs the sample twice: the second run names the
// first by folder and by run id, and both adjustment reports find nothing
// changed.
func TestLedgerAndCompare(t *testing.T) {
	dir := t.TempDir()
	ledger := filepath.Join(dir, "ledger.jsonl")
	base := []string{"reprice", "--contracts", sampleContracts, "--claims", sampleClaims, "--ledger", ledger}
	status, _, stderr := runCLI(t, append(base, "--out", filepath.Join(dir, "first"))...)
	if status != 0 {
		t.Fatal(stderr)
	}
	_, after, _ := strings.Cut(stderr, "repricer: run ")
	runID, _, _ := strings.Cut(after, " ")
	if _, err := os.Stat(ledger); err != nil {
		t.Fatalf("no ledger written: %v", err)
	}
	for _, tt := range []struct{ name, flag, value string }{
		{"by folder", "--compare-to", filepath.Join(dir, "first")},
		{"by run id", "--compare-run", runID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.value == "" {
				t.Fatalf("no run id in %q", stderr)
			}
			out := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			status, _, stderr := runCLI(t, append(base, "--out", out, tt.flag, tt.value)...)
			if status != 0 {
				t.Fatal(stderr)
			}
			if !strings.Contains(stderr, "(+0.00)") {
				t.Errorf("the adjustment summary shows a change: %s", stderr)
			}
			if _, err := os.Stat(filepath.Join(out, "adjustments.csv")); err != nil {
				t.Error(err)
			}
		})
	}
	if status, _, stderr := runCLI(t, append(base, "--out", filepath.Join(dir, "first"), "--compare-to", filepath.Join(dir, "first"))...); status != 2 {
		t.Errorf("comparing a folder with itself: status %d (%s)", status, stderr)
	}
}
