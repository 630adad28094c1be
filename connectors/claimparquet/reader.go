// Package claimparquet reads claim lines from Parquet files and writes
// priced lines and exceptions as Parquet, through Apache Arrow Go
// (arrow-go v18).
//
// The reader streams a file record batch by record batch (a row group at a
// time, never the whole file), reads only the canonical claim columns the
// file has (column projection), turns every value into the same text the
// CSV reader would hand over, and validates the line with claims.Line.Parse,
// so a Parquet input is priced exactly like the equivalent CSV input.
//
// The writer produces the priced-lines and exceptions files with the column
// names and order of the CSV files (claimcsv.PricedColumns and
// claimcsv.ExceptionColumns), with typed columns: dates as DATE32, money as
// DECIMAL(18,2), rates as DECIMAL(18,6), counts as INT64. Money is never a
// floating-point number, on input or output.
//
// See docs/parquet.md for the accepted input types and the output schemas.
package claimparquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
)

// ReadBatchRows is the number of rows the reader decodes at a time. With
// Read, each batch's values become one string that its lines share, so a
// batch's text lives until its last line is written: small batches keep
// that small (with 64Ki rows the reader held ~80 MB of a run's heap, with
// 8Ki ~20 MB, at no cost in speed). With ReadArena the batch is decoded
// into one reused buffer.
const ReadBatchRows = 8 * 1024

// readBufferSize is the read buffer of each column chunk.
const readBufferSize = 256 << 10

// SchemaError is a claim file whose schema cannot be used: a required
// column is missing, a column appears twice, or a column has a type the
// reader does not accept (for example money stored as FLOAT/DOUBLE).
type SchemaError struct {
	File   string
	Column string // the column name in the file, or the canonical name when missing
	Type   string // the Arrow type found, "" when the column is missing
	Reason string
}

func (e *SchemaError) Error() string {
	s := e.File + ": column " + e.Column
	if e.Type != "" {
		s += " (type " + e.Type + ")"
	}
	return s + ": " + e.Reason
}

// ReadError is a claim file that is not readable Parquet: not Parquet at
// all, truncated, or with corrupt pages. Err is the cause.
type ReadError struct {
	File string
	Err  error
}

