package claimparquet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/money"
)

// RowGroupRows is the number of rows of each row group the writer writes
// (the last row group of a file may be smaller).
const RowGroupRows = 128 * 1024

// codec is the compression of every column chunk the writer writes.
func codec() compress.Compression { return compress.Codecs.Snappy }

func moneyType() arrow.DataType { return &arrow.Decimal128Type{Precision: 18, Scale: 2} }
func rateType() arrow.DataType  { return &arrow.Decimal128Type{Precision: 18, Scale: 6} }

func text(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true}
}

// inputField is the typed field of input column f, or text.
func inputField(f claims.Field, nullable bool) arrow.Field {
	switch f {
	case claims.LineNumber, claims.Units:
		return arrow.Field{Name: f.String(), Type: arrow.PrimitiveTypes.Int64, Nullable: nullable}
	case claims.ServiceDate:
		return arrow.Field{Name: f.String(), Type: arrow.FixedWidthTypes.Date32, Nullable: nullable}
	case claims.BilledAmount:
		return arrow.Field{Name: f.String(), Type: moneyType(), Nullable: nullable}
	}
	return text(f.String())
}

// PricedSchema is the Arrow schema of the priced-lines file; its column
// names and order are those of claimcsv.PricedColumns. Integers are INT64,
// the service date DATE32, money DECIMAL(18,2) and rate values
// DECIMAL(18,6).
func PricedSchema() *arrow.Schema {
	fs := make([]arrow.Field, 0, len(claimcsv.PricedColumns))
	for f := claims.Field(0); f < claims.NumFields; f++ {
		fs = append(fs, inputField(f, false))
	}
	fs = append(fs,
		text("contract_id"), text("contract_number"), text("rate_id"), text("rate_kind"),
		arrow.Field{Name: "match_priority", Type: arrow.PrimitiveTypes.Int32},
		text("rate_type"),
		arrow.Field{Name: "rate_value", Type: rateType()},
		arrow.Field{Name: "priced_units", Type: arrow.PrimitiveTypes.Int64},
	)
	for _, n := range []string{"allowed_before_stop_loss", "stop_loss_reduction", "allowed_amount", "admin_fee", "net_payable"} {
		fs = append(fs, arrow.Field{Name: n, Type: moneyType()})
	}
	fs = append(fs, text("flags"))
	return arrow.NewSchema(fs, nil)
}

// ExceptionSchema is the Arrow schema of the exceptions file: the columns
// of claimcsv.ExceptionColumns, then RawColumns. The input columns are
// typed as in PricedSchema and null where the input was empty or did not
// parse; the text that did not parse is in the *_raw column.
func ExceptionSchema() *arrow.Schema {
	fs := []arrow.Field{
		text("claim_id"), inputField(claims.LineNumber, true), text("source_file"),
		{Name: "source_row", Type: arrow.PrimitiveTypes.Int64},
		text("code"), text("severity"), text("message"),
	}
	for f := claims.VendorID; f < claims.NumFields; f++ {
		fs = append(fs, inputField(f, true))
	}
	for _, n := range RawColumns {
		fs = append(fs, text(n))
	}
	return arrow.NewSchema(fs, nil)
}

// WriteError is a failure to write one of the output files.
type WriteError struct {
	File string // "priced" or "exceptions"
	Err  error
}

