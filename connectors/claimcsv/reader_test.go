package claimcsv

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unsafe"

	"github.com/repricer/repricer/claims"
)

const header = "claim_id,line_number,vendor_id,member_id,provider_npi,cpt_code,modifiers,specialty,visit_kind,place_of_service,service_date,units,billed_amount,prior_auth_number\n"

func readAll(t testing.TB, data string, mapping map[string]string) ([]claims.Line, error) {
	t.Helper()
	r, err := NewReader(strings.NewReader(data), "in.csv", mapping)
	if err != nil {
		return nil, err
	}
	var out []claims.Line
	for {
		var l claims.Line
		err := r.Read(&l)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
}

func TestReaderRows(t *testing.T) {
	tests := []struct {
		name    string
		row     string
		invalid string // "" = valid; else the field named
	}{
		{"valid", "C1,1,V1,M1,N1,99213,,,,11,2024-01-02,,100.5,", ""},
		{"modifiers split", "C1,1,V1,M1,N1,99213,\"26, tc\",,,11,2024-01-02,2,100,", ""},
		{"bad date", "C1,1,V1,M1,N1,99213,,,,11,2024-02-30,1,100,", "service_date"},
		{"exponent", "C1,1,V1,M1,N1,99213,,,,11,2024-01-02,1,1e2,", "billed_amount"},
		{"three places", "C1,1,V1,M1,N1,99213,,,,11,2024-01-02,1,1.005,", "billed_amount"},
		{"negative billed", "C1,1,V1,M1,N1,99213,,,,11,2024-01-02,1,-1.00,", "billed_amount"},
		{"zero units", "C1,1,V1,M1,N1,99213,,,,11,2024-01-02,0,1.00,", "units"},
		{"missing claim", ",1,V1,M1,N1,99213,,,,11,2024-01-02,1,1.00,", "claim_id"},
		{"too few fields", "C1,1,V1", "row"},
		{"bare quote", "C1,1,V1,M\"1,N1,99213,,,,11,2024-01-02,1,1.00,", "row"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := readAll(t, header+tt.row+"\n", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 1 {
				t.Fatalf("%d lines", len(lines))
			}
			l := lines[0]
			got := ""
			if l.Invalid != nil {
				got = l.Invalid.Field
			}
			if got != tt.invalid {
				t.Errorf("invalid field %q, want %q (%v)", got, tt.invalid, l.Invalid)
			}
			if l.Source.Row != 1 || l.Source.File != "in.csv" {
				t.Errorf("source %+v", l.Source)
			}
		})
	}
}

func TestReaderParsesValues(t *testing.T) {
	lines, err := readAll(t, header+"C1,7,V1,M1,N1, j3301 ,\"26 tc\",ortho,office,21,2024-01-02,,100.5,PA\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := lines[0]
	if l.CPT != "J3301" || l.NumMods != 2 || l.Modifiers[1] != "TC" || l.Specialty != "ORTHO" || l.Units != 1 || l.Billed != 10050 || l.LineNumber != 7 {
		t.Errorf("parsed %+v", l)
	}
}

func TestReaderHeader(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		mapping map[string]string
		column  string // "" = ok
	}{
		{"canonical", header, nil, ""},
		{"case and BOM", "\ufeffCLAIM_ID,Line_Number,VENDOR_ID,cpt_code,service_date,billed_amount\n", nil, ""},
		{"missing billed", "claim_id,line_number,vendor_id,cpt_code,service_date\n", nil, "billed_amount"},
		{"mapped", "claim_id,line_number,vendor_id,cpt_code,service_date,charge_amt\n", map[string]string{"billed_amount": "charge_amt"}, ""},
		{"mapped but missing", "claim_id,line_number,vendor_id,cpt_code,service_date,billed_amount\n", map[string]string{"billed_amount": "charge_amt"}, "charge_amt (mapped to billed_amount)"},
		{"duplicate", "claim_id,claim_id,line_number,vendor_id,cpt_code,service_date,billed_amount\n", nil, "claim_id"},
		{"empty file", "", nil, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.header), "in.csv", tt.mapping)
			var he *HeaderError
			switch {
			case tt.column == "" && err != nil:
				t.Fatal(err)
			case tt.column != "" && !errors.As(err, &he):
				t.Fatalf("err = %v, want a HeaderError", err)
			case tt.column != "" && tt.column != "-" && he.Column != tt.column:
				t.Errorf("column %q, want %q", he.Column, tt.column)
			}
		})
	}
}

