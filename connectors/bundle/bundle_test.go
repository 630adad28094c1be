package bundle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/repricer/repricer/contracts"
)

func TestReadSample(t *testing.T) {
	s, err := Read(context.Background(), "../../testdata/sample/contracts")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Contracts) != 15 || len(s.Rates) != 60 || len(s.Kinds) != 6 {
		t.Fatalf("%d contracts, %d rates, %d kinds", len(s.Contracts), len(s.Rates), len(s.Kinds))
	}
	c := s.Contracts[0]
	if c.ID != "C001" || !c.LesserOfBilled || c.StopLoss != 500000 || c.AdminFeePct.String() != "3.50" || c.Source.Row != 1 {
		t.Errorf("first contract %+v", c)
	}
	var bad *contracts.Rate
	for i := range s.Rates {
		if s.Rates[i].ID == "14004" {
			bad = &s.Rates[i]
		}
	}
	if bad == nil || bad.LoadError == nil || bad.LoadError.Field != "rate_value" {
		t.Errorf("rate 14004 with value abc: %+v", bad)
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, err := Read(ctx, "../../testdata/sample/contracts")
	if err != nil {
		t.Fatal(err)
	}
	// Rows that did not parse cannot be written back faithfully.
	rates := s.Rates[:0]
	for _, r := range s.Rates {
		if r.LoadError == nil {
			rates = append(rates, r)
		}
	}
	s.Rates = rates
	dir := t.TempDir()
	if err := Write(ctx, dir, s); err != nil {
		t.Fatal(err)
	}
	back, err := Read(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Fingerprint() != back.Fingerprint() {
		t.Error("a written bundle reads back differently")
	}
	dir2 := t.TempDir()
	if err := Write(ctx, dir2, back); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ContractsFile, RatesFile, KindsFile} {
		a, _ := os.ReadFile(filepath.Join(dir, f))
		b, _ := os.ReadFile(filepath.Join(dir2, f))
		if string(a) != string(b) {
			t.Errorf("%s is not stable across a round trip", f)
		}
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name      string
		contracts string
		rates     string
		column    string
		row       int
	}{
		{"missing required column", "contract_id,vendor_id,status,effective_date\n", "rate_id\n", "expiration_date", 0},
		{"duplicate column", "contract_id,contract_id,vendor_id,status,effective_date,expiration_date\n", "", "contract_id", 0},
		{"malformed csv", "contract_id,vendor_id,status,effective_date,expiration_date\nC1,V1,\"Active,2024-01-01\n", "", "", 1},
		{"missing rates file", "contract_id,vendor_id,status,effective_date,expiration_date\n", "-", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ContractsFile), []byte(tt.contracts), 0o644)
			if tt.rates != "-" {
				os.WriteFile(filepath.Join(dir, RatesFile), []byte(tt.rates), 0o644)
			}
			_, err := Read(context.Background(), dir)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FormatError", err)
			}
			if fe.Column != tt.column || fe.Row != tt.row {
				t.Errorf("column %q row %d, want %q row %d (%v)", fe.Column, fe.Row, tt.column, tt.row, err)
			}
		})
	}
}

func TestFieldErrorsAreKept(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ContractsFile), []byte("contract_id,vendor_id,status,effective_date,expiration_date,auto_renewal,excluded_services\n"+
		"C1,V1,Active,2024-01-01,2024-12-31,yes,\n"+
		"C2,V1,Open,2024-01-01,2024-12-31,,\n"+
		"C3,V1,Active,2024-01-01,2024-12-31,,\"99215-99211\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, RatesFile), []byte("rate_id,contract_id,rate_kind,rate_type,rate_value,effective_date\n"), 0o644)
	s, err := Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"auto_renewal", "status", "excluded_services"}
	for i, c := range s.Contracts {
		if c.LoadError == nil || c.LoadError.Field != want[i] {
			t.Errorf("contract %s: load error %v, want field %s", c.ID, c.LoadError, want[i])
		}
	}
}

// TestRatesDoNotPinRecords checks that the repeated values of rates share
// one copy instead of pointing into their own CSV records (which would keep
// every record of a large schedule alive).
func TestRatesDoNotPinRecords(t *testing.T) {
	s, err := Read(context.Background(), "../../testdata/sample/contracts")
	if err != nil {
		t.Fatal(err)
	}
	byValue := map[string]*byte{}
	for i := range s.Rates {
		r := &s.Rates[i]
		for _, v := range []string{r.ContractID, r.Kind, r.CPTCode, r.Specialty} {
			if v == "" {
				continue
			}
			p := unsafe.StringData(v)
			if q, ok := byValue[v]; ok && q != p {
				t.Fatalf("rate %s: value %q is a second copy", r.ID, v)
			}
			byValue[v] = p
		}
	}
}

// Messages say FILE:LINE with the file's line number (the header is line
// 1, and a quoted field may span lines), while Source.Row stays the
// record number that source_row reports.
func TestSourceLinesAndBadValues(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ContractsFile), []byte("contract_id,vendor_id,status,status_reason,effective_date,expiration_date\n"+
		"C1,V1,Active,\"two\nlines\",2024-01-01,2024-12-31\n"+
		"C2,V1,Active,,2024-13-45,2024-12-31\n"), 0o644)
	os.WriteFile(filepath.Join(dir, RatesFile), []byte("rate_id,contract_id,rate_kind,rate_type,rate_value,effective_date\n"), 0o644)
	os.WriteFile(filepath.Join(dir, KindsFile), []byte("kind,priority\nCPT,abc\nSPECIALTY,\n"), 0o644)
	s, err := Read(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Contracts[1]; c.Source.Row != 2 || c.Source.Line != 4 || c.Source.Loc() != filepath.Join(dir, ContractsFile)+":4" {
		t.Errorf("second contract: row %d line %d (%s), want row 2 line 4", c.Source.Row, c.Source.Line, c.Source.Loc())
	}
	v := contracts.Validate(s)
	var got []string
	for _, is := range v.Issues {
		got = append(got, is.String())
	}
	for _, want := range []string{
		ContractsFile + `:4: rejected contract C2: field effective_date:`, `(value "2024-13-45")`,
		KindsFile + `:2: rejected rate_kind CPT: field priority: not a whole number (value "abc")`,
		KindsFile + `:3: rejected rate_kind SPECIALTY: field priority: priority is required`,
	} {
		found := false
		for _, g := range got {
			if strings.Contains(g, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no issue says %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
}