func (e *WriteError) Error() string { return "write " + e.File + " Parquet: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// recordWriter is where a table's record batches go: a Parquet file or an
// Arrow IPC stream. Close finishes the format (footer or end-of-stream).
type recordWriter interface {
	Write(rec arrow.RecordBatch) error
	Close() error
}

var (
	_ recordWriter = (*pqarrow.FileWriter)(nil)
	_ recordWriter = (*ipc.Writer)(nil)
	_ recordWriter = recordFunc(nil)
)

// recordFunc hands each record batch to a caller.
type recordFunc func(arrow.RecordBatch) error

func (f recordFunc) Write(rec arrow.RecordBatch) error { return f(rec) }
func (f recordFunc) Close() error                      { return nil }

// table is one output file being written.
type table struct {
	name string
	bw   *bufio.Writer
	fw   recordWriter
	rb   *array.RecordBuilder
	rows int
	str  []*array.StringBuilder // the text builders, by column; nil for typed columns
}

// bufWriter hides the Close method of the destination: the Parquet writer
// closes its sink, and the pipeline owns (and later syncs) the files.
type bufWriter struct{ w *bufio.Writer }

func (b bufWriter) Write(p []byte) (int, error) { return b.w.Write(p) }

// openTable starts one output table: its schema and where its record
// batches go.
type openTable func(name string, sc *arrow.Schema) (*table, error)

func newTable(name string, bw *bufio.Writer, fw recordWriter, sc *arrow.Schema) *table {
	t := &table{name: name, bw: bw, fw: fw, rb: array.NewRecordBuilder(memory.DefaultAllocator, sc)}
	t.str = make([]*array.StringBuilder, sc.NumFields())
	for i := range t.str {
		t.str[i], _ = t.rb.Field(i).(*array.StringBuilder)
	}
	return t
}

// recordTable hands the record batches to fn.
func recordTable(fn func(arrow.RecordBatch) error) openTable {
	return func(name string, sc *arrow.Schema) (*table, error) {
		return newTable(name, nil, recordFunc(fn), sc), nil
	}
}

// ipcTable writes an Arrow IPC stream to w.
func ipcTable(w io.Writer) openTable {
	return func(name string, sc *arrow.Schema) (*table, error) {
		bw := bufio.NewWriterSize(w, 1<<20)
		fw := ipc.NewWriter(bufWriter{bw}, ipc.WithSchema(sc), ipc.WithAllocator(memory.DefaultAllocator))
		return newTable(name, bw, fw, sc), nil
	}
}

// pqarrowTable writes a Parquet file to w through pqarrow.
func pqarrowTable(w io.Writer) openTable {
	return func(name string, sc *arrow.Schema) (*table, error) {
		opts := []parquet.WriterProperty{
			parquet.WithAllocator(memory.DefaultAllocator),
			parquet.WithCompression(codec()),
			parquet.WithDictionaryDefault(true),
			parquet.WithStoreDecimalAsInteger(true),
			parquet.WithMaxRowGroupLength(RowGroupRows),
			parquet.WithStats(true),
		}
		// Mostly-unique identifiers gain nothing from dictionary encoding,
		// which costs an allocation per new value in arrow-go.
		for _, c := range [...]string{"claim_id", "member_id", "provider_npi", "prior_auth_number"} {
			if sc.HasField(c) {
				opts = append(opts, parquet.WithDictionaryFor(c, false))
			}
		}
		bw := bufio.NewWriterSize(w, 1<<20)
		fw, err := pqarrow.NewFileWriter(sc, bufWriter{bw}, parquet.NewWriterProperties(opts...),
			pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(memory.DefaultAllocator)))
		if err != nil {
			return nil, &WriteError{File: name, Err: err}
		}
		return newTable(name, bw, fw, sc), nil
	}
}

// flush writes the buffered rows as one row group.
func (t *table) flush() error {
	if t.rows == 0 {
		return nil
	}
	rec := t.rb.NewRecordBatch()
	defer rec.Release()
	t.rows = 0
	if err := t.fw.Write(rec); err != nil {
		return &WriteError{File: t.name, Err: err}
	}
	return nil
}

func (t *table) close() error {
	defer t.rb.Release()
	err := t.flush()
	if cerr := t.fw.Close(); cerr != nil && err == nil {
		err = &WriteError{File: t.name, Err: cerr}
	}
	if err != nil {
		return err
	}
	if t.bw == nil {
		return nil
	}
	if err := t.bw.Flush(); err != nil {
		return &WriteError{File: t.name, Err: err}
	}
	return nil
}

