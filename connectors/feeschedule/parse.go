package feeschedule

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Reason says why a record, or one fee of a row, was not imported. The codes
// are listed in the package documentation.
type Reason string

// Skip reasons.
const (
	NotADollarAmount Reason = "NOT_A_DOLLAR_AMOUNT"
	ByReport         Reason = "BY_REPORT"
	AcquisitionCost  Reason = "ACQUISITION_COST"
	Bundled          Reason = "BUNDLED"
	NotCovered       Reason = "NOT_COVERED"
	DeletedCode      Reason = "DELETED_CODE"
	OtherProgram     Reason = "OTHER_PROGRAM"
	NoFee            Reason = "NO_FEE"
	ZeroFee          Reason = "ZERO_FEE"
	Malformed        Reason = "MALFORMED"
	NoCode           Reason = "NO_CODE"
	BlankRow         Reason = "BLANK_ROW"
	AgeRestricted    Reason = "AGE_RESTRICTED"
	DuplicateCode    Reason = "DUPLICATE_CODE"
)

// Errors that make a file unusable; Parse wraps them in a *FileError.
var (
	ErrNoHeader        = errors.New("no header row found")
	ErrMissingColumn   = errors.New("required column missing from header")
	ErrNoEffectiveDate = errors.New("no effective date in the preamble or the file name")
	ErrRead            = errors.New("cannot read file")
)

// maxPreamble is how many records Parse reads looking for the header.
const maxPreamble = 100

