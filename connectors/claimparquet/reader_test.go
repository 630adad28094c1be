package claimparquet_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

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

// fastRows is the size of the files comparing the fast path with pqarrow's
// record reader: several batches, in row groups that are not multiples of
// ReadBatchRows.
const fastRows = 21_000

// mix is a hash of (row, field), to spread nulls and odd values.
func mix(i int, f claims.Field) uint64 {
	x := uint64(i)*0x9e3779b97f4a7c15 + uint64(f)*0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	return x ^ x>>29
}

// fastNull reports whether value (i, f) of an optional column is null:
// scattered nulls at different rates, long runs, row groups without a
// value, and a column that is all null.
func fastNull(i int, f claims.Field) bool {
	h := mix(i, f)
	switch f {
	case claims.Modifiers:
		return h%4 != 0
	case claims.ProviderNPI:
		return i/700%3 == 0
	case claims.Specialty:
		return i < 12_000 || h%2 == 0
	case claims.VisitKind:
		return true
	case claims.PriorAuthNumber:
		return h%100 != 0
	case claims.MemberID:
		return h%10 == 0
	case claims.Units:
		return h%5 == 0
	}
	return h%41 == 0
}

// fastValue is value (i, f) for a column of type typ: an int for integer,
// date (days since 1970) and timestamp types, a decimal128.Num or an int
// (unscaled) for decimals, a string otherwise. Some values are invalid
// claims (bad dates, amounts, numbers), so that Parse rejects them alike.
func fastValue(i int, f claims.Field, typ arrow.DataType) any {
	h := mix(i, f) >> 8
	switch typ.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.DICTIONARY:
		switch f {
		case claims.ClaimID:
			return fmt.Sprintf("C%06d", i/3)
		case claims.LineNumber, claims.Units:
			return []string{"1", "2", "3", "0", "A", "-1", "1.5", "4"}[h%8]
		case claims.VendorID:
			return fmt.Sprintf("V%03d", h%40)
		case claims.MemberID:
			return fmt.Sprintf("M%07d", h%1_000_000)
		case claims.CPTCode:
			return []string{"99213", "99214", "27447", "j3301", "", "00100"}[h%6]
		case claims.Modifiers:
			return []string{"26", "LT,26", "TC 59", "26 TC 59 LT RT", "XX"}[h%5]
		case claims.ServiceDate:
			return []string{"2024-05-15", "2024-02-29", "05/15/2024", "2023-02-29", "2024-12-31"}[h%5]
		case claims.BilledAmount:
			return []string{"100.00", "0.05", "12,50", "-1.00", "1.234", "99999.99", "1000000000.01"}[h%7]
		}
		return fmt.Sprintf("%s-%d", f, h%300)
	case arrow.DATE32:
		switch h % 97 {
		case 0:
			return -800_000 // before year 1
		case 1:
			return 3_000_000 // after 9999
		}
		return 19_723 + int(h%500) // from 2024-01-01
	case arrow.TIMESTAMP:
		per := map[arrow.TimeUnit]int{arrow.Millisecond: 86_400_000, arrow.Microsecond: 86_400_000_000, arrow.Nanosecond: 86_400_000_000_000}[typ.(*arrow.TimestampType).Unit]
		day := 19_723 + int(h%500)
		if h%13 == 0 {
			day = -int(h % 3) // around 1970, before it too
		}
		return day*per + int(h>>20)%per
	case arrow.DECIMAL128, arrow.DECIMAL256:
		dt := typ.(arrow.DecimalType)
		v := int(h % 10_000_000)
		if dt.GetScale() > 2 && h%3 != 0 {
			v -= v % 100 // whole cents, mostly
		}
		if h%17 == 0 {
			v = -v
		}
		if dt.GetPrecision() <= 9 {
			v %= 1_000_000_000
		}
		if typ.ID() == arrow.DECIMAL128 && dt.GetPrecision() > 18 && h%11 == 0 {
			return decimal128.New(int64(h%1000)-500, h) // beyond int64
		}
		return v
	}
	n := []int{1, 2, 3, 1, 2, 0, -3, 100}[h%8]
	if h%50 == 0 {
		n = int(h % 100_000)
	}
	return n
}

