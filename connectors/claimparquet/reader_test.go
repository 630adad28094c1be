package claimparquet_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
)

// roundTripRows are claim lines in canonical text form, valid and not.
var roundTripRows = [][claims.NumFields]string{
	{"C1", "1", "V001", "M1", "1234567890", "27447", "80", "ORTHOPEDIC SURGERY", "", "11", "2024-05-15", "1", "1400.00", ""},
	{"C1", "2", "V001", "M1", "1234567890", "j3301", "LT,26", "", "office", "11", "2024-05-15", "4", "45.25", "PA-1"},
	{"C2", "1", "V002", "", "", "99213", "", "", "", "", "2024-02-29", "", "0.05", ""},            // units null: 1
	{"C3", "1", "V002", "", "", "99213", "", "", "", "", "", "1", "150.00", ""},                   // no date: invalid
	{"", "1", "V002", "", "", "99213", "", "", "", "", "2024-05-15", "1", "150.00", ""},           // no claim id: invalid
	{"C4", "1", "V002", "", "", "99213", "", "", "", "", "2024-05-15", "0", "150.00", ""},         // units 0: invalid
	{"C5", "1", "V002", "", "", "99213", "", "", "", "", "2024-05-15", "1", "-50.00", ""},         // negative: invalid
	{"C6", "1", "V002", "", "", "99213", "26 TC 59 LT RT", "", "", "", "2024-05-15", "1", "", ""}, // no amount, 5 modifiers
}

