// Package claimcsv reads claim lines from CSV and writes priced lines and
// exceptions as CSV, in the column layout of the product's stable interface.
package claimcsv

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/repricer/repricer/claims"
)

// HeaderError is a claim file whose header cannot be used.
type HeaderError struct {
	File   string
	Column string
	Err    error
}

func (e *HeaderError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("%s: header: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: header: column %s: %v", e.File, e.Column, e.Err)
}

func (e *HeaderError) Unwrap() error { return e.Err }

// Reader streams claim lines from one CSV file. Columns are matched to the
// canonical names case-insensitively, after an optional mapping; unknown
// columns are ignored.
type Reader struct {
	sc    *scanner
	name  string
	cols  [claims.NumFields]int // -1 = column absent
	width int
	row   int64
}

// NewReader reads the header of r. mapping maps canonical column names to
// the names used in the file (e.g. billed_amount -> charge_amt).
func NewReader(r io.Reader, name string, mapping map[string]string) (*Reader, error) {
	sc := newScanner(r)
	header, err := sc.read()
	if err == nil && len(header) > 0 {
		header = append([]string(nil), header...)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &HeaderError{File: name, Err: errors.New("the file is empty; a header row is required")}
		}
		return nil, &HeaderError{File: name, Err: err}
	}
	rd := &Reader{sc: sc, name: name, width: len(header)}
	want := map[string]claims.Field{}
	for f, n := range claims.FieldNames {
		if m, ok := mapping[n]; ok {
			n = m
		}
		want[strings.ToLower(strings.TrimSpace(n))] = claims.Field(f)
	}
	for i := range rd.cols {
		rd.cols[i] = -1
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		f, ok := want[h]
		if !ok {
			continue
		}
		if rd.cols[f] >= 0 {
			return nil, &HeaderError{File: name, Column: h, Err: errors.New("appears twice")}
		}
		rd.cols[f] = i
	}
	for _, f := range claims.Required {
		if rd.cols[f] < 0 {
			col := f.String()
			if m, ok := mapping[col]; ok {
				col = m + " (mapped to " + f.String() + ")"
			}
			return nil, &HeaderError{File: name, Column: col, Err: errors.New("required column is missing")}
		}
	}
	return rd, nil
}

// Read reads the next record into l: its raw values, source and parsed
// fields. A record that is not well-formed CSV, or has the wrong number of
// fields, becomes an invalid line rather than an error. Read returns io.EOF
// after the last record, and other errors only for I/O failures.
func (rd *Reader) Read(l *claims.Line) error {
	rec, err := rd.sc.read()
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	rd.row++
	l.Raw = [claims.NumFields]string{}
	l.Source = claims.Source{File: rd.name, Row: rd.row}
	switch {
	case errors.Is(err, ErrBareQuote), errors.Is(err, ErrQuote), errors.Is(err, ErrLongRecord):
		l.Plain = false
		l.Invalid = &claims.FieldError{Field: "row", Reason: "malformed CSV: " + err.Error()}
		l.BilledOK = false
		rd.fill(l, rec)
		return nil
	case err != nil:
		return fmt.Errorf("%s: record %d: %w", rd.name, rd.row, err)
	}
	rd.fill(l, rec)
	l.Plain = rd.sc.plain
	if len(rec) != rd.width {
		l.Invalid = &claims.FieldError{Field: "row", Reason: "has " + strconv.Itoa(len(rec)) + " fields but the header has " + strconv.Itoa(rd.width)}
		l.BilledOK = false
		return nil
	}
	l.Parse()
	return nil
}

// ReadArena reads like Read, but appends the record's text to arena and
// returns the extended buffer: l's strings point into it, and the reader
// keeps no copy of its own (see pipeline.ArenaReader).
func (rd *Reader) ReadArena(l *claims.Line, arena []byte) ([]byte, error) {
	rd.sc.toDst, rd.sc.dst = true, arena
	err := rd.Read(l)
	arena = rd.sc.dst
	rd.sc.toDst, rd.sc.dst = false, nil
	return arena, err
}

func (rd *Reader) fill(l *claims.Line, rec []string) {
	for f, i := range rd.cols {
		if i >= 0 && i < len(rec) {
			l.Raw[f] = rec[i] // substrings of one string per record
		}
	}
}
