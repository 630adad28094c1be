package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/amendment"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

// amendedBundle applies testdata/amend/retro to the base bundle in a
// temporary folder and returns it.
func amendedBundle(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "contracts-amended")
	mustRun(t, "contracts", "amend", "--contracts", filepath.Join(amendData, "base"), "--amendment", filepath.Join(amendData, "retro"),
		"--out", out, "--today", "2024-09-20")
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAdjustAnyFormat: runs written as Parquet or Arrow compare like CSV
// runs, in any combination, with the same report.
func TestAdjustAnyFormat(t *testing.T) {
	dir := t.TempDir()
	amended := amendedBundle(t)
	claimsFile := filepath.Join(amendData, "claims.csv")
	runs := map[string]string{}
	for _, format := range []string{"csv", "parquet", "arrow"} {
		for _, side := range []struct{ name, contracts string }{{"before", filepath.Join(amendData, "base")}, {"after", amended}} {
			out := filepath.Join(dir, side.name+"-"+format)
			mustRun(t, "reprice", "--contracts", side.contracts, "--claims", claimsFile, "--out", out, "--format", format, "--ledger", "none", "-q")
			runs[side.name+"-"+format] = out
		}
	}
	want := readFile(t, filepath.Join(reprocessG, adjust.AdjustmentsFile))
	for _, pair := range [][2]string{{"parquet", "parquet"}, {"arrow", "arrow"}, {"csv", "parquet"}, {"parquet", "arrow"}, {"arrow", "csv"}} {
		t.Run(pair[0]+"-to-"+pair[1], func(t *testing.T) {
			report := filepath.Join(dir, "report-"+pair[0]+"-"+pair[1])
			mustRun(t, "adjust", "--prior", runs["before-"+pair[0]], "--current", runs["after-"+pair[1]], "--out", report)
			if got := readFile(t, filepath.Join(report, adjust.AdjustmentsFile)); got != want {
				t.Errorf("adjustments.csv differs from the CSV golden:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestAmendmentLogBundle: amending a bundle logs the amendment in the
// bundle, the log carries over to the next amendment, an amendment id is
// applied once, and adjust names the amendment with or without the log
// found by default.
func TestAmendmentLogBundle(t *testing.T) {
	dir := t.TempDir()
	amended := amendedBundle(t)
	log, err := amendment.ReadLog(t.Context(), amended)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Amendments) != 1 || log.Amendments[0].ID != "A-2024-RETRO" || !log.Amendments[0].Retroactive {
		t.Fatalf("log = %+v", log.Amendments)
	}
	actions := map[string]string{}
	for _, r := range log.Rates {
		actions[r.RateID] = r.Action
	}
	for id, want := range map[string]string{"R100": "end_dated", "R102": "end_dated", "R110": "added", "R111": "added"} {
		if actions[id] != want {
			t.Errorf("rate %s: %q, want %q", id, actions[id], want)
		}
	}

	t.Run("applied once", func(t *testing.T) {
		if _, code := runAmendCLI(t, "contracts", "amend", "--contracts", amended, "--amendment", filepath.Join(amendData, "retro"),
			"--out", filepath.Join(dir, "twice"), "--today", "2024-09-20"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
	t.Run("log carries over", func(t *testing.T) {
		next := filepath.Join(dir, "next")
		mustRun(t, "contracts", "amend", "--contracts", amended, "--amendment", filepath.Join(amendData, "future"),
			"--out", next, "--today", "2024-09-20")
		l, err := amendment.ReadLog(t.Context(), next)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Amendments) != 2 || l.Amendments[0].ID != "A-2024-RETRO" || l.Amendments[1].ID != "A-2024-OCT" {
			t.Errorf("log = %+v", l.Amendments)
		}
	})

	claimsFile := filepath.Join(amendData, "claims.csv")
	before, after := filepath.Join(dir, "before"), filepath.Join(dir, "after")
	mustRun(t, "reprice", "--contracts", filepath.Join(amendData, "base"), "--claims", claimsFile, "--out", before, "--ledger", "none", "-q")
	mustRun(t, "reprice", "--contracts", amended, "--claims", claimsFile, "--out", after, "--ledger", "none", "-q")
	tests := []struct {
		name  string
		args  []string
		named bool
	}{
		{"default: the current run's bundle", nil, true},
		{"explicit log", []string{"--amendments", amended}, true},
		{"a bundle without a log", []string{"--amendments", filepath.Join(amendData, "base")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			report := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			out := mustRun(t, append([]string{"adjust", "--prior", before, "--current", after, "--out", report}, tt.args...)...)
			csv := readFile(t, filepath.Join(report, adjust.AdjustmentsFile))
			if got := strings.Count(csv, ",A-2024-RETRO,"); tt.named && got != 4 || !tt.named && got != 0 {
				t.Errorf("%d lines name A-2024-RETRO (named %v)", got, tt.named)
			}
			if got := strings.Contains(out, "amendment A-2024-RETRO (contract C100, effective 2024-03-01): Renegotiated"); got != tt.named {
				t.Errorf("output %q: names the amendment %v, want %v", out, got, tt.named)
			}
		})
	}
	if _, code := runAmendCLI(t, "adjust", "--prior", before, "--current", after, "--out", filepath.Join(dir, "x"),
		"--amendments", filepath.Join(dir, "nowhere")); code != 1 {
		t.Errorf("missing amendment log: exit %d, want 1", code)
	}
}

// TestRunsLedgerFile lists and shows the runs of a ledger file.
func TestRunsLedgerFile(t *testing.T) {
	dir := t.TempDir()
	ledger := filepath.Join(dir, "ledger.jsonl")
	for _, name := range []string{"first", "second"} {
		if status, _, stderr := runCLI(t, "reprice", "--contracts", filepath.Join(amendData, "base"), "--claims", filepath.Join(amendData, "claims.csv"),
			"--out", filepath.Join(dir, name), "--ledger", ledger, "-q"); status != 0 {
			t.Fatalf("reprice: %s", stderr)
		}
	}
	recs, err := adjust.ListRunsFile(t.Context(), ledger)
	if err != nil || len(recs) != 2 {
		t.Fatalf("ListRunsFile = %d, %v", len(recs), err)
	}
	status, stdout, stderr := runCLI(t, "runs", "list", "--ledger", ledger)
	if status != 0 {
		t.Fatalf("runs list: %d %s", status, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "RUN_ID") {
		t.Fatalf("runs list:\n%s", stdout)
	}
	for i, r := range recs {
		f := strings.Fields(lines[i+1])
		if f[0] != r.RunID || f[2] != "9" || f[3] != "7" || f[4] != "2" || f[5] != "621.00" || f[6] != r.Reference.Fingerprint[:12] ||
			f[7] != filepath.Join(amendData, "claims.csv") || !strings.HasSuffix(f[8], []string{"first", "second"}[i]) {
			t.Errorf("runs list line %d: %q", i+1, lines[i+1])
		}
	}

	status, stdout, _ = runCLI(t, "runs", "show", "--ledger", ledger, recs[1].RunID)
	for _, want := range []string{"run          " + recs[1].RunID, "fingerprint  " + recs[1].Reference.Fingerprint,
		"input        " + filepath.Join(amendData, "claims.csv") + ": 9 lines", "sha256 " + recs[1].Inputs[0].SHA256,
		"lines        9: 7 priced, 2 error exceptions", "net payable 621.00", "contract     C100 CON-2024-00100: 6 lines"} {
		if status != 0 || !strings.Contains(stdout, want) {
			t.Errorf("runs show lacks %q:\n%s", want, stdout)
		}
	}
	if status, stdout, _ = runCLI(t, "runs", "show", "--json", "--ledger", ledger, recs[0].RunID); status != 0 || !strings.Contains(stdout, `"run_id": "`+recs[0].RunID+`"`) {
		t.Errorf("runs show --json: %d\n%s", status, stdout)
	}
	for _, args := range [][]string{{"show", "--ledger", ledger, "nope"}, {"show", "--ledger", ledger}, {"list"}} {
		t.Setenv("REPRICER_LEDGER", "")
		t.Setenv("DATABASE_URL", "")
		t.Setenv("XDG_STATE_HOME", "") // no default ledger either
		t.Setenv("HOME", "")
		if status, _, stderr := runCLI(t, append([]string{"runs"}, args...)...); status != 2 {
			t.Errorf("runs %v: exit %d, want 2 (%s)", args, status, stderr)
		}
	}
}

// TestReprocessPostgres is the walk-through against a database: the
// amendment is logged in the store, reprice --compare-run names it from
// there, and runs list/show read the runs table.
func TestReprocessPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	for _, args := range [][]string{{"db", "migrate", "--db", url}, {"contracts", "import", "--from", filepath.Join(amendData, "base"), "--to", url}} {
		if status, _, stderr := runCLI(t, args...); status != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	claimsFile := filepath.Join(amendData, "claims.csv")
	before, after := filepath.Join(dir, "before"), filepath.Join(dir, "after")
	if status, _, stderr := runCLI(t, "reprice", "--contracts", url, "--claims", claimsFile, "--out", before, "-q"); status != 0 {
		t.Fatal(stderr)
	}
	recs, err := adjust.ListRuns(t.Context(), url, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("ListRuns = %d, %v", len(recs), err)
	}
	if status, _, stderr := runCLI(t, "contracts", "amend", "--contracts", url, "--amendment", filepath.Join(amendData, "retro"), "--today", "2024-09-20"); status != 0 {
		t.Fatal(stderr)
	}
	if status, _, stderr := runCLI(t, "reprice", "--contracts", url, "--claims", claimsFile, "--out", after, "--compare-run", recs[0].RunID, "-q"); status != 0 {
		t.Fatal(stderr)
	}
	if got, want := readFile(t, filepath.Join(after, adjust.AdjustmentsFile)), readFile(t, filepath.Join(reprocessG, adjust.AdjustmentsFile)); got != want {
		t.Errorf("adjustments.csv from the database run differs from the golden:\n%s\nwant\n%s", got, want)
	}

	status, stdout, stderr := runCLI(t, "runs", "list", "--ledger", url)
	if status != 0 || strings.Count(stdout, "\n") != 3 || !strings.Contains(stdout, recs[0].RunID) {
		t.Errorf("runs list: %d %s\n%s", status, stderr, stdout)
	}
	status, stdout, _ = runCLI(t, "runs", "show", "--ledger", url, recs[0].RunID)
	for _, want := range []string{"fingerprint  " + recs[0].Reference.Fingerprint, "lines        9: 7 priced, 2 error exceptions",
		"net payable 621.00", "output       " + absPath(before), "sha256 " + recs[0].Inputs[0].SHA256} {
		if status != 0 || !strings.Contains(stdout, want) {
			t.Errorf("runs show lacks %q:\n%s", want, stdout)
		}
	}
	if status, _, _ := runCLI(t, "runs", "show", "--ledger", url, "nope"); status != 2 {
		t.Errorf("unknown run: exit %d, want 2", status)
	}
}

// TestReprocessingDocMatchesGolden: the by-contract table that
// docs/reprocessing.md shows is the golden report of the walk-through.
func TestReprocessingDocMatchesGolden(t *testing.T) {
	doc := readFile(t, "../../docs/reprocessing.md")
	const intro = "The walk-through's `adjustments_by_contract.csv`:\n\n```csv\n"
	i := strings.Index(doc, intro)
	if i < 0 {
		t.Fatal("docs/reprocessing.md no longer shows adjustments_by_contract.csv")
	}
	block := doc[i+len(intro):]
	block = block[:strings.Index(block, "```")]
	if want := readFile(t, filepath.Join(reprocessG, adjust.ByContractFile)); block != want {
		t.Errorf("docs/reprocessing.md shows\n%s\nthe golden report is\n%s", block, want)
	}
	if !strings.Contains(doc, "9 lines (UNCHANGED 5, RATE_AMENDED 2, NEWLY_PRICED 1, NEWLY_EXCEPTED 1); allowed 650.00 -> 755.00 (+105.00), net payable 621.00 -> 720.75 (+99.75)") {
		t.Error("docs/reprocessing.md lacks the adjust output line of TestReprocessScenario")
	}
}
