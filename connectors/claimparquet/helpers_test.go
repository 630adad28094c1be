package claimparquet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// testCol is one column of a Parquet file built for a test. A nil value is
// null; strings are converted to the column's type (dates as YYYY-MM-DD,
// decimals as plain decimals).
type testCol struct {
	name string
	typ  arrow.DataType
	vals []any
}

var (
	utf8  = arrow.BinaryTypes.String
	i64   = arrow.PrimitiveTypes.Int64
	i32   = arrow.PrimitiveTypes.Int32
	d32   = arrow.FixedWidthTypes.Date32
	f64   = arrow.PrimitiveTypes.Float64
	dec2  = &arrow.Decimal128Type{Precision: 18, Scale: 2}
	dict  = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	tsUTC = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
)

func date32(t testing.TB, s string) arrow.Date32 {
	t.Helper()
	d, err := contracts.ParseDate(s)
	if err != nil {
		t.Fatalf("test date %q: %v", s, err)
	}
	return arrow.Date32(int64(d) - int64(contracts.DateOf(1970, 1, 1)))
}

func appendValue(t testing.TB, b array.Builder, v any) {
	t.Helper()
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.LargeStringBuilder:
		b.Append(v.(string))
	case *array.BinaryBuilder:
		b.Append([]byte(v.(string)))
	case *array.BinaryDictionaryBuilder:
		if err := b.AppendString(v.(string)); err != nil {
			t.Fatal(err)
		}
	case *array.Int64Builder:
		b.Append(int64(v.(int)))
	case *array.Int32Builder:
		b.Append(int32(v.(int)))
	case *array.Uint16Builder:
		b.Append(uint16(v.(int)))
	case *array.Float64Builder:
		b.Append(v.(float64))
	case *array.Date32Builder:
		b.Append(date32(t, v.(string)))
	case *array.Date64Builder:
		b.Append(arrow.Date64(int64(date32(t, v.(string))) * 86_400_000))
	case *array.TimestampBuilder:
		b.Append(v.(arrow.Timestamp))
	case *array.Decimal128Builder:
		dt := b.Type().(*arrow.Decimal128Type)
		n, err := decimal128.FromString(v.(string), dt.Precision, dt.Scale)
		if err != nil {
			t.Fatalf("test decimal %q: %v", v, err)
		}
		b.Append(n)
	default:
		t.Fatalf("test column type %T", b)
	}
}

// buildParquet writes cols as a Parquet file, with row groups of rgRows
// rows (all rows in one when rgRows is 0).
func buildParquet(t testing.TB, cols []testCol, rgRows int64) []byte {
	t.Helper()
	mem := memory.DefaultAllocator
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	n := -1
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: true}
		b := array.NewBuilder(mem, c.typ)
		for _, v := range c.vals {
			appendValue(t, b, v)
		}
		arrs[i] = b.NewArray()
		b.Release()
		if n >= 0 && len(c.vals) != n {
			t.Fatalf("column %s has %d values, want %d", c.name, len(c.vals), n)
		}
		n = len(c.vals)
		defer arrs[i].Release()
	}
	opts := []parquet.WriterProperty{parquet.WithCompression(0)}
	if rgRows > 0 {
		opts = append(opts, parquet.WithMaxRowGroupLength(rgRows))
	}
	return writeRecord(t, fields, arrs, int64(max(n, 0)), opts, pqarrow.WithStoreSchema())
}

// writeRecord writes the columns arrs (of rows rows) as one Parquet file
// with pqarrow.
func writeRecord(t testing.TB, fields []arrow.Field, arrs []arrow.Array, rows int64, props []parquet.WriterProperty, aprops ...pqarrow.WriterOption) []byte {
	t.Helper()
	sc := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(sc, arrs, rows)
	defer rec.Release()
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(sc, &buf, parquet.NewWriterProperties(props...), pqarrow.NewArrowWriterProperties(aprops...))
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readLines reads every line of a Parquet file with the package's reader.
func readLines(t testing.TB, data []byte, name string, mapping map[string]string) ([]claims.Line, error) {
	t.Helper()
	rd, err := claimparquet.NewReader(context.Background(), bytes.NewReader(data), name, mapping)
	if err != nil {
		return nil, err
	}
	var out []claims.Line
	for {
		var l claims.Line
		err := rd.Read(&l)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rd.Close()
			return out, err
		}
		out = append(out, l)
	}
	return out, rd.Close()
}

