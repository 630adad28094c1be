package rates

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"unsafe"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/internal/varcodec"
	"github.com/repricer/repricer/money"
)

// An image is an Engine as bytes (WriteImage), opened again by OpenImage
// without reading, validating or indexing its schedule. The large tables
// (rate records, bucket positions, exact-code slots, range segments and
// rate ids) are stored as they sit in memory, so that OpenImage over a
// memory-mapped file uses them in place: opening costs a checksum and the
// decoding of the small parts (contracts, criteria, validation issues),
// and processes that map the same file share its pages. The accepted rates
// are stored too, encoded per contract, and decoded only when Explain asks
// for a contract's rates.
//
// Layout: a header (magic, CRC-32C of everything after the checksum field
// up to the rates, a layout tag, the total length, the section table and
// the CRC-32C of the rates), then the sections, each at a 64-byte
// boundary, the rates last. Pricing never reads the rates: they are
// checked, and their pages touched, only when an engine that can Explain
// is opened. The layout tag covers the format
// version, the byte order and the Go layout of the in-place types: an
// image from another architecture or another format version is refused
// with ErrImageIncompatible, a damaged or truncated one with
// ErrImageCorrupt.

// Errors of OpenImage. Either way the image must be rebuilt from its source.
var (
	ErrImageCorrupt      = errors.New("the schedule image is damaged or truncated")
	ErrImageIncompatible = errors.New("the schedule image was written by another format version or architecture")
)

// ErrNoRates reports WriteImage on an engine that kept none of its rates
// (build it with Options.Compile or Options.Explain).
var ErrNoRates = errors.New("rates: the engine kept no rates to write an image with (Options.Compile)")

const (
	imageMagic   = "repricer-image\x00\n"
	imageVersion = 3
	imageAlign   = 64
)

// Sections of an image, in file order.
const (
	secMeta = iota
	secIDs
	secRecs
	secPos
	secSlots
	secRangeKeys
	secRangeSegs
	secRates
	numSections
)

// imageHeader is the fixed start of an image, in native byte order.
type imageHeader struct {
	Magic    [16]byte
	CRC      uint64 // CRC-32C of the image from Layout to the rates section
	Layout   uint64
	Length   uint64
	Sections [numSections]struct{ Off, Len uint64 }
	RatesCRC uint64 // CRC-32C of the rates section
}

const headerSize = int(unsafe.Sizeof(imageHeader{}))

// crcFrom is where the checksummed bytes start: right after the CRC.
const crcFrom = int(unsafe.Offsetof(imageHeader{}.Layout))