// Writer writes priced lines and exceptions as two Parquet files.
type Writer struct {
	priced, exc *table
	codes       []claims.Code
	tmp         []byte
	err         error // sticky
	closed      bool
	epoch       int64 // contracts.Date of 1970-01-01

	// Typed builders of the priced file.
	pDate                   *array.Date32Builder
	pLine, pUnits           *array.Int64Builder
	pPricedUnits            *array.Int64Builder
	pBilled, pRateValue     *array.Decimal128Builder
	pMatch                  *array.Int32Builder
	pMoney                  [5]*array.Decimal128Builder
	eRow                    *array.Int64Builder
	pFirstResult, eFirstRaw int
}

// NewArrowWriter is NewWriter for Arrow IPC streams (the format of
// arrow.ipc.RecordBatchStreamReader and pyarrow.ipc.open_stream) instead of
// Parquet files, with the same schemas.
func NewArrowWriter(priced, exceptions io.Writer) (*Writer, error) {
	return newWriter(ipcTable(priced), ipcTable(exceptions))
}

// NewArrowParquetWriter writes Parquet files by building Arrow records and
// encoding them with pqarrow: the slower path NewWriter replaced, kept as
// the baseline of BenchmarkWrite.
func NewArrowParquetWriter(priced, exceptions io.Writer) (*Writer, error) {
	return newWriter(pqarrowTable(priced), pqarrowTable(exceptions))
}

// NewRecordWriter is NewWriter for callers that want the priced and
// exception rows as Arrow record batches (PricedSchema, ExceptionSchema)
// rather than bytes: each batch is handed to priced or exceptions and
// released when the function returns (Retain it to keep it).
func NewRecordWriter(priced, exceptions func(arrow.RecordBatch) error) (*Writer, error) {
	return newWriter(recordTable(priced), recordTable(exceptions))
}

func newWriter(priced, exceptions openTable) (*Writer, error) {
	p, err := priced("priced", PricedSchema())
	if err != nil {
		return nil, err
	}
	e, err := exceptions("exceptions", ExceptionSchema())
	if err != nil {
		p.rb.Release()
		return nil, err
	}
	w := &Writer{priced: p, exc: e, pFirstResult: int(claims.NumFields), eFirstRaw: 7, epoch: epochDay()}
	w.pLine = p.rb.Field(int(claims.LineNumber)).(*array.Int64Builder)
	w.pDate = p.rb.Field(int(claims.ServiceDate)).(*array.Date32Builder)
	w.pUnits = p.rb.Field(int(claims.Units)).(*array.Int64Builder)
	w.pBilled = p.rb.Field(int(claims.BilledAmount)).(*array.Decimal128Builder)
	r := w.pFirstResult
	w.pMatch = p.rb.Field(r + 4).(*array.Int32Builder)
	w.pRateValue = p.rb.Field(r + 6).(*array.Decimal128Builder)
	w.pPricedUnits = p.rb.Field(r + 7).(*array.Int64Builder)
	for k := range w.pMoney {
		w.pMoney[k] = p.rb.Field(r + 8 + k).(*array.Decimal128Builder)
	}
	w.eRow = e.rb.Field(3).(*array.Int64Builder)
	return w, nil
}

// appendText appends s to column i of t, or null when s is empty.
func (w *Writer) appendText(t *table, i int, s string) {
	b := t.str[i]
	if s == "" {
		b.AppendNull()
		return
	}
	w.tmp = append(w.tmp[:0], s...)
	b.BinaryBuilder.Append(w.tmp)
}

func (w *Writer) appendBytes(t *table, i int, s []byte) {
	if len(s) == 0 {
		t.str[i].AppendNull()
		return
	}
	t.str[i].BinaryBuilder.Append(s)
}

