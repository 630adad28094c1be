package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

const (
	explainGoldenDir = "../../testdata/golden/explain"
	samplePriced     = "../../testdata/golden/sample/priced.csv"
)

// updateGolden reports whether -update was given. The flag itself is
// declared once for the package's tests (amend_test.go); looking it up
// keeps this file independent of where.
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// runReportCLI runs explain and contracts calendar in-process through an
// app holding just those commands (so the tests do not depend on app.go's
// registration) and returns the exit status and output.
func runReportCLI(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name: "repricer", Writer: &out, ErrWriter: &errOut, Reader: strings.NewReader(""),
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Commands: []*cli.Command{
			explainCommand(),
			{Name: "contracts", Subcommands: []*cli.Command{calendarCommand()}},
		},
	}
	err := app.RunContext(context.Background(), append([]string{"repricer"}, args...))
	status = report(err, &errOut)
	return status, out.String(), errOut.String()
}

func checkGoldenFile(t *testing.T, got, name string) {
	t.Helper()
	path := filepath.Join(explainGoldenDir, name)
	if updateGolden() {
		if err := os.MkdirAll(explainGoldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestExplainGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// want are facts the golden file must show, so that -update
		// cannot bless a wrong trace unnoticed.
		want []string
	}{
		{"range-tiebreak", []string{"--line", "claim_id=X1,line_number=1,vendor_id=V001,cpt_code=27450,service_date=2024-05-15,billed_amount=1000.00,units=1"},
			[]string{"tie-break 1007 over 1006 on range_start", "tie-break 1007 over 1005 on range_start", "winner 1007; no RATE_CONFLICT", "net payable 916.75"}},
		{"modifiers", []string{"--line", "vendor_id=V002,cpt_code=74177,modifiers=26 TC,service_date=2024-05-15,billed_amount=400"},
			[]string{"modifiers 26 TC", "tie-break 2003 over 2002 on optional_criteria"}},
		{"stop-loss", []string{"--claims", sampleClaims, "--claim-id", "CLM001013", "--line-number", "3"},
			[]string{"Stop loss of case (CLM001013, C001): S = 5000.00, T = 6099.99", "allowed 2336.06", "STOP_LOSS_APPLIED"}},
		{"stop-loss-claim", []string{"--claims", sampleClaims, "--claim-id", "CLM001047"},
			[]string{"#4", "allowed 200.66", "REVIEW_REQUIRED;STOP_LOSS_APPLIED"}},
		{"default-rate", []string{"--claims", sampleClaims, "--claim-id", "CLM001012"},
			[]string{"the contract default rate applies (CONTRACT_DEFAULT_RATE)", "allowed 12.60"}},
		{"prior-auth-missing", []string{"--claims", sampleClaims, "--claim-id", "CLM001046"},
			[]string{"PRIOR_AUTH_MISSING (error): rate 10001 requires prior authorization"}},
		{"contract-overlap", []string{"--claims", sampleClaims, "--claim-id", "CLM001036"},
			[]string{"CONTRACT_OVERLAP (error)", "REJECTED at load"}},
		{"system-default", []string{"--system-default-rate", "Percentage:50", "--line", "vendor_id=V002,cpt_code=99999,service_date=2024-05-15,billed_amount=100"},
			[]string{"SYSTEM_DEFAULT_RATE", "allowed 50.00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "--contracts", sampleContracts}, tt.args...)
			status, out, stderr := runReportCLI(t, args...)
			if status != 0 {
				t.Fatalf("exit status %d: %s", status, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			checkGoldenFile(t, out, tt.name+".txt")
		})
	}
}

// TestExplainAgreesWithReprice explains every line of several sample claims
// and checks the numbers against the golden reprice output.
func TestExplainAgreesWithReprice(t *testing.T) {
	f, err := os.Open(samplePriced)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	want := map[string][]string{}
	for _, r := range rows[1:] {
		want[r[col["claim_id"]]] = append(want[r[col["claim_id"]]], r[col["line_number"]]+" "+r[col["allowed_amount"]]+" "+r[col["net_payable"]]+" "+r[col["flags"]])
	}
	for _, id := range []string{"CLM001001", "CLM001013", "CLM001047", "CLM001012"} {
		status, out, stderr := runReportCLI(t, "explain", "--contracts", sampleContracts, "--claims", sampleClaims, "--claim-id", id, "--json")
		if status != 0 {
			t.Fatalf("%s: exit status %d: %s", id, status, stderr)
		}
		var xs []struct {
			Line struct {
				LineNumber int64 `json:"line_number"`
			} `json:"line"`
			Outcome struct {
				Code       string `json:"code"`
				Allowed    string `json:"allowed_amount"`
				NetPayable string `json:"net_payable"`
				Flags      string `json:"flags"`
			} `json:"outcome"`
		}
		if err := json.Unmarshal([]byte(out), &xs); err != nil {
			t.Fatalf("%s: %v\n%s", id, err, out)
		}
		var got []string
		for _, x := range xs {
			if x.Outcome.Code == "" {
				got = append(got, strings.Join([]string{strconv.FormatInt(x.Line.LineNumber, 10), x.Outcome.Allowed, x.Outcome.NetPayable, x.Outcome.Flags}, " "))
			}
		}
		if strings.Join(got, "|") != strings.Join(want[id], "|") {
			t.Errorf("%s: explain gives %q, reprice gave %q", id, got, want[id])
		}
	}
}

func TestExplainUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"no contracts", []string{"explain", "--line", "vendor_id=V001"}, 2, "--contracts"},
		{"no line", []string{"explain", "--contracts", sampleContracts}, 2, "--line"},
		{"both", []string{"explain", "--contracts", sampleContracts, "--line", "a=b", "--claims", sampleClaims}, 2, "exclude"},
		{"claims without id", []string{"explain", "--contracts", sampleContracts, "--claims", sampleClaims}, 2, "--claim-id"},
		{"bad pair", []string{"explain", "--contracts", sampleContracts, "--line", "vendor_id"}, 2, "COLUMN=VALUE"},
		{"unknown column", []string{"explain", "--contracts", sampleContracts, "--line", "charge=10"}, 2, "unknown column"},
		{"bad field", []string{"explain", "--contracts", sampleContracts, "--line", "vendor_id=V001,cpt_code=1,service_date=2024-13-01,billed_amount=1"}, 2, "service_date"},
		{"unknown claim", []string{"explain", "--contracts", sampleContracts, "--claims", sampleClaims, "--claim-id", "NOPE"}, 2, "NOPE"},
		{"unknown line", []string{"explain", "--contracts", sampleContracts, "--claims", sampleClaims, "--claim-id", "CLM001013", "--line-number", "9"}, 2, "no line 9"},
		{"bad system default", []string{"explain", "--contracts", sampleContracts, "--line", "vendor_id=V001", "--system-default-rate", "Fee:1"}, 2, "Percentage:N"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", "") // --contracts falls back to it
			status, _, stderr := runReportCLI(t, tt.args...)
			if status != tt.status || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit status %d, stderr %q; want %d and %q", status, stderr, tt.status, tt.stderr)
			}
		})
	}
}

