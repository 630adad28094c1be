// Package pqwrite writes flat Parquet files whose pages are encoded and
// compressed by many goroutines and assembled into row groups by one.
//
// A Batch collects rows column by column and, at Finish, turns them into one
// data page per column (DATA_PAGE_V2; DELTA_BYTE_ARRAY text and
// DELTA_BINARY_PACKED integers, RLE definition levels, Snappy), with the
// page's null count and bounds. Batches are independent, so
// pricing workers fill and finish them in parallel; the Writer only copies
// finished pages into the current row group, in the order it is handed them,
// and writes the column chunks, the page index (column and offset indexes)
// and the footer. The schema comes from a parquet-go struct model, so the
// files read back exactly like the ones parquet-go's own writer made from the
// same model (see docs/decisions.md, "Parquet writer").
package pqwrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Kind is the physical type of a column.
type Kind uint8

// The physical types a Schema may use.
const (
	ByteArray Kind = iota
	Int32
	Int64
)

// encoding is the encoding of a kind's values.
func (k Kind) encoding() format.Encoding {
	if k == ByteArray {
		return format.DeltaByteArray
	}
	return format.DeltaBinaryPacked
}

// Column is one leaf of a flat schema.
type Column struct {
	Name string
	Kind Kind
	// Optional columns may hold nulls: an empty byte array is null, and
	// integer columns take Null.
	Optional bool
	// Bounds says whether min/max go into the chunk statistics and the
	// column index.
	Bounds bool
}

// Schema is a flat schema: a root and its leaf columns.
type Schema struct {
	Columns  []Column
	elements []format.SchemaElement
	orders   []format.ColumnOrder
}

// SchemaOf derives a flat schema from a parquet-go struct model (see
// parquet.SchemaOf): byte-array columns must be optional; integer columns
// may be either (a pointer field is optional). Columns named in noBounds get
// no min/max.
func SchemaOf(model any, noBounds ...string) (*Schema, error) {
	ps := parquet.SchemaOf(model)
	s := &Schema{elements: []format.SchemaElement{{Name: ps.Name(), NumChildren: thrift.New(int32(len(ps.Fields())))}}}
	for _, f := range ps.Fields() {
		if !f.Leaf() || f.Repeated() {
			return nil, fmt.Errorf("pqwrite: column %s is not a flat leaf", f.Name())
		}
		t := f.Type()
		c := Column{Name: f.Name(), Optional: f.Optional(), Bounds: !slices.Contains(noBounds, f.Name())}
		switch t.Kind() {
		case parquet.ByteArray:
			c.Kind = ByteArray
		case parquet.Int32:
			c.Kind = Int32
		case parquet.Int64:
			c.Kind = Int64
		default:
			return nil, fmt.Errorf("pqwrite: column %s has unsupported type %s", f.Name(), t)
		}
		if c.Kind == ByteArray && !c.Optional {
			return nil, fmt.Errorf("pqwrite: column %s: byte arrays must be optional", f.Name())
		}
		rep := format.Required
		if c.Optional {
			rep = format.Optional
		}
		e := format.SchemaElement{Name: c.Name, RepetitionType: thrift.New(rep), Type: thrift.New(format.Type(t.Kind()))}
		if lt := t.LogicalType(); lt != nil {
			e.LogicalType = *lt
			if d, ok := lt.Value.(*format.DecimalType); ok {
				e.Scale, e.Precision = thrift.New(d.Scale), thrift.New(d.Precision)
			}
		}
		if ct := t.ConvertedType(); ct != nil {
			e.ConvertedType = thrift.New(*ct)
		}
		s.Columns = append(s.Columns, c)
		s.elements = append(s.elements, e)
		s.orders = append(s.orders, *t.ColumnOrder())
	}
	return s, nil
}

// colBuf holds one column's values of the batch's current page.
type colBuf struct {
	defs []byte // a definition level per row (optional columns with a null)
	// Byte arrays in DELTA_BYTE_ARRAY form: each value's length shared with
	// the one before it, the length of the rest, and the rest.
	prev     string
	pre      []int32
	suf      []int32
	text     []byte
	i32      []int32
	i64      []int64
	nulls    int
	has      bool // min/max are set
	smin     string
	smax     string
	imin     int64
	imax     int64
	dataSize int // unencoded byte-array bytes, for the offset index
}

