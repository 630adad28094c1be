package claimparquet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

func TestSchemasMatchCSVColumns(t *testing.T) {
	names := func(sc *arrow.Schema) []string {
		var out []string
		for _, f := range sc.Fields() {
			out = append(out, f.Name)
		}
		return out
	}
	if got := names(claimparquet.PricedSchema()); !reflect.DeepEqual(got, claimcsv.PricedColumns) {
		t.Errorf("priced columns\n got %q\nwant %q", got, claimcsv.PricedColumns)
	}
	wantExc := append(slices.Clone(claimcsv.ExceptionColumns), claimparquet.RawColumns[:]...)
	if got := names(claimparquet.ExceptionSchema()); !reflect.DeepEqual(got, wantExc) {
		t.Errorf("exception columns\n got %q\nwant %q", got, wantExc)
	}
	for _, f := range claimparquet.PricedSchema().Fields() {
		switch f.Type.ID() {
		case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
			t.Errorf("priced column %s is %s", f.Name, f.Type)
		}
	}
}

// genItems makes n priced and unpriced items (deterministic).
func genItems(n int) []claims.Item {
	c := &contracts.Contract{ID: "K1", Number: "CN-001", Expiration: contracts.DateOf(2024, 1, 31)}
	items := make([]claims.Item, n)
	for i := range items {
		it := &items[i]
		l := &it.Line
		l.Raw = [claims.NumFields]string{
			fmt.Sprintf("C%07d", i/3), fmt.Sprint(i%3 + 1), fmt.Sprintf("V%03d", i%17), "M1", "1234567890",
			"99213", "", "", "", "11", "2024-05-15", "2", "150.00", "",
		}
		if i%5 == 0 {
			l.Raw[claims.Modifiers] = "26,TC"
		}
		l.Parse()
		l.Source = claims.Source{File: "claims.parquet", Row: int64(i + 1)}
		switch i % 10 {
		case 3:
			it.Result = claims.Result{Code: claims.NoContract, Message: "no active contract for vendor " + l.VendorID}
		default:
			r := &it.Result
			r.Contract, r.RateKind, r.MatchPriority = c, "CPT", 1
			r.RateType, r.RateValue = contracts.Percentage, 850_000+money.Fixed(i%7)
			r.PricedUnits = l.Units
			r.AllowedBeforeStopLoss = l.Billed * 85 / 100
			r.Allowed = r.AllowedBeforeStopLoss
			r.AdminFee = 123
			r.NetPayable = r.Allowed - r.AdminFee
			if i%10 == 7 {
				r.RateID, r.ReviewByRate = "R7", true
				r.Flags = claims.ReviewRequired | claims.ExpiredContractHonored
			}
		}
	}
	return items
}

// itemWriter is what writeWith needs of a writer of both files.
type itemWriter interface {
	Write(ctx context.Context, items []claims.Item) error
	Close() error
}

// writeItems writes items with NewWriter, chunk items a Write.
func writeItems(t testing.TB, items []claims.Item, chunk int) (priced, exc []byte) {
	t.Helper()
	return writeWith(t, func(p, e io.Writer) (itemWriter, error) { return claimparquet.NewWriter(p, e) }, items, chunk)
}