// imageLayout tags what in-place sections depend on: a change to any of
// these types, to the byte order or to the format changes the tag.
func imageLayout() uint64 {
	h := crc32.NewIEEE()
	fmt.Fprintf(h, "v%d %s %d/%d rec=%d,%d,%d slot=%d span=%d native=%d",
		imageVersion, runtime.GOARCH, unsafe.Sizeof(uintptr(0)), binary.NativeEndian.Uint16([]byte{1, 0}),
		unsafe.Sizeof(rateRec{}), unsafe.Offsetof(rateRec{}.tieEnd), unsafe.Offsetof(rateRec{}.flags),
		unsafe.Sizeof(exactSlot{}), unsafe.Sizeof(span{}), headerSize)
	return uint64(h.Sum32())<<32 | imageVersion
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// imageMeta is the gob-encoded part of an image. It holds no map: gob
// sizes a map from its count before reading its entries, and a damaged
// count would size it huge; slices grow as they are read.
type imageMeta struct {
	Schedule contracts.Validated // without Rates, Priority and Rejected
	Priority []imageEntry
	Rejected []imageEntry
	NumRates int
	Strs     []string
	Places   [][]string
	Kinds    []string
	Indexes  []imageIndex // one per contract, in Schedule.Contracts order
	Files    []string     // the rates' source files, by id
	Extra    []byte
}

// imageIndex is one contract's rateIndex: its tables as (first, count) in
// the image's sections, and its small maps.
type imageIndex struct {
	Recs, Pos, Slots, RangeKeys, RangeSegs, Rates [2]uint64
	Shift                                         uint8
	ExactLong, BySpecialty, ByVisitKind           []imageSpan
	RangePts                                      []string
	FirstRange, FirstNone                         int32
}

type imageSpan struct {
	Key    string
	Off, N uint32
}

// imageEntry is an entry of the schedule's Priority or Rejected map.
type imageEntry struct {
	Key, Value string
	N          int
}

// WriteImage writes e as an image to w, with extra (a caller's own data,
// such as what the schedule was read from) stored beside it and returned by
// OpenImage. The engine must hold its rates (Options.Compile or
// Options.Explain).
func (e *Engine) WriteImage(w io.Writer, extra []byte) error {
	if !e.explainable {
		return ErrNoRates
	}
	encoded, files := e.encodedRates()
	meta := imageMeta{Schedule: *e.sched, NumRates: e.numRates, Strs: e.crit.strs, Places: e.crit.places,
		Kinds: e.crit.kinds, Indexes: make([]imageIndex, len(e.contracts)), Files: files, Extra: extra}
	meta.Schedule.Rates, meta.Schedule.Priority, meta.Schedule.Rejected = nil, nil, nil
	for k, p := range e.sched.Priority {
		meta.Priority = append(meta.Priority, imageEntry{Key: k, N: p})
	}
	for k, why := range e.sched.Rejected {
		meta.Rejected = append(meta.Rejected, imageEntry{Key: k, Value: why})
	}
	var sizes [numSections]uint64
	sizes[secIDs] = uint64(len(e.ids))
	for i := range e.contracts {
		ix, m := e.contracts[i].index, &meta.Indexes[i]
		place := func(sec int, n, size int) [2]uint64 {
			at := [2]uint64{sizes[sec] / uint64(size), uint64(n)}
			sizes[sec] += uint64(n * size)
			return at
		}
		m.Recs = place(secRecs, len(ix.rates), int(unsafe.Sizeof(rateRec{})))
		m.Pos = place(secPos, len(ix.pos), 4)
		m.Slots = place(secSlots, len(ix.exact.slots), int(unsafe.Sizeof(exactSlot{})))
		m.RangeKeys = place(secRangeKeys, len(ix.rangeKeys), 8)
		m.RangeSegs = place(secRangeSegs, len(ix.rangeSegs), int(unsafe.Sizeof(span{})))
		m.Rates = place(secRates, len(encoded[i]), 1)
		m.Shift, m.RangePts, m.FirstRange, m.FirstNone = ix.exact.shift, ix.rangePts, ix.firstRange, ix.firstNone
		m.ExactLong, m.BySpecialty, m.ByVisitKind = imageSpans(ix.exactLong), imageSpans(ix.bySpecialty), imageSpans(ix.byVisitKind)
	}
	var mb bytes.Buffer
	if err := gob.NewEncoder(&mb).Encode(&meta); err != nil {
		return fmt.Errorf("rates: encode image: %w", err)
	}
	sizes[secMeta] = uint64(mb.Len())

	h := imageHeader{Layout: imageLayout()}
	copy(h.Magic[:], imageMagic)
	off := alignUp(uint64(headerSize))
	for s := range h.Sections {
		h.Sections[s].Off, h.Sections[s].Len = off, sizes[s]
		off = alignUp(off + sizes[s])
	}
	h.Length = h.Sections[secRates].Off + sizes[secRates] // the rates end the image
	body := func(w io.Writer) error {
		ww := &alignedWriter{w: w, at: uint64(headerSize)}
		ww.section(&h, secMeta, mb.Bytes())
		ww.section(&h, secIDs, unsafe.Slice(unsafe.StringData(e.ids), len(e.ids)))
		for s := secRecs; s <= secRates; s++ {
			ww.pad(h.Sections[s].Off)
			for i := range e.contracts {
				ww.write(e.contracts[i].index.sectionBytes(s, encoded[i]))
			}
		}
		ww.pad(h.Length)
		return ww.err
	}
	var ratesCRC uint32
	for _, b := range encoded {
		ratesCRC = crc32.Update(ratesCRC, castagnoli, b)
	}
	h.RatesCRC = uint64(ratesCRC)
	sum := &prefixCRC{limit: h.Sections[secRates].Off}
	sum.Write(headerBytes(&h)[crcFrom:])
	sum.at = uint64(headerSize)
	if err := body(sum); err != nil {
		return err
	}
	h.CRC = uint64(sum.crc)
	if _, err := w.Write(headerBytes(&h)); err != nil {
		return err
	}
	return body(w)
}

// prefixCRC is the CRC-32C of the bytes written before offset limit.
type prefixCRC struct {
	crc       uint32
	at, limit uint64
}

func (p *prefixCRC) Write(b []byte) (int, error) {
	if p.at < p.limit {
		p.crc = crc32.Update(p.crc, castagnoli, b[:min(uint64(len(b)), p.limit-p.at)])
	}
	p.at += uint64(len(b))
	return len(b), nil
}

// sectionBytes returns the bytes of the index's part of section s.
func (ix *rateIndex) sectionBytes(s int, encoded []byte) []byte {
	switch s {
	case secRecs:
		return sliceBytes(ix.rates)
	case secPos:
		return sliceBytes(ix.pos)
	case secSlots:
		return sliceBytes(ix.exact.slots)
	case secRangeKeys:
		return sliceBytes(ix.rangeKeys)
	case secRangeSegs:
		return sliceBytes(ix.rangeSegs)
	}
	return encoded
}

// encodedRates returns each contract's accepted rates, encoded, and the
// table of their source files.
func (e *Engine) encodedRates() ([][]byte, []string) {
	out := make([][]byte, len(e.contracts))
	if e.sched.Rates == nil {
		for i := range e.contracts {
			out[i] = e.contracts[i].rates
		}
		return out, e.rateFiles
	}
	var files fileTable
	at := make(map[string]int, len(e.contracts))
	for i := range e.contracts {
		at[e.contracts[i].c.ID] = i
	}
	for k := range e.sched.Rates {
		r := &e.sched.Rates[k]
		if i, ok := at[r.ContractID]; ok {
			out[i] = appendRate(out[i], r, &files)
		}
	}
	return out, files.names
}

func imageSpans(m map[string]span) []imageSpan {
	out := make([]imageSpan, 0, len(m))
	for k, s := range m {
		out = append(out, imageSpan{Key: k, Off: s.off, N: s.n})
	}
	return out
}

func spanMap(s []imageSpan) map[string]span {
	if len(s) == 0 {
		return nil
	}
	m := make(map[string]span, len(s))
	for _, x := range s {
		m[x.Key] = span{off: x.Off, n: x.N}
	}
	return m
}

func alignUp(n uint64) uint64 { return (n + imageAlign - 1) &^ (imageAlign - 1) }

func headerBytes(h *imageHeader) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(h)), headerSize)
}