func (c *colBuf) reset() {
	c.defs, c.pre, c.suf, c.text, c.i32, c.i64 = c.defs[:0], c.pre[:0], c.suf[:0], c.text[:0], c.i32[:0], c.i64[:0]
	c.nulls, c.has, c.dataSize, c.prev, c.smin, c.smax = 0, false, 0, "", "", ""
}

// commonPrefix returns the length of the longest common prefix of a and b,
// comparing eight bytes at a time.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		x := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(a[i:]), 8)) ^
			binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(b[i:]), 8))
		if x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// page is one encoded data page of one column.
type page struct {
	off, n       int // header and body in Batch.data
	uncompressed int // header and body, uncompressed
	rows, nulls  int
	min, max     []byte // PLAIN bounds in Batch.bnd (nil when the column has none or only nulls)
	dataSize     int
}

// Batch collects rows and encodes them into pages. Its methods must be
// called from one goroutine; a finished Batch is handed to Writer.Write.
type Batch struct {
	s     *Schema
	cols  []colBuf
	rows  int
	pages [][]page // per column
	prows []int    // rows of each page set
	data  []byte   // encoded pages
	bnd   []byte   // page bounds
	comp  []byte
	enc   []byte
	lens  []byte
	hdr   headerEncoder
	// PageRows cuts a page set when a page reaches this many rows.
	pageRows int
}

// NewBatch returns an empty batch for s that cuts pages at pageRows rows.
func NewBatch(s *Schema, pageRows int) *Batch {
	b := &Batch{s: s, cols: make([]colBuf, len(s.Columns)), pages: make([][]page, len(s.Columns)), pageRows: pageRows}
	b.Reset()
	return b
}

// Reset empties b for reuse.
func (b *Batch) Reset() {
	for i := range b.cols {
		c := &b.cols[i]
		c.reset()
		b.pages[i] = b.pages[i][:0]
	}
	b.rows, b.prows, b.data, b.bnd = 0, b.prows[:0], b.data[:0], b.bnd[:0]
}

// Null appends a null to optional column col.
func (b *Batch) Null(col int) {
	c := &b.cols[col]
	// Definition levels are kept from the page's first null on: most
	// pages of most columns have none.
	if c.nulls == 0 {
		for range b.rows {
			c.defs = append(c.defs, 1)
		}
	}
	c.defs = append(c.defs, 0)
	c.nulls++
}

// String appends v to byte-array column col; "" is null.
func (b *Batch) String(col int, v string) {
	if v == "" {
		b.Null(col)
		return
	}
	c := &b.cols[col]
	if c.nulls > 0 {
		c.defs = append(c.defs, 1)
	}
	p := commonPrefix(c.prev, v)
	c.pre = append(c.pre, int32(p))
	c.suf = append(c.suf, int32(len(v)-p))
	c.text = append(c.text, v[p:]...)
	same := p == len(v) && p == len(c.prev)
	c.prev = v
	c.dataSize += len(v)
	if same || !b.s.Columns[col].Bounds { // a repeated value moves no bound
		return
	}
	if !c.has {
		c.smin, c.smax, c.has = v, v, true
	} else if v < c.smin {
		c.smin = v
	} else if v > c.smax {
		c.smax = v
	}
}

// Int32 appends v to INT32 column col.
func (b *Batch) Int32(col int, v int32) {
	c := &b.cols[col]
	if c.nulls > 0 {
		c.defs = append(c.defs, 1)
	}
	c.i32 = append(c.i32, v)
	b.bound(c, int64(v))
}

// Int64 appends v to INT64 column col.
func (b *Batch) Int64(col int, v int64) {
	c := &b.cols[col]
	if c.nulls > 0 {
		c.defs = append(c.defs, 1)
	}
	c.i64 = append(c.i64, v)
	b.bound(c, v)
}

func (b *Batch) bound(c *colBuf, v int64) {
	if !c.has {
		c.imin, c.imax, c.has = v, v, true
	} else if v < c.imin {
		c.imin = v
	} else if v > c.imax {
		c.imax = v
	}
}

// EndRow ends a row; every column must have had one value appended.
func (b *Batch) EndRow() {
	if b.rows++; b.rows >= b.pageRows {
		b.Finish()
	}
}

// Finish encodes the rows appended since the last page set into one page
// per column. It is called by EndRow when a page is full, and by the owner
// before handing the batch to the Writer; it does nothing without rows.
func (b *Batch) Finish() {
	if b.rows == 0 {
		return
	}
	for i := range b.cols {
		b.pages[i] = append(b.pages[i], b.encode(i))
		b.cols[i].reset()
	}
	b.prows = append(b.prows, b.rows)
	b.rows = 0
}