func (e *ReadError) Error() string { return e.File + ": cannot read Parquet: " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// column is one projected input column and its values in the current
// batch, as text: value i is data[off[i]:off[i+1]] ("" for null).
type column struct {
	field claims.Field
	name  string
	leaf  int // the Parquet leaf column (files only)
	index int // the column's position in the record batches
	data  string
	off   []int32
}

// Reader streams claim lines from one Parquet file.
//
// Reader keeps the context given to NewReader and checks it before decoding
// each record batch, because LineReader.Read takes no context.
type Reader struct {
	ctx    context.Context
	name   string
	rr     array.RecordReader // nil when the file has no rows or chunks reads it
	chunks *chunkReader       // the fast path, nil when rr reads the file
	cols   []column           // in the order of the record batches' columns
	n, i   int                // rows in the current batch, next row
	row    int64
	err    error // sticky: io.EOF or the first failure
	buf    []byte
	// arena: the last call was ReadArena, which copies every line out, so
	// the fast path may decode the next batch as a view of buf (view),
	// which the batch after it overwrites.
	arena, view bool
	// borrowed: rr belongs to the caller (NewRecordReader), not released here.
	borrowed bool
	rows     int64 // in the file, from its footer; -1 when unknown
}

// NumRows is the number of rows the file holds by its footer, or -1 when
// the reader does not know (NewRecordReader).
func (rd *Reader) NumRows() int64 { return rd.rows }

// NewReader opens the Parquet file f (an *os.File, a *bytes.Reader, …)
// and checks its schema. name is the file name reported in errors and in
// every line's Source. mapping maps canonical column names to the names
// used in the file (e.g. billed_amount -> charge_amt); names match
// case-insensitively. Columns that are not canonical are not read.
//
// A schema that cannot be used returns a *SchemaError; a file that is not
// readable Parquet returns a *ReadError. Close releases the Arrow memory;
// it does not close f.
func NewReader(ctx context.Context, f parquet.ReaderAtSeeker, name string, mapping map[string]string) (*Reader, error) {
	return newReader(ctx, f, name, mapping, false)
}

// newReader is NewReader. A file whose projected columns all have types
// the fast path (chunkReader) formats exactly is read with it, any other
// file with pqarrow's record reader; forceArrow reads every file with the
// latter, so that tests and benchmarks can compare the two.
func newReader(ctx context.Context, f parquet.ReaderAtSeeker, name string, mapping map[string]string, forceArrow bool) (rd *Reader, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		// arrow-go may panic on some malformed files; report them as such.
		if p := recover(); p != nil {
			rd, err = nil, &ReadError{File: name, Err: fmt.Errorf("corrupt file: %v", p)}
		}
	}()
	mem := memory.DefaultAllocator
	// Stream each column chunk through a small buffer instead of reading it
	// whole: writers such as parquet-mr make row groups of a million rows
	// and more, whose chunks would otherwise sit in memory in full.
	props := parquet.NewReaderProperties(mem)
	props.BufferedStreamEnabled = true
	props.BufferSize = readBufferSize
	pf, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		return nil, &ReadError{File: name, Err: err}
	}
	// Ignore the Arrow schema some writers store in the footer: the Parquet
	// schema has every type the reader accepts, and decoding that embedded
	// IPC message trusts its lengths (a damaged one can exhaust memory).
	md := pf.MetaData()
	kv := md.FileMetaData.KeyValueMetadata[:0:0]
	for _, e := range md.FileMetaData.KeyValueMetadata {
		if e != nil && e.Key != "ARROW:schema" {
			kv = append(kv, e)
		}
	}
	md.FileMetaData.KeyValueMetadata = kv
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: ReadBatchRows}, mem)
	if err != nil {
		return nil, &ReadError{File: name, Err: err}
	}
	want := map[string]claims.Field{}
	for f, n := range claims.FieldNames {
		if m, ok := mapping[n]; ok {
			n = m
		}
		want[strings.ToLower(strings.TrimSpace(n))] = claims.Field(f)
	}
	rd = &Reader{ctx: ctx, name: name}
	var found [claims.NumFields]bool
	var fast []chunkColumn // nil once a column needs pqarrow
	if !forceArrow {
		fast = []chunkColumn{}
	}
	for _, sf := range fr.Manifest.Fields {
		h := strings.ToLower(strings.TrimSpace(sf.Field.Name))
		f, ok := want[h]
		if !ok {
			continue
		}
		if found[f] {
			return nil, &SchemaError{File: name, Column: sf.Field.Name, Type: sf.Field.Type.String(), Reason: "appears twice"}
		}
		found[f] = true
		if !sf.IsLeaf() {
			return nil, &SchemaError{File: name, Column: sf.Field.Name, Type: sf.Field.Type.String(), Reason: "nested columns are not supported; " + expected(f)}
		}
		if reason := checkType(f, sf.Field.Type); reason != "" {
			return nil, &SchemaError{File: name, Column: sf.Field.Name, Type: sf.Field.Type.String(), Reason: reason}
		}
		rd.cols = append(rd.cols, column{field: f, name: sf.Field.Name, leaf: sf.ColIndex, index: len(rd.cols)})
		if fast != nil {
			if c, ok := newChunkColumn(sf.ColIndex, md.Schema.Column(sf.ColIndex), sf.Field.Type); ok {
				fast = append(fast, c)
			} else {
				fast = nil
			}
		}
	}
	for _, f := range claims.Required {
		if !found[f] {
			col := f.String()
			if m, ok := mapping[col]; ok {
				col = m + " (mapped to " + f.String() + ")"
			}
			return nil, &SchemaError{File: name, Column: col, Reason: "required column is missing"}
		}
	}
	rd.rows = pf.NumRows()
	if pf.NumRows() == 0 {
		rd.err = io.EOF
		return rd, nil
	}
	if fast != nil {
		rd.chunks = &chunkReader{pf: pf, cols: fast, df: newDayFormatter()}
		return rd, nil
	}
	leaves := make([]int, len(rd.cols))
	for i := range rd.cols {
		leaves[i] = rd.cols[i].leaf
	}
	rr, err := fr.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		return nil, &ReadError{File: name, Err: err}
	}
	rd.rr = rr
	// The record batches' columns follow the file's column order, which is
	// the order rd.cols was built in; check it rather than trust it.
	sc := rr.Schema()
	if sc.NumFields() != len(rd.cols) {
		rr.Release()
		return nil, &ReadError{File: name, Err: fmt.Errorf("projection returned %d columns, want %d", sc.NumFields(), len(rd.cols))}
	}
	for i := range rd.cols {
		if sc.Field(i).Name != rd.cols[i].name {
			rr.Release()
			return nil, &ReadError{File: name, Err: fmt.Errorf("projection returned column %q at %d, want %q", sc.Field(i).Name, i, rd.cols[i].name)}
		}
	}
	return rd, nil
}

// NewRecordReader reads claim lines from Arrow record batches, for callers
// that hold claims in memory (an ETL job's own Arrow data) rather than in a
// file. Columns are matched and checked as NewReader does; columns that are
// not canonical are ignored. The reader does not release rr.
func NewRecordReader(ctx context.Context, rr array.RecordReader, name string, mapping map[string]string) (*Reader, error) {
	want := map[string]claims.Field{}
	for f, n := range claims.FieldNames {
		if m, ok := mapping[n]; ok {
			n = m
		}
		want[strings.ToLower(strings.TrimSpace(n))] = claims.Field(f)
	}
	rd := &Reader{ctx: ctx, name: name, rr: rr, borrowed: true, rows: -1}
	var found [claims.NumFields]bool
	for i, af := range rr.Schema().Fields() {
		f, ok := want[strings.ToLower(strings.TrimSpace(af.Name))]
		if !ok {
			continue
		}
		if found[f] {
			return nil, &SchemaError{File: name, Column: af.Name, Type: af.Type.String(), Reason: "appears twice"}
		}
		found[f] = true
		if reason := checkType(f, af.Type); reason != "" {
			return nil, &SchemaError{File: name, Column: af.Name, Type: af.Type.String(), Reason: reason}
		}
		rd.cols = append(rd.cols, column{field: f, name: af.Name, index: i})
	}
	for _, f := range claims.Required {
		if !found[f] {
			col := f.String()
			if m, ok := mapping[col]; ok {
				col = m + " (mapped to " + f.String() + ")"
			}
			return nil, &SchemaError{File: name, Column: col, Reason: "required column is missing"}
		}
	}
	return rd, nil
}

