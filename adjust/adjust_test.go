package adjust

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const pricedHeader = "claim_id,line_number,cpt_code,service_date,contract_id,rate_id,rate_type,rate_value,allowed_amount,admin_fee,net_payable\n"
const excHeader = "claim_id,line_number,code,severity,cpt_code,service_date\n"

func writeRun(t *testing.T, priced, exc string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "priced.csv"), []byte(pricedHeader+priced), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "exceptions.csv"), []byte(excHeader+exc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCompareReasons(t *testing.T) {
	prior := writeRun(t,
		"A,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"+
			"B,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"+
			"C,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"+
			"D,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"+
			"E,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"+
			"G,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n",
		"F,1,NO_RATE,error,99215,2024-01-01\n"+
			"H,1,NO_CONTRACT,error,99215,2024-01-01\n"+
			"I,1,NO_RATE,error,99215,2024-01-01\n"+
			"A,1,DUPLICATE_LINE,error,99213,2024-01-01\n"+
			"A,1,REVIEW_REQUIRED,review,99213,2024-01-01\n")
	current := writeRun(t,
		"A,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"+
			"B,1,99213,2024-01-01,C1,R2,Amount,85.00,85.00,4.25,80.75\n"+
			"C,1,99213,2024-01-01,C2,R9,Amount,80.00,80.00,0.00,80.00\n"+
			"D,1,99213,2024-01-01,C1,R1,Amount,80.00,70.00,3.50,66.50\n"+
			"F,1,99215,2024-01-01,C1,R3,Amount,150.00,150.00,7.50,142.50\n"+
			"J,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n",
		"E,1,NO_RATE,error,99213,2024-01-01\n"+
			"H,1,NO_RATE,error,99215,2024-01-01\n"+
			"I,1,NO_RATE,error,99215,2024-01-01\n"+
			"A,1,DUPLICATE_LINE,error,99213,2024-01-01\n")
	rep, err := Compare(context.Background(), prior, current)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		claim  string
		reason Reason
		delta  string
	}{
		{"A", Unchanged, "0.00"}, {"B", RateAmended, "4.75"}, {"C", ContractChanged, "4.00"},
		{"D", AmountChanged, "-9.50"}, {"F", NewlyPriced, "142.50"}, {"J", NewLine, "76.00"},
		{"E", NewlyExcepted, "-76.00"}, {"H", ExceptionChanged, "0.00"}, {"I", Unchanged, "0.00"},
		{"A", Unchanged, "0.00"}, {"G", RemovedLine, "-76.00"},
	}
	if len(rep.Lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(rep.Lines), len(want))
	}
	for i, w := range want {
		l := rep.Lines[i]
		_, _, dn := l.Delta()
		t.Run(w.claim+"-"+string(w.reason), func(t *testing.T) {
			if l.ClaimID != w.claim || l.Reason != w.reason || dn.String() != w.delta {
				t.Errorf("line %d = %s %s %s, want %s %s %s", i, l.ClaimID, l.Reason, dn, w.claim, w.reason, w.delta)
			}
		})
	}
	if got := rep.Totals.DeltaNet.String(); got != "65.75" {
		t.Errorf("total delta net = %s, want 65.75", got)
	}
	byC := map[string]string{}
	for _, g := range rep.ByContract {
		byC[g.Key] = g.DeltaNet.String()
	}
	// Each line counts once, under the contract pricing it now, else
	// before: C moved to C2 (76.00 -> 80.00); C1 keeps the rest: B +4.75,
	// D -9.50, E -76, F +142.50, G -76, J +76.
	if byC["C1"] != "61.75" || byC["C2"] != "4.00" {
		t.Errorf("by contract = %v", byC)
	}
	var lines int64
	for _, g := range rep.ByContract {
		lines += g.Lines
	}
	if lines != rep.Totals.Lines || lines != int64(len(want)) {
		t.Errorf("by-contract lines add up to %d, want %d", lines, len(want))
	}
	// H, I and the second A are exceptions in both runs: one labelled row;
	// then the total of every line compared.
	var bc strings.Builder
	if err := rep.WriteByContractCSV(&bc); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(bc.String()), "\n")
	if len(rows) != 5 || !strings.HasPrefix(rows[3], NotPricedLabel+",,,3,1,") || !strings.HasPrefix(rows[4], TotalLabel+",,,11,8,") {
		t.Errorf("adjustments_by_contract.csv:\n%s", bc.String())
	}
	var sb strings.Builder
	if err := rep.WriteCSV(&sb); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(sb.String(), "\n"); n != len(want)+1 {
		t.Errorf("csv has %d lines", n)
	}
}

func TestCompareErrors(t *testing.T) {
	empty := t.TempDir()
	ok := writeRun(t, "", "")
	if _, err := Compare(context.Background(), empty, ok); !errors.Is(err, ErrNoOutputs) {
		t.Errorf("missing outputs: %v", err)
	}
	bad := writeRun(t, "A,1,99213,2024-01-01,C1,R1,Amount,80.00,80.0x,4.00,76.00\n", "")
	var fe *FileError
	if _, err := Compare(context.Background(), ok, bad); !errors.Is(err, ErrValue) || !errors.As(err, &fe) || fe.Row != 1 || fe.Column != "allowed_amount" {
		t.Errorf("bad amount: %v", err)
	}
}

// TestCompareClaimOrder: lines come in the current run's input order, an
// exception at its source position among the priced lines, across input
// files; without a usable summary.json, priced lines come first.
func TestCompareClaimOrder(t *testing.T) {
	priced := "A,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n" +
		"C,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n" +
		"D,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"
	const sumTwoFiles = `{"inputs":[{"file":"a.csv","lines":3},{"file":"b.csv","lines":2}]}`
	tests := []struct {
		name    string
		exc     string // source_file,source_row,claim_id per line
		summary string
		want    string
	}{
		{"exception in the middle", "a.csv,2,B\nb.csv,2,E\n", sumTwoFiles, "A B C D E"},
		{"exceptions first", "a.csv,1,B\na.csv,2,E\n", sumTwoFiles, "B E A C D"},
		{"no summary", "a.csv,2,B\nb.csv,2,E\n", "", "A C D B E"},
		{"counts do not fit", "a.csv,2,B\nb.csv,2,E\n", `{"inputs":[{"file":"a.csv","lines":9}]}`, "A C D B E"},
		{"unknown file", "a.csv,2,B\nz.csv,2,E\n", sumTwoFiles, "A C D B E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var exc strings.Builder
			for _, l := range strings.Split(strings.TrimSpace(tt.exc), "\n") {
				f := strings.Split(l, ",")
				exc.WriteString(f[2] + ",1," + f[0] + "," + f[1] + ",NO_RATE,error,99213,2024-01-01\n")
			}
			dir := t.TempDir()
			for name, body := range map[string]string{
				"priced.csv":     pricedHeader + priced,
				"exceptions.csv": "claim_id,line_number,source_file,source_row,code,severity,cpt_code,service_date\n" + exc.String(),
				"summary.json":   tt.summary,
			} {
				if body != "" {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			rep, err := Compare(context.Background(), dir, dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range rep.Lines {
				got = append(got, l.ClaimID)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("order %v, want %s", got, tt.want)
			}
		})
	}
}

func TestCanonicalRate(t *testing.T) {
	for in, want := range map[string]string{"80": "80.00", "80.00": "80.00", "80.000000": "80.00", "60.125000": "60.125", "0.5": "0.50", "x": "x", "": ""} {
		if got := canonicalRate(in); got != want {
			t.Errorf("canonicalRate(%q) = %q, want %q", in, got, want)
		}
	}
}
