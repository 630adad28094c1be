package claimparquet_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimparquet"
)

// withNulls varies genItems' rows so that text columns hold nulls in some
// pages, all pages and no page.
func withNulls(items []claims.Item) []claims.Item {
	for i := range items {
		l := &items[i].Line
		if i%3 == 0 {
			l.Raw[claims.ProviderNPI] = ""
		}
		if i >= 3000 && i < 5000 { // whole pages of null modifiers
			l.Raw[claims.Modifiers] = ""
		}
		l.Raw[claims.PriorAuthNumber] = "" // a column of nulls only
	}
	return items
}

func writeParquetGo(t testing.TB, items []claims.Item) (priced, exc []byte) {
	t.Helper()
	return writeWith(t, func(p, e io.Writer) (itemWriter, error) { return claimparquet.NewParquetGoWriter(p, e) }, items, len(items))
}

// TestWriterMatchesParquetGo writes the same items with FileWriter and with
// parquet-go's own writer: both readers, arrow-go and parquet-go, must read
// the same schema and the same rows from both files.
func TestWriterMatchesParquetGo(t *testing.T) {
	items := withNulls(genItems(20_000))
	pp, ep := writeItems(t, items, 1000)
	gp, ge := writeParquetGo(t, items)
	dir := t.TempDir()
	for _, f := range []struct {
		name    string
		got, pg []byte
	}{{"priced", pp, gp}, {"exceptions", ep, ge}} {
		t.Run(f.name, func(t *testing.T) {
			// arrow-go: the same Arrow schema and records.
			gotPath, pgPath := filepath.Join(dir, f.name+".parquet"), filepath.Join(dir, f.name+"-pg.parquet")
			if err := os.WriteFile(gotPath, f.got, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pgPath, f.pg, 0o644); err != nil {
				t.Fatal(err)
			}
			if got, want := arrowSchema(t, f.got), arrowSchema(t, f.pg); got != want {
				t.Fatalf("Arrow schema\n%s\nwant\n%s", got, want)
			}
			want := readTable(t, pgPath)
			if len(want) < 1000 {
				t.Fatalf("%d rows; the generator is off", len(want))
			}
			diffRecords(t, f.name, readTable(t, gotPath), want)

			// parquet-go: the same rows, and a page index that bounds
			// every page.
			got, pgRows := parquetGoRows(t, f.got), parquetGoRows(t, f.pg)
			if len(got) != len(pgRows) {
				t.Fatalf("parquet-go reads %d rows, want %d", len(got), len(pgRows))
			}
			for i := range got {
				if !parquet.Row(got[i]).Equal(pgRows[i]) {
					t.Fatalf("row %d: %v, want %v", i, got[i], pgRows[i])
				}
			}
			checkPageIndex(t, f.got)
		})
	}
}

func arrowSchema(t testing.TB, data []byte) string {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
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
	return sc.String()
}

func parquetGoRows(t testing.TB, data []byte) []parquet.Row {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	r := parquet.NewReader(f)
	defer r.Close()
	var rows []parquet.Row
	buf := make([]parquet.Row, 100)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			rows = append(rows, row.Clone())
		}
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkPageIndex reads each column chunk's offset and column indexes with
// parquet-go and checks them against the pages themselves.
func checkPageIndex(t testing.TB, data []byte) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	bounded := 0
	for g, rg := range f.RowGroups() {
		for c, cc := range rg.ColumnChunks() {
			name := f.Schema().Columns()[c][0]
			oi, err := cc.OffsetIndex()
			if err != nil {
				t.Fatalf("row group %d, %s: offset index: %v", g, name, err)
			}
			ci, ciErr := cc.ColumnIndex()
			pages := cc.Pages()
			for k := 0; ; k++ {
				p, err := pages.ReadPage()
				if errors.Is(err, io.EOF) {
					if k != oi.NumPages() {
						t.Fatalf("%s: %d pages, offset index has %d", name, k, oi.NumPages())
					}
					break
				}
				if err != nil {
					t.Fatalf("row group %d, %s, page %d: %v", g, name, k, err)
				}
				if k >= oi.NumPages() || oi.FirstRowIndex(k) < 0 {
					t.Fatalf("%s: page %d is not in the offset index", name, k)
				}
				pmin, pmax, ok := p.Bounds()
				if ciErr != nil {
					parquet.Release(p)
					continue // a column without bounds
				}
				bounded++
				if ci.NullPage(k) != !ok || ci.NullCount(k) != p.NumNulls() {
					t.Fatalf("%s, page %d: null page %v, %d nulls; the page has bounds %v, %d nulls", name, k, ci.NullPage(k), ci.NullCount(k), ok, p.NumNulls())
				}
				if ok && (!parquet.Equal(ci.MinValue(k), pmin) || !parquet.Equal(ci.MaxValue(k), pmax)) {
					t.Fatalf("%s, page %d: index bounds %v..%v, page %v..%v", name, k, ci.MinValue(k), ci.MaxValue(k), pmin, pmax)
				}
				parquet.Release(p)
			}
			pages.Close()
		}
	}
	if bounded == 0 {
		t.Fatal("no column index was read")
	}
}
