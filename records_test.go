package repricer_test

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/repricer/repricer"
	"github.com/repricer/repricer/money"
)

// sampleRecords reads the sample claims (without its rows of the wrong
// width, which only a CSV file can have) as Arrow record batches of text
// columns, chunk rows a batch.
func sampleRecords(t *testing.T, chunk int) array.RecordReader {
	t.Helper()
	f, err := os.Open("testdata/sample/claims.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	fields := make([]arrow.Field, len(rows[0]))
	for i, n := range rows[0] {
		fields[i] = arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true}
	}
	sc := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	var batches []arrow.RecordBatch
	for i, r := range rows[1:] {
		if len(r) != len(fields) {
			continue
		}
		for c, v := range r {
			b.Field(c).(*array.StringBuilder).Append(v)
		}
		if (i+1)%chunk == 0 || i == len(rows)-2 {
			batches = append(batches, b.NewRecordBatch())
		}
	}
	rr, err := array.NewRecordReader(sc, batches)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range batches {
		rec.Release()
	}
	t.Cleanup(rr.Release)
	return rr
}

// TestPricedRecords reads every priced row from the record stream: as many
// rows, and the same allowed total, as the run's summary.
func TestPricedRecords(t *testing.T) {
	var excRows int64
	s := sample().PricedRecords(context.Background(), sampleRecords(t, 50), func(b arrow.RecordBatch) error {
		excRows += b.NumRows()
		return nil
	}, repricer.StreamOptions{})
	defer s.Release()
	if s.Summary() != nil || s.Err() != nil {
		t.Error("summary or error before the end")
	}
	var rows int64
	var allowed money.Cents
	for s.Next() {
		b := s.RecordBatch()
		if !b.Schema().Equal(s.Schema()) {
			t.Fatalf("batch schema %s", b.Schema())
		}
		rows += b.NumRows()
		col := b.Column(b.Schema().FieldIndices("allowed_amount")[0]).(*array.Decimal128)
		for i := 0; i < col.Len(); i++ {
			allowed += money.Cents(col.Value(i).LowBits())
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	sum := s.Summary()
	if sum == nil || rows != sum.Counts.PricedLines || rows == 0 || allowed != sum.Totals.Allowed {
		t.Fatalf("%d rows, allowed %s; summary %+v", rows, allowed, sum)
	}
	if excRows < sum.Counts.ErrorExceptions || excRows == 0 {
		t.Errorf("%d exception rows, summary %+v", excRows, sum.Counts)
	}
}

// TestPricedRecordsReleaseEarly: releasing the reader before the end
// stops pricing and returns.
func TestPricedRecordsReleaseEarly(t *testing.T) {
	in := sampleRecords(t, 1)
	s := sample().PricedRecords(context.Background(), in, func(arrow.RecordBatch) error { return nil }, repricer.StreamOptions{})
	s.Release() // must not hang
	if s.Next() {
		t.Error("Next after Release")
	}
	if err := s.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
}