// encode appends the page of column i to b.data.
func (b *Batch) encode(i int) page {
	col, c := &b.s.Columns[i], &b.cols[i]
	p := page{rows: b.rows, nulls: c.nulls, dataSize: c.dataSize}
	start := len(b.data)
	// The body: definition levels (uncompressed in V2 pages), then the
	// compressed values.
	body := b.comp[:0]
	if col.Optional {
		switch c.nulls {
		case 0, b.rows: // one run
			body = binary.AppendUvarint(body, uint64(b.rows)<<1)
			body = append(body, byte(min(b.rows-c.nulls, 1)))
		default:
			body, _ = (&rle.Encoding{BitWidth: 1}).EncodeLevels(body, c.defs)
		}
	}
	levels := len(body)
	// The delta encodings keep what repeats from row to row small before
	// compression (a claim's lines share most of their text, and most
	// integers are small): PLAIN values were three times as many bytes for
	// Snappy to compress.
	var pack delta.BinaryPackedEncoding
	compress := false
	switch col.Kind {
	case ByteArray:
		b.enc, _ = pack.EncodeInt32(b.enc, c.pre)
		b.lens, _ = pack.EncodeInt32(b.lens, c.suf)
		b.enc = append(append(b.enc, b.lens...), c.text...)
		compress = true
	case Int32:
		b.enc, _ = pack.EncodeInt32(b.enc, c.i32)
	case Int64:
		b.enc, _ = pack.EncodeInt64(b.enc, c.i64)
	}
	// Bit-packed integers do not compress; text is stored compressed only
	// when that saves a tenth (DATA_PAGE_V2 says so page by page), so
	// readers do not decompress pages for nothing.
	if compress {
		n := s2.MaxEncodedLen(len(b.enc))
		body = slices.Grow(body, n)
		comp := s2.EncodeSnappy(body[levels:levels+n], b.enc)
		compress = len(comp) < len(b.enc)-len(b.enc)/10
		if compress {
			body = body[:levels+len(comp)]
		}
	}
	if !compress {
		body = append(body[:levels], b.enc...)
	}
	b.comp = body

	h := format.PageHeader{
		Type:                 format.DataPageV2,
		UncompressedPageSize: int32(levels + len(b.enc)),
		CompressedPageSize:   int32(len(body)),
		CRC:                  int32(crc32.ChecksumIEEE(body)),
		DataPageHeaderV2: thrift.New(format.DataPageHeaderV2{
			NumValues: int32(b.rows), NumNulls: int32(c.nulls), NumRows: int32(b.rows), Encoding: col.Kind.encoding(),
			DefinitionLevelsByteLength: int32(levels), IsCompressed: thrift.New(compress),
		}),
	}
	b.data = b.hdr.append(b.data, &h)
	hlen := len(b.data) - start
	b.data = append(b.data, body...)
	p.off, p.n = start, len(b.data)-start
	p.uncompressed = hlen + levels + len(b.enc)
	if c.has {
		p.min = b.appendBound(col.Kind, c.smin, c.imin)
		p.max = b.appendBound(col.Kind, c.smax, c.imax)
	}
	return p
}

// appendBound appends a bound's PLAIN bytes to b.bnd and returns them
// (string bounds point into the caller's rows, which do not outlive the
// batch). Slices of an earlier, outgrown b.bnd stay valid: appends never
// write behind a slice's end.
func (b *Batch) appendBound(k Kind, s string, v int64) []byte {
	at := len(b.bnd)
	switch k {
	case ByteArray:
		b.bnd = append(b.bnd, s...)
	case Int32:
		b.bnd = binary.LittleEndian.AppendUint32(b.bnd, uint32(v))
	case Int64:
		b.bnd = binary.LittleEndian.AppendUint64(b.bnd, uint64(v))
	}
	return b.bnd[at:len(b.bnd):len(b.bnd)]
}

// headerEncoder thrift-encodes page headers with a reused encoder.
type headerEncoder struct {
	buf sliceWriter
	enc *thrift.Encoder
}

