// Package contracts is the reference-data model of repricer: provider
// contracts, their contracted rates and rate kinds, the contract lifecycle,
// and the validation that decides which contracts and rates a run may use.
//
// It does no I/O. Readers in connectors/ build a Schedule; Validate turns it
// into a Validated schedule and a list of issues for the schedule report.
package contracts

import (
	"slices"
	"strconv"
	"strings"

	"github.com/repricer/repricer/money"
)

// Status is the lifecycle status of a contract.
type Status string

// Contract statuses.
const (
	Draft      Status = "Draft"
	Pending    Status = "Pending"
	Active     Status = "Active"
	Expired    Status = "Expired"
	Terminated Status = "Terminated"
)

// Statuses lists every valid status.
var Statuses = []Status{Draft, Pending, Active, Expired, Terminated}

// ParseStatus returns the status named s (case-insensitive).
func ParseStatus(s string) (Status, bool) {
	for _, st := range Statuses {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return "", false
}

// Priceable reports whether contracts in this status take part in contract
// selection (Active, Expired, Terminated).
func (s Status) Priceable() bool { return s == Active || s == Expired || s == Terminated }

// RateType is how a rate computes the allowed amount.
type RateType uint8

// Rate types. The zero value means "not set".
const (
	Percentage RateType = iota + 1
	Amount
)

// ParseRateType returns the rate type named s (case-insensitive).
func ParseRateType(s string) (RateType, bool) {
	switch {
	case strings.EqualFold(s, "Percentage"):
		return Percentage, true
	case strings.EqualFold(s, "Amount"):
		return Amount, true
	}
	return 0, false
}

func (t RateType) String() string {
	switch t {
	case Percentage:
		return "Percentage"
	case Amount:
		return "Amount"
	}
	return ""
}

// CodeRange is an inclusive range of procedure codes; Lo == Hi for one code.
// Codes are upper-cased and trimmed.
type CodeRange struct{ Lo, Hi string }

// Contains reports whether code lies in the range (string order).
func (r CodeRange) Contains(code string) bool { return code >= r.Lo && code <= r.Hi }

// Contract is one vendor agreement as pricing reads it.
type Contract struct {
	ID                   string
	Number               string
	VendorID             string
	Status               Status
	StatusReason         string
	Effective            Date
	Expiration           Date
	AutoRenewal          bool
	RenewalTermMonths    int // 0 = not set
	RenewalNoticeDays    int // 0 = not set (30 is the documented default)
	TPA                  bool
	TPAName              string
	TPAMedicalNecessity  bool
	TPAPriorAuthRequired bool
	DefaultRateType      RateType
	DefaultRateValue     money.Fixed
	HasDefaultRate       bool
	StopLoss             money.Cents // 0 = no stop loss
	AdminFeePct          money.Fixed
	ExcludedServices     []CodeRange
	LesserOfBilled       bool
	UpdatedAt            string

	// Source locates the row the contract came from, for reports.
	Source Source
	// LoadError, when set, is why a reader could not take a field of the
	// row; Validate rejects the contract with it.
	LoadError *FieldError
}

// FieldError is a reference field a reader could not parse.
type FieldError struct {
	Field, Value, Reason string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Detail() }

// Detail is the reason with the offending value, without the field name.
func (e *FieldError) Detail() string {
	if e.Value == "" {
		return e.Reason
	}
	return e.Reason + " (value " + strconv.Quote(e.Value) + ")"
}

// Excludes reports whether code is among the contract's excluded services.
func (c *Contract) Excludes(code string) bool {
	for _, r := range c.ExcludedServices {
		if r.Contains(code) {
			return true
		}
	}
	return false
}

// Rate is one contracted rate.
type Rate struct {
	ID             string
	ContractID     string
	Kind           string
	Type           RateType
	Value          money.Fixed
	Specialty      string
	VisitKind      string
	CPTCode        string
	RangeStart     string
	RangeEnd       string
	Modifier       string
	PlaceOfService []string
	Effective      Date
	End            Date // 0 = open-ended
	MinUnits       int  // 0 = not set
	MaxUnits       int  // 0 = not set
	RequiresAuth   bool
	RequiresReview bool
	Active         bool

	Source    Source
	LoadError *FieldError
}

// HasCPT reports whether the rate names a code or a code range.
func (r *Rate) HasCPT() bool { return r.CPTCode != "" || r.RangeStart != "" || r.RangeEnd != "" }

// IsRange reports whether the rate names a code range.
func (r *Rate) IsRange() bool { return r.CPTCode == "" && (r.RangeStart != "" || r.RangeEnd != "") }

// Source locates a reference row: a file and 1-based record number (header
// not counted), or a table and key for database sources.
type Source struct {
	File string
	Row  int // 1-based record number (the header not counted), as source_row reports it
	// Line is the line of the file where the record starts (the header is
	// line 1), for FILE:LINE in messages; 0 when the source has no lines (a
	// database table).
	Line int
}

// Loc is the source as FILE:LINE (FILE:ROW for a source without lines),
// the form editors and compilers use.
func (s Source) Loc() string {
	switch {
	case s.Line > 0:
		return s.File + ":" + strconv.Itoa(s.Line)
	case s.Row > 0:
		return s.File + ":" + strconv.Itoa(s.Row)
	}
	return s.File
}

// Rate kinds and their default priorities (1 = highest).
const (
	KindCPTModifierSpecialty = "CPT_MODIFIER_SPECIALTY"
	KindCPTSpecialty         = "CPT_SPECIALTY"
	KindCPT                  = "CPT"
	KindSpecialtyVisitKind   = "SPECIALTY_VISIT_KIND"
	KindSpecialty            = "SPECIALTY"
	KindVisitKind            = "VISIT_KIND"
)

// Priorities of the two default tiers, after every rate kind.
const (
	PriorityContractDefault = 7
	PrioritySystemDefault   = 8
)

// KindRequirement is what a rate of a kind must populate.
type KindRequirement struct {
	CPT, Modifier, Specialty, VisitKind bool
}

// KindRequirements maps each known rate kind to its required fields.
var KindRequirements = map[string]KindRequirement{
	KindCPTModifierSpecialty: {CPT: true, Modifier: true, Specialty: true},
	KindCPTSpecialty:         {CPT: true, Specialty: true},
	KindCPT:                  {CPT: true},
	KindSpecialtyVisitKind:   {Specialty: true, VisitKind: true},
	KindSpecialty:            {Specialty: true},
	KindVisitKind:            {VisitKind: true},
}

// RateKind is a rate kind with its priority (1 = highest).
type RateKind struct {
	Kind     string
	Priority int
	Source   Source
	// LoadError is the field that did not parse (the priority), when one
	// did not.
	LoadError *FieldError
}

// Valid reports whether k can set a priority: a known kind whose priority
// parsed and lies in 1-99.
func (k *RateKind) Valid() bool {
	_, known := KindRequirements[k.Kind]
	return known && k.LoadError == nil && k.Priority >= 1 && k.Priority <= 99
}

// EffectiveKinds is the kind list a schedule prices with: the kinds it
// lists (in its order), then every standard kind no valid row of it sets
// (see RateKind.Valid), with its default priority. A schedule's kind list
// overrides the priorities it names and leaves the others standard —
// whether it lists all six kinds, some of them (a folder's rate_kinds.csv
// with only "CPT,3") or none, and whether it comes from a folder or the
// database. A rejected row ("CPT,abc", "CPT,0") changes nothing: its kind
// keeps the default priority, as in a store that refused the row.
func EffectiveKinds(listed []RateKind) []RateKind {
	out := slices.Clone(listed)
	named := map[string]bool{}
	for i := range listed {
		if listed[i].Valid() {
			named[listed[i].Kind] = true
		}
	}
	for _, d := range DefaultRateKinds() {
		if !named[d.Kind] {
			out = append(out, d)
		}
	}
	return out
}

// DefaultRateKinds returns the standard kinds with their default priorities.
func DefaultRateKinds() []RateKind {
	return []RateKind{
		{Kind: KindCPTModifierSpecialty, Priority: 1},
		{Kind: KindCPTSpecialty, Priority: 2},
		{Kind: KindCPT, Priority: 3},
		{Kind: KindSpecialtyVisitKind, Priority: 4},
		{Kind: KindSpecialty, Priority: 5},
		{Kind: KindVisitKind, Priority: 6},
	}
}

// Schedule is the reference data of one run as loaded from a source, before
// validation. Readers put rows they could not parse at all into Issues.
type Schedule struct {
	Kinds     []RateKind // empty = DefaultRateKinds
	Contracts []Contract
	Rates     []Rate
	Issues    []Issue
}

// NormalizeCode trims and upper-cases a procedure, modifier or place code.
func NormalizeCode(s string) string {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}
