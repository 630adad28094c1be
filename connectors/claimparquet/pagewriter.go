package claimparquet

import (
	"bufio"
	"context"
	"errors"
	"io"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet/internal/pqwrite"
)

// pageRows is the most rows of one data page: a pipeline batch (4k lines
// by default) makes one page per column, a larger Write several.
const pageRows = 8 * 1024

// Column positions in pricedRow and exceptionRow, in the order
// batchEncoder appends values (TestWriterMatchesParquetGo checks them
// against the parquet-go writer's files).
const (
	pLineNumber    = int(claims.LineNumber)
	pServiceDate   = int(claims.ServiceDate)
	pUnits         = int(claims.Units)
	pBilled        = int(claims.BilledAmount)
	pPriorAuth     = int(claims.PriorAuthNumber)
	pContractID    = int(claims.NumFields)
	pMatchPriority = pContractID + 4
	pRateType      = pMatchPriority + 1
	pRateValue     = pRateType + 1
	pFlags         = pRateValue + 7

	eRaw      = 7                                // exceptionRow's first input column, vendor_id
	eTypedRaw = eRaw + int(claims.NumFields) - 2 // its first *_raw column
)

// FileWriter writes priced lines and exceptions as two Parquet files, with
// the schemas of PricedSchema and ExceptionSchema (the columns of the CSV
// files, typed: DATE, DECIMAL(18,2) money and DECIMAL(18,6) rates as
// INT64). Pricing workers encode and compress each batch's pages
// (NewBatchEncoder); the writer then only copies the pages into row groups
// of at most RowGroupRows rows and writes the footer. See docs/parquet.md.
type FileWriter struct {
	pbw, ebw *bufio.Writer
	ps, es   *pqwrite.Schema
	pw, ew   *pqwrite.Writer
	enc      *batchEncoder // for Write
	err      error         // sticky
	closed   bool
}

// NewWriter returns a Parquet writer of the priced lines to priced and of
// the exceptions to exceptions. Close must be called to finish both
// files; it does not close priced or exceptions.
func NewWriter(priced, exceptions io.Writer) (*FileWriter, error) {
	ps, err := pqwrite.SchemaOf(pricedRow{}, noBounds...)
	if err != nil {
		return nil, err
	}
	es, err := pqwrite.SchemaOf(exceptionRow{}, noBounds...)
	if err != nil {
		return nil, err
	}
	w := &FileWriter{pbw: bufio.NewWriterSize(priced, 1<<20), ebw: bufio.NewWriterSize(exceptions, 1<<20), ps: ps, es: es}
	const createdBy = "repricer"
	w.pw = pqwrite.NewWriter(w.pbw, ps, RowGroupRows, createdBy)
	w.ew = pqwrite.NewWriter(w.ebw, es, RowGroupRows, createdBy)
	w.enc = w.newEncoder()
	return w, nil
}

func (w *FileWriter) newEncoder() *batchEncoder {
	return &batchEncoder{priced: pqwrite.NewBatch(w.ps, pageRows), exc: pqwrite.NewBatch(w.es, pageRows), epoch: epochDay()}
}

// NewBatchEncoder returns an encoder of a batch's rows for WriteEncoded.
// It shares no state with w or other encoders, so pricing workers encode
// and compress in parallel.
func (w *FileWriter) NewBatchEncoder() claims.BatchEncoder { return w.newEncoder() }

// Write appends the items' rows to the two files.
func (w *FileWriter) Write(ctx context.Context, items []claims.Item) error {
	w.enc.Reset()
	w.enc.Encode(items)
	w.enc.Finish()
	return w.WriteEncoded(ctx, w.enc)
}

// WriteEncoded appends the rows of an encoder from NewBatchEncoder, after
// its Finish, to the two files.
func (w *FileWriter) WriteEncoded(ctx context.Context, enc claims.BatchEncoder) error {
	if err := writable(ctx, w.closed, w.err); err != nil {
		return err
	}
	e := enc.(*batchEncoder)
	if err := w.pw.Write(e.priced); err != nil {
		w.err = &WriteError{File: "priced", Err: err}
		return w.err
	}
	if err := w.ew.Write(e.exc); err != nil {
		w.err = &WriteError{File: "exceptions", Err: err}
		return w.err
	}
	return nil
}

// Close finishes both files (footers) and flushes them; it does not close
// the underlying writers.
func (w *FileWriter) Close() error {
	return closeFiles(&w.closed, &w.err, finishFile{"priced", w.pw.Close, w.pbw}, finishFile{"exceptions", w.ew.Close, w.ebw})
}

// writable returns why a writer of both files cannot take a write: it is
// closed, an earlier write failed (err), or ctx is done.
func writable(ctx context.Context, closed bool, err error) error {
	switch {
	case closed:
		return errors.New("claimparquet: write after Close")
	case err != nil:
		return err
	}
	return ctx.Err()
}