func writeWith(t testing.TB, newWriter func(p, e io.Writer) (itemWriter, error), items []claims.Item, chunk int) (priced, exc []byte) {
	t.Helper()
	var p, e bytes.Buffer
	w, err := newWriter(&p, &e)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(items); i += chunk {
		if err := w.Write(context.Background(), items[i:min(i+chunk, len(items))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p.Bytes(), e.Bytes()
}

// TestWriterMatchesCSVWriter writes the same items with both writers: the
// Parquet files read back must hold the CSV files' records.
func TestWriterMatchesCSVWriter(t *testing.T) {
	items := genItems(1000)
	dir := t.TempDir()
	var pc, ec bytes.Buffer
	cw, err := claimcsv.NewWriter(&pc, &ec)
	if err != nil {
		t.Fatal(err)
	}
	if err := cw.Write(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	pp, ep := writeItems(t, items, 64)
	for _, f := range []struct {
		name     string
		csv, pq  []byte
		min, max int
	}{
		{"priced", pc.Bytes(), pp, 800, 1000},
		{"exceptions", ec.Bytes(), ep, 100, 400},
	} {
		t.Run(f.name, func(t *testing.T) {
			csvPath, pqPath := filepath.Join(dir, f.name+".csv"), filepath.Join(dir, f.name+".parquet")
			if err := os.WriteFile(csvPath, f.csv, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pqPath, f.pq, 0o644); err != nil {
				t.Fatal(err)
			}
			want := readCSVFile(t, csvPath)
			if len(want) < f.min || len(want) > f.max {
				t.Fatalf("%d %s records; the generator is off", len(want), f.name)
			}
			got := readTable(t, pqPath)
			if f.name == "exceptions" {
				got, want = exceptionText(t, got), exceptionText(t, want)
			}
			diffRecords(t, f.name, got, want)
		})
	}
}

func TestWriterIsDeterministic(t *testing.T) {
	items := genItems(5000)
	p1, e1 := writeItems(t, items, 100)
	p2, e2 := writeItems(t, items, 100)
	if !bytes.Equal(p1, p2) || !bytes.Equal(e1, e2) {
		t.Fatal("the same items gave different files")
	}
	if len(p1) < 100 || !bytes.HasPrefix(p1, []byte("PAR1")) || !bytes.HasSuffix(e1, []byte("PAR1")) {
		t.Fatal("not Parquet files")
	}
	// Pages follow the batches written, so other batch boundaries make
	// other pages of the same rows.
	p3, e3 := writeItems(t, items, 777)
	dir := t.TempDir()
	for _, f := range []struct {
		name string
		a, b []byte
	}{{"priced", p1, p3}, {"exceptions", e1, e3}} {
		a, b := filepath.Join(dir, f.name+"-100.parquet"), filepath.Join(dir, f.name+"-777.parquet")
		if err := os.WriteFile(a, f.a, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(b, f.b, 0o644); err != nil {
			t.Fatal(err)
		}
		diffRecords(t, f.name, readTable(t, b), readTable(t, a))
	}
}

// TestWriterRowGroups checks that a file is cut into row groups of at most
// RowGroupRows rows, each but the last within a page of that.
func TestWriterRowGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("writes more than one row group")
	}
	items := genItems(claimparquet.RowGroupRows*2 + 10)
	p, _ := writeItems(t, items, 4096)
	pf, err := file.NewParquetReader(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	md := pf.MetaData()
	if md.NumRowGroups() < 2 {
		t.Fatalf("%d row groups", md.NumRowGroups())
	}
	var total int64
	for i := 0; i < md.NumRowGroups(); i++ {
		n := md.RowGroup(i).NumRows()
		if n > claimparquet.RowGroupRows || (i < md.NumRowGroups()-1 && n <= claimparquet.RowGroupRows-4096) {
			t.Errorf("row group %d has %d rows", i, n)
		}
		total += n
	}
	if total != md.NumRows || !strings.Contains(md.GetCreatedBy(), "repricer") {
		t.Errorf("rows %d/%d, created by %q", total, md.NumRows, md.GetCreatedBy())
	}
}

// closeRecorder is an output that fails writes after limit bytes and
// records Close calls.
type closeRecorder struct {
	buf    bytes.Buffer
	limit  int
	closed bool
}

func (c *closeRecorder) Write(p []byte) (int, error) {
	if c.limit > 0 && c.buf.Len()+len(p) > c.limit {
		return 0, errors.New("disk full")
	}
	return c.buf.Write(p)
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestWriterCloseAndErrors(t *testing.T) {
	items := genItems(2000)
	t.Run("does not close the outputs", func(t *testing.T) {
		var p, e closeRecorder
		w, err := claimparquet.NewWriter(&p, &e)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(context.Background(), items); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if p.closed || e.closed {
			t.Error("Close closed an output")
		}
		if err := w.Write(context.Background(), items); err == nil {
			t.Error("Write after Close succeeded")
		}
	})
	t.Run("write failure", func(t *testing.T) {
		p := closeRecorder{limit: 1000}
		var e closeRecorder
		w, err := claimparquet.NewWriter(&p, &e)
		if err != nil {
			t.Fatal(err)
		}
		err = w.Write(context.Background(), items)
		if err == nil {
			err = w.Close()
		}
		var we *claimparquet.WriteError
		if !errors.As(err, &we) || we.File != "priced" || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("err = %v, want a *WriteError for priced wrapping the cause", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		var p, e closeRecorder
		w, err := claimparquet.NewWriter(&p, &e)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := w.Write(ctx, items); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriterBounds checks which columns carry min/max statistics: columns a
// query prunes on do, member and authorization identifiers and free text
// do not.
func TestWriterBounds(t *testing.T) {
	items := genItems(1000)
	p, e := writeItems(t, items, 100)
	for _, f := range []struct {
		data             []byte
		bounded, without []string
	}{
		{p, []string{"claim_id", "cpt_code", "contract_id", "service_date", "allowed_amount"}, []string{"member_id", "provider_npi", "prior_auth_number", "modifiers", "flags"}},
		{e, []string{"claim_id", "code"}, []string{"member_id", "message"}},
	} {
		pf, err := file.NewParquetReader(bytes.NewReader(f.data))
		if err != nil {
			t.Fatal(err)
		}
		rg := pf.MetaData().RowGroup(0)
		sc := pf.MetaData().Schema
		hasMinMax := func(name string) bool {
			i := sc.ColumnIndexByName(name)
			if i < 0 {
				t.Fatalf("no column %s", name)
			}
			cc, err := rg.ColumnChunk(i)
			if err != nil {
				t.Fatal(err)
			}
			st, err := cc.Statistics()
			return err == nil && st != nil && st.HasMinMax()
		}
		for _, c := range f.bounded {
			if !hasMinMax(c) {
				t.Errorf("column %s has no min/max", c)
			}
		}
		for _, c := range f.without {
			if hasMinMax(c) {
				t.Errorf("column %s has min/max", c)
			}
		}
	}
}
