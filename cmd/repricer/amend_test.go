package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/amendment"
	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/feeschedule"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	amendData   = "../../testdata/amend"
	waScheduleD = "../../testdata/feeschedules/wa-medicaid-physician"
	reprocessG  = "../../testdata/golden/reprocess"
)

// runAmendCLI runs args through an app holding reprice and the commands of
// amend.go, and returns stdout and the exit status main would give.
func runAmendCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{
		Name: "repricer", Writer: &out, ErrWriter: &errOut,
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Commands: []*cli.Command{
			repriceCommand(),
			{Name: "contracts", Subcommands: amendCommands()},
			adjustCommand(),
		},
	}
	err := app.RunContext(context.Background(), append([]string{"repricer"}, args...))
	code := report(err, &errOut)
	if code != 0 {
		t.Logf("repricer %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String(), code
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, code := runAmendCLI(t, args...)
	if code != 0 {
		t.Fatalf("repricer %s: exit %d", strings.Join(args, " "), code)
	}
	return out
}

func compareGolden(t *testing.T, got []byte, golden string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", filepath.Base(golden), got, want)
	}
}

// TestReprocessScenario is the whole workflow of docs/reprocessing.md: run,
// amend retroactively, rerun, adjustment report with exact deltas.
func TestReprocessScenario(t *testing.T) {
	dir := t.TempDir()
	base, amended := filepath.Join(amendData, "base"), filepath.Join(dir, "contracts-amended")
	run1, run2 := filepath.Join(dir, "run-before"), filepath.Join(dir, "run-after")
	claimsFile := filepath.Join(amendData, "claims.csv")

	mustRun(t, "reprice", "--contracts", base, "--claims", claimsFile, "--out", run1, "-q")
	out := mustRun(t, "contracts", "amend", "--contracts", base, "--amendment", filepath.Join(amendData, "retro"),
		"--out", amended, "--today", "2024-09-20")
	if want := "amendment A-2024-RETRO: contract C100 effective 2024-03-01 (retroactive): 2 rates end-dated, 0 deactivated, 0 already ended, 2 added\n"; out != want {
		t.Errorf("amend output = %q, want %q", out, want)
	}
	mustRun(t, "reprice", "--contracts", amended, "--claims", claimsFile, "--out", run2, "-q")
	reportDir := filepath.Join(dir, "report")
	out = mustRun(t, "adjust", "--prior", run1, "--current", run2, "--out", reportDir)
	if !strings.HasPrefix(out, "9 lines (UNCHANGED 5, RATE_AMENDED 2, NEWLY_PRICED 1, NEWLY_EXCEPTED 1); allowed 650.00 -> 755.00 (+105.00), net payable 621.00 -> 720.75 (+99.75); report in ") {
		t.Errorf("adjust output %q lacks the allowed totals", out)
	}
	for _, name := range []string{adjust.AdjustmentsFile, adjust.ByContractFile, adjust.ByCodeFile} {
		got, err := os.ReadFile(filepath.Join(reportDir, name))
		if err != nil {
			t.Fatal(err)
		}
		compareGolden(t, got, filepath.Join(reprocessG, name))
	}

	// History is kept: the replaced rates are end-dated, not removed.
	s, err := bundle.Read(context.Background(), amended)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[string]string{}
	for _, r := range s.Rates {
		ends[r.ID] = r.Effective.String() + ".." + r.End.String()
	}
	for id, want := range map[string]string{"R100": "2024-01-01..2024-02-29", "R102": "2024-01-01..2024-02-29",
		"R101": "2024-01-01..", "R110": "2024-03-01..", "R111": "2024-03-01..", "R200": "2024-01-01.."} {
		if ends[id] != want {
			t.Errorf("rate %s = %q, want %q", id, ends[id], want)
		}
	}

	// The summary counts every reason and the by-contract deltas.
	b, err := os.ReadFile(filepath.Join(reportDir, adjust.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		ByReason map[string]int `json:"by_reason"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"UNCHANGED": 5, "RATE_AMENDED": 2, "NEWLY_PRICED": 1, "NEWLY_EXCEPTED": 1}
	for r, n := range sum.ByReason {
		if n != want[r] {
			t.Errorf("by_reason[%s] = %d, want %d", r, n, want[r])
		}
	}
}

// TestNonRetroactiveAmendment: an amendment effective in the future changes
// nothing for earlier service dates, and a past effective date is refused
// unless the amendment is marked retroactive.
func TestNonRetroactiveAmendment(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(amendData, "base")
	claimsFile := filepath.Join(amendData, "claims.csv")
	run1 := filepath.Join(dir, "run-before")
	mustRun(t, "reprice", "--contracts", base, "--claims", claimsFile, "--out", run1, "-q")

	t.Run("future amendment leaves earlier dates unchanged", func(t *testing.T) {
		amended, run2 := filepath.Join(dir, "future"), filepath.Join(dir, "run-future")
		mustRun(t, "contracts", "amend", "--contracts", base, "--amendment", filepath.Join(amendData, "future"),
			"--out", amended, "--today", "2024-09-20")
		mustRun(t, "reprice", "--contracts", amended, "--claims", claimsFile, "--out", run2, "-q")
		rep, err := adjust.Compare(context.Background(), run1, run2)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Lines) != 9 {
			t.Fatalf("%d lines, want 9", len(rep.Lines))
		}
		for _, l := range rep.Lines {
			if l.Reason != adjust.Unchanged {
				t.Errorf("claim %s line %s: %s, want UNCHANGED", l.ClaimID, l.LineNumber, l.Reason)
			}
		}
		if rep.Totals.DeltaNet != 0 || rep.Totals.ChangedLines != 0 {
			t.Errorf("totals %+v, want no change", rep.Totals)
		}
	})

	t.Run("past effective date without retroactive is refused", func(t *testing.T) {
		for _, today := range []string{"2024-10-02", "2025-01-01"} {
			_, code := runAmendCLI(t, "contracts", "amend", "--contracts", base, "--amendment", filepath.Join(amendData, "future"),
				"--out", filepath.Join(dir, "refused"), "--today", today)
			if code != 2 {
				t.Errorf("today %s: exit %d, want 2", today, code)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "refused")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused amendment wrote a bundle: %v", err)
		}
	})

	t.Run("unknown rate id is refused", func(t *testing.T) {
		adir := filepath.Join(dir, "bad-amendment")
		if err := os.MkdirAll(adir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(adir, amendment.File), []byte(
			"amendment_id,contract_id,reason,amendment_date,effective_date,replace_rate_ids\nA-X,C100,typo,2024-09-01,2024-10-01,R999\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, code := runAmendCLI(t, "contracts", "amend", "--contracts", base, "--amendment", adir,
			"--out", filepath.Join(dir, "x"), "--today", "2024-09-01"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		a, err := amendment.ReadFolder(context.Background(), adir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := bundle.Read(context.Background(), base)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := contracts.Apply(s, a, 0); !errors.Is(err, contracts.ErrUnknownRate) {
			t.Errorf("Apply = %v, want ErrUnknownRate", err)
		}
	})
}

// TestWhatIf prices the claims against the retroactive amendment without
// applying it and reports the same impact as the real reprocessing.
func TestWhatIf(t *testing.T) {
	dir := t.TempDir()
	out := mustRun(t, "contracts", "what-if", "--contracts", filepath.Join(amendData, "base"),
		"--proposed", filepath.Join(amendData, "retro"), "--claims", filepath.Join(amendData, "claims.csv"),
		"--out", dir, "--today", "2024-09-20")
	if !strings.Contains(out, "net payable 621.00 -> 720.75 (+99.75)") {
		t.Errorf("what-if output %q", out)
	}
	got, err := os.ReadFile(filepath.Join(dir, adjust.ByContractFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(reprocessG, adjust.ByContractFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("what-if by contract differs from the reprocessing golden:\n%s\nwant\n%s", got, want)
	}
	// The bundle was only read.
	s, err := bundle.Read(context.Background(), filepath.Join(amendData, "base"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rates) != 4 {
		t.Errorf("base bundle has %d rates, want 4", len(s.Rates))
	}
}

func waFileNames() []string {
	return []string{
		"physician_010114.csv", "physician_070114.csv", "physician_010115.csv", "physician_040115.csv",
		"physician_070115.csv", "physician_100115.csv", "physician_010116.csv", "physician_040116.csv",
	}
}

// TestImportWAFeeSchedules imports the eight WA files in date order into one
// contract through the amendment path and prices lines with the engine.
func TestImportWAFeeSchedules(t *testing.T) {
	if testing.Short() {
		t.Skip("imports ~94,000 rates")
	}
	dir := t.TempDir()
	amended, reportFile := filepath.Join(dir, "wa"), filepath.Join(dir, "report.json")
	args := []string{"contracts", "import-fee-schedule", "--contracts", filepath.Join(amendData, "wa"),
		"--contract", "WA-MCD", "--retroactive", "--today", "2016-06-01", "--out", amended, "--report", reportFile}
	for _, f := range waFileNames() {
		args = append(args, "--file", filepath.Join(waScheduleD, f))
	}
	mustRun(t, args...)

	b, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	var reps []amendment.FeeScheduleImport
	if err := json.Unmarshal(b, &reps); err != nil {
		t.Fatal(err)
	}
	// Rows, rates and skipped records per file are the numbers the parser
	// tests pin (connectors/feeschedule TestWACounts); each file end-dates
	// the previous file's rates that are still open.
	wantRows := []int{9915, 9871, 10042, 9923, 9920, 9933, 10047, 9924}
	wantRates := []int{11699, 11657, 11870, 11740, 11727, 11740, 11888, 11758}
	wantSkipped := []map[feeschedule.Reason]int{
		{feeschedule.AcquisitionCost: 46, feeschedule.AgeRestricted: 10, feeschedule.Bundled: 147, feeschedule.ByReport: 575, feeschedule.DeletedCode: 166, feeschedule.NotADollarAmount: 272, feeschedule.NotCovered: 653, feeschedule.OtherProgram: 19},
		{feeschedule.AcquisitionCost: 49, feeschedule.AgeRestricted: 10, feeschedule.Bundled: 147, feeschedule.ByReport: 583, feeschedule.DeletedCode: 163, feeschedule.NotADollarAmount: 272, feeschedule.NotCovered: 629, feeschedule.OtherProgram: 19},
		{feeschedule.AcquisitionCost: 49, feeschedule.AgeRestricted: 10, feeschedule.Bundled: 144, feeschedule.ByReport: 634, feeschedule.DeletedCode: 17, feeschedule.NotADollarAmount: 272, feeschedule.NotCovered: 836, feeschedule.OtherProgram: 23},
		{feeschedule.AcquisitionCost: 49, feeschedule.AgeRestricted: 10, feeschedule.Bundled: 144, feeschedule.ByReport: 625, feeschedule.NotADollarAmount: 269, feeschedule.NotCovered: 792, feeschedule.OtherProgram: 23},
		{feeschedule.AcquisitionCost: 49, feeschedule.AgeRestricted: 10, feeschedule.Bundled: 144, feeschedule.ByReport: 634, feeschedule.NotADollarAmount: 269, feeschedule.NotCovered: 788, feeschedule.OtherProgram: 23},
		{feeschedule.AcquisitionCost: 49, feeschedule.AgeRestricted: 10, feeschedule.Bundled: 145, feeschedule.ByReport: 635, feeschedule.NotADollarAmount: 269, feeschedule.NotCovered: 777, feeschedule.OtherProgram: 23},
		{feeschedule.AcquisitionCost: 49, feeschedule.AgeRestricted: 10, feeschedule.Bundled: 145, feeschedule.ByReport: 629, feeschedule.NotADollarAmount: 269, feeschedule.NotCovered: 786, feeschedule.OtherProgram: 23},
		{feeschedule.AcquisitionCost: 49, feeschedule.AgeRestricted: 10, feeschedule.Bundled: 145, feeschedule.ByReport: 615, feeschedule.NotADollarAmount: 269, feeschedule.NotCovered: 753, feeschedule.OtherProgram: 26},
	}
	if len(reps) != 8 {
		t.Fatalf("%d file reports, want 8", len(reps))
	}
	totalRates := 0
	for i, rep := range reps {
		t.Run(filepath.Base(rep.File), func(t *testing.T) {
			if rep.Rows != wantRows[i] || rep.RatesAdded != wantRates[i] {
				t.Errorf("rows %d rates %d, want %d and %d", rep.Rows, rep.RatesAdded, wantRows[i], wantRates[i])
			}
			sum := 0
			for r, n := range wantSkipped[i] {
				sum += n
				if rep.SkippedByReason[r] != n {
					t.Errorf("skipped %s = %d, want %d", r, rep.SkippedByReason[r], n)
				}
			}
			if len(rep.SkippedByReason) != len(wantSkipped[i]) || rep.Skipped != sum {
				t.Errorf("skipped = %d %v, want %d %v", rep.Skipped, rep.SkippedByReason, sum, wantSkipped[i])
			}
			wantEnded := 0
			if i > 0 {
				wantEnded = wantRates[i-1]
			}
			if rep.RatesEndDated != wantEnded || rep.RatesDeactivated != 0 {
				t.Errorf("end-dated %d deactivated %d, want %d and 0", rep.RatesEndDated, rep.RatesDeactivated, wantEnded)
			}
		})
		totalRates += wantRates[i]
	}

	s, err := bundle.Read(context.Background(), amended)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rates) != totalRates {
		t.Errorf("bundle has %d rates, want %d (history kept)", len(s.Rates), totalRates)
	}
	v := contracts.Validate(s)
	if len(v.Rejected) != 0 || len(v.Rates) != totalRates {
		t.Fatalf("validation: %d usable rates, rejected %v; first issues %v", len(v.Rates), v.Rejected, v.Issues[:min(len(v.Issues), 5)])
	}
	eng := rates.New(v, rates.Options{})
	p := eng.NewPricer()

	tests := []struct {
		code, mod, pos, on string
		want               string // allowed for 1 unit; "" = NO_RATE
		rateID             string // checked when set
	}{
		{"99213", "", "11", "2014-01-01", "38.39", "WA-MCD-FS-20140101-99213-NFS"},
		{"99213", "", "11", "2014-06-30", "38.39", ""},
		{"99213", "", "11", "2014-07-01", "38.71", "WA-MCD-FS-20140701-99213-NFS"},
		{"99213", "", "11", "2015-06-30", "38.71", ""},
		{"99213", "", "11", "2015-07-01", "39.13", ""},
		{"99213", "", "11", "2016-12-31", "39.13", "WA-MCD-FS-20160401-99213-NFS"},
		{"99213", "", "21", "2014-03-15", "25.47", "WA-MCD-FS-20140101-99213-FS"},
		{"99213", "", "21", "2014-12-31", "26.64", ""},
		{"99213", "", "22", "2016-04-01", "27.03", ""},
		{"71010", "", "11", "2014-01-01", "14.44", "WA-MCD-FS-20140101-71010-ALL"},
		{"71010", "TC", "21", "2014-01-01", "9.22", "WA-MCD-FS-20140101-71010-TC-ALL"},
		{"71010", "26", "11", "2014-07-01", "5.47", ""},
		{"71010", "26", "21", "2015-07-01", "5.43", ""},
		{"71010", "TC", "11", "2016-01-01", "8.14", ""},
		{"11719", "", "11", "2015-07-01", "8.35", ""},
		{"11719", "", "21", "2015-07-01", "4.59", ""},
		{"87070", "", "21", "2014-01-01", "", ""}, // FS N/A in January 2014
		{"87070", "", "21", "2014-07-01", "9.42", ""},
		{"20604", "", "11", "2014-12-31", "", ""}, // covered from 2015
		{"20604", "", "11", "2015-01-01", "43.33", ""},
		{"00100", "", "11", "2015-01-01", "", ""}, // "5 Base" skipped
	}
	for _, tt := range tests {
		t.Run(tt.code+"-"+tt.mod+"-"+tt.pos+"-"+tt.on, func(t *testing.T) {
			it := claims.Item{}
			it.Line.Raw = [claims.NumFields]string{}
			for f, v := range map[claims.Field]string{claims.ClaimID: "C", claims.LineNumber: "1", claims.VendorID: "WA-HCA",
				claims.CPTCode: tt.code, claims.Modifiers: tt.mod, claims.PlaceOfService: tt.pos, claims.ServiceDate: tt.on,
				claims.BilledAmount: "5000.00", claims.PriorAuthNumber: "PA1"} {
				it.Line.Raw[f] = v
			}
			it.Line.Parse()
			p.PriceLine(&it)
			r := &it.Result
			if tt.want == "" {
				if r.Code != claims.NoRate {
					t.Fatalf("code %s allowed %s, want NO_RATE", r.Code, r.Allowed)
				}
				return
			}
			if !r.Priced() || r.Allowed.String() != tt.want {
				t.Fatalf("code %q %s allowed %s, want %s", r.Code, r.Message, r.Allowed, tt.want)
			}
			if tt.rateID != "" && r.RateID != tt.rateID {
				t.Errorf("rate %s, want %s", r.RateID, tt.rateID)
			}
		})
	}
}

func TestImportFeeScheduleOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first")
	mustRun(t, "contracts", "import-fee-schedule", "--contracts", filepath.Join(amendData, "wa"), "--contract", "WA-MCD",
		"--file", filepath.Join(waScheduleD, "physician_070114.csv"), "--retroactive", "--today", "2016-06-01", "--out", first)
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"older schedule after a newer one", []string{"--contracts", first, "--file", filepath.Join(waScheduleD, "physician_010114.csv"), "--retroactive"}, 2},
		{"past schedule without retroactive", []string{"--contracts", first, "--file", filepath.Join(waScheduleD, "physician_010115.csv")}, 2},
		{"unknown contract", []string{"--contracts", first, "--file", filepath.Join(waScheduleD, "physician_010115.csv"), "--retroactive", "--contract", "NOPE"}, 2},
		{"next schedule", []string{"--contracts", first, "--file", filepath.Join(waScheduleD, "physician_010115.csv"), "--retroactive"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"contracts", "import-fee-schedule", "--contract", "WA-MCD", "--today", "2016-06-01",
				"--out", filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))}, tt.args...)
			if _, code := runAmendCLI(t, args...); code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
		})
	}
}

func TestRunLedgerFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	mustRun(t, "reprice", "--contracts", filepath.Join(amendData, "base"), "--claims", filepath.Join(amendData, "claims.csv"), "--out", out, "-q")
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Counts struct {
			InputLines int64 `json:"input_lines"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	ledger := filepath.Join(dir, "ledger.jsonl")
	for _, id := range []string{"run-1", "run-2"} {
		rec := adjust.RunRecord{RunID: id, OutputLocation: out + "-" + id}
		rec.Counts.InputLines = sum.Counts.InputLines
		if err := adjust.RecordRun(context.Background(), ledger, 0, rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := adjust.PriorOutput(context.Background(), ledger, 0, "run-1")
	if err != nil || got != out+"-run-1" {
		t.Errorf("priorRunOutput = %q, %v", got, err)
	}
	if _, err := adjust.PriorOutput(context.Background(), ledger, 0, "run-9"); !errors.Is(err, adjust.ErrRunNotFound) {
		t.Errorf("unknown run: %v, want ErrRunNotFound", err)
	}
}