// Read reads the next row into l: its values as text in l.Raw, its source
// (1-based row number in the file) and its parsed fields. A value that does
// not parse makes the line invalid (INVALID_ROW), exactly as in a CSV file.
// Read returns io.EOF after the last row, a *ReadError when the file's data
// is corrupt, and the context's error when it is cancelled.
func (rd *Reader) Read(l *claims.Line) error {
	if rd.view && rd.i < rd.n {
		// ReadArena decoded this batch: give its text a home of its own
		// before handing out strings that must last.
		text := strings.Clone(rd.cols[0].data)
		for k := range rd.cols {
			rd.cols[k].data = text
		}
		rd.view = false
	}
	rd.arena = false
	if err := rd.read(l); err != nil {
		return err
	}
	l.Parse()
	return nil
}

// ReadArena reads like Read, but appends the line's text to arena and
// returns the extended buffer: l's strings point into it, and the reader
// keeps no copy of its own (see pipeline.ArenaReader).
func (rd *Reader) ReadArena(l *claims.Line, arena []byte) ([]byte, error) {
	rd.arena = true
	if err := rd.read(l); err != nil {
		return arena, err
	}
	arena = l.CopyRaw(arena)
	l.Parse()
	return arena, nil
}

// read fills l.Raw and l.Source with the next row.
func (rd *Reader) read(l *claims.Line) error {
	if rd.i >= rd.n {
		if rd.err != nil {
			return rd.err
		}
		if err := rd.next(); err != nil {
			rd.err = err
			return err
		}
	}
	i := rd.i
	rd.i++
	rd.row++
	l.Raw = [claims.NumFields]string{}
	for k := range rd.cols {
		c := &rd.cols[k]
		l.Raw[c.field] = c.data[c.off[i]:c.off[i+1]]
	}
	l.Source = claims.Source{File: rd.name, Row: rd.row}
	return nil
}

// Close releases the Arrow memory of the reader. It does not close the
// file given to NewReader.
func (rd *Reader) Close() error {
	if rd.rr != nil && !rd.borrowed {
		rd.rr.Release()
	}
	rd.rr = nil
	if rd.chunks != nil {
		rd.chunks.close()
		rd.chunks = nil
	}
	if rd.err == nil {
		rd.err = errors.New(rd.name + ": reader is closed")
	}
	rd.n, rd.i = 0, 0
	return nil
}

// next decodes the next non-empty record batch into the columns' text.
func (rd *Reader) next() (err error) {
	if err := rd.ctx.Err(); err != nil {
		return err
	}
	if rd.rr == nil && rd.chunks == nil {
		return io.EOF
	}
	defer func() {
		if p := recover(); p != nil {
			err = &ReadError{File: rd.name, Err: fmt.Errorf("corrupt data near row %d: %v", rd.row+1, p)}
		}
	}()
	if rd.chunks != nil {
		return rd.nextChunks()
	}
	for {
		if !rd.rr.Next() {
			if err := rd.rr.Err(); err != nil {
				return &ReadError{File: rd.name, Err: fmt.Errorf("near row %d: %w", rd.row+1, err)}
			}
			return io.EOF
		}
		rec := rd.rr.RecordBatch()
		n := int(rec.NumRows())
		if n == 0 {
			continue
		}
		for k := range rd.cols {
			arr := rec.Column(rd.cols[k].index)
			if arr.Len() != n {
				return &ReadError{File: rd.name, Err: fmt.Errorf("column %s has %d values in a batch of %d rows", rd.cols[k].name, arr.Len(), n)}
			}
			if err := rd.load(&rd.cols[k], arr); err != nil {
				return err
			}
		}
		rd.n, rd.i = n, 0
		return nil
	}
}

// The fast path (chunkReader) reads the projected column chunks with
// arrow-go's column readers and formats their values straight into the
// columns' text, skipping the Arrow arrays that pqarrow's record reader
// builds first (builder appends, validity bitmaps, dictionary lookups into
// builders), over half of the reader's CPU time. It reads a file
// only when every projected column is flat and has a type it formats
// exactly as load formats the Arrow array pqarrow makes of it
// (newChunkColumn); other files keep the record reader.

// valueKind is how the fast path formats the values of a column.
type valueKind uint8

const (
	kindText valueKind = iota // BYTE_ARRAY: its bytes
	kindInt                   // INT32 or INT64 read as such
	// INT(8, true) … INT(64, false), converted as pqarrow converts them.
	kindInt8
	kindInt16
	kindUint8
	kindUint16
	kindUint32
	kindUint64
	kindDate      // DATE: days since 1970-01-01
	kindTimestamp // TIMESTAMP on INT64: its date, div ticks a day
	kindDecimal   // DECIMAL on INT32, INT64 or FIXED_LEN_BYTE_ARRAY(1…16)
)