// sliceBytes is the memory of s, for pointer-free element types.
func sliceBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(z)))
}

// alignedWriter writes sections at their offsets, padding with zeros.
type alignedWriter struct {
	w   io.Writer
	at  uint64
	err error
}

var zeros [imageAlign]byte

func (a *alignedWriter) write(p []byte) {
	if a.err != nil || len(p) == 0 {
		return
	}
	_, a.err = a.w.Write(p)
	a.at += uint64(len(p))
}

func (a *alignedWriter) pad(to uint64) {
	for a.at < to && a.err == nil {
		a.write(zeros[:min(to-a.at, imageAlign)])
	}
}

func (a *alignedWriter) section(h *imageHeader, s int, p []byte) {
	a.pad(h.Sections[s].Off)
	a.write(p)
}

// OpenImage opens an engine from an image WriteImage wrote; it returns the
// extra data stored with it. The engine uses data in place, so data must
// not change for as long as the engine, or any string it returned, is in
// use (a read-only memory mapping of the image file is the intended use).
// With Options.Explain (or Compile) the engine can Explain, and the rates
// Explain reads are checked first; without, they are neither checked nor
// read. A damaged or truncated image fails with
// ErrImageCorrupt, one of another format with ErrImageIncompatible.
func OpenImage(data []byte, opts Options) (*Engine, []byte, error) {
	if len(data) < headerSize || string(data[:len(imageMagic)]) != imageMagic {
		return nil, nil, fmt.Errorf("%w: not an image header", ErrImageCorrupt)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(data)))%imageAlign != 0 {
		// In-place tables need their alignment: copy into memory that has it.
		buf := make([]uint64, (len(data)+7)/8+imageAlign/8)
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)*8)
		skip := (imageAlign - int(uintptr(unsafe.Pointer(&b[0]))%imageAlign)) % imageAlign
		data = append(b[skip:skip], data...)
	}
	var h imageHeader
	copy(headerBytes(&h), data)
	switch {
	case h.Layout != imageLayout():
		return nil, nil, ErrImageIncompatible
	case h.Length != uint64(len(data)):
		return nil, nil, fmt.Errorf("%w: %d bytes where the header says %d", ErrImageCorrupt, len(data), h.Length)
	case h.Sections[secRates].Off > h.Length:
		return nil, nil, fmt.Errorf("%w: section table out of bounds", ErrImageCorrupt)
	case uint64(crc32.Checksum(data[crcFrom:h.Sections[secRates].Off], castagnoli)) != h.CRC:
		return nil, nil, fmt.Errorf("%w: checksum mismatch", ErrImageCorrupt)
	}
	var sec [numSections][]byte
	for s, x := range h.Sections {
		if x.Off%imageAlign != 0 || x.Off > h.Length || x.Len > h.Length-x.Off {
			return nil, nil, fmt.Errorf("%w: section %d out of bounds", ErrImageCorrupt, s)
		}
		sec[s] = data[x.Off : x.Off+x.Len : x.Off+x.Len]
	}
	var meta imageMeta
	if err := gob.NewDecoder(bytes.NewReader(sec[secMeta])).Decode(&meta); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrImageCorrupt, err)
	}
	meta.Schedule.Priority = make(map[string]int, len(meta.Priority))
	for _, x := range meta.Priority {
		meta.Schedule.Priority[x.Key] = x.N
	}
	meta.Schedule.Rejected = make(map[string]string, len(meta.Rejected))
	for _, x := range meta.Rejected {
		meta.Schedule.Rejected[x.Key] = x.Value
	}
	if len(meta.Indexes) != len(meta.Schedule.Contracts) {
		return nil, nil, fmt.Errorf("%w: %d indexes for %d contracts", ErrImageCorrupt, len(meta.Indexes), len(meta.Schedule.Contracts))
	}
	recs, err1 := inPlace[rateRec](sec[secRecs])
	pos, err2 := inPlace[int32](sec[secPos])
	slots, err3 := inPlace[exactSlot](sec[secSlots])
	rangeKeys, err4 := inPlace[uint64](sec[secRangeKeys])
	rangeSegs, err5 := inPlace[span](sec[secRangeSegs])
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, nil, err
	}
	explain := opts.Explain || opts.Compile
	if explain && uint64(crc32.Checksum(sec[secRates], castagnoli)) != h.RatesCRC {
		return nil, nil, fmt.Errorf("%w: checksum mismatch in the rates", ErrImageCorrupt)
	}
	opts.Explain, opts.Compile = false, false
	e := &Engine{sched: &meta.Schedule, numRates: meta.NumRates, opts: opts, explainable: explain, rateFiles: meta.Files,
		crit: &criteriaTable{strs: meta.Strs, places: meta.Places, kinds: meta.Kinds},
		ids:  unsafe.String(unsafe.SliceData(sec[secIDs]), len(sec[secIDs]))}
	e.contracts = make([]contractEntry, len(meta.Indexes))
	for i := range meta.Indexes {
		m := &meta.Indexes[i]
		ix := &rateIndex{crit: e.crit, exact: exactTable{shift: m.Shift}, rangePts: m.RangePts,
			firstRange: m.FirstRange, firstNone: m.FirstNone,
			exactLong: spanMap(m.ExactLong), bySpecialty: spanMap(m.BySpecialty), byVisitKind: spanMap(m.ByVisitKind)}
		var err error
		ix.rates, err = part(recs, m.Recs, err)
		ix.pos, err = part(pos, m.Pos, err)
		ix.exact.slots, err = part(slots, m.Slots, err)
		ix.rangeKeys, err = part(rangeKeys, m.RangeKeys, err)
		ix.rangeSegs, err = part(rangeSegs, m.RangeSegs, err)
		e.contracts[i].rates, err = part(sec[secRates], m.Rates, err)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: contract %d: %v", ErrImageCorrupt, i, err)
		}
		e.contracts[i].index = ix
	}
	e.link()
	return e, meta.Extra, nil
}