// readTable reads a Parquet output file back as text: strings as they
// are (null as ""), integers in decimal, DATE32 as YYYY-MM-DD, DECIMAL(…,2)
// as money.Cents and DECIMAL(…,6) as money.Fixed print them, which is how
// the CSV writer formats the same values. The first row is the header.
func readTable(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	sc := tbl.Schema()
	header := make([]string, sc.NumFields())
	for i := range header {
		header[i] = sc.Field(i).Name
	}
	rows := make([][]string, tbl.NumRows())
	for i := range rows {
		rows[i] = make([]string, sc.NumFields())
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		r := 0
		for _, chunk := range tbl.Column(c).Data().Chunks() {
			for i := 0; i < chunk.Len(); i++ {
				rows[r][c] = formatValue(t, chunk, i)
				r++
			}
		}
	}
	return append([][]string{header}, rows...)
}

func formatValue(t testing.TB, arr arrow.Array, i int) string {
	t.Helper()
	if arr.IsNull(i) {
		return ""
	}
	switch a := arr.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Date32:
		return contracts.Date(int64(a.Value(i)) + int64(contracts.DateOf(1970, 1, 1))).String()
	case *array.Decimal128:
		v := a.Value(i)
		if v.HighBits() != 0 && v.HighBits() != -1 {
			t.Fatalf("decimal %v out of int64 range", v)
		}
		switch s := a.DataType().(*arrow.Decimal128Type).Scale; s {
		case 2:
			return money.Cents(int64(v.LowBits())).String()
		case 6:
			return money.Fixed(int64(v.LowBits())).String()
		default:
			t.Fatalf("decimal scale %d", s)
		}
	}
	t.Fatalf("unexpected output type %s", arr.DataType())
	return ""
}

// canonicalCols is the canonical schema with typed columns, for rows given
// as [NumFields]string raw values (empty = null).
func canonicalCols(t testing.TB, rows [][claims.NumFields]string) []testCol {
	t.Helper()
	cols := make([]testCol, claims.NumFields)
	for f := range cols {
		cols[f] = testCol{name: claims.FieldNames[f], typ: utf8}
		switch claims.Field(f) {
		case claims.LineNumber:
			cols[f].typ = i64
		case claims.Units:
			cols[f].typ = i32
		case claims.ServiceDate:
			cols[f].typ = d32
		case claims.BilledAmount:
			cols[f].typ = dec2
		}
		for _, r := range rows {
			var v any
			if s := r[f]; s != "" {
				v = s
				if cols[f].typ == i64 || cols[f].typ == i32 {
					n, err := strconv.Atoi(s)
					if err != nil {
						t.Fatalf("row %v: %s is not an integer", r, claims.FieldNames[f])
					}
					v = n
				}
			}
			cols[f].vals = append(cols[f].vals, v)
		}
	}
	return cols
}

func lineString(l *claims.Line) string {
	return fmt.Sprintf("%+v", *l)
}

// exceptionText turns exception records, from the CSV file or read back
// from Parquet (readTable), into comparable text: the *_raw columns fold
// back into their typed column, and each typed column's value is written
// the way the Parquet file types it when it parses (so "7" and " 7", or
// "12.5" and "12.50", compare equal) and left as is when it does not.
func exceptionText(t testing.TB, rows [][]string) [][]string {
	t.Helper()
	header := rows[0]
	at := map[string]int{}
	for i, n := range header {
		at[n] = i
	}
	n := len(claimcsv.ExceptionColumns)
	out := [][]string{header[:n]}
	for _, r := range rows[1:] {
		r = slices.Clone(r)
		for _, name := range []string{"line_number", "service_date", "units", "billed_amount"} {
			c := at[name]
			if rc, ok := at[name+"_raw"]; ok && r[rc] != "" {
				if r[c] != "" {
					t.Fatalf("%s is %q and %s_raw %q: only one may be set", name, r[c], name, r[rc])
				}
				r[c] = r[rc]
				continue
			}
			s := strings.TrimSpace(r[c])
			switch name {
			case "service_date":
				if d, err := contracts.ParseDate(s); err == nil {
					r[c] = d.String()
				}
			case "billed_amount":
				if v, err := money.ParseCents(s); err == nil {
					r[c] = v.String()
				}
			default:
				if v, err := strconv.ParseInt(s, 10, 64); err == nil {
					r[c] = strconv.FormatInt(v, 10)
				}
			}
		}
		out = append(out, r[:n])
	}
	return out
}