func appendFastValue(t testing.TB, b array.Builder, v any) {
	t.Helper()
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int8Builder:
		b.Append(int8(v.(int)))
	case *array.Int16Builder:
		b.Append(int16(v.(int)))
	case *array.Uint8Builder:
		b.Append(uint8(v.(int)))
	case *array.Uint32Builder:
		b.Append(uint32(v.(int)))
	case *array.Uint64Builder:
		b.Append(uint64(v.(int)))
	case *array.Date32Builder:
		b.Append(arrow.Date32(v.(int)))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v.(int)))
	case *array.Decimal128Builder:
		if n, ok := v.(decimal128.Num); ok {
			b.Append(n)
		} else {
			b.Append(decimal128.FromI64(int64(v.(int))))
		}
	case *array.Decimal256Builder:
		b.Append(decimal256.FromI64(int64(v.(int))))
	default:
		appendValue(t, b, v)
	}
}

// fastCase is a claim file for TestFastPathMatchesArrow.
type fastCase struct {
	name     string
	types    map[claims.Field]arrow.DataType // the others are utf8
	required []claims.Field                  // REQUIRED columns (no nulls); the others are OPTIONAL
	allReq   bool                            // every column REQUIRED
	props    []parquet.WriterProperty
	int96    bool // timestamps as INT96
	rgRows   int64
	fast     bool // whether NewReader takes the fast path
}

// build writes the case's file of fastRows claim lines with pqarrow.
func (fc fastCase) build(t testing.TB) []byte {
	t.Helper()
	mem := memory.DefaultAllocator
	fields := make([]arrow.Field, claims.NumFields)
	arrs := make([]arrow.Array, claims.NumFields)
	for f := range fields {
		typ := fc.types[claims.Field(f)]
		if typ == nil {
			typ = utf8
		}
		nullable := !fc.allReq && !slices.Contains(fc.required, claims.Field(f))
		fields[f] = arrow.Field{Name: claims.FieldNames[f], Type: typ, Nullable: nullable}
		b := array.NewBuilder(mem, typ)
		for i := range fastRows {
			var v any
			if !nullable || !fastNull(i, claims.Field(f)) {
				v = fastValue(i, claims.Field(f), typ)
			}
			appendFastValue(t, b, v)
		}
		arrs[f] = b.NewArray()
		b.Release()
		defer arrs[f].Release()
	}
	props := append([]parquet.WriterProperty{parquet.WithMaxRowGroupLength(fc.rgRows)}, fc.props...)
	return writeRecord(t, fields, arrs, fastRows, props, pqarrow.WithDeprecatedInt96Timestamps(fc.int96))
}