// inPlace views b as a slice of T, a pointer-free type.
func inPlace[T any](b []byte) ([]T, error) {
	var z T
	size := int(unsafe.Sizeof(z))
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%w: a section of %d bytes does not hold whole %d-byte records", ErrImageCorrupt, len(b), size)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size), nil
}

// part returns s[at[0]:at[0]+at[1]], or nil for an empty part, unless err
// is already set; it fails when the part lies outside s.
func part[T any](s []T, at [2]uint64, err error) ([]T, error) {
	switch {
	case err != nil:
		return nil, err
	case at[0] > uint64(len(s)) || at[1] > uint64(len(s))-at[0]:
		return nil, fmt.Errorf("part %d+%d outside a table of %d", at[0], at[1], len(s))
	case at[1] == 0:
		return nil, nil
	}
	return s[at[0] : at[0]+at[1] : at[0]+at[1]], nil
}

// fileTable numbers the source files of encoded rates (a schedule has one
// or a few), so that a rate stores its file as a small integer.
type fileTable struct {
	names []string
	ids   map[string]uint32
}

func (t *fileTable) id(name string) uint32 {
	if t.ids == nil {
		t.ids = map[string]uint32{}
	}
	return intern(t.ids, &t.names, name, name)
}

// appendRate appends r in the compact encoding of an engine's kept rates
// (varcodec: varints and length-prefixed strings), in contracts.Rate field
// order, the source file as its id in files.
func appendRate(b []byte, r *contracts.Rate, files *fileTable) []byte {
	str := func(s string) { b = varcodec.AppendString(b, s) }
	num := func(n int64) { b = binary.AppendVarint(b, n) }
	str(r.ID)
	str(r.ContractID)
	str(r.Kind)
	num(int64(r.Type))
	num(int64(r.Value))
	str(r.Specialty)
	str(r.VisitKind)
	str(r.CPTCode)
	str(r.RangeStart)
	str(r.RangeEnd)
	str(r.Modifier)
	num(int64(len(r.PlaceOfService)))
	for _, p := range r.PlaceOfService {
		str(p)
	}
	num(int64(r.Effective))
	num(int64(r.End))
	num(int64(r.MinUnits))
	num(int64(r.MaxUnits))
	var flags int64
	for i, f := range []bool{r.RequiresAuth, r.RequiresReview, r.Active, r.LoadError != nil} {
		if f {
			flags |= 1 << i
		}
	}
	num(flags)
	num(int64(files.id(r.Source.File)))
	num(int64(r.Source.Row))
	num(int64(r.Source.Line))
	if r.LoadError != nil {
		str(r.LoadError.Field)
		str(r.LoadError.Value)
		str(r.LoadError.Reason)
	}
	return b
}

