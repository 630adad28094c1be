// Package claims defines the claim line the engine prices, the pricing
// result of one line, and the exception and flag codes of the product's
// stable output interface. It is shared by the readers and writers in
// connectors/ and the pricing core in rates/, and does no I/O.
package claims

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unsafe"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Field indexes the canonical input columns.
type Field int

// The canonical input columns, in output order.
const (
	ClaimID Field = iota
	LineNumber
	VendorID
	MemberID
	ProviderNPI
	CPTCode
	Modifiers
	Specialty
	VisitKind
	PlaceOfService
	ServiceDate
	Units
	BilledAmount
	PriorAuthNumber
	NumFields
)

// FieldNames are the canonical input column names, indexed by Field.
var FieldNames = [NumFields]string{
	"claim_id", "line_number", "vendor_id", "member_id", "provider_npi", "cpt_code",
	"modifiers", "specialty", "visit_kind", "place_of_service", "service_date",
	"units", "billed_amount", "prior_auth_number",
}

// Required lists the columns every claim file must have.
var Required = []Field{ClaimID, LineNumber, VendorID, CPTCode, ServiceDate, BilledAmount}

// String returns the column name of f.
func (f Field) String() string { return FieldNames[f] }

// FieldByName returns the field of a column name (case-insensitive).
func FieldByName(name string) (Field, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	for i, n := range FieldNames {
		if n == name {
			return Field(i), true
		}
	}
	return 0, false
}

// MappingError is a column mapping entry whose canonical name is not one
// of FieldNames.
type MappingError struct{ Name string }

func (e *MappingError) Error() string {
	return fmt.Sprintf("column mapping: %q is not a canonical column; the canonical columns are %s",
		e.Name, strings.Join(FieldNames[:], ", "))
}

// CheckMapping returns a *MappingError for the first (in sorted order) key
// of mapping — canonical name to the name in the input — that names no
// canonical column; readers would otherwise ignore it.
func CheckMapping(mapping map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(mapping)) {
		if _, ok := FieldByName(k); !ok {
			return &MappingError{Name: k}
		}
	}
	return nil
}

// MaxBilled bounds billed amounts (one billion dollars, in cents) so that
// every intermediate product of pricing fits exact 128-bit arithmetic.
const MaxBilled = money.Cents(100_000_000_000)

// MaxUnits bounds the units of one line.
const MaxUnits = 1_000_000

// Line is one claim line as read. Raw keeps the values as they were in the
// file, for exception reports; the typed fields are set only when the row
// parsed (Invalid == nil).
type Line struct {
	Raw [NumFields]string
	// Source is the file and 1-based record number (header not counted).
	Source Source
	// Seq is the 0-based position of the line in the whole input.
	Seq int64
	// Plain is set by readers whose raw values are known to hold no comma,
	// quote or line break (a CSV record without quotes), so writers can
	// skip checking whether a value needs quoting.
	Plain bool

	ClaimID     string
	LineNumber  int64
	VendorID    string
	CPT         string
	Modifiers   [4]string
	NumMods     int
	Specialty   string
	VisitKind   string
	POS         string
	ServiceDate contracts.Date
	Units       int64
	PriorAuth   string

	// Billed is the billed amount; BilledOK says whether it parsed, even
	// when another field made the row invalid (the books count it).
	Billed   money.Cents
	BilledOK bool

	// Invalid is why the row could not be priced at all (INVALID_ROW).
	Invalid *FieldError
}

// CopyRaw appends the text of l.Raw to arena, points l.Raw at the copy and
// returns the extended arena. The parsed fields still point at the old
// text: call Parse after it. Readers that fill a caller's reusable buffer
// use it (see pipeline.ArenaReader); l's strings are then only as stable
// as that buffer, which must not change while anything holds them.
func (l *Line) CopyRaw(arena []byte) []byte {
	raw := l.Raw[:] // ranging over the array itself would copy it
	n := 0
	for _, v := range raw {
		n += len(v)
	}
	// One growth at most, so that the line's fields share one array.
	arena = slices.Grow(arena, n)
	for i, v := range raw {
		if v != "" {
			at := len(arena)
			arena = append(arena, v...)
			raw[i] = unsafe.String(&arena[at], len(v))
		}
	}
	return arena
}