// chunkColumn is one projected column on the fast path: its reader in the
// current row group and its decoding buffers, which every batch reuses.
type chunkColumn struct {
	kind   valueKind
	scale  int32 // kindDecimal
	div    int64 // kindTimestamp
	leaf   int
	maxDef int16 // 0: required, 1: optional (a lower level is a null)
	cr     file.ColumnChunkReader
	defs   []int16
	ba     []parquet.ByteArray
	flba   []parquet.FixedLenByteArray
	i32    []int32
	i64    []int64
}

// chunkReader reads the projected columns of a file row group by row group.
type chunkReader struct {
	pf   *file.Reader
	cols []chunkColumn // in the order of Reader.cols
	rg   int           // the next row group
	left int64         // rows of the current row group not read yet
	df   dayFormatter
}

// newChunkColumn returns the fast-path column for the Parquet leaf column
// d (number leaf), which pqarrow reads as an Arrow array of type t, and
// false when the fast path does not format it exactly as load formats that
// array.
func newChunkColumn(leaf int, d *schema.Column, t arrow.DataType) (chunkColumn, bool) {
	c := chunkColumn{leaf: leaf, maxDef: d.MaxDefinitionLevel()}
	if d.MaxRepetitionLevel() != 0 || c.maxDef > 1 {
		return c, false
	}
	phys := d.PhysicalType()
	isInt := phys == parquet.Types.Int32 || phys == parquet.Types.Int64
	ok := false
	switch t.ID() {
	case arrow.STRING, arrow.BINARY:
		c.kind, ok = kindText, phys == parquet.Types.ByteArray
	case arrow.INT32:
		// pqarrow takes the physical values as they are (zero copy), so
		// only an INT32 holds Arrow int32s.
		c.kind, ok = kindInt, phys == parquet.Types.Int32
	case arrow.INT64:
		c.kind, ok = kindInt, phys == parquet.Types.Int64
	case arrow.INT8:
		c.kind, ok = kindInt8, isInt
	case arrow.INT16:
		c.kind, ok = kindInt16, isInt
	case arrow.UINT8:
		c.kind, ok = kindUint8, isInt
	case arrow.UINT16:
		c.kind, ok = kindUint16, isInt
	case arrow.UINT32:
		c.kind, ok = kindUint32, isInt
	case arrow.UINT64:
		c.kind, ok = kindUint64, isInt
	case arrow.DATE32:
		c.kind, ok = kindDate, phys == parquet.Types.Int32
	case arrow.TIMESTAMP:
		// INT96 timestamps need pqarrow's conversion.
		c.kind, c.div, ok = kindTimestamp, ticksPerDay(t.(*arrow.TimestampType).Unit), phys == parquet.Types.Int64
	case arrow.DECIMAL128, arrow.DECIMAL256:
		c.kind, c.scale = kindDecimal, t.(arrow.DecimalType).GetScale()
		// pqarrow reads longer fixed-length decimals as Decimal256 or
		// fails, and checks each BYTE_ARRAY decimal's length: leave those
		// to it.
		flba := phys == parquet.Types.FixedLenByteArray && t.ID() == arrow.DECIMAL128 && d.TypeLength() >= 1 && d.TypeLength() <= 16
		ok = isInt || flba
	}
	return c, ok
}

// nextChunks decodes the next batch on the fast path: the next rows of the
// current row group, at most ReadBatchRows, so that a batch never spans two
// row groups.
func (rd *Reader) nextChunks() error {
	ch := rd.chunks
	for ch.left == 0 {
		if err := ch.endRowGroup(); err != nil {
			return &ReadError{File: rd.name, Err: fmt.Errorf("near row %d: %w", rd.row+1, err)}
		}
		if ch.rg == ch.pf.NumRowGroups() {
			return io.EOF
		}
		if err := ch.openRowGroup(); err != nil {
			return &ReadError{File: rd.name, Err: fmt.Errorf("near row %d: %w", rd.row+1, err)}
		}
	}
	n := int(min(ch.left, ReadBatchRows))
	// The columns' text goes into one buffer, one string for all of them:
	// a copy of it when lines keep their strings (Read), a view of the
	// reused buffer when every line is copied out (ReadArena), which takes
	// the largest allocation of a run out of the reader.
	buf := rd.buf[:0]
	for k := range rd.cols {
		c := &rd.cols[k]
		var err error
		buf, c.off, err = ch.cols[k].read(n, buf, append(c.off[:0], int32(len(buf))), ch.df)
		if err != nil {
			return &ReadError{File: rd.name, Err: fmt.Errorf("near row %d: column %s: %w", rd.row+1, c.name, err)}
		}
		if len(buf) > math.MaxInt32 {
			return &ReadError{File: rd.name, Err: fmt.Errorf("a batch of %d rows holds over 2 GiB of text", n)}
		}
	}
	rd.buf = buf
	text := unsafe.String(unsafe.SliceData(buf), len(buf))
	if rd.view = rd.arena; !rd.view {
		text = strings.Clone(text)
	}
	for k := range rd.cols {
		rd.cols[k].data = text
	}
	ch.left -= int64(n)
	rd.n, rd.i = n, 0
	return nil
}