func TestWriterQuotesLikeEncodingCSV(t *testing.T) {
	var it claims.Item
	it.Line.Raw[claims.ClaimID] = `C"1`
	it.Line.Raw[claims.LineNumber] = "1"
	it.Line.Raw[claims.VendorID] = "V,1"
	it.Line.Raw[claims.MemberID] = " lead"
	it.Line.Raw[claims.Specialty] = "multi\nline"
	it.Line.Source = claims.Source{File: "in.csv", Row: 3}
	it.Result.Code, it.Result.Message = claims.NoContract, `no "contract"`
	got := string(AppendException(nil, &it, claims.NoContract))
	rec, err := csv.NewReader(strings.NewReader(got)).Read()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(rec)
	w.Flush()
	if buf.String() != got {
		t.Errorf("got %q\nencoding/csv writes %q", got, buf.String())
	}
	if rec[0] != `C"1` || rec[6] != `no "contract"` || rec[7] != "V,1" {
		t.Errorf("round trip %q", rec)
	}
}

// FuzzReader feeds arbitrary bytes to the claim reader: it must never panic,
// and every record it returns is either valid or names the field at fault.
func FuzzReader(f *testing.F) {
	f.Add([]byte(header + "C1,1,V1,M1,N1,99213,,,,11,2024-01-02,,100.5,\n"))
	f.Add([]byte(header + "C1,1,V1,\"M\n1\",N1,99213,26 TC 59 LT RT,,,11,2024-02-29,3,0.01,PA\n"))
	f.Add([]byte("claim_id,line_number,vendor_id,cpt_code,service_date,billed_amount\n\"C1,1\n"))
	f.Add([]byte(header + "C1,1,V1,M\"1,N1,99213,,,,11,2024-01-02,1,1.00,\n,,,,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "fuzz.csv", nil)
		if err != nil {
			return
		}
		for n := int64(1); ; n++ {
			var l claims.Line
			err := r.Read(&l)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatalf("read error on in-memory input: %v", err)
			}
			if l.Source.Row != n {
				t.Fatalf("source row %d, want %d", l.Source.Row, n)
			}
			if l.Invalid == nil && (l.ClaimID == "" || l.CPT == "" || l.ServiceDate == 0 || l.Units <= 0 || l.Billed < 0) {
				t.Fatalf("line accepted with missing values: %+v", l)
			}
			if l.Invalid != nil && l.Invalid.Field == "" {
				t.Fatal("invalid line without a field")
			}
		}
	})
}

// TestReadArena reads records with ReadArena and Read in alternation: a
// ReadArena line equals the Read line of the same record and keeps its text
// in the caller's arena, which is then wiped (the pipeline reuses it); the
// lines of Read must come through that intact.
func TestReadArena(t *testing.T) {
	rows := []string{
		"C1,1,V1,M1,N1,99213,,,,11,2024-01-02,,100.5,",
		"C1,2,V1,M1,N1,99213,\"26, tc\",,,11,2024-01-02,2,100,",
		"C2,1,V1,M\"1,N1,99213,,,,11,2024-01-02,1,1.00,",
		"C3,1,V1,\"M\n1\",N1,99213,,,,11,2024-02-30,1,100,",
		"C4,1,V1",
	}
	var in strings.Builder
	in.WriteString(header)
	for i := range 200 {
		in.WriteString(rows[i%len(rows)] + "\n")
	}
	want, err := readAll(t, in.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(strings.NewReader(in.String()), "in.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[int]claims.Line{}
	var arena []byte
	for i := 0; ; i++ {
		var l claims.Line
		if (i/7)%2 == 1 {
			if err := r.Read(&l); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			kept[i] = l
			continue
		}
		arena, err = r.ReadArena(&l, arena[:0])
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(l) != fmt.Sprint(want[i]) {
			t.Fatalf("ReadArena, line %d: got %+v, want %+v", i+1, l, want[i])
		}
		lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(arena))), uintptr(unsafe.Pointer(unsafe.SliceData(arena)))+uintptr(len(arena))
		for f, v := range l.Raw {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(v))); v != "" && (p < lo || p >= hi) {
				t.Fatalf("line %d: %s is not in the arena", i+1, claims.Field(f))
			}
		}
		clear(arena)
	}
	if len(kept) == 0 {
		t.Fatal("no line read with Read")
	}
	for i, l := range kept {
		if fmt.Sprint(l) != fmt.Sprint(want[i]) {
			t.Errorf("Read after ReadArena, line %d: got %+v, want %+v", i+1, l, want[i])
		}
	}
}