func TestCalendarCommand(t *testing.T) {
	base := []string{"contracts", "calendar", "--contracts", sampleContracts, "--today", "2025-05-01", "--within", "90d"}
	tests := []struct {
		name  string
		extra []string
		want  []string
	}{
		{"table", nil, []string{
			"Contract calendar 2025-05-01 .. 2025-07-30 (90 days)",
			"DATE        IN   EVENT                    CONTRACT  NUMBER          VENDOR  STATUS  DETAIL",
			"2025-05-31  30d  renewal_notice_deadline  C005      CON-2024-00005  V005    Active  30 days before the term ends 2025-06-30; last day to give renewal notice",
			"2025-06-30  60d  auto_renewal             C004      CON-2021-00004  V004    Active  renewal term 2 ends; rolls into a new 12-month term on 2025-07-01 unless notice is given",
			"2025-06-30  60d  expiration               C005      CON-2024-00005  V005    Active  Active contract expires (term 2024-01-01..2025-06-30); no auto-renewal",
		}},
		{"weeks", []string{"--within", "2w"}, []string{"(14 days)", "nothing falls in the window"}},
		{"csv", []string{"--format", "csv"}, []string{
			"date,days_left,event,contract_id,contract_number,vendor_id,status,detail",
			"2025-06-30,60,auto_renewal,C004,CON-2021-00004,V004,Active,renewal term 2 ends; rolls into a new 12-month term on 2025-07-01 unless notice is given",
		}},
		{"json", []string{"--format", "json"}, []string{`"today": "2025-05-01"`, `"within_days": 90`, `"event": "auto_renewal"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out, stderr := runReportCLI(t, append(base, tt.extra...)...)
			if status != 0 {
				t.Fatalf("exit status %d: %s", status, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tt.name == "json" {
				var rep calendarReport
				if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Entries) != 3 {
					t.Errorf("json: %v, %d entries", err, len(rep.Entries))
				}
			}
		})
	}
}

// TestCalendarRuns counts EXPIRED_CONTRACT_HONORED lines of the golden
// sample run per contract and checks the report against it.
func TestCalendarRuns(t *testing.T) {
	f, err := os.Open(samplePriced)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasSuffix(line, "EXPIRED_CONTRACT_HONORED") || strings.Contains(line, "EXPIRED_CONTRACT_HONORED;") {
			want[strings.Split(line, ",")[14]]++
		}
	}
	f.Close()
	if len(want) == 0 {
		t.Fatal("the golden sample has no EXPIRED_CONTRACT_HONORED lines")
	}
	run := filepath.Dir(samplePriced)
	status, out, stderr := runReportCLI(t, "contracts", "calendar", "--contracts", sampleContracts, "--today", "2025-05-01", "--within", "1d",
		"--runs", run, "--runs", run, "--format", "json")
	if status != 0 {
		t.Fatalf("exit status %d: %s", status, stderr)
	}
	var rep calendarReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, h := range rep.HonoredAfter {
		got[h.ContractID] = h.Lines
		if len(h.Runs) != 1 || h.Expiration == "" {
			t.Errorf("entry %+v", h)
		}
	}
	for id, n := range want {
		if got[id] != 2*n { // the same run given twice counts twice
			t.Errorf("contract %s: %d honored lines, want %d", id, got[id], 2*n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("contracts %v, want %v", got, want)
	}
	status, out, _ = runReportCLI(t, "contracts", "calendar", "--contracts", sampleContracts, "--today", "2025-05-01", "--runs", run)
	if status != 0 || !strings.Contains(out, "honored after expiry") || !strings.Contains(out, "C003") {
		t.Errorf("table lacks the honored section:\n%s", out)
	}
}

func TestCalendarUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"bad within", []string{"--within", "3 months"}, "--within"},
		{"bad today", []string{"--today", "2025-02-30"}, "--today"},
		{"bad format", []string{"--format", "xml"}, "--format"},
		{"missing run", []string{"--runs", "nowhere"}, "nowhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"contracts", "calendar", "--contracts", sampleContracts}, tt.args...)
			status, _, stderr := runReportCLI(t, args...)
			if status != 2 || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit status %d, stderr %q; want 2 and %q", status, stderr, tt.stderr)
			}
		})
	}
}