// openRowGroup opens the projected column chunks of the next row group.
func (ch *chunkReader) openRowGroup() error {
	rg := ch.pf.RowGroup(ch.rg)
	ch.rg++
	if rg.NumRows() < 0 {
		return fmt.Errorf("row group %d has %d rows", ch.rg-1, rg.NumRows())
	}
	for k := range ch.cols {
		cr, err := rg.Column(ch.cols[k].leaf)
		if err != nil {
			return err
		}
		ch.cols[k].cr = cr
	}
	ch.left = rg.NumRows()
	return nil
}

// endRowGroup closes the column chunks of the current row group (if any),
// which must hold no more values than the row group's rows.
func (ch *chunkReader) endRowGroup() error {
	for k := range ch.cols {
		c := &ch.cols[k]
		if c.cr == nil {
			continue
		}
		if c.cr.HasNext() {
			return fmt.Errorf("column %s has more values than row group %d has rows", c.cr.Descriptor().Name(), ch.rg-1)
		}
		if err := c.cr.Err(); err != nil {
			return err
		}
		if err := c.cr.Close(); err != nil {
			return err
		}
		c.cr = nil
	}
	return nil
}

func (ch *chunkReader) close() {
	for k := range ch.cols {
		if cr := ch.cols[k].cr; cr != nil {
			cr.Close()
		}
		ch.cols[k].cr = nil
	}
}

// read decodes the column's next n rows (n ≤ ReadBatchRows, all in the
// current row group), appending their text to buf and their end offsets
// to off.
func (c *chunkColumn) read(n int, buf []byte, off []int32, df dayFormatter) ([]byte, []int32, error) {
	var defs []int16
	if c.maxDef > 0 {
		if c.defs == nil {
			c.defs = make([]int16, ReadBatchRows)
		}
		defs = c.defs
	}
	for got := 0; got < n; {
		want := int64(n - got)
		start := len(off)
		var (
			lvls int64
			nv   int
			err  error
		)
		// ReadBatchInPage stops at the end of a page and leaves byte arrays
		// pointing into the page (ReadBatch would copy them into a new
		// buffer): they are copied into buf before the next call can move
		// on to another page.
		switch cr := c.cr.(type) {
		case *file.ByteArrayColumnChunkReader:
			if c.ba == nil {
				c.ba = make([]parquet.ByteArray, ReadBatchRows)
			}
			if lvls, nv, err = cr.ReadBatchInPage(want, c.ba, defs, nil); err == nil {
				for _, v := range c.ba[:nv] {
					buf = append(buf, v...)
					off = append(off, int32(len(buf)))
				}
			}
		case *file.FixedLenByteArrayColumnChunkReader:
			if c.flba == nil {
				c.flba = make([]parquet.FixedLenByteArray, ReadBatchRows)
			}
			if lvls, nv, err = cr.ReadBatchInPage(want, c.flba, defs, nil); err == nil {
				for _, v := range c.flba[:nv] {
					buf = appendBigEndianDecimal(buf, v, c.scale)
					off = append(off, int32(len(buf)))
				}
			}
		case *file.Int32ColumnChunkReader:
			if c.i32 == nil {
				c.i32 = make([]int32, ReadBatchRows)
			}
			if lvls, nv, err = cr.ReadBatchInPage(want, c.i32, defs, nil); err == nil {
				buf, off = appendIntValues(buf, off, c.i32[:nv], c, df)
			}
		case *file.Int64ColumnChunkReader:
			if c.i64 == nil {
				c.i64 = make([]int64, ReadBatchRows)
			}
			if lvls, nv, err = cr.ReadBatchInPage(want, c.i64, defs, nil); err == nil {
				buf, off = appendIntValues(buf, off, c.i64[:nv], c, df)
			}
		default:
			return buf, off, fmt.Errorf("unexpected column reader %T", c.cr)
		}
		if err != nil {
			return buf, off, err
		}
		if lvls == 0 {
			if err := c.cr.Err(); err != nil {
				return buf, off, err
			}
			return buf, off, fmt.Errorf("the column chunk ends %d rows before its row group", n-got)
		}
		if defs != nil {
			if off, err = spreadNulls(off, start, defs[:lvls], c.maxDef); err != nil {
				return buf, off, err
			}
		} else if int64(nv) != lvls {
			return buf, off, fmt.Errorf("%d values for %d rows", nv, lvls)
		}
		got += int(lvls)
	}
	return buf, off, nil
}