// finishFile is one output of a Parquet writer being closed: its encoder's
// Close (which writes the footer) and the buffer in front of the file.
type finishFile struct {
	name  string
	close func() error
	bw    *bufio.Writer
}

// closeFiles is a writer's Close: the first call, unless a write failed
// (*err), closes and flushes each file in order and keeps the first
// failure in *err, as a *WriteError naming its file; every call returns
// *err.
func closeFiles(closed *bool, err *error, files ...finishFile) error {
	if *closed {
		return *err
	}
	*closed = true
	for _, f := range files {
		if *err != nil {
			break
		}
		if cerr := f.close(); cerr != nil {
			*err = &WriteError{File: f.name, Err: cerr}
		} else if ferr := f.bw.Flush(); ferr != nil {
			*err = &WriteError{File: f.name, Err: ferr}
		}
	}
	return *err
}

// batchEncoder appends items to the pages of both files.
type batchEncoder struct {
	priced, exc *pqwrite.Batch
	epoch       int64
	codes       []claims.Code
	flags       [256]string // formatted flag sets of the first 8 flags, to format each once
}

var _ claims.BatchEncoder = (*batchEncoder)(nil)

func (e *batchEncoder) Reset() {
	e.priced.Reset()
	e.exc.Reset()
}

func (e *batchEncoder) Finish() {
	e.priced.Finish()
	e.exc.Finish()
}

// Encode appends the priced row and the exception rows of each item.
func (e *batchEncoder) Encode(items []claims.Item) {
	for i := range items {
		it := &items[i]
		l, r := &it.Line, &it.Result
		if r.Priced() {
			e.appendPriced(l, r)
		}
		e.codes = claimcsv.ExceptionCodes(e.codes[:0], r)
		if len(e.codes) == 0 {
			continue
		}
		t := parseTyped(l, e.epoch)
		for _, code := range e.codes {
			b := e.exc
			b.String(0, l.Raw[claims.ClaimID])
			e.typed(1, &t, 0)
			b.String(2, l.Source.File)
			b.Int64(3, l.Source.Row)
			b.String(4, code.String())
			b.String(5, code.Severity())
			b.String(6, claimcsv.ExceptionMessage(r, code))
			for f := claims.VendorID; f < claims.NumFields; f++ {
				col := eRaw + int(f-claims.VendorID)
				if i := typedIndex(f); i >= 0 {
					e.typed(col, &t, i)
					continue
				}
				b.String(col, l.Raw[f])
			}
			for i, raw := range t.raw {
				b.String(eTypedRaw+i, raw)
			}
			b.EndRow()
		}
	}
}

// typed appends typed input i of t to exception column col.
func (e *batchEncoder) typed(col int, t *typedInput, i int) {
	switch {
	case !t.ok[i]:
		e.exc.Null(col)
	case typedInputs[i] == claims.ServiceDate:
		e.exc.Int32(col, int32(t.value[i]))
	default:
		e.exc.Int64(col, t.value[i])
	}
}

func (e *batchEncoder) appendPriced(l *claims.Line, r *claims.Result) {
	b := e.priced
	for f := 0; f < pServiceDate; f++ {
		if f == pLineNumber {
			b.Int64(f, l.LineNumber)
			continue
		}
		b.String(f, l.Raw[f])
	}
	b.Int32(pServiceDate, int32(int64(l.ServiceDate)-e.epoch))
	b.Int64(pUnits, l.Units)
	b.Int64(pBilled, int64(l.Billed))
	b.String(pPriorAuth, l.Raw[claims.PriorAuthNumber])
	b.String(pContractID, r.Contract.ID)
	b.String(pContractID+1, r.Contract.Number)
	b.String(pContractID+2, r.RateID)
	b.String(pContractID+3, r.RateKind)
	b.Int32(pMatchPriority, int32(r.MatchPriority))
	b.String(pRateType, r.RateType.String())
	b.Int64(pRateValue, int64(r.RateValue))
	b.Int64(pRateValue+1, r.PricedUnits)
	b.Int64(pRateValue+2, int64(r.AllowedBeforeStopLoss))
	b.Int64(pRateValue+3, int64(r.StopLossReduction))
	b.Int64(pRateValue+4, int64(r.Allowed))
	b.Int64(pRateValue+5, int64(r.AdminFee))
	b.Int64(pRateValue+6, int64(r.NetPayable))
	b.String(pFlags, e.flagString(r.Flags))
	b.EndRow()
}

func (e *batchEncoder) flagString(f claims.Flags) string {
	if int(f) >= len(e.flags) {
		return f.String()
	}
	if e.flags[f] == "" {
		e.flags[f] = f.String() // "" again for no flags, which is right
	}
	return e.flags[f]
}