func (h *headerEncoder) append(dst []byte, v any) []byte {
	if h.enc == nil {
		h.enc = thrift.NewEncoder(new(thrift.CompactProtocol).NewWriter(&h.buf))
	}
	h.buf.b = dst
	if err := h.enc.Encode(v); err != nil {
		// Encoding a well-formed header into memory cannot fail.
		panic("pqwrite: encode page header: " + err.Error())
	}
	return h.buf.b
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// chunk is the current row group's part of one column.
type chunk struct {
	data         []byte
	pages        []format.PageLocation // offsets relative to data, made absolute on flush
	index        format.ColumnIndex
	dataSizes    []int64
	uncompressed int64
	values       int64
	nulls        int64
	min, max     []byte
}

// reset empties c for the next row group, keeping its buffers.
func (c *chunk) reset() {
	ix := &c.index
	*c = chunk{
		data: c.data[:0], pages: c.pages[:0], dataSizes: c.dataSizes[:0],
		index: format.ColumnIndex{NullPages: ix.NullPages[:0], MinValues: ix.MinValues[:0], MaxValues: ix.MaxValues[:0], NullCounts: ix.NullCounts[:0]},
	}
}

// Writer assembles finished batches into row groups and writes the file.
// Its methods must be called from one goroutine.
type Writer struct {
	w       io.Writer
	s       *Schema
	off     int64
	maxRows int
	rows    int
	chunks  []chunk
	groups  []format.RowGroup
	// The page index is thrift-encoded as each row group ends, so it costs
	// its file size (tens of bytes a page), not Go structs, until Close
	// writes it; the chunks' offsets into it are made absolute then.
	colIndex, offIndex []byte
	enc                headerEncoder
	bnd                []byte // the current row group's page bounds
	stats              []byte // the row groups' chunk bounds, which only grows
	createdBy          string
	err                error
	closed             bool
	started            bool
	totalRows          int64
}

// NewWriter returns a writer of a file of schema s to w, with row groups of
// at most maxRows rows (a row group ends before a page set that would make
// it longer).
func NewWriter(w io.Writer, s *Schema, maxRows int, createdBy string) *Writer {
	return &Writer{w: w, s: s, maxRows: maxRows, chunks: make([]chunk, len(s.Columns)), createdBy: createdBy}
}

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(p)
	w.off += int64(n)
	if err != nil {
		w.err = err
	}
	return err
}

// Write copies the finished pages of b into the file's row groups; b may
// be reused once Write returns.
func (w *Writer) Write(b *Batch) error {
	if w.closed {
		return errors.New("pqwrite: write after Close")
	}
	if err := w.start(); err != nil {
		return err
	}
	for k, rows := range b.prows {
		if w.rows > 0 && w.rows+rows > w.maxRows {
			if err := w.flush(); err != nil {
				return err
			}
		}
		for i := range w.chunks {
			w.add(i, &b.pages[i][k], b.data, int64(w.rows))
		}
		w.rows += rows
	}
	return w.err
}

func (w *Writer) start() error {
	if !w.started {
		w.started = true
		return w.write([]byte("PAR1"))
	}
	return w.err
}

// add appends page p of column i to the current row group.
func (w *Writer) add(i int, p *page, data []byte, firstRow int64) {
	c, kind := &w.chunks[i], w.s.Columns[i].Kind
	c.pages = append(c.pages, format.PageLocation{Offset: int64(len(c.data)), CompressedPageSize: int32(p.n), FirstRowIndex: firstRow})
	c.data = append(c.data, data[p.off:p.off+p.n]...)
	c.uncompressed += int64(p.uncompressed)
	c.values += int64(p.rows)
	c.nulls += int64(p.nulls)
	c.dataSizes = append(c.dataSizes, int64(p.dataSize))
	c.index.NullCounts = append(c.index.NullCounts, int64(p.nulls))
	c.index.NullPages = append(c.index.NullPages, p.nulls == p.rows)
	if p.min == nil { // a page of nulls only, or a column without bounds
		c.index.MinValues = append(c.index.MinValues, []byte{})
		c.index.MaxValues = append(c.index.MaxValues, []byte{})
		return
	}
	pmin, pmax := keep(&w.bnd, p.min), keep(&w.bnd, p.max)
	c.index.MinValues = append(c.index.MinValues, pmin)
	c.index.MaxValues = append(c.index.MaxValues, pmax)
	if c.min == nil || less(kind, pmin, c.min) {
		c.min = pmin
	}
	if c.max == nil || less(kind, c.max, pmax) {
		c.max = pmax
	}
}

