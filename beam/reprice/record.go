package reprice

import (
	"encoding/binary"
	"errors"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/money"
)

// A claim line crosses the shuffle as a compact record: its input file (an
// index into Config's matched files) and row, its raw values, and for a row
// the reader found invalid the reason and the billed amount it counted.
// A valid row is parsed again on the pricing worker by claims.Line.Parse,
// the parse every reader ends with, so only the text travels.

const (
	recInvalid = 1 << iota
	recBilledOK
)

// encodeLine appends the record of l, read from the file with index file.
func encodeLine(dst []byte, file int, l *claims.Line) []byte {
	dst = binary.AppendUvarint(dst, uint64(file))
	dst = binary.AppendUvarint(dst, uint64(l.Source.Row))
	var flags byte
	if l.Invalid != nil {
		flags |= recInvalid
		if l.BilledOK {
			flags |= recBilledOK
		}
	}
	dst = append(dst, flags)
	if l.Invalid != nil {
		dst = binary.AppendVarint(dst, int64(l.Billed))
		dst = appendString(dst, l.Invalid.Field)
		dst = appendString(dst, l.Invalid.Reason)
	}
	for _, v := range l.Raw {
		dst = appendString(dst, v)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errRecord = errors.New("corrupt claim line record")

// decodeLine fills l from a record made by encodeLine; files names the
// matched input files by index.
func decodeLine(b []byte, files []string, l *claims.Line) (file int, err error) {
	d := decoder{b: b}
	file = int(d.uvarint())
	row := int64(d.uvarint())
	flags := d.byte()
	*l = claims.Line{}
	if flags&recInvalid != 0 {
		l.Billed = money.Cents(d.varint())
		l.BilledOK = flags&recBilledOK != 0
		l.Invalid = &claims.FieldError{Field: d.string(), Reason: d.string()}
	}
	for i := range l.Raw {
		l.Raw[i] = d.string()
	}
	if d.bad || len(d.b) != 0 || file < 0 || file >= len(files) {
		return 0, errRecord
	}
	l.Source = claims.Source{File: files[file], Row: row}
	if l.Invalid == nil {
		l.Parse()
	}
	return file, nil
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
