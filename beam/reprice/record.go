package reprice

import (
	"encoding/binary"
	"errors"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/internal/varcodec"
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
		dst = varcodec.AppendString(dst, l.Invalid.Field)
		dst = varcodec.AppendString(dst, l.Invalid.Reason)
	}
	for _, v := range l.Raw {
		dst = varcodec.AppendString(dst, v)
	}
	return dst
}

var errRecord = errors.New("corrupt claim line record")

// decodeLine fills l from a record made by encodeLine; files names the
// matched input files by index.
func decodeLine(b []byte, files []string, l *claims.Line) (file int, err error) {
	d := varcodec.NewDecoder(b)
	file = int(d.Uvarint())
	row := int64(d.Uvarint())
	flags := d.Byte()
	*l = claims.Line{}
	if flags&recInvalid != 0 {
		l.Billed = money.Cents(d.Varint())
		l.BilledOK = flags&recBilledOK != 0
		l.Invalid = &claims.FieldError{Field: d.String(), Reason: d.String()}
	}
	for i := range l.Raw {
		l.Raw[i] = d.String()
	}
	if d.Failed() || d.Len() != 0 || file < 0 || file >= len(files) {
		return 0, errRecord
	}
	l.Source = claims.Source{File: files[file], Row: row}
	if l.Invalid == nil {
		l.Parse()
	}
	return file, nil
}
