package claimcsv

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"unsafe"
)

// Errors of malformed records, as encoding/csv names them.
var (
	ErrBareQuote = errors.New(`bare " in non-quoted field`)
	ErrQuote     = errors.New(`extraneous or missing " in quoted field`)
	// ErrLongRecord is a record longer than MaxRecord: it is skipped (to
	// the end of its line) and reported, and reading goes on.
	ErrLongRecord = errors.New("record longer than 1 MiB")
)

// MaxRecord bounds one record, so a runaway quoted field cannot eat
// memory: a longer record is an invalid row.
const MaxRecord = 1 << 20

// scanner splits RFC 4180 CSV into records like encoding/csv (blank lines
// skipped, \r\n read as \n, no lazy quotes), but keeps each record in one
// string and returns the fields as substrings of it: one allocation per
// record instead of one per field. Lines without a quote, the usual case,
// are split with a single pass over the bytes.
type scanner struct {
	br *bufio.Reader
	// plain says whether the last record read had neither a quote nor a
	// carriage return in it: its fields can be written back as they are.
	plain  bool
	line   []byte // the record being assembled when it spans buffers or lines
	fields []string
	ends   []int
	out    []byte
	arena  []byte // the text of the latest records (see text)
	// toDst says text appends to dst, a caller's buffer, instead.
	toDst bool
	dst   []byte
}

// arenaSize is the size of the blocks record text is copied into.
const arenaSize = 64 << 10

// text returns b as a string in the arena: one allocation per block of
// records (hundreds of claim lines) instead of one per record. The arena
// only grows, and a full block is replaced, never reused, so the bytes
// behind a returned string never change (the guarantee strings need);
// a record's fields keep only their block alive.
func (s *scanner) text(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s.toDst {
		start := len(s.dst)
		s.dst = append(s.dst, b...)
		return unsafe.String(&s.dst[start], len(b))
	}
	if len(b) > cap(s.arena)-len(s.arena) {
		s.arena = make([]byte, 0, max(arenaSize, len(b)))
	}
	start := len(s.arena)
	s.arena = append(s.arena, b...)
	return unsafe.String(&s.arena[start], len(b))
}

func newScanner(r io.Reader) *scanner {
	return &scanner{br: bufio.NewReaderSize(r, 1<<16)}
}

// readLine returns the next line without its line ending; the slice is
// valid until the next call.
func (s *scanner) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.line = append(s.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(s.line) > MaxRecord {
				return nil, s.skipLine()
			}
			line, err = s.br.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		if len(s.line) > MaxRecord {
			s.line = s.line[:0]
			return nil, ErrLongRecord
		}
		line = s.line
	}
	if len(line) > 0 && err == io.EOF {
		err = nil
		// Like encoding/csv, drop a trailing \r before the end of input.
		if line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	return line, err
}

// skipLine discards the rest of an overlong line and returns
// ErrLongRecord, or the error that ended the input first.
func (s *scanner) skipLine() error {
	s.line = s.line[:0]
	for {
		_, err := s.br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == nil, errors.Is(err, io.EOF):
			return ErrLongRecord
		}
		return err
	}
}

// read returns the fields of the next record. A malformed record comes
// back with its fields so far and an error of ErrBareQuote or ErrQuote;
// the next call continues after it. io.EOF ends the input.
func (s *scanner) read() ([]string, error) {
	var line []byte
	var err error
	for {
		line, err = s.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) > 0 {
			break
		}
	}
	quoted := bytes.IndexByte(line, '"') >= 0
	s.plain = !quoted && bytes.IndexByte(line, '\r') < 0
	if !quoted {
		rec := s.text(line)
		s.fields = s.fields[:0]
		for {
			i := indexComma(rec)
			if i < 0 {
				s.fields = append(s.fields, rec)
				return s.fields, nil
			}
			s.fields = append(s.fields, rec[:i])
			rec = rec[i+1:]
		}
	}
	return s.readQuoted(line)
}

func indexComma(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return i
		}
	}
	return -1
}

// readQuoted parses a record with quotes into s.out (the unescaped field
// bytes) and s.ends (field ends), reading more lines while a quoted field
// runs on, then cuts one string into fields.
func (s *scanner) readQuoted(line []byte) ([]string, error) {
	s.out, s.ends = s.out[:0], s.ends[:0]
	var perr error
	// The line may live in s.line, which readLine reuses: copy it first.
	cur := append([]byte(nil), line...)
fields:
	for {
		if len(cur) == 0 || cur[0] != '"' {
			i := bytes.IndexByte(cur, ',')
			field := cur
			if i >= 0 {
				field = cur[:i]
			}
			if perr == nil && bytes.IndexByte(field, '"') >= 0 {
				perr = ErrBareQuote
			}
			s.out = append(s.out, field...)
			s.ends = append(s.ends, len(s.out))
			if i < 0 {
				break fields
			}
			cur = cur[i+1:]
			continue
		}
		cur = cur[1:] // opening quote
		for {
			i := bytes.IndexByte(cur, '"')
			switch {
			case i >= 0:
				s.out = append(s.out, cur[:i]...)
				cur = cur[i+1:]
				switch {
				case len(cur) > 0 && cur[0] == '"': // escaped quote
					s.out = append(s.out, '"')
					cur = cur[1:]
				case len(cur) == 0: // end of record
					s.ends = append(s.ends, len(s.out))
					break fields
				case cur[0] == ',':
					s.ends = append(s.ends, len(s.out))
					cur = cur[1:]
					continue fields
				default: // text after the closing quote
					if perr == nil {
						perr = ErrQuote
					}
					s.out = append(s.out, cur...)
					s.ends = append(s.ends, len(s.out))
					break fields
				}
			default: // the field runs on to the next line
				s.out = append(s.out, cur...)
				s.out = append(s.out, '\n')
				if len(s.out) > MaxRecord {
					return nil, s.skipLine()
				}
				next, err := s.readLine()
				if err != nil {
					if err == io.EOF {
						s.ends = append(s.ends, len(s.out))
						return s.cut(), ErrQuote
					}
					return nil, err
				}
				cur = append(cur[:0], next...)
			}
		}
	}
	return s.cut(), perr
}

func (s *scanner) cut() []string {
	rec := s.text(s.out)
	s.fields = s.fields[:0]
	start := 0
	for _, end := range s.ends {
		s.fields = append(s.fields, rec[start:end])
		start = end
	}
	return s.fields
}
