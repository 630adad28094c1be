package claimparquet_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
)

const (
	sampleClaims    = "../../testdata/sample/claims.csv"
	sampleContracts = "../../testdata/sample/contracts"
)

func sampleEngine(t testing.TB) *rates.Engine {
	t.Helper()
	s, err := bundle.Read(context.Background(), sampleContracts)
	if err != nil {
		t.Fatal(err)
	}
	return rates.New(contracts.Validate(s), rates.Options{})
}

// sampleRows reads the sample claims with the CSV reader and returns the
// raw values of the rows a Parquet file can represent: all but the
// structurally malformed CSV records (a row with 15 fields).
func sampleRows(t testing.TB) [][claims.NumFields]string {
	t.Helper()
	f, err := os.Open(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr, err := claimcsv.NewReader(f, "claims.csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][claims.NumFields]string
	skipped := 0
	for {
		var l claims.Line
		if err := cr.Read(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if l.Invalid != nil && l.Invalid.Field == "row" {
			skipped++
			continue
		}
		rows = append(rows, l.Raw)
	}
	if skipped != 1 || len(rows) < 300 {
		t.Fatalf("sample: %d rows, %d malformed; the test expects one malformed row", len(rows), skipped)
	}
	return rows
}

// typedOK reports whether the raw value of a typed column is exactly what
// the typed Parquet value reads back as.
func typedOK(f claims.Field, s string) bool {
	if s == "" {
		return true
	}
	switch f {
	case claims.LineNumber, claims.Units:
		n, err := strconv.ParseInt(s, 10, 32)
		return err == nil && strconv.FormatInt(n, 10) == s
	case claims.ServiceDate:
		d, err := contracts.ParseDate(s)
		return err == nil && d.String() == s
	case claims.BilledAmount:
		c, err := money.ParseCents(s)
		return err == nil && c.String() == s && c < 1e17
	}
	return true
}

func writeCSVFile(t testing.TB, path string, rows [][claims.NumFields]string) {
	t.Helper()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(claims.FieldNames[:])
	for _, r := range rows {
		w.Write(r[:])
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func textCols(rows [][claims.NumFields]string) []testCol {
	cols := make([]testCol, claims.NumFields)
	for f := range cols {
		cols[f] = testCol{name: claims.FieldNames[f], typ: utf8}
		for _, r := range rows {
			var v any
			if r[f] != "" {
				v = r[f]
			}
			cols[f].vals = append(cols[f].vals, v)
		}
	}
	return cols
}

func readCSVFile(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// blankColumn returns recs with column c emptied (after checking its
// header), for comparing exceptions from differently named inputs.
func blankColumn(t testing.TB, recs [][]string, c int, name string) [][]string {
	t.Helper()
	if recs[0][c] != name {
		t.Fatalf("column %d is %q, want %q", c, recs[0][c], name)
	}
	out := make([][]string, len(recs))
	for i, r := range recs {
		out[i] = append([]string(nil), r...)
		if i > 0 {
			out[i][c] = ""
		}
	}
	return out
}

func diffRecords(t testing.TB, what string, got, want [][]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s record %d:\n got %q\nwant %q", what, i, got[i], want[i])
			return
		}
	}
}

func run(t testing.TB, e *rates.Engine, input, out, format string) *pipeline.Summary {
	t.Helper()
	sum, err := pipeline.Run(context.Background(), pipeline.Config{Engine: e, Claims: []string{input}, OutDir: out, Format: format, Workers: 2, BatchSize: 16})
	if err != nil {
		t.Fatalf("run %s -> %s: %v", input, format, err)
	}
	return sum
}

// TestSampleCSVAndParquetPriceAlike prices the sample claims once from CSV
// and once from Parquet: the priced lines and exceptions must be the same,
// in CSV output and in Parquet output read back value by value.
func TestSampleCSVAndParquetPriceAlike(t *testing.T) {
	all := sampleRows(t)
	var typed [][claims.NumFields]string
	for _, r := range all {
		ok := true
		for f := range r {
			ok = ok && typedOK(claims.Field(f), r[f])
		}
		if ok {
			typed = append(typed, r)
		}
	}
	tests := []struct {
		name string
		rows [][claims.NumFields]string
		cols func([][claims.NumFields]string) []testCol
	}{
		// Every representable row, every column as text: invalid values
		// reach Parse exactly as in the CSV file.
		{"text columns", all, textCols},
		// The rows whose typed values are representable, with typed
		// columns: int64/int32 numbers, DATE32, DECIMAL(18,2), and a
		// dictionary-encoded vendor_id.
		{"typed columns", typed, func(rows [][claims.NumFields]string) []testCol {
			cols := canonicalCols(t, rows)
			cols[claims.VendorID].typ = dict
			return cols
		}},
	}
	e := sampleEngine(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			csvIn, pqIn := filepath.Join(dir, "claims.csv"), filepath.Join(dir, "claims.parquet")
			writeCSVFile(t, csvIn, tt.rows)
			if err := os.WriteFile(pqIn, buildParquet(t, tt.cols(tt.rows), 100), 0o644); err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(dir, "csv-csv")
			sumCSV := run(t, e, csvIn, base, "csv")
			sumPQ := run(t, e, pqIn, filepath.Join(dir, "parquet-csv"), "csv")
			sumPQPQ := run(t, e, pqIn, filepath.Join(dir, "parquet-parquet"), "parquet")
			if sumCSV.Counts.PricedLines == 0 || sumCSV.Counts.ErrorExceptions == 0 {
				t.Fatalf("the sample priced %d lines with %d errors; the test needs both", sumCSV.Counts.PricedLines, sumCSV.Counts.ErrorExceptions)
			}
			for _, s := range []*pipeline.Summary{sumPQ, sumPQPQ} {
				if s.Counts != sumCSV.Counts || s.Totals != sumCSV.Totals || !reflect.DeepEqual(s.ByCode, sumCSV.ByCode) {
					t.Errorf("summary differs:\n got %+v %+v\nwant %+v %+v", s.Counts, s.Totals, sumCSV.Counts, sumCSV.Totals)
				}
			}
			if in := sumPQ.Inputs[0]; in.Lines != int64(len(tt.rows)) || in.SHA256 == "" || in.Bytes == 0 {
				t.Errorf("parquet input summary %+v", in)
			}

			// CSV output from a Parquet input.
			wantPriced, err := os.ReadFile(filepath.Join(base, "priced.csv"))
			if err != nil {
				t.Fatal(err)
			}
			gotPriced, err := os.ReadFile(filepath.Join(dir, "parquet-csv", "priced.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotPriced, wantPriced) {
				diffRecords(t, "priced.csv", readCSVFile(t, filepath.Join(dir, "parquet-csv", "priced.csv")), readCSVFile(t, filepath.Join(base, "priced.csv")))
				t.Error("priced.csv differs")
			}
			wantExc := readCSVFile(t, filepath.Join(base, "exceptions.csv"))
			gotExc := readCSVFile(t, filepath.Join(dir, "parquet-csv", "exceptions.csv"))
			for _, r := range gotExc[1:] {
				if r[2] != pqIn {
					t.Fatalf("source_file = %q, want %q", r[2], pqIn)
				}
			}
			diffRecords(t, "exceptions.csv", blankColumn(t, gotExc, 2, "source_file"), blankColumn(t, wantExc, 2, "source_file"))

			// Parquet output from a Parquet input, read back.
			diffRecords(t, "priced.parquet", readTable(t, filepath.Join(dir, "parquet-parquet", "priced.parquet")), readCSVFile(t, filepath.Join(base, "priced.csv")))
			gotPQExc := readTable(t, filepath.Join(dir, "parquet-parquet", "exceptions.parquet"))
			diffRecords(t, "exceptions.parquet", exceptionText(t, blankColumn(t, gotPQExc, 2, "source_file")), exceptionText(t, blankColumn(t, wantExc, 2, "source_file")))
		})
	}
}

func TestPipelineFailsOnBadParquet(t *testing.T) {
	dir := t.TempDir()
	row := [claims.NumFields]string{"C1", "1", "V001", "M1", "1234567890", "99213", "", "", "", "11", "2024-05-15", "1", "100.00", ""}
	good := buildParquet(t, canonicalCols(t, [][claims.NumFields]string{row, row}), 0)
	floatCols := canonicalCols(t, [][claims.NumFields]string{row})
	floatCols[claims.BilledAmount] = testCol{name: "billed_amount", typ: arrow.PrimitiveTypes.Float64, vals: []any{100.0}}
	tests := []struct {
		name   string
		data   []byte
		target any
	}{
		{"truncated", good[:len(good)-20], new(*claimparquet.ReadError)},
		{"not parquet", []byte("PAR1 garbage garbage PAR1"), new(*claimparquet.ReadError)},
		{"float money", buildParquet(t, floatCols, 0), new(*claimparquet.SchemaError)},
	}
	e := sampleEngine(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := filepath.Join(dir, tt.name+".PARQUET")
			if err := os.WriteFile(in, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, format := range []string{"csv", "parquet"} {
				out := filepath.Join(dir, "out-"+tt.name+"-"+format)
				_, err := pipeline.Run(context.Background(), pipeline.Config{Engine: e, Claims: []string{sampleClaims, in}, OutDir: out, Format: format})
				if err == nil {
					t.Fatal("run succeeded")
				}
				if !errors.As(err, tt.target) {
					t.Errorf("err = %v (%T), want %T", err, err, tt.target)
				}
				var ue *pipeline.UsageError
				if errors.As(err, &ue) {
					t.Errorf("a bad file is not a usage error: %v", err)
				}
				if entries, _ := os.ReadDir(out); len(entries) != 0 {
					t.Errorf("output folder holds %d entries after a failed run", len(entries))
				}
			}
		})
	}
	t.Run("pq extension", func(t *testing.T) {
		in := filepath.Join(dir, "claims.pq")
		if err := os.WriteFile(in, good, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := run(t, e, in, filepath.Join(dir, "out-pq"), "parquet")
		if sum.Counts.InputLines != 2 {
			t.Errorf("read %d lines, want 2", sum.Counts.InputLines)
		}
		h := sha256.Sum256(good)
		if in := sum.Inputs[0]; in.Bytes != int64(len(good)) || in.SHA256 != hex.EncodeToString(h[:]) {
			t.Errorf("input %+v, want %d bytes with sha256 %x", in, len(good), h)
		}
	})
}