// lowLevelFile writes fastRows claim lines with arrow-go's column writers,
// so that integer columns can hold values beyond their annotation (an
// INT(8) of 300, an unsigned column of negative INT64s), which pqarrow's
// writer cannot produce but other writers can. Columns are optional.
func lowLevelFile(t testing.TB, rgRows int, lineNumber, units, amount *schema.PrimitiveNode) []byte {
	t.Helper()
	nodes := make(schema.FieldList, claims.NumFields)
	for f := range nodes {
		nodes[f] = schema.MustPrimitive(schema.NewPrimitiveNodeLogical(claims.FieldNames[f], parquet.Repetitions.Optional, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1))
	}
	nodes[claims.LineNumber], nodes[claims.Units], nodes[claims.BilledAmount] = lineNumber, units, amount
	nodes[claims.ServiceDate] = schema.MustPrimitive(schema.NewPrimitiveNodeLogical("service_date", parquet.Repetitions.Optional, schema.DateLogicalType{}, parquet.Types.Int32, -1, -1))
	var buf bytes.Buffer
	pw := file.NewParquetWriter(&buf, schema.MustGroup(schema.NewGroupNode("schema", parquet.Repetitions.Required, nodes, -1)))
	for lo := 0; lo < fastRows; lo += rgRows {
		hi := min(lo+rgRows, fastRows)
		rgw := pw.AppendRowGroup()
		for f := range claims.NumFields {
			cw, err := rgw.NextColumn()
			if err != nil {
				t.Fatal(err)
			}
			defs := make([]int16, 0, hi-lo)
			var (
				ba  []parquet.ByteArray
				i32 []int32
				i64 []int64
			)
			for i := lo; i < hi; i++ {
				if fastNull(i, claims.Field(f)) {
					defs = append(defs, 0)
					continue
				}
				defs = append(defs, 1)
				// Wide values: an int8 or unsigned column gets anything.
				n := int64(mix(i, claims.Field(f))>>40)%1000 - 300
				switch claims.Field(f) {
				case claims.ServiceDate:
					i32 = append(i32, int32(fastValue(i, claims.Field(f), d32).(int)))
				case claims.LineNumber, claims.Units, claims.BilledAmount:
					if cw.Type() == parquet.Types.Int32 {
						i32 = append(i32, int32(n))
					} else {
						i64 = append(i64, n)
					}
				default:
					ba = append(ba, parquet.ByteArray(fastValue(i, claims.Field(f), utf8).(string)))
				}
			}
			switch w := cw.(type) {
			case *file.ByteArrayColumnChunkWriter:
				_, err = w.WriteBatch(ba, defs, nil)
			case *file.Int32ColumnChunkWriter:
				_, err = w.WriteBatch(i32, defs, nil)
			case *file.Int64ColumnChunkWriter:
				_, err = w.WriteBatch(i64, defs, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := cw.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := rgw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func intNode(t testing.TB, name string, phys parquet.Type, logical schema.LogicalType) *schema.PrimitiveNode {
	t.Helper()
	n, err := schema.NewPrimitiveNodeLogical(name, parquet.Repetitions.Optional, logical, phys, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readAll reads every line of data with rd.
func readAll(t testing.TB, rd *claimparquet.Reader) []claims.Line {
	t.Helper()
	defer rd.Close()
	var out []claims.Line
	for {
		var l claims.Line
		err := rd.Read(&l)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
}

// TestFastPathMatchesArrow reads files through the fast path and through
// pqarrow's record reader: every line must come back identical, raw
// values, source, parsed fields and validation.
func TestFastPathMatchesArrow(t *testing.T) {
	ts := func(u arrow.TimeUnit, tz string) arrow.DataType { return &arrow.TimestampType{Unit: u, TimeZone: tz} }
	dec := func(p, s int32) arrow.DataType { return &arrow.Decimal128Type{Precision: p, Scale: s} }
	asInt := parquet.WithStoreDecimalAsInteger(true)
	smallPages := parquet.WithDataPageSize(2 << 10)
	cases := []fastCase{
		{name: "canonical types, dictionary, INT64 decimal", rgRows: 5003, fast: true, props: []parquet.WriterProperty{asInt},
			types: map[claims.Field]arrow.DataType{claims.LineNumber: i64, claims.Units: i32, claims.ServiceDate: d32, claims.BilledAmount: dec(18, 2), claims.VendorID: dict}},
		{name: "no dictionary, small V2 pages, INT32 decimal, timestamp ms", rgRows: 10_007, fast: true,
			props:    []parquet.WriterProperty{asInt, parquet.WithDictionaryDefault(false), smallPages, parquet.WithDataPageVersion(parquet.DataPageV2)},
			types:    map[claims.Field]arrow.DataType{claims.LineNumber: i32, claims.Units: arrow.PrimitiveTypes.Int16, claims.ServiceDate: ts(arrow.Millisecond, ""), claims.BilledAmount: dec(9, 2), claims.MemberID: arrow.BinaryTypes.Binary},
			required: []claims.Field{claims.ClaimID, claims.BilledAmount, claims.Units}},
		{name: "dictionary falling back to plain, FLBA decimal scale 4, timestamp us", rgRows: 8193, fast: true,
			props: []parquet.WriterProperty{parquet.WithDictionaryPageSizeLimit(1 << 10), smallPages},
			types: map[claims.Field]arrow.DataType{claims.LineNumber: arrow.PrimitiveTypes.Uint16, claims.Units: arrow.PrimitiveTypes.Int8, claims.ServiceDate: ts(arrow.Microsecond, "UTC"), claims.BilledAmount: dec(18, 4)}},
		{name: "all required, FLBA decimal beyond int64", rgRows: 7001, fast: true, allReq: true,
			types: map[claims.Field]arrow.DataType{claims.LineNumber: arrow.PrimitiveTypes.Uint32, claims.Units: arrow.PrimitiveTypes.Uint8, claims.ServiceDate: d32, claims.BilledAmount: dec(38, 2)}},
		{name: "timestamp ns, decimal scale 0, uint64", rgRows: 4096, fast: true, props: []parquet.WriterProperty{asInt, parquet.WithVersion(parquet.V2_6)},
			types: map[claims.Field]arrow.DataType{claims.LineNumber: arrow.PrimitiveTypes.Int8, claims.Units: arrow.PrimitiveTypes.Uint64, claims.ServiceDate: ts(arrow.Nanosecond, "UTC"), claims.BilledAmount: dec(10, 0)}},
		{name: "text columns with bad values", rgRows: 9000, fast: true, props: []parquet.WriterProperty{smallPages}},
		{name: "text columns, one row group", rgRows: fastRows, fast: true, props: []parquet.WriterProperty{parquet.WithDictionaryDefault(false)},
			required: []claims.Field{claims.VendorID, claims.CPTCode}},
		// Types left to pqarrow: a Decimal256 and an INT96 timestamp.
		{name: "decimal256 falls back", rgRows: 6000, types: map[claims.Field]arrow.DataType{claims.BilledAmount: &arrow.Decimal256Type{Precision: 40, Scale: 2}, claims.ServiceDate: d32}},
		{name: "int96 falls back", rgRows: 6000, props: []parquet.WriterProperty{asInt}, int96: true,
			types: map[claims.Field]arrow.DataType{claims.ServiceDate: ts(arrow.Nanosecond, "UTC"), claims.BilledAmount: dec(18, 2)}},
	}
	type testFile struct {
		name string
		data []byte
		fast bool // whether NewReader takes the fast path
	}
	var files []testFile
	for _, fc := range cases {
		files = append(files, testFile{fc.name, fc.build(t), fc.fast})
	}
	for _, ll := range []struct {
		name                      string
		lineNumber, units, amount *schema.PrimitiveNode
	}{
		{"low level: INT(8) and UINT(64) beyond range, INT32 DECIMAL(9,3)",
			intNode(t, "line_number", parquet.Types.Int32, schema.NewIntLogicalType(8, true)), intNode(t, "units", parquet.Types.Int64, schema.NewIntLogicalType(64, false)),
			intNode(t, "billed_amount", parquet.Types.Int32, schema.NewDecimalLogicalType(9, 3))},
		{"low level: INT(16) and UINT(32), INT64 DECIMAL(18,1)",
			intNode(t, "line_number", parquet.Types.Int32, schema.NewIntLogicalType(16, true)), intNode(t, "units", parquet.Types.Int32, schema.NewIntLogicalType(32, false)),
			intNode(t, "billed_amount", parquet.Types.Int64, schema.NewDecimalLogicalType(18, 1))},
		{"low level: UINT(8) and UINT(16), INT64 DECIMAL(18,2)",
			intNode(t, "line_number", parquet.Types.Int32, schema.NewIntLogicalType(8, false)), intNode(t, "units", parquet.Types.Int32, schema.NewIntLogicalType(16, false)),
			intNode(t, "billed_amount", parquet.Types.Int64, schema.NewDecimalLogicalType(18, 2))},
	} {
		files = append(files, testFile{ll.name, lowLevelFile(t, 6007, ll.lineNumber, ll.units, ll.amount), true})
	}
	mixed := false
	for _, tf := range files {
		mixed = mixed || mixesDictionaryAndPlain(t, tf.data)
		t.Run(tf.name, func(t *testing.T) {
			fast, err := claimparquet.NewReader(context.Background(), bytes.NewReader(tf.data), "f.parquet", nil)
			if err != nil {
				t.Fatal(err)
			}
			if fast.FastPath() != tf.fast {
				t.Fatalf("fast path = %v, want %v", fast.FastPath(), tf.fast)
			}
			ref, err := claimparquet.NewArrowReader(context.Background(), bytes.NewReader(tf.data), "f.parquet", nil)
			if err != nil {
				t.Fatal(err)
			}
			if ref.FastPath() {
				t.Fatal("NewArrowReader took the fast path")
			}
			got, exp := readAll(t, fast), readAll(t, ref)
			if len(got) != len(exp) || len(exp) != fastRows {
				t.Fatalf("fast path read %d lines, pqarrow %d, want %d", len(got), len(exp), fastRows)
			}
			bad, invalid := 0, 0
			for i := range exp {
				if exp[i].Invalid != nil {
					invalid++
				}
				if !reflect.DeepEqual(got[i], exp[i]) {
					if bad++; bad <= 3 {
						t.Errorf("line %d:\n got %s\nwant %s", i+1, lineString(&got[i]), lineString(&exp[i]))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d lines differ", bad, len(exp))
			}
			if invalid == 0 || invalid == len(exp) {
				t.Errorf("%d of %d lines invalid: the file should have both", invalid, len(exp))
			}
			for _, open := range []func(context.Context, parquet.ReaderAtSeeker, string, map[string]string) (*claimparquet.Reader, error){
				claimparquet.NewReader, claimparquet.NewArrowReader,
			} {
				rd, err := open(context.Background(), bytes.NewReader(tf.data), "f.parquet", nil)
				if err != nil {
					t.Fatal(err)
				}
				checkArenaReads(t, rd, exp)
			}
		})
	}
	if !mixed {
		t.Error("no column chunk mixes dictionary-encoded and plain data pages")
	}
}

// checkArenaReads reads rd in runs of lines alternating between ReadArena
// (a new arena each run) and Read, switching within the reader's batches,
// and then checks every line against exp: after the whole file, the reader
// has reused its own buffers many times, and neither kind of line may have
// kept a string in them.
func checkArenaReads(t *testing.T, rd *claimparquet.Reader, exp []claims.Line) {
	t.Helper()
	defer rd.Close()
	var arena []byte
	got := map[int]claims.Line{}
	i := 0
	for ; ; i++ {
		var l claims.Line
		var err error
		useArena := (i/1000)%2 == 0
		if i%1000 == 0 {
			arena = nil
		}
		if useArena {
			arena, err = rd.ReadArena(&l, arena)
		} else {
			err = rd.Read(&l)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[i] = l
	}
	if i != len(exp) {
		t.Fatalf("read %d lines, want %d", i, len(exp))
	}
	bad := 0
	for i := range exp {
		if l := got[i]; !reflect.DeepEqual(l, exp[i]) {
			if bad++; bad <= 3 {
				t.Errorf("line %d (read with ReadArena: %v):\n got %s\nwant %s", i+1, (i/1000)%2 == 0, lineString(&l), lineString(&exp[i]))
			}
		}
	}
}

// mixesDictionaryAndPlain reports whether a column chunk of the file has
// both dictionary-encoded and plain data pages (a writer's dictionary grew
// too large and it went on without).
func mixesDictionaryAndPlain(t testing.TB, data []byte) bool {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for rg := range pf.NumRowGroups() {
		for c := range pf.MetaData().Schema.NumColumns() {
			cc, err := pf.MetaData().RowGroup(rg).ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			var dict, plain bool
			for _, st := range cc.EncodingStats() {
				if pt := st.PageType.String(); pt == "DATA_PAGE" || pt == "DATA_PAGE_V2" {
					dict = dict || st.Encoding == parquet.Encodings.RLEDict
					plain = plain || st.Encoding == parquet.Encodings.Plain
				}
			}
			if dict && plain {
				return true
			}
		}
	}
	return false
}

// TestFastPathCorruptData damages the pages of files the fast path reads:
// the failure must be a *ReadError naming the file and the row, after the
// lines before it, as on the record-reader path.
func TestFastPathCorruptData(t *testing.T) {
	good := fastCase{rgRows: 5003, props: []parquet.WriterProperty{parquet.WithStoreDecimalAsInteger(true), parquet.WithCompression(compress.Codecs.Snappy)},
		types: map[claims.Field]arrow.DataType{claims.LineNumber: i64, claims.Units: i32, claims.ServiceDate: d32, claims.BilledAmount: &arrow.Decimal128Type{Precision: 18, Scale: 2}}}.build(t)
	for _, at := range []float64{0.1, 0.5, 0.8} {
		t.Run(fmt.Sprintf("damage at %.0f%%", at*100), func(t *testing.T) {
			data := append([]byte(nil), good...)
			for i := int(float64(len(data)) * at); i < int(float64(len(data))*at)+64; i++ {
				data[i] ^= 0x5a
			}
			for _, path := range []struct {
				name string
				new  func(context.Context, parquet.ReaderAtSeeker, string, map[string]string) (*claimparquet.Reader, error)
			}{{"fast", claimparquet.NewReader}, {"arrow", claimparquet.NewArrowReader}} {
				rd, err := path.new(context.Background(), bytes.NewReader(data), "bad.parquet", nil)
				if err != nil {
					t.Fatalf("%s: open: %v", path.name, err)
				}
				if rd.FastPath() != (path.name == "fast") {
					t.Fatalf("%s: fast path = %v", path.name, rd.FastPath())
				}
				n := 0
				var l claims.Line
				for err == nil {
					if err = rd.Read(&l); err == nil {
						n++
					}
				}
				rd.Close()
				var re *claimparquet.ReadError
				if !errors.As(err, &re) || re.File != "bad.parquet" || !strings.Contains(err.Error(), "near row") {
					t.Fatalf("%s: after %d lines: err = %v, want a *ReadError near a row", path.name, n, err)
				}
				t.Logf("%s: %d lines, then %v", path.name, n, err)
			}
		})
	}
}