// Write appends each item to the priced file or the exceptions file (and
// both for priced lines with review codes), starting a new row group every
// RowGroupRows rows.
func (w *Writer) Write(ctx context.Context, items []claims.Item) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("claimparquet: write after Close")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range items {
		it := &items[i]
		if it.Result.Priced() {
			w.appendPriced(it)
			if w.priced.rows++; w.priced.rows >= RowGroupRows {
				if err := w.priced.flush(); err != nil {
					w.err = err
					return err
				}
			}
		}
		w.codes = claimcsv.ExceptionCodes(w.codes[:0], &it.Result)
		for _, code := range w.codes {
			w.appendException(it, code)
			if w.exc.rows++; w.exc.rows >= RowGroupRows {
				if err := w.exc.flush(); err != nil {
					w.err = err
					return err
				}
			}
		}
	}
	return nil
}

func dec(v int64) decimal128.Num { return decimal128.FromI64(v) }

func (w *Writer) appendPriced(it *claims.Item) {
	l, r, t := &it.Line, &it.Result, w.priced
	for f := claims.Field(0); f < claims.NumFields; f++ {
		switch f {
		case claims.LineNumber:
			w.pLine.Append(l.LineNumber)
		case claims.ServiceDate:
			w.pDate.Append(arrow.Date32(int64(l.ServiceDate) - w.epoch))
		case claims.Units:
			w.pUnits.Append(l.Units)
		case claims.BilledAmount:
			w.pBilled.Append(dec(int64(l.Billed)))
		default:
			w.appendText(t, int(f), l.Raw[f])
		}
	}
	c := w.pFirstResult
	w.appendText(t, c, r.Contract.ID)
	w.appendText(t, c+1, r.Contract.Number)
	w.appendText(t, c+2, r.RateID)
	w.appendText(t, c+3, r.RateKind)
	w.pMatch.Append(int32(r.MatchPriority))
	w.appendText(t, c+5, r.RateType.String())
	w.pRateValue.Append(dec(int64(r.RateValue)))
	w.pPricedUnits.Append(r.PricedUnits)
	for k, v := range [...]money.Cents{r.AllowedBeforeStopLoss, r.StopLossReduction, r.Allowed, r.AdminFee, r.NetPayable} {
		w.pMoney[k].Append(dec(int64(v)))
	}
	w.tmp = r.Flags.Append(w.tmp[:0])
	w.appendBytes(t, c+13, w.tmp)
}

func (w *Writer) appendException(it *claims.Item, code claims.Code) {
	l, r, t := &it.Line, &it.Result, w.exc
	typed := parseTyped(l, w.epoch)
	w.appendText(t, 0, l.Raw[claims.ClaimID])
	w.appendTyped(1, &typed, 0)
	w.appendText(t, 2, l.Source.File)
	w.eRow.Append(l.Source.Row)
	w.appendText(t, 4, code.String())
	w.appendText(t, 5, code.Severity())
	w.appendText(t, 6, claimcsv.ExceptionMessage(r, code))
	for f := claims.VendorID; f < claims.NumFields; f++ {
		col := w.eFirstRaw + int(f-claims.VendorID)
		if i := typedIndex(f); i >= 0 {
			w.appendTyped(col, &typed, i)
			continue
		}
		w.appendText(t, col, l.Raw[f])
	}
	for i, raw := range typed.raw {
		w.appendText(t, eTypedRaw+i, raw)
	}
}

// appendTyped appends typed input i to exception column col.
func (w *Writer) appendTyped(col int, typed *typedInput, i int) {
	b := w.exc.rb.Field(col)
	if !typed.ok[i] {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(typed.value[i])
	case *array.Date32Builder:
		b.Append(arrow.Date32(typed.value[i]))
	case *array.Decimal128Builder:
		b.Append(dec(typed.value[i]))
	}
}

// Close writes the last row groups and the footers of both files and
// flushes them; it does not close the underlying writers.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	perr := w.priced.close()
	eerr := w.exc.close()
	if w.err != nil {
		return w.err
	}
	if err := errors.Join(perr, eerr); err != nil {
		w.err = fmt.Errorf("claimparquet: %w", err)
		return w.err
	}
	return nil
}
