// Package varcodec reads and writes compact records of varints and
// length-prefixed strings, the form repricer gives data it stores for
// itself (the rates in a schedule image, claim lines crossing a Beam
// shuffle). A Decoder fails sticky: after the first malformed field every
// read returns the zero value and Failed reports it, so a caller decodes a
// whole record and checks once.
package varcodec

import "encoding/binary"

// AppendString appends s with its length as a uvarint.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Decoder reads fields from a record, in the order they were appended.
type Decoder struct {
	b   []byte
	bad bool
}

// NewDecoder reads b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Len is the number of bytes not read yet.
func (d *Decoder) Len() int { return len(d.b) }

// Failed reports whether a read found a malformed field.
func (d *Decoder) Failed() bool { return d.bad }

func (d *Decoder) fail() {
	d.bad, d.b = true, nil
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// String reads a string AppendString wrote.
func (d *Decoder) String() string {
	n := d.Uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
