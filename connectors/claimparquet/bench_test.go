package claimparquet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/synth"
)

const benchRows = 1 << 20

// genInput writes n claim lines in the canonical typed schema (snappy,
// row groups of 128k rows), as an upstream system would.
func genInput(b testing.TB, n int) []byte {
	b.Helper()
	mem := memory.DefaultAllocator
	fields := make([]arrow.Field, claims.NumFields)
	for f := range fields {
		fields[f] = arrow.Field{Name: claims.FieldNames[f], Type: utf8, Nullable: true}
	}
	fields[claims.LineNumber].Type = i32
	fields[claims.Units].Type = i32
	fields[claims.ServiceDate].Type = d32
	fields[claims.BilledAmount].Type = dec2
	sc := arrow.NewSchema(fields, nil)
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(sc, &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithStoreDecimalAsInteger(true)), pqarrow.DefaultWriterProps())
	if err != nil {
		b.Fatal(err)
	}
	rb := array.NewRecordBuilder(mem, sc)
	defer rb.Release()
	str := func(f claims.Field) *array.StringBuilder { return rb.Field(int(f)).(*array.StringBuilder) }
	day := date32(b, "2024-01-01")
	for i := 0; i < n; i++ {
		str(claims.ClaimID).Append(fmt.Sprintf("CLM%09d", i/3))
		rb.Field(int(claims.LineNumber)).(*array.Int32Builder).Append(int32(i%3 + 1))
		str(claims.VendorID).Append(fmt.Sprintf("V%03d", i%50))
		str(claims.MemberID).Append(fmt.Sprintf("M%07d", i%100000))
		str(claims.ProviderNPI).Append(fmt.Sprintf("1%09d", i%7919))
		str(claims.CPTCode).Append([]string{"99213", "99214", "27447", "73560", "J3301"}[i%5])
		if i%4 == 0 {
			str(claims.Modifiers).Append("26")
		} else {
			str(claims.Modifiers).AppendNull()
		}
		str(claims.Specialty).AppendNull()
		str(claims.VisitKind).AppendNull()
		str(claims.PlaceOfService).Append("11")
		rb.Field(int(claims.ServiceDate)).(*array.Date32Builder).Append(day + arrow.Date32(i%365))
		rb.Field(int(claims.Units)).(*array.Int32Builder).Append(int32(1 + i%3))
		rb.Field(int(claims.BilledAmount)).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(10000 + i%100000)))
		str(claims.PriorAuthNumber).AppendNull()
		if (i+1)%(128*1024) == 0 || i == n-1 {
			rec := rb.NewRecordBatch()
			err := fw.Write(rec)
			rec.Release()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := fw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

var benchInput = sync.OnceValue(func() []byte { return genInput(&testing.B{}, benchRows) })

// BenchmarkRead reads 1M claim lines (read, format, Parse) and reports
// rows/s, with the fast path NewReader takes for this file (with Read, and
// with ReadArena into a buffer reused every 4096 lines, as the pipeline
// does) and, as the baseline, pqarrow's record reader.
func BenchmarkRead(b *testing.B) {
	data := benchInput()
	for _, bc := range []struct {
		name  string
		new   func(ctx context.Context, f parquet.ReaderAtSeeker, name string, mapping map[string]string) (*claimparquet.Reader, error)
		fast  bool
		arena bool
	}{
		{"fast", claimparquet.NewReader, true, false},
		{"fast-arena", claimparquet.NewReader, true, true},
		{"arrow-baseline", claimparquet.NewArrowReader, false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for range b.N {
				rd, err := bc.new(context.Background(), bytes.NewReader(data), "bench.parquet", nil)
				if err != nil {
					b.Fatal(err)
				}
				if rd.FastPath() != bc.fast {
					b.Fatalf("fast path = %v, want %v", rd.FastPath(), bc.fast)
				}
				var l claims.Line
				var arena []byte
				n := 0
				for {
					var err error
					if bc.arena {
						if n%4096 == 0 {
							arena = arena[:0]
						}
						arena, err = rd.ReadArena(&l, arena)
					} else {
						err = rd.Read(&l)
					}
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if l.Invalid != nil {
						b.Fatalf("row %d: %v", n+1, l.Invalid)
					}
					n++
				}
				if err := rd.Close(); err != nil {
					b.Fatal(err)
				}
				if n != benchRows {
					b.Fatalf("read %d rows", n)
				}
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkWrite writes 1M items (90% priced, 10% exceptions, 10% of the
// priced with two review exceptions) and reports rows/s (input items), with
// the parquet-go writer NewWriter uses and, as the baseline, Arrow records
// encoded by pqarrow.
func BenchmarkWrite(b *testing.B) {
	items := genItems(benchRows)
	for _, bc := range []struct {
		name string
		new  func(p, e io.Writer) (pipeline.ResultWriter, error)
	}{
		{"pages", func(p, e io.Writer) (pipeline.ResultWriter, error) { return claimparquet.NewWriter(p, e) }},
		{"parquet-go-baseline", func(p, e io.Writer) (pipeline.ResultWriter, error) { return claimparquet.NewParquetGoWriter(p, e) }},
		{"arrow-pqarrow-baseline", func(p, e io.Writer) (pipeline.ResultWriter, error) { return claimparquet.NewArrowParquetWriter(p, e) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for range b.N {
				var p, e bytes.Buffer
				w, err := bc.new(&p, &e)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < len(items); i += 2048 {
					if err := w.Write(context.Background(), items[i:min(i+2048, len(items))]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				size = p.Len() + e.Len()
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size), "out-bytes")
		})
	}
}

// synthInputs are the same generated claims (the shape of `repricer gen`)
// as Parquet and as CSV.
var synthInputs = sync.OnceValues(func() (pq, csv []byte) {
	s := synth.Schedule(synth.ScheduleOptions{Seed: 5, Contracts: 200, Rates: 20000})
	gen := func() *synth.ClaimGen {
		return synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 9, Lines: benchRows / 2})
	}
	var p, c bytes.Buffer
	if _, err := synth.WriteParquet(context.Background(), &p, gen()); err != nil {
		panic(err)
	}
	if _, err := synth.WriteCSV(context.Background(), &c, gen()); err != nil {
		panic(err)
	}
	return p.Bytes(), c.Bytes()
})

// BenchmarkReadVsCSV reads the same generated claims as Parquet and as CSV
// the way the pipeline does (ReadArena into a buffer reused every 4096
// lines) and reports rows/s; the CSV reader is the baseline the Parquet
// reader is held to: compare their rows/s within one run.
func BenchmarkReadVsCSV(b *testing.B) {
	pq, csv := synthInputs()
	for _, bc := range []struct {
		name string
		open func() (pipeline.ArenaReader, error)
	}{
		{"parquet", func() (pipeline.ArenaReader, error) {
			return claimparquet.NewReader(context.Background(), bytes.NewReader(pq), "bench.parquet", nil)
		}},
		{"csv-baseline", func() (pipeline.ArenaReader, error) {
			return claimcsv.NewReader(bytes.NewReader(csv), "bench.csv", nil)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				rd, err := bc.open()
				if err != nil {
					b.Fatal(err)
				}
				var l claims.Line
				var arena []byte
				n := 0
				for ; ; n++ {
					if n%4096 == 0 {
						arena = arena[:0]
					}
					if arena, err = rd.ReadArena(&l, arena); err != nil {
						break
					}
				}
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				if c, ok := rd.(io.Closer); ok {
					c.Close()
				}
				if n != benchRows/2 {
					b.Fatalf("read %d rows", n)
				}
			}
			b.ReportMetric(float64(benchRows/2)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