// TestRoundTripMatchesCSV reads the same claim lines from CSV and from a
// typed Parquet file: every line must come back identical (raw values,
// parsed fields, validation), apart from the file name.
func TestRoundTripMatchesCSV(t *testing.T) {
	var csvText strings.Builder
	cw := csv.NewWriter(&csvText)
	cw.Write(claims.FieldNames[:])
	for _, r := range roundTripRows {
		cw.Write(r[:])
	}
	if cw.Flush(); cw.Error() != nil {
		t.Fatal(cw.Error())
	}
	cr, err := claimcsv.NewReader(strings.NewReader(csvText.String()), "claims", nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []claims.Line
	for {
		var l claims.Line
		if err := cr.Read(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		l.Plain = false // a CSV-only hint that values need no quoting
		want = append(want, l)
	}
	for _, rg := range []int64{0, 3} {
		t.Run("row groups of "+map[int64]string{0: "all", 3: "3"}[rg], func(t *testing.T) {
			got, err := readLines(t, buildParquet(t, canonicalCols(t, roundTripRows), rg), "claims", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d lines, want %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("line %d:\n got %s\nwant %s", i+1, lineString(&got[i]), lineString(&want[i]))
				}
			}
			if got[0].Invalid != nil || got[2].Units != 1 || got[3].Invalid == nil || got[7].Invalid == nil {
				t.Errorf("validation differs from expectations: %v %v %v %v", got[0].Invalid, got[2].Units, got[3].Invalid, got[7].Invalid)
			}
		})
	}
}

// TestColumnTypes reads one value through each accepted physical type.
func TestColumnTypes(t *testing.T) {
	tests := []struct {
		name    string
		field   claims.Field
		col     testCol
		raw     string
		invalid bool // the line is INVALID_ROW
	}{
		{"date32", claims.ServiceDate, testCol{typ: d32, vals: []any{"2024-02-29"}}, "2024-02-29", false},
		{"date64", claims.ServiceDate, testCol{typ: arrow.FixedWidthTypes.Date64, vals: []any{"1999-12-31"}}, "1999-12-31", false},
		{"timestamp UTC date part", claims.ServiceDate, testCol{typ: tsUTC, vals: []any{arrow.Timestamp(1715817599999)}}, "2024-05-15", false},
		{"timestamp before 1970", claims.ServiceDate, testCol{typ: tsUTC, vals: []any{arrow.Timestamp(-1)}}, "1969-12-31", false},
		{"string date", claims.ServiceDate, testCol{typ: utf8, vals: []any{"2024-05-15"}}, "2024-05-15", false},
		{"string date malformed", claims.ServiceDate, testCol{typ: utf8, vals: []any{"05/15/2024"}}, "05/15/2024", true},
		{"null date", claims.ServiceDate, testCol{typ: d32, vals: []any{nil}}, "", true},
		{"decimal scale 2", claims.BilledAmount, testCol{typ: dec2, vals: []any{"1234.56"}}, "1234.56", false},
		{"decimal scale 0", claims.BilledAmount, testCol{typ: &arrow.Decimal128Type{Precision: 10, Scale: 0}, vals: []any{"1234"}}, "1234", false},
		{"decimal scale 1", claims.BilledAmount, testCol{typ: &arrow.Decimal128Type{Precision: 10, Scale: 1}, vals: []any{"0.5"}}, "0.5", false},
		{"decimal scale 4, whole cents", claims.BilledAmount, testCol{typ: &arrow.Decimal128Type{Precision: 18, Scale: 4}, vals: []any{"12.3400"}}, "12.34", false},
		{"decimal scale 4, small", claims.BilledAmount, testCol{typ: &arrow.Decimal128Type{Precision: 18, Scale: 4}, vals: []any{"0.0500"}}, "0.05", false},
		{"decimal scale 4, fraction of a cent", claims.BilledAmount, testCol{typ: &arrow.Decimal128Type{Precision: 18, Scale: 4}, vals: []any{"12.3456"}}, "12.3456", true},
		{"decimal scale 3, tenth of a cent", claims.BilledAmount, testCol{typ: &arrow.Decimal128Type{Precision: 18, Scale: 3}, vals: []any{"0.001"}}, "0.001", true},
		{"decimal negative", claims.BilledAmount, testCol{typ: dec2, vals: []any{"-0.10"}}, "-0.10", true},
		{"decimal beyond int64", claims.BilledAmount, testCol{typ: &arrow.Decimal128Type{Precision: 38, Scale: 2}, vals: []any{"123456789012345678901234.50"}}, "123456789012345678901234.50", true},
		{"decimal above the billed bound", claims.BilledAmount, testCol{typ: dec2, vals: []any{"1000000000.01"}}, "1000000000.01", true},
		{"string amount", claims.BilledAmount, testCol{typ: utf8, vals: []any{"99.99"}}, "99.99", false},
		{"string amount with comma", claims.BilledAmount, testCol{typ: utf8, vals: []any{"12,50"}}, "12,50", true},
		{"null amount", claims.BilledAmount, testCol{typ: dec2, vals: []any{nil}}, "", true},
		{"int64 line number", claims.LineNumber, testCol{typ: i64, vals: []any{42}}, "42", false},
		{"uint16 line number", claims.LineNumber, testCol{typ: arrow.PrimitiveTypes.Uint16, vals: []any{7}}, "7", false},
		{"string line number", claims.LineNumber, testCol{typ: utf8, vals: []any{"A"}}, "A", true},
		{"int32 units", claims.Units, testCol{typ: i32, vals: []any{3}}, "3", false},
		{"negative units", claims.Units, testCol{typ: i32, vals: []any{-3}}, "-3", true},
		{"null units", claims.Units, testCol{typ: i64, vals: []any{nil}}, "", false},
		{"dictionary vendor", claims.VendorID, testCol{typ: dict, vals: []any{"V001"}}, "V001", false},
		{"large string vendor", claims.VendorID, testCol{typ: arrow.BinaryTypes.LargeString, vals: []any{"V002"}}, "V002", false},
		{"binary vendor", claims.VendorID, testCol{typ: arrow.BinaryTypes.Binary, vals: []any{"V003"}}, "V003", false},
		{"null vendor", claims.VendorID, testCol{typ: utf8, vals: []any{nil}}, "", true},
		{"null optional text", claims.MemberID, testCol{typ: utf8, vals: []any{nil}}, "", false},
	}
	base := [claims.NumFields]string{"C1", "1", "V001", "M1", "1234567890", "99213", "", "", "", "11", "2024-05-15", "1", "100.00", ""}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols := canonicalCols(t, [][claims.NumFields]string{base})
			tt.col.name = claims.FieldNames[tt.field]
			cols[tt.field] = tt.col
			lines, err := readLines(t, buildParquet(t, cols, 0), "t.parquet", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 1 {
				t.Fatalf("read %d lines, want 1", len(lines))
			}
			l := lines[0]
			if l.Raw[tt.field] != tt.raw {
				t.Errorf("raw %s = %q, want %q", tt.field, l.Raw[tt.field], tt.raw)
			}
			if (l.Invalid != nil) != tt.invalid {
				t.Errorf("invalid = %v, want invalid %v", l.Invalid, tt.invalid)
			}
			if l.Invalid != nil && tt.invalid && l.Invalid.Field != tt.field.String() {
				t.Errorf("invalid field = %s, want %s (%v)", l.Invalid.Field, tt.field, l.Invalid)
			}
			if l.Source != (claims.Source{File: "t.parquet", Row: 1}) {
				t.Errorf("source = %+v", l.Source)
			}
		})
	}
}

