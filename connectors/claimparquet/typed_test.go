package claimparquet_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimparquet"
)

// TestTypedColumns checks, for every writer, that the columns with a type
// are written typed — the priced line_number too, and in the exceptions
// file the input's integers, date and amount, null where the input did not
// parse and that text in the *_raw column.
func TestTypedColumns(t *testing.T) {
	priced := genItems(1)[0]
	if !priced.Result.Priced() {
		t.Fatal("genItems' first item is not priced")
	}
	bad := claims.Item{}
	bad.Line.Raw = [claims.NumFields]string{"C9", "1a", "V001", "M1", "", "99213", "", "", "", "11", "2024-02-30", " 3 ", "12x", ""}
	bad.Line.Parse()
	bad.Line.Source = claims.Source{File: "in.csv", Row: 2}
	bad.Result = claims.Result{Code: claims.InvalidRow, Message: "bad"}
	half := claims.Item{}
	half.Line.Raw = [claims.NumFields]string{"C10", "2", "V999", "", "", "99213", "", "", "", "", "2024-05-15", "", "10.5", ""}
	half.Line.Parse()
	half.Line.Source = claims.Source{File: "in.csv", Row: 3}
	half.Result = claims.Result{Code: claims.NoContract, Message: "no contract"}
	items := []claims.Item{priced, bad, half}

	wantPricedTypes := map[string]arrow.Type{"line_number": arrow.INT64, "service_date": arrow.DATE32, "units": arrow.INT64, "billed_amount": arrow.DECIMAL128, "allowed_amount": arrow.DECIMAL128}
	wantExcTypes := map[string]arrow.Type{"line_number": arrow.INT64, "service_date": arrow.DATE32, "units": arrow.INT64, "billed_amount": arrow.DECIMAL128,
		"source_row": arrow.INT64, "billed_amount_raw": arrow.STRING}
	// claim_id, line_number, service_date, units, billed_amount, then the four *_raw columns.
	cols := []string{"claim_id", "line_number", "service_date", "units", "billed_amount", "line_number_raw", "service_date_raw", "units_raw", "billed_amount_raw"}
	wantExc := [][]string{
		{"C9", "", "", "3", "", "1a", "2024-02-30", "", "12x"},
		{"C10", "2", "2024-05-15", "", "10.50", "", "", "", ""},
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		new  func(p, e io.Writer) (itemWriter, error)
		ipc  bool
	}{
		{"page writer", func(p, e io.Writer) (itemWriter, error) { return claimparquet.NewWriter(p, e) }, false},
		{"parquet-go writer", func(p, e io.Writer) (itemWriter, error) { return claimparquet.NewParquetGoWriter(p, e) }, false},
		{"pqarrow writer", func(p, e io.Writer) (itemWriter, error) { return claimparquet.NewArrowParquetWriter(p, e) }, false},
		{"arrow IPC writer", func(p, e io.Writer) (itemWriter, error) { return claimparquet.NewArrowWriter(p, e) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, e := writeWith(t, tt.new, items, 2)
			read := func(name string, data []byte) ([][]string, map[string]arrow.Type) {
				if tt.ipc {
					return readIPC(t, data)
				}
				path := filepath.Join(dir, tt.name+name)
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				return readTable(t, path), parquetTypes(t, path)
			}
			prows, ptypes := read("priced", p)
			erows, etypes := read("exceptions", e)
			for n, want := range wantPricedTypes {
				if ptypes[n] != want {
					t.Errorf("priced %s is %s, want %s", n, ptypes[n], want)
				}
			}
			for n, want := range wantExcTypes {
				if etypes[n] != want {
					t.Errorf("exceptions %s is %s, want %s", n, etypes[n], want)
				}
			}
			if len(prows) != 2 || prows[1][1] != priced.Line.Raw[claims.LineNumber] {
				t.Errorf("priced rows %q", prows)
			}
			got := project(t, erows, cols)
			if len(got) != len(wantExc) {
				t.Fatalf("exception rows %q, want %q", got, wantExc)
			}
			for i := range wantExc {
				for j := range cols {
					if got[i][j] != wantExc[i][j] {
						t.Errorf("exception row %d %s = %q, want %q", i+1, cols[j], got[i][j], wantExc[i][j])
					}
				}
			}
		})
	}
}

// project returns the named columns of rows (header first) without the header.
func project(t *testing.T, rows [][]string, cols []string) [][]string {
	t.Helper()
	at := map[string]int{}
	for i, n := range rows[0] {
		at[n] = i
	}
	var out [][]string
	for _, r := range rows[1:] {
		var o []string
		for _, c := range cols {
			i, ok := at[c]
			if !ok {
				t.Fatalf("no column %s in %q", c, rows[0])
			}
			o = append(o, r[i])
		}
		out = append(out, o)
	}
	return out
}

func parquetTypes(t *testing.T, path string) map[string]arrow.Type {
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
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]arrow.Type{}
	for _, fl := range sc.Fields() {
		types[fl.Name] = fl.Type.ID()
	}
	return types
}

// readIPC reads an Arrow IPC stream as readTable reads a Parquet file.
func readIPC(t *testing.T, data []byte) ([][]string, map[string]arrow.Type) {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	types := map[string]arrow.Type{}
	var header []string
	for _, f := range r.Schema().Fields() {
		header = append(header, f.Name)
		types[f.Name] = f.Type.ID()
	}
	rows := [][]string{header}
	for r.Next() {
		rec := r.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for c := range row {
				row[c] = formatValue(t, rec.Column(c), i)
			}
			rows = append(rows, row)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, types
}