// decodeRates decodes rates appendRate wrote, back to back, with their
// table of source files.
func decodeRates(b []byte, files []string) ([]contracts.Rate, error) {
	d := varcodec.NewDecoder(b)
	var out []contracts.Rate
	for d.Len() > 0 {
		r := contracts.Rate{ID: d.String(), ContractID: d.String(), Kind: d.String(), Type: contracts.RateType(d.Varint()),
			Value: money.Fixed(d.Varint()), Specialty: d.String(), VisitKind: d.String(), CPTCode: d.String(),
			RangeStart: d.String(), RangeEnd: d.String(), Modifier: d.String()}
		if n := d.Varint(); n > 0 && n <= int64(d.Len()) {
			r.PlaceOfService = make([]string, n)
			for i := range r.PlaceOfService {
				r.PlaceOfService[i] = d.String()
			}
		}
		r.Effective, r.End = contracts.Date(d.Varint()), contracts.Date(d.Varint())
		r.MinUnits, r.MaxUnits = int(d.Varint()), int(d.Varint())
		flags := d.Varint()
		r.RequiresAuth, r.RequiresReview, r.Active = flags&1 != 0, flags&2 != 0, flags&4 != 0
		f := d.Varint()
		if f < 0 || f >= int64(len(files)) {
			return out, ErrImageCorrupt
		}
		r.Source = contracts.Source{File: files[f], Row: int(d.Varint()), Line: int(d.Varint())}
		if flags&8 != 0 {
			r.LoadError = &contracts.FieldError{Field: d.String(), Value: d.String(), Reason: d.String()}
		}
		if d.Failed() {
			return out, ErrImageCorrupt
		}
		out = append(out, r)
	}
	return out, nil
}

// contractRates returns the accepted rates of ce's contract, in source
// order, for Explain.
func (e *Engine) contractRates(ce *contractEntry) []contracts.Rate {
	if e.sched.Rates == nil {
		rs, err := decodeRates(ce.rates, e.rateFiles)
		if err != nil {
			panic("rates: an engine's encoded rates do not decode: " + err.Error()) // the image's checksum held
		}
		return rs
	}
	var rs []contracts.Rate
	for k := range e.sched.Rates {
		if e.sched.Rates[k].ContractID == ce.c.ID {
			rs = append(rs, e.sched.Rates[k])
		}
	}
	return rs
}