func TestSchemaErrors(t *testing.T) {
	row := [claims.NumFields]string{"C1", "1", "V001", "M1", "1234567890", "99213", "", "", "", "11", "2024-05-15", "1", "100.00", ""}
	tests := []struct {
		name    string
		edit    func(cols []testCol) []testCol
		mapping map[string]string
		column  string
		typ     string
		reason  string
	}{
		{"missing required column", func(c []testCol) []testCol { return append(c[:10:10], c[11:]...) }, nil, "service_date", "", "required column is missing"},
		{"missing mapped column", func(c []testCol) []testCol { return c }, map[string]string{"billed_amount": "charge_amt"}, "charge_amt (mapped to billed_amount)", "", "required column is missing"},
		{"float money", func(c []testCol) []testCol {
			c[claims.BilledAmount] = testCol{name: "billed_amount", typ: f64, vals: []any{100.0}}
			return c
		}, nil, "billed_amount", "float64", "money must be exact"},
		{"integer money", func(c []testCol) []testCol {
			c[claims.BilledAmount] = testCol{name: "billed_amount", typ: i64, vals: []any{100}}
			return c
		}, nil, "billed_amount", "int64", "ambiguous"},
		{"integer date", func(c []testCol) []testCol {
			c[claims.ServiceDate] = testCol{name: "service_date", typ: i32, vals: []any{20240515}}
			return c
		}, nil, "service_date", "int32", "expected DATE32"},
		{"float units", func(c []testCol) []testCol {
			c[claims.Units] = testCol{name: "units", typ: f64, vals: []any{1.0}}
			return c
		}, nil, "units", "float64", "expected an integer or string"},
		{"integer cpt code", func(c []testCol) []testCol {
			c[claims.CPTCode] = testCol{name: "CPT_Code", typ: i64, vals: []any{99213}}
			return c
		}, nil, "CPT_Code", "int64", "expected a string column"},
		{"column twice", func(c []testCol) []testCol {
			return append(c, testCol{name: "Claim_ID", typ: utf8, vals: []any{"C1"}})
		}, nil, "Claim_ID", "utf8", "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols := tt.edit(canonicalCols(t, [][claims.NumFields]string{row}))
			_, err := readLines(t, buildParquet(t, cols, 0), "bad.parquet", tt.mapping)
			var se *claimparquet.SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SchemaError", err)
			}
			if se.File != "bad.parquet" || se.Column != tt.column || se.Type != tt.typ || !strings.Contains(se.Reason, tt.reason) {
				t.Errorf("got %+v, want column %q type %q reason containing %q", *se, tt.column, tt.typ, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.column) || !strings.Contains(err.Error(), tt.typ) {
				t.Errorf("message %q does not name the column and type", err)
			}
		})
	}
}

func TestMappingAndProjection(t *testing.T) {
	row := [claims.NumFields]string{"C1", "1", "V001", "M1", "1234567890", "99213", "", "", "", "11", "2024-05-15", "1", "100.00", ""}
	cols := canonicalCols(t, [][claims.NumFields]string{row})
	cols[claims.BilledAmount].name = "Charge_Amt"
	cols[claims.ClaimID].name = " CLAIM_ID "
	// A column that is not canonical is not read at all, whatever its type.
	cols = append(cols, testCol{name: "notes", typ: f64, vals: []any{1.5}})
	// Without the mapping the amount column is unknown, so it is missing.
	if _, err := readLines(t, buildParquet(t, cols, 0), "m.parquet", nil); err == nil {
		t.Fatal("read a file without billed_amount")
	}
	lines, err := readLines(t, buildParquet(t, cols, 0), "m.parquet", map[string]string{"billed_amount": "charge_amt"})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].Invalid != nil || lines[0].Billed != 10000 || lines[0].ClaimID != "C1" {
		t.Fatalf("got %s", lineString(&lines[0]))
	}
}