// HasModifier reports whether m is among the line's modifiers.
func (l *Line) HasModifier(m string) bool {
	for i := 0; i < l.NumMods; i++ {
		if l.Modifiers[i] == m {
			return true
		}
	}
	return false
}

// Source locates a line in its input.
type Source struct {
	File string
	Row  int64
}

// FieldError is a claim field that failed to parse.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Reason }

// Parse fills the typed fields of l from l.Raw, or sets l.Invalid naming the
// first field that is missing or malformed.
func (l *Line) Parse() {
	l.Invalid = nil
	fail := func(f Field, reason string) {
		if l.Invalid == nil {
			l.Invalid = &FieldError{Field: FieldNames[f], Reason: reason}
		}
	}
	raw := &l.Raw
	if b := strings.TrimSpace(raw[BilledAmount]); b == "" {
		fail(BilledAmount, "required value is empty")
	} else if v, err := money.ParseCents(b); err != nil {
		fail(BilledAmount, err.Error()+" (value "+quote(b)+"; expected a plain decimal like 123.45)")
	} else if v > MaxBilled || v < -MaxBilled {
		fail(BilledAmount, "amount is out of range")
	} else {
		l.Billed, l.BilledOK = v, true
		if v < 0 {
			fail(BilledAmount, "billed_amount is negative")
		}
	}
	l.ClaimID = strings.TrimSpace(raw[ClaimID])
	if l.ClaimID == "" {
		fail(ClaimID, "required value is empty")
	}
	if s := strings.TrimSpace(raw[LineNumber]); s == "" {
		fail(LineNumber, "required value is empty")
	} else if n, ok := parseInt(s); !ok {
		fail(LineNumber, "not a whole number (value "+quote(s)+")")
	} else {
		l.LineNumber = n
	}
	l.VendorID = strings.TrimSpace(raw[VendorID])
	if l.VendorID == "" {
		fail(VendorID, "required value is empty")
	}
	l.CPT = contracts.NormalizeCode(raw[CPTCode])
	if l.CPT == "" {
		fail(CPTCode, "required value is empty")
	}
	if s := strings.TrimSpace(raw[ServiceDate]); s == "" {
		fail(ServiceDate, "required value is empty")
	} else if d, err := contracts.ParseDate(s); err != nil {
		fail(ServiceDate, "not a valid YYYY-MM-DD date (value "+quote(s)+")")
	} else {
		l.ServiceDate = d
	}
	if s := strings.TrimSpace(raw[Units]); s == "" {
		l.Units = 1
	} else if n, ok := parseInt(s); !ok {
		fail(Units, "not a whole number (value "+quote(s)+")")
	} else if n <= 0 {
		fail(Units, "units must be at least 1")
	} else if n > MaxUnits {
		fail(Units, "units is out of range")
	} else {
		l.Units = n
	}
	l.NumMods = 0
	mods := raw[Modifiers]
	for len(mods) > 0 {
		i := strings.IndexAny(mods, ", ")
		tok := mods
		if i >= 0 {
			tok, mods = mods[:i], mods[i+1:]
		} else {
			mods = ""
		}
		if tok = contracts.NormalizeCode(tok); tok == "" {
			continue
		}
		if l.NumMods == len(l.Modifiers) {
			fail(Modifiers, "more than 4 modifiers")
			break
		}
		l.Modifiers[l.NumMods] = tok
		l.NumMods++
	}
	l.Specialty = contracts.NormalizeCode(raw[Specialty])
	l.VisitKind = contracts.NormalizeCode(raw[VisitKind])
	l.POS = contracts.NormalizeCode(raw[PlaceOfService])
	l.PriorAuth = strings.TrimSpace(raw[PriorAuthNumber])
}

func parseInt(s string) (int64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 15 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + s + `"`
}