// FileError is a problem that makes a whole file unusable. Line and Column
// are set when the problem has a place.
type FileError struct {
	File   string
	Line   int    // 1-based physical line, 0 = whole file
	Column string // header name of the column, "" = none
	Err    error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("feeschedule: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, " column %q", e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// DateSource says where a schedule's effective date came from.
type DateSource string

// Date sources.
const (
	FromPreamble DateSource = "preamble"
	FromFileName DateSource = "file name"
)

// Row is one imported line of a fee schedule.
type Row struct {
	Line   int // 1-based physical line the record starts on (as grep -n shows)
	Record int // 1-based CSV record number, preamble and header included

	Status   string // code status indicator column, trimmed
	Code     string // procedure code, upper case
	Modifier string // "" for the global line

	NFS, FS             money.Cents // fees; valid only when HasNFS / HasFS
	HasNFS, HasFS       bool
	NFSText, FSText     string // fee cells as written (trimmed)
	NFSReason, FSReason Reason // why a fee is missing; "" when present

	PA         string // PA column, whitespace collapsed
	PARequired bool   // PA asks for PA, EPA or CPA for some clients
	Comments   string // comments column, whitespace collapsed
}

// Skip is a record after the header that gave no row.
type Skip struct {
	Line, Record int
	Reason       Reason
	Code         string // as read, when the record has one
	Modifier     string
	Column       string // header name of the column that decided, if any
	Value        string // that column's text
	Detail       string // human-readable explanation
}

// Schedule is one parsed fee-schedule file.
type Schedule struct {
	Name          string         // as given to Parse
	Effective     contracts.Date // first day the fees apply
	EffectiveFrom DateSource
	Updated       contracts.Date // "Updated ..." date in the preamble, if any
	Preamble      []string       // non-blank preamble cells, decoded
	Header        []string       // header cells, decoded and trimmed
	HeaderLine    int            // 1-based line of the header
	Rows          []Row
	Skipped       []Skip
	Warnings      []string // e.g. preamble and file-name dates disagree
}

// SkippedByReason counts the skipped records per reason.
func (s *Schedule) SkippedByReason() map[Reason]int {
	m := make(map[Reason]int)
	for _, k := range s.Skipped {
		m[k.Reason]++
	}
	return m
}

// columns are the header positions of the known columns, -1 = absent.
type columns struct {
	status, code, mod, nfs, fs, pa, comments int
	names                                    []string
}

func (c *columns) name(i int) string {
	if i >= 0 && i < len(c.names) {
		return c.names[i]
	}
	return ""
}

// Parse reads one fee-schedule file record by record. name is used for error
// messages, Rate sources and, when the preamble has no effective date, the
// date (see package documentation). Records that give no row are returned in
// Skipped; only a file that cannot be used at all is an error (*FileError
// wrapping ErrNoHeader, ErrMissingColumn, ErrNoEffectiveDate or ErrRead), as
// is a cancelled ctx.
func Parse(ctx context.Context, r io.Reader, name string) (*Schedule, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	s := &Schedule{Name: name}
	fail := func(line int, col string, err error) (*Schedule, error) {
		return nil, &FileError{File: name, Line: line, Column: col, Err: err}
	}

	var (
		cols      *columns
		record    int
		lastErrAt = -1
		seen      = make(map[string]int) // code|mod -> line of the row
		dateFound bool
	)
	for {
		if record%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		record++
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// A CSV syntax error spoils one record; note it and go on.
			// Stop if the reader makes no progress.
			if pe.StartLine == lastErrAt {
				break
			}
			lastErrAt = pe.StartLine
			if cols != nil {
				s.Skipped = append(s.Skipped, Skip{Line: pe.StartLine, Record: record, Reason: Malformed, Detail: pe.Error()})
			}
			continue
		}
		if err != nil {
			return fail(0, "", fmt.Errorf("%w: %w", ErrRead, err))
		}
		line, _ := cr.FieldPos(0)
		for i := range rec {
			rec[i] = decodeField(rec[i])
		}
		if record == 1 && len(rec) > 0 {
			rec[0] = strings.TrimPrefix(rec[0], "\uFEFF")
		}

		if cols == nil {
			c, missing, ok := findHeader(rec)
			if !ok {
				for _, f := range rec {
					f = collapse(f)
					if f == "" {
						continue
					}
					s.Preamble = append(s.Preamble, f)
					if !dateFound {
						if d, ok := datePhrase(f, "effective"); ok {
							s.Effective, s.EffectiveFrom, dateFound = d, FromPreamble, true
						}
					}
					if s.Updated == 0 {
						if d, ok := datePhrase(f, "update"); ok {
							s.Updated = d
						}
					}
				}
				if record >= maxPreamble {
					return fail(0, "", fmt.Errorf("%w in the first %d records", ErrNoHeader, maxPreamble))
				}
				continue
			}
			if missing != "" {
				return fail(line, missing, ErrMissingColumn)
			}
			cols = c
			s.Header = c.names
			s.HeaderLine = line
			continue
		}
		s.row(rec, line, record, cols, seen)
	}
	if cols == nil {
		return fail(0, "", ErrNoHeader)
	}
	if err := s.fileDate(); err != nil {
		return nil, err
	}
	return s, nil
}

// fileDate falls back to, or cross-checks with, the date in the file name.
func (s *Schedule) fileDate() error {
	d, ok := nameDate(s.Name)
	switch {
	case s.EffectiveFrom == FromPreamble:
		if ok && d != s.Effective {
			s.Warnings = append(s.Warnings, fmt.Sprintf("preamble effective date %s differs from file name date %s; using the preamble", s.Effective, d))
		}
	case ok:
		s.Effective, s.EffectiveFrom = d, FromFileName
	default:
		return &FileError{File: s.Name, Err: ErrNoEffectiveDate}
	}
	return nil
}

// findHeader reports whether rec is a header row: it names a code column
// and a non-facility or facility fee column. missing names a required
// column the header lacks.
func findHeader(rec []string) (c *columns, missing string, ok bool) {
	c = &columns{status: -1, code: -1, mod: -1, nfs: -1, fs: -1, pa: -1, comments: -1}
	c.names = make([]string, len(rec))
	set := func(p *int, i int) {
		if *p < 0 {
			*p = i
		}
	}
	for i, f := range rec {
		c.names[i] = collapse(f)
		n := normName(f)
		switch {
		case n == "":
		case strings.HasPrefix(n, "codestatus") || n == "status":
			set(&c.status, i)
		case n == "code" || n == "cpt" || n == "hcpcs" || n == "cpthcpcs" || n == "procedurecode" ||
			n == "cptcode" || n == "hcpcscode" || n == "cpthcpcscode" || n == "proccode":
			set(&c.code, i)
		case n == "mod" || n == "modifier" || n == "mod1":
			set(&c.mod, i)
		case strings.Contains(n, "nfs") || strings.Contains(n, "nonfacility"):
			set(&c.nfs, i)
		case strings.HasSuffix(n, "fs") || strings.Contains(n, "facility"):
			set(&c.fs, i)
		case n == "pa" || strings.HasPrefix(n, "pareq") || strings.HasPrefix(n, "priorauth"):
			set(&c.pa, i)
		case n == "comments" || n == "comment" || n == "notes" || n == "note":
			set(&c.comments, i)
		}
	}
	if c.code < 0 || (c.nfs < 0 && c.fs < 0) {
		return nil, "", false
	}
	switch {
	case c.nfs < 0:
		missing = "Max Allowable Fee NFS"
	case c.fs < 0:
		missing = "Max Allowable Fee FS"
	}
	return c, missing, true
}

// row classifies one record after the header.
func (s *Schedule) row(rec []string, line, record int, c *columns, seen map[string]int) {
	get := func(i int) string {
		if i >= 0 && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	skip := func(k Skip) {
		k.Line, k.Record = line, record
		s.Skipped = append(s.Skipped, k)
	}
	code := contracts.NormalizeCode(get(c.code))
	mod := contracts.NormalizeCode(get(c.mod))
	if code == "" {
		blank := true
		for _, f := range rec {
			if strings.TrimSpace(f) != "" {
				blank = false
				break
			}
		}
		if blank {
			skip(Skip{Reason: BlankRow})
		} else {
			skip(Skip{Reason: NoCode, Detail: "record has no procedure code"})
		}
		return
	}
	if !isCode(code, 5) {
		skip(Skip{Reason: Malformed, Code: code, Modifier: mod, Column: c.name(c.code), Value: code,
			Detail: "procedure code is not 5 letters or digits"})
		return
	}
	if mod != "" && !isCode(mod, 2) {
		skip(Skip{Reason: Malformed, Code: code, Modifier: mod, Column: c.name(c.mod), Value: mod,
			Detail: "modifier is not 2 letters or digits"})
		return
	}
	nfsText, fsText := get(c.nfs), get(c.fs)
	nfs, nfsReason, nfsDetail := parseFee(nfsText)
	fs, fsReason, fsDetail := parseFee(fsText)
	switch {
	case nfsReason == Malformed:
		skip(Skip{Reason: Malformed, Code: code, Modifier: mod, Column: c.name(c.nfs), Value: nfsText, Detail: nfsDetail})
		return
	case fsReason == Malformed:
		skip(Skip{Reason: Malformed, Code: code, Modifier: mod, Column: c.name(c.fs), Value: fsText, Detail: fsDetail})
		return
	case nfsReason != "" && fsReason != "":
		k := Skip{Reason: nfsReason, Code: code, Modifier: mod, Column: c.name(c.nfs), Value: nfsText, Detail: nfsDetail}
		if nfsReason == NoFee {
			k = Skip{Reason: fsReason, Code: code, Modifier: mod, Column: c.name(c.fs), Value: fsText, Detail: fsDetail}
		}
		skip(k)
		return
	}
	comments := collapse(get(c.comments))
	key := code + "|" + mod
	if first, dup := seen[key]; dup {
		reason, what := DuplicateCode, "a second row"
		if isAgeRestriction(comments) {
			reason, what = AgeRestricted, "an age-restricted row"
		}
		skip(Skip{Reason: reason, Code: code, Modifier: mod, Column: c.name(c.comments), Value: comments,
			Detail: fmt.Sprintf("%s for the code of line %d, which is kept", what, first)})
		return
	}
	seen[key] = line
	pa := collapse(get(c.pa))
	s.Rows = append(s.Rows, Row{
		Line: line, Record: record,
		Status: get(c.status), Code: code, Modifier: mod,
		NFS: nfs, FS: fs, HasNFS: nfsReason == "", HasFS: fsReason == "",
		NFSText: nfsText, FSText: fsText, NFSReason: nfsReason, FSReason: fsReason,
		PA: pa, PARequired: paRequired(pa), Comments: comments,
	})
}

// parseFee reads a fee cell: a dollar amount, or text naming why there is
// none. reason is "" for a usable amount.
func parseFee(text string) (money.Cents, Reason, string) {
	t := strings.TrimRight(strings.TrimSpace(text), "*")
	t = strings.TrimSpace(t)
	if strings.HasPrefix(t, "$") {
		c, err := parseDollars(t[1:])
		if err != nil {
			return 0, Malformed, fmt.Sprintf("fee %q: %v", text, err)
		}
		if c == 0 {
			return 0, ZeroFee, "fee is $0.00"
		}
		return c, "", ""
	}
	var k strings.Builder
	for _, r := range strings.ToUpper(t) {
		if r != '.' && r != ' ' && r != '\t' {
			k.WriteRune(r)
		}
	}
	switch key := k.String(); key {
	case "", "N/A", "NA", "-", "--", "NONE":
		return 0, NoFee, "no fee given"
	case "BR", "BYREPORT":
		return 0, ByReport, "priced by report"
	case "AC", "ACQUISITIONCOST":
		return 0, AcquisitionCost, "paid at acquisition cost"
	case "BUNDLED":
		return 0, Bundled, "bundled into another service"
	case "NC", "CNC", "NOTCOVERED":
		return 0, NotCovered, "not covered"
	case "DC", "DELETED", "DELETEDCODE":
		return 0, DeletedCode, "deleted code"
	case "DP":
		return 0, OtherProgram, "priced under another program"
	default:
		if leadingNumber(key) {
			return 0, NotADollarAmount, fmt.Sprintf("%q is not a dollar amount", t)
		}
		return 0, Malformed, fmt.Sprintf("unrecognised fee text %q", t)
	}
}

func leadingNumber(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// parseDollars parses the part after "$": digits with optional correct
// thousands commas and at most two decimal places.
func parseDollars(s string) (money.Cents, error) {
	s = strings.TrimSpace(s)
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if intPart == "" || (hasFrac && frac == "") {
		return 0, money.ErrSyntax
	}
	if strings.Contains(intPart, ",") {
		groups := strings.Split(intPart, ",")
		if len(groups[0]) < 1 || len(groups[0]) > 3 {
			return 0, errors.New("misplaced thousands separator")
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, errors.New("misplaced thousands separator")
			}
		}
		intPart = strings.Join(groups, "")
	}
	for i := 0; i < len(intPart); i++ {
		if intPart[i] < '0' || intPart[i] > '9' {
			return 0, money.ErrSyntax
		}
	}
	num := intPart
	if hasFrac {
		num += "." + frac
	}
	c, err := money.ParseCents(num)
	if err != nil {
		return 0, err
	}
	return c, nil
}

func isCode(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// paRequired reports whether a PA column asks for any kind of prior
// authorization (PA, EPA expedited, CPA) for any age group. COE (centre of
// excellence) alone is not an authorization.
func paRequired(pa string) bool {
	for _, w := range strings.FieldsFunc(strings.ToUpper(pa), func(r rune) bool { return r < 'A' || r > 'Z' }) {
		switch w {
		case "PA", "EPA", "CPA":
			return true
		}
	}
	return false
}

// isAgeRestriction reports whether a comment limits a row to an age group.
func isAgeRestriction(comment string) bool {
	c := strings.ToLower(comment)
	for _, p := range []string{"years of age", "age ", "ages ", "years and younger", "years and older"} {
		if strings.Contains(c, p) {
			return true
		}
	}
	return false
}

// collapse trims s and collapses runs of white space (including the line
// breaks of multi-line cells) to one space.
func collapse(s string) string {
	if !strings.ContainsAny(s, "\n\r\t  ") {
		return strings.TrimSpace(s)
	}
	return strings.Join(strings.Fields(s), " ")
}

// normName lower-cases a header cell and keeps only letters and digits.
func normName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// nameDate finds the effective date in a file name: the first run of
// exactly six digits, read as MMDDYY (20YY).
func nameDate(name string) (contracts.Date, bool) {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	for i := 0; i < len(base); {
		if !isDigit(base[i]) {
			i++
			continue
		}
		j := i
		for j < len(base) && isDigit(base[j]) {
			j++
		}
		if j-i == 6 {
			m, d, y := atoi(base[i:i+2]), atoi(base[i+2:i+4]), 2000+atoi(base[i+4:i+6])
			if dt, ok := civil(y, m, d); ok {
				return dt, true
			}
		}
		i = j
	}
	return 0, false
}

// datePhrase finds keyword (case-insensitive) in s and reads the date after
// it: "Effective January 1, 2014", "Updated on October 1, 2014",
// "Updated 8/25/2015", "Effective: Jan. 1, 2014".
func datePhrase(s, keyword string) (contracts.Date, bool) {
	low := strings.ToLower(s)
	i := strings.Index(low, keyword)
	if i < 0 {
		return 0, false
	}
	rest := s[i+len(keyword):]
	// Skip the rest of the keyword's word ("Updated", "Effective") and
	// filler words.
	for len(rest) > 0 && isLetter(rest[0]) {
		rest = rest[1:]
	}
	words := strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ',' || r == ':' || r == '.' })
	for len(words) > 0 {
		switch strings.ToLower(words[0]) {
		case "on", "as", "of", "date":
			words = words[1:]
			continue
		}
		break
	}
	if len(words) == 0 {
		return 0, false
	}
	if strings.Contains(words[0], "/") {
		p := strings.Split(words[0], "/")
		if len(p) != 3 {
			return 0, false
		}
		y := atoi(p[2])
		if len(p[2]) == 2 {
			y += 2000
		} else if len(p[2]) != 4 {
			return 0, false
		}
		return civil(y, atoi(p[0]), atoi(p[1]))
	}
	if len(words) < 3 || len(words[2]) != 4 {
		return 0, false
	}
	m := month(words[0])
	return civil(atoi(words[2]), m, atoi(words[1]))
}

func month(w string) int {
	w = strings.ToLower(w)
	if len(w) < 3 {
		return 0
	}
	for i, m := range [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"} {
		if w[:3] == m {
			return i + 1
		}
	}
	return 0
}

// civil returns the date of y-m-d when it is a valid calendar date.
func civil(y, m, d int) (contracts.Date, bool) {
	if y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 {
		return 0, false
	}
	dt, err := contracts.ParseDate(fmt.Sprintf("%04d-%02d-%02d", y, m, d))
	if err != nil {
		return 0, false
	}
	return dt, true
}

// atoi parses a short run of ASCII digits; -1 when s is not one.
func atoi(s string) int {
	if s == "" || len(s) > 4 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// decodeField returns f as UTF-8: unchanged when it already is valid UTF-8,
// otherwise decoded byte by byte as Windows-1252.
func decodeField(f string) string {
	if utf8.ValidString(f) {
		return f
	}
	var b strings.Builder
	b.Grow(len(f) + 8)
	for i := 0; i < len(f); i++ {
		b.WriteRune(cp1252(f[i]))
	}
	return b.String()
}

// cp1252 maps a Windows-1252 byte to its code point. The five bytes the
// code page leaves undefined map to the C1 control of the same value, as
// the WHATWG encoding standard does.
func cp1252(c byte) rune {
	if c < 0x80 || c >= 0xA0 {
		return rune(c)
	}
	switch c {
	case 0x80:
		return '€'
	case 0x82:
		return '‚'
	case 0x83:
		return 'ƒ'
	case 0x84:
		return '„'
	case 0x85:
		return '…'
	case 0x86:
		return '†'
	case 0x87:
		return '‡'
	case 0x88:
		return 'ˆ'
	case 0x89:
		return '‰'
	case 0x8A:
		return 'Š'
	case 0x8B:
		return '‹'
	case 0x8C:
		return 'Œ'
	case 0x8E:
		return 'Ž'
	case 0x91:
		return '‘'
	case 0x92:
		return '’'
	case 0x93:
		return '“'
	case 0x94:
		return '”'
	case 0x95:
		return '•'
	case 0x96:
		return '–'
	case 0x97:
		return '—'
	case 0x98:
		return '˜'
	case 0x99:
		return '™'
	case 0x9A:
		return 'š'
	case 0x9B:
		return '›'
	case 0x9C:
		return 'œ'
	case 0x9E:
		return 'ž'
	case 0x9F:
		return 'Ÿ'
	}
	return rune(c) // 0x81, 0x8D, 0x8F, 0x90, 0x9D
}
