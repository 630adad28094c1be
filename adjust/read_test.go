package adjust

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// writeArrows writes one record batch of the given columns to path as an
// Arrow IPC stream; build appends one row's values.
func writeArrows(t *testing.T, path string, fields []arrow.Field, rows int, build func(b *array.RecordBuilder, row int)) {
	t.Helper()
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range rows {
		build(b, i)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := ipc.NewWriter(f, ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestArrowRunReadsLikeCSV: typed Arrow columns (integers, DATE32,
// DECIMAL with any scale, padded text) give the lines the same run gives
// as CSV.
func TestArrowRunReadsLikeCSV(t *testing.T) {
	csvDir := writeRun(t, "A,1,99213,2024-03-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n", "B,2,INVALID_ROW,error,99214,2024-03-02\n")
	arrowDir := t.TempDir()
	str := arrow.BinaryTypes.String
	money := &arrow.Decimal128Type{Precision: 18, Scale: 2}
	writeArrows(t, filepath.Join(arrowDir, "priced.arrows"), []arrow.Field{
		{Name: "claim_id", Type: str}, {Name: "line_number", Type: arrow.PrimitiveTypes.Int64},
		{Name: "cpt_code", Type: str}, {Name: "service_date", Type: arrow.FixedWidthTypes.Date32},
		{Name: "contract_id", Type: str}, {Name: "rate_id", Type: str}, {Name: "rate_type", Type: str},
		{Name: "rate_value", Type: &arrow.Decimal128Type{Precision: 18, Scale: 6}},
		{Name: "allowed_amount", Type: money}, {Name: "admin_fee", Type: money}, {Name: "net_payable", Type: money},
	}, 1, func(b *array.RecordBuilder, _ int) {
		b.Field(0).(*array.StringBuilder).Append("A")
		b.Field(1).(*array.Int64Builder).Append(1)
		b.Field(2).(*array.StringBuilder).Append(" 99213 ")
		b.Field(3).(*array.Date32Builder).Append(arrow.Date32FromTime(mustDate(t, "2024-03-01")))
		for i, s := range []string{"C1", "R1", "Amount"} {
			b.Field(4 + i).(*array.StringBuilder).Append(s)
		}
		b.Field(7).(*array.Decimal128Builder).Append(decimal128.FromI64(80_000000))
		for i, c := range []int64{8000, 400, 7600} {
			b.Field(8 + i).(*array.Decimal128Builder).Append(decimal128.FromI64(c))
		}
	})
	writeArrows(t, filepath.Join(arrowDir, "exceptions.arrows"), []arrow.Field{
		{Name: "claim_id", Type: str}, {Name: "line_number", Type: arrow.PrimitiveTypes.Int64},
		{Name: "code", Type: str}, {Name: "severity", Type: str}, {Name: "cpt_code", Type: str},
		{Name: "service_date", Type: arrow.FixedWidthTypes.Date32},
	}, 1, func(b *array.RecordBuilder, _ int) {
		b.Field(0).(*array.StringBuilder).Append("B")
		b.Field(1).(*array.Int64Builder).Append(2)
		b.Field(2).(*array.StringBuilder).Append("INVALID_ROW")
		b.Field(3).(*array.StringBuilder).Append("error")
		b.Field(4).(*array.StringBuilder).Append("99214")
		b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(mustDate(t, "2024-03-02")))
	})
	fromCSV, err := Compare(context.Background(), csvDir, csvDir)
	if err != nil {
		t.Fatal(err)
	}
	fromArrow, err := Compare(context.Background(), csvDir, arrowDir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromArrow.Lines, fromCSV.Lines) {
		t.Errorf("Arrow run lines\n%+v\nCSV run lines\n%+v", fromArrow.Lines, fromCSV.Lines)
	}
	for _, l := range fromArrow.Lines {
		if l.Reason != Unchanged {
			t.Errorf("claim %s: %s, want UNCHANGED against the same run in CSV", l.ClaimID, l.Reason)
		}
	}
}

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
