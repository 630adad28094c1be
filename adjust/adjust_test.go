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