// spreadNulls turns off[start:], the end offsets of the non-null values of
// a run of definition levels, into the end offsets of all of them: a level
// below maxDef is a null, an empty value that ends where the value before
// it ends.
func spreadNulls(off []int32, start int, defs []int16, maxDef int16) ([]int32, error) {
	nv := len(off) - start
	valid := 0
	for _, d := range defs {
		if d == maxDef {
			valid++
		}
	}
	if valid != nv {
		return off, fmt.Errorf("%d values for %d non-null levels", nv, valid)
	}
	if nv == len(defs) {
		return off, nil
	}
	off = slices.Grow(off, len(defs)-nv)[:start+len(defs)]
	// From the back, in place: value j (at off[j]) moves to its level's
	// slot start+k, which is never before it.
	j := start + nv - 1 // off[start-1] is the end of the value before the run
	for k := len(defs) - 1; k >= 0; k-- {
		off[start+k] = off[j]
		if defs[k] == maxDef {
			j--
		}
	}
	return off, nil
}

// appendIntValues formats the values of an INT32 or INT64 column as load
// formats the Arrow array pqarrow makes of them, appending their end
// offsets to off.
func appendIntValues[T int32 | int64](buf []byte, off []int32, vals []T, c *chunkColumn, df dayFormatter) ([]byte, []int32) {
	kind, scale, div := c.kind, c.scale, c.div
	for _, v := range vals {
		switch kind {
		case kindInt:
			buf = strconv.AppendInt(buf, int64(v), 10)
		case kindInt8:
			buf = strconv.AppendInt(buf, int64(int8(v)), 10)
		case kindInt16:
			buf = strconv.AppendInt(buf, int64(int16(v)), 10)
		case kindUint8:
			buf = strconv.AppendUint(buf, uint64(uint8(v)), 10)
		case kindUint16:
			buf = strconv.AppendUint(buf, uint64(uint16(v)), 10)
		case kindUint32:
			buf = strconv.AppendUint(buf, uint64(uint32(v)), 10)
		case kindUint64:
			buf = strconv.AppendUint(buf, uint64(v), 10)
		case kindDate:
			buf = df.appendDay(buf, int64(v))
		case kindTimestamp:
			buf = df.appendDay(buf, floorDiv(int64(v), div))
		case kindDecimal:
			buf = appendDecimal(buf, int64(v), scale)
		}
		off = append(off, int32(len(buf)))
	}
	return buf, off
}