// A carriage return inside an unquoted input field is written back quoted,
// so a standard CSV reader reads the row as one record with the same value.
func TestCarriageReturnInFieldRoundTrips(t *testing.T) {
	in := "claim_id,line_number,vendor_id,member_id,cpt_code,service_date,billed_amount\nC1,1,V001,M12\r34,27447,2024-05-15,100.00\n"
	lines, err := readAll(t, in, nil)
	if err != nil || len(lines) != 1 {
		t.Fatalf("read %d lines, %v", len(lines), err)
	}
	var it claims.Item
	it.Line = lines[0]
	it.Result.Code, it.Result.Message = claims.NoContract, "no contract"
	out := string(AppendException(nil, &it, claims.NoContract))
	r := csv.NewReader(strings.NewReader(out))
	recs, err := r.ReadAll()
	if err != nil || len(recs) != 1 {
		t.Fatalf("encoding/csv reads %d records from %q: %v", len(recs), out, err)
	}
	if !slicesContain(recs[0], "M12\r34") {
		t.Errorf("the member value did not survive: %q", recs[0])
	}
	// encoding/csv keeps a bare \r, but many readers (Python's csv, DuckDB,
	// spreadsheets) end the row there: the field must be quoted.
	if !strings.Contains(out, `,"M12`+"\r"+`34",`) {
		t.Errorf("the field holding \\r is not quoted: %q", out)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A record over MaxRecord is an invalid row, not the end of the file: the
// records before and after it are read.
func TestLongRecordIsAnInvalidRow(t *testing.T) {
	good := "C1,1,V1,M1,N1,99213,,,,11,2024-01-02,,100.5,\n"
	long := "C2,1,V1," + strings.Repeat("x", MaxRecord+10) + ",N1,99213,,,,11,2024-01-02,,1,\n"
	longQuoted := "C3,1,V1,\"" + strings.Repeat("y\n", MaxRecord/2+10) + "\",N1,99213,,,,11,2024-01-02,,1,\n"
	// A quoted field that runs on past the limit is cut there: reading goes
	// on at the next line, whose rows are then what they look like (here
	// each "y" is a row with too few fields), so only the one-line case
	// finds its way back to the next good record at once.
	for name, bad := range map[string]string{"one line": long, "quoted over many lines": longQuoted} {
		t.Run(name, func(t *testing.T) {
			lines, err := readAll(t, header+good+bad+strings.Replace(good, "C1", "C9", 1), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) < 3 {
				t.Fatalf("read %d lines, want the good ones around the long record", len(lines))
			}
			if lines[0].Invalid != nil {
				t.Errorf("the record before the long one: %+v", lines[0].Invalid)
			}
			if last := lines[len(lines)-1]; name == "one line" && (len(lines) != 3 || last.Invalid != nil || last.ClaimID != "C9") {
				t.Errorf("after the long record: %d lines, last %+v", len(lines), last)
			}
			for _, l := range lines {
				if l.Invalid != nil && l.Invalid.Field == "" {
					t.Errorf("row %d invalid without a field", l.Source.Row)
				}
			}
			if inv := lines[1].Invalid; inv == nil || !strings.Contains(inv.Reason, "longer than 1 MiB") || lines[1].Source.Row != 2 {
				t.Errorf("the long record: %+v at row %d", inv, lines[1].Source.Row)
			}
		})
	}
}