func TestEmptyFile(t *testing.T) {
	cols := canonicalCols(t, nil)
	lines, err := readLines(t, buildParquet(t, cols, 0), "empty.parquet", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 0 {
		t.Fatalf("read %d lines from an empty file", len(lines))
	}
}

func TestCorruptFiles(t *testing.T) {
	rows := make([][claims.NumFields]string, 50)
	for i := range rows {
		rows[i] = [claims.NumFields]string{"C1", "1", "V001", "M1", "1234567890", "99213", "", "", "", "11", "2024-05-15", "1", "100.00", ""}
	}
	good := buildParquet(t, canonicalCols(t, rows), 0)
	// Damage the page data (after the magic, before the footer) so that the
	// footer still parses and the failure comes while reading rows.
	pages := append([]byte(nil), good...)
	for i := 4; i < len(pages)/2; i++ {
		pages[i] ^= 0x5a
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not parquet", []byte("claim_id,line_number\nC1,1\n")},
		{"truncated", good[:len(good)/2]},
		{"footer cut", good[:len(good)-3]},
		{"corrupt pages", pages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readLines(t, tt.data, "bad.parquet", nil)
			if err == nil {
				t.Fatal("read a corrupt file without error")
			}
			var se *claimparquet.SchemaError
			if errors.As(err, &se) {
				t.Fatalf("corruption reported as a schema error: %v", err)
			}
			var re *claimparquet.ReadError
			if !errors.As(err, &re) || re.File != "bad.parquet" || re.Unwrap() == nil {
				t.Fatalf("err = %v, want a *ReadError naming the file and wrapping the cause", err)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	rows := [][claims.NumFields]string{{"C1", "1", "V001", "M1", "1234567890", "99213", "", "", "", "11", "2024-05-15", "1", "100.00", ""}}
	data := buildParquet(t, canonicalCols(t, rows), 0)
	ctx, cancel := context.WithCancel(context.Background())
	rd, err := claimparquet.NewReader(ctx, bytes.NewReader(data), "c.parquet", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	cancel()
	var l claims.Line
	if err := rd.Read(&l); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %v, want context.Canceled", err)
	}
}

// TestNullWithBytes reads a text column whose null slot spans bytes, which
// Arrow allows: the null must read as empty, and its neighbours intact.
func TestNullWithBytes(t *testing.T) {
	fields := make([]arrow.Field, claims.NumFields)
	cols := make([]arrow.Array, claims.NumFields)
	for f := range fields {
		fields[f] = arrow.Field{Name: claims.FieldNames[f], Type: arrow.BinaryTypes.String, Nullable: true}
		b := array.NewStringBuilder(memory.DefaultAllocator)
		b.AppendValues([]string{"1", "1"}, nil)
		cols[f] = b.NewArray()
		defer cols[f].Release()
	}
	// member_id: a null spanning "XX", then "M2".
	data := array.NewData(arrow.BinaryTypes.String, 2,
		[]*memory.Buffer{memory.NewBufferBytes([]byte{0b10}), memory.NewBufferBytes(arrow.Int32Traits.CastToBytes([]int32{0, 2, 4})), memory.NewBufferBytes([]byte("XXM2"))}, nil, 1, 0)
	defer data.Release()
	cols[claims.MemberID].Release()
	cols[claims.MemberID] = array.NewStringData(data)
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, 2)
	defer rec.Release()
	rr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	rd, err := claimparquet.NewRecordReader(context.Background(), rr, "records", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		var l claims.Line
		if err := rd.Read(&l); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		got = append(got, l.Raw[claims.MemberID])
	}
	if want := []string{"", "M2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("member ids = %q, want %q", got, want)
	}
}