// appendBigEndianDecimal appends the decimal whose unscaled value is the
// big-endian two's complement integer b (a FIXED_LEN_BYTE_ARRAY of 1 to 16
// bytes), as load appends the Decimal128 pqarrow makes of it.
func appendBigEndianDecimal(dst, b []byte, scale int32) []byte {
	var sign byte
	if b[0]&0x80 != 0 {
		sign = 0xff
	}
	// The value fits in an int64 when the bytes before the last 8 only
	// extend the sign of the last 8.
	head := max(len(b)-8, 0)
	fits := b[head]&0x80 == sign&0x80
	for _, x := range b[:head] {
		fits = fits && x == sign
	}
	if !fits {
		v := new(big.Int).SetBytes(b)
		if sign != 0 {
			v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		return appendBigDecimal(dst, v, scale)
	}
	v := int64(int8(sign))
	for _, x := range b[head:] {
		v = v<<8 | int64(x)
	}
	return appendDecimal(dst, v, scale)
}

// appendEach appends the n values of a text or binary array to buf and
// their end offsets to off (a null is empty).
func appendEach[T string | []byte](buf []byte, off []int32, n int, nulls bool, valid func(int) bool, value func(int) T) ([]byte, []int32) {
	for i := 0; i < n; i++ {
		if !nulls || valid(i) {
			buf = append(buf, value(i)...)
		}
		off = append(off, int32(len(buf)))
	}
	return buf, off
}

// offsetArray is a text or binary array with 32-bit offsets.
type offsetArray interface {
	arrow.Array
	ValueBytes() []byte
	ValueOffsets() []int32
}

var (
	_ offsetArray = (*array.String)(nil)
	_ offsetArray = (*array.Binary)(nil)
)

// loadWhole copies the values of a text array in one piece: they already
// lie back to back, so only their offsets need rebasing. It reports false,
// leaving c alone, when a null holds bytes (Arrow allows that), which the
// value-by-value path then drops.
func loadWhole(c *column, a offsetArray) bool {
	vo := a.ValueOffsets()
	if a.NullN() > 0 {
		for i := range a.Len() {
			if a.IsNull(i) && vo[i] != vo[i+1] {
				return false
			}
		}
	}
	off := c.off[:0]
	for _, o := range vo {
		off = append(off, o-vo[0])
	}
	c.data, c.off = string(a.ValueBytes()), off
	return true
}

// load formats the values of arr into c: all values of the batch go into
// one string (one allocation per column and batch), which the lines share.
func (rd *Reader) load(c *column, arr arrow.Array) error {
	if a, ok := arr.(offsetArray); ok && loadWhole(c, a) {
		return nil
	}
	n := arr.Len()
	nulls := arr.NullN() > 0
	buf := rd.buf[:0]
	off := append(c.off[:0], 0)
	switch a := arr.(type) {
	case *array.String:
		buf, off = appendEach(buf, off, n, nulls, a.IsValid, a.Value)
	case *array.LargeString:
		buf, off = appendEach(buf, off, n, nulls, a.IsValid, a.Value)
	case *array.StringView:
		buf, off = appendEach(buf, off, n, nulls, a.IsValid, a.Value)
	case *array.Binary:
		buf, off = appendEach(buf, off, n, nulls, a.IsValid, a.Value)
	case *array.LargeBinary:
		buf, off = appendEach(buf, off, n, nulls, a.IsValid, a.Value)
	case *array.BinaryView:
		buf, off = appendEach(buf, off, n, nulls, a.IsValid, a.Value)
	case *array.Dictionary:
		dict := a.Dictionary()
		dnull := dict.NullN() > 0
		for i := 0; i < n; i++ {
			if !nulls || a.IsValid(i) {
				j := a.GetValueIndex(i)
				if !dnull || dict.IsValid(j) {
					buf = appendText(buf, dict, j)
				}
			}
			off = append(off, int32(len(buf)))
		}
	case *array.Int8:
		buf, off = appendInts(buf, off, a, a.Values())
	case *array.Int16:
		buf, off = appendInts(buf, off, a, a.Values())
	case *array.Int32:
		buf, off = appendInts(buf, off, a, a.Values())
	case *array.Int64:
		buf, off = appendInts(buf, off, a, a.Values())
	case *array.Uint8:
		buf, off = appendUints(buf, off, a, a.Values())
	case *array.Uint16:
		buf, off = appendUints(buf, off, a, a.Values())
	case *array.Uint32:
		buf, off = appendUints(buf, off, a, a.Values())
	case *array.Uint64:
		buf, off = appendUints(buf, off, a, a.Values())
	case *array.Date32:
		df := newDayFormatter()
		for i, v := range a.Values() {
			if !nulls || a.IsValid(i) {
				buf = df.appendDay(buf, int64(v))
			}
			off = append(off, int32(len(buf)))
		}
	case *array.Date64:
		df := newDayFormatter()
		for i, v := range a.Values() {
			if !nulls || a.IsValid(i) {
				buf = df.appendDay(buf, floorDiv(int64(v), 86_400_000))
			}
			off = append(off, int32(len(buf)))
		}
	case *array.Timestamp:
		per := ticksPerDay(a.DataType().(*arrow.TimestampType).Unit)
		df := newDayFormatter()
		for i, v := range a.Values() {
			if !nulls || a.IsValid(i) {
				buf = df.appendDay(buf, floorDiv(int64(v), per))
			}
			off = append(off, int32(len(buf)))
		}
	case *array.Decimal32:
		buf, off = appendDecimals(buf, off, a, a.Values(), a.DataType().(arrow.DecimalType).GetScale())
	case *array.Decimal64:
		buf, off = appendDecimals(buf, off, a, a.Values(), a.DataType().(arrow.DecimalType).GetScale())
	case *array.Decimal128:
		scale := a.DataType().(arrow.DecimalType).GetScale()
		for i, v := range a.Values() {
			if !nulls || a.IsValid(i) {
				hi, lo := v.HighBits(), v.LowBits()
				if (hi == 0 && lo>>63 == 0) || (hi == -1 && lo>>63 == 1) {
					buf = appendDecimal(buf, int64(lo), scale)
				} else {
					buf = appendBigDecimal(buf, v.BigInt(), scale)
				}
			}
			off = append(off, int32(len(buf)))
		}
	case *array.Decimal256:
		scale := a.DataType().(arrow.DecimalType).GetScale()
		for i, v := range a.Values() {
			if !nulls || a.IsValid(i) {
				buf = appendBigDecimal(buf, v.BigInt(), scale)
			}
			off = append(off, int32(len(buf)))
		}
	default:
		return &SchemaError{File: rd.name, Column: c.name, Type: arr.DataType().String(), Reason: "unexpected type in a record batch; " + expected(c.field)}
	}
	if len(buf) > math.MaxInt32 {
		return &ReadError{File: rd.name, Err: fmt.Errorf("column %s holds over 2 GiB of text in one batch of %d rows", c.name, n)}
	}
	rd.buf = buf
	c.data = string(buf)
	c.off = off
	return nil
}

// appendText appends the value j of a dictionary's string values.
func appendText(dst []byte, dict arrow.Array, j int) []byte {
	switch d := dict.(type) {
	case *array.String:
		return append(dst, d.Value(j)...)
	case *array.LargeString:
		return append(dst, d.Value(j)...)
	case *array.StringView:
		return append(dst, d.Value(j)...)
	case *array.Binary:
		return append(dst, d.Value(j)...)
	case *array.LargeBinary:
		return append(dst, d.Value(j)...)
	case *array.BinaryView:
		return append(dst, d.Value(j)...)
	}
	panic("claimparquet: dictionary of " + dict.DataType().String())
}

func appendInts[T int8 | int16 | int32 | int64](buf []byte, off []int32, a arrow.Array, vals []T) ([]byte, []int32) {
	nulls := a.NullN() > 0
	for i, v := range vals {
		if !nulls || a.IsValid(i) {
			buf = strconv.AppendInt(buf, int64(v), 10)
		}
		off = append(off, int32(len(buf)))
	}
	return buf, off
}

// appendDecimals formats decimals stored as scaled integers.
func appendDecimals[T ~int32 | ~int64](buf []byte, off []int32, a arrow.Array, vals []T, scale int32) ([]byte, []int32) {
	nulls := a.NullN() > 0
	for i, v := range vals {
		if !nulls || a.IsValid(i) {
			buf = appendDecimal(buf, int64(v), scale)
		}
		off = append(off, int32(len(buf)))
	}
	return buf, off
}

func appendUints[T uint8 | uint16 | uint32 | uint64](buf []byte, off []int32, a arrow.Array, vals []T) ([]byte, []int32) {
	nulls := a.NullN() > 0
	for i, v := range vals {
		if !nulls || a.IsValid(i) {
			buf = strconv.AppendUint(buf, uint64(v), 10)
		}
		off = append(off, int32(len(buf)))
	}
	return buf, off
}

// epochDay is day 0 of DATE32 (1970-01-01) as a contracts.Date day number.
func epochDay() int64 { return int64(contracts.DateOf(1970, 1, 1)) }

// dayFormatter formats day numbers (days since 1970-01-01) as YYYY-MM-DD.
type dayFormatter struct{ epoch, min, max int64 }

func newDayFormatter() dayFormatter {
	e := epochDay()
	return dayFormatter{epoch: e, min: int64(contracts.DateOf(1, 1, 1)) - e, max: int64(contracts.DateOf(9999, 12, 31)) - e}
}

// appendDay appends the YYYY-MM-DD form of a day number. A date outside
// years 1-9999 gets a text that Parse rejects, so the line is INVALID_ROW.
func (df dayFormatter) appendDay(dst []byte, day int64) []byte {
	if day < df.min || day > df.max {
		dst = append(dst, "day "...)
		dst = strconv.AppendInt(dst, day, 10)
		return append(dst, " from 1970-01-01"...)
	}
	return contracts.Date(day + df.epoch).Append(dst)
}

func ticksPerDay(u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return 86_400
	case arrow.Millisecond:
		return 86_400_000
	case arrow.Microsecond:
		return 86_400_000_000
	}
	return 86_400_000_000_000
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// appendDecimal appends the unscaled value v with scale places as a plain
// decimal. Zeros beyond the second decimal place are dropped (12.340 ->
// 12.34); other digits beyond it are kept, so that Parse rejects the value
// (a billed amount must be whole cents).
func appendDecimal(dst []byte, v int64, scale int32) []byte {
	u := uint64(v)
	if v < 0 {
		dst = append(dst, '-')
		u = -u
	}
	var tmp [24]byte
	return appendScaled(dst, strconv.AppendUint(tmp[:0], u, 10), int(scale))
}

func appendBigDecimal(dst []byte, v *big.Int, scale int32) []byte {
	if v.Sign() < 0 {
		dst = append(dst, '-')
		v.Neg(v)
	}
	return appendScaled(dst, v.Append(nil, 10), int(scale))
}

// appendScaled appends digits (an unsigned integer) divided by 10^scale.
func appendScaled(dst, digits []byte, scale int) []byte {
	if scale <= 0 {
		return append(dst, digits...)
	}
	if len(digits) > scale {
		dst = append(dst, digits[:len(digits)-scale]...)
		dst = append(dst, '.')
		dst = append(dst, digits[len(digits)-scale:]...)
	} else {
		dst = append(dst, '0', '.')
		for i := len(digits); i < scale; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	}
	for k := scale; k > 2 && dst[len(dst)-1] == '0'; k-- {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// isText reports whether values of t are read as text.
func isText(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW, arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW:
		return true
	case arrow.DICTIONARY:
		return isText(t.(*arrow.DictionaryType).ValueType)
	}
	return false
}

func isInteger(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return true
	}
	return false
}

// expected describes the types accepted for f.
func expected(f claims.Field) string {
	switch f {
	case claims.LineNumber, claims.Units:
		return "expected an integer or string column"
	case claims.ServiceDate:
		return "expected DATE32 (or DATE64, TIMESTAMP, or a YYYY-MM-DD string)"
	case claims.BilledAmount:
		return "expected DECIMAL(18,2) (or another DECIMAL, or a plain-decimal string)"
	}
	return "expected a string column"
}

// checkType returns why a column of type t cannot hold f, or "".
func checkType(f claims.Field, t arrow.DataType) string {
	if isText(t) {
		return ""
	}
	switch f {
	case claims.LineNumber, claims.Units:
		if isInteger(t) {
			return ""
		}
	case claims.ServiceDate:
		switch t.ID() {
		case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
			return ""
		}
	case claims.BilledAmount:
		switch t.ID() {
		case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
			if t.(arrow.DecimalType).GetScale() < 0 {
				return "a negative decimal scale is not supported; " + expected(f)
			}
			return ""
		case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
			return "money must be exact and floating point cannot hold cents exactly; " + expected(f)
		}
		if isInteger(t) {
			return "an integer amount is ambiguous (whole dollars or cents?); " + expected(f)
		}
	}
	return "unsupported type; " + expected(f)
}