// keep appends a copy of v to *buf and returns it: bounds are copied out
// of a batch, which is reused, and chunk bounds out of w.bnd, which is
// reused for each row group. Slices of an outgrown *buf stay valid.
func keep(buf *[]byte, v []byte) []byte {
	at := len(*buf)
	*buf = append(*buf, v...)
	return (*buf)[at:len(*buf):len(*buf)]
}

// less compares two PLAIN-encoded bounds of a column of kind k.
func less(k Kind, a, b []byte) bool {
	switch k {
	case Int32:
		return int32(binary.LittleEndian.Uint32(a)) < int32(binary.LittleEndian.Uint32(b))
	case Int64:
		return int64(binary.LittleEndian.Uint64(a)) < int64(binary.LittleEndian.Uint64(b))
	}
	return string(a) < string(b)
}

// flush writes the current row group.
func (w *Writer) flush() error {
	if w.rows == 0 {
		return w.err
	}
	rg := format.RowGroup{NumRows: int64(w.rows), FileOffset: w.off, Ordinal: int16(len(w.groups))}
	for i := range w.chunks {
		c, col := &w.chunks[i], &w.s.Columns[i]
		start := w.off
		for k := range c.pages {
			c.pages[k].Offset += start
		}
		if err := w.write(c.data); err != nil {
			return err
		}
		md := format.ColumnMetaData{
			Type: format.Type(w.s.elements[i+1].Type.V), Encoding: []format.Encoding{col.Kind.encoding()},
			PathInSchema: []string{col.Name}, Codec: format.Snappy, NumValues: c.values,
			TotalUncompressedSize: c.uncompressed, TotalCompressedSize: int64(len(c.data)), DataPageOffset: start,
			Statistics:    format.Statistics{NullCount: c.nulls},
			EncodingStats: []format.PageEncodingStats{{PageType: format.DataPageV2, Encoding: col.Kind.encoding(), Count: int32(len(c.pages))}},
		}
		if col.Optional {
			md.Encoding = append(md.Encoding, format.RLE)
		}
		if col.Bounds && c.min != nil {
			md.Statistics.MinValue, md.Statistics.MaxValue = keep(&w.stats, c.min), keep(&w.stats, c.max)
			if col.Kind != ByteArray { // signed order: the deprecated fields mean the same
				md.Statistics.Min, md.Statistics.Max = md.Statistics.MinValue, md.Statistics.MaxValue
			}
		}
		cc := format.ColumnChunk{FileOffset: start, MetaData: md}
		if col.Bounds {
			c.index.BoundaryOrder = format.Unordered
			at := len(w.colIndex)
			w.colIndex = w.enc.append(w.colIndex, &c.index)
			cc.ColumnIndexOffset, cc.ColumnIndexLength = int64(at), int32(len(w.colIndex)-at)
		}
		oi := format.OffsetIndex{PageLocations: c.pages}
		if col.Kind == ByteArray {
			oi.UnencodedByteArrayDataBytes = c.dataSizes
		}
		at := len(w.offIndex)
		w.offIndex = w.enc.append(w.offIndex, &oi)
		cc.OffsetIndexOffset, cc.OffsetIndexLength = int64(at), int32(len(w.offIndex)-at)
		rg.Columns = append(rg.Columns, cc)
		rg.TotalByteSize += c.uncompressed
		rg.TotalCompressedSize += int64(len(c.data))
		c.reset()
	}
	w.bnd = w.bnd[:0]
	w.groups = append(w.groups, rg)
	w.totalRows += int64(w.rows)
	w.rows = 0
	return w.err
}

// Close writes the last row group, the page index and the footer. It does
// not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if err := w.start(); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	colBase := w.off
	if err := w.write(w.colIndex); err != nil {
		return err
	}
	offBase := w.off
	if err := w.write(w.offIndex); err != nil {
		return err
	}
	for g := range w.groups {
		for i := range w.groups[g].Columns {
			cc := &w.groups[g].Columns[i]
			if cc.ColumnIndexLength > 0 {
				cc.ColumnIndexOffset += colBase
			}
			cc.OffsetIndexOffset += offBase
		}
	}
	if w.groups == nil {
		w.groups = []format.RowGroup{}
	}
	md := format.FileMetaData{
		Version: 2, Schema: w.s.elements, NumRows: w.totalRows, RowGroups: w.groups,
		CreatedBy: w.createdBy, ColumnOrders: w.s.orders,
	}
	buf := w.enc.append(nil, &md)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(buf)))
	buf = append(buf, "PAR1"...)
	return w.write(buf)
}
