package contracts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/repricer/repricer/money"
)

// Issue is one finding about the reference data, for the schedule report.
type Issue struct {
	Entity  string // "contract", "rate" or "rate_kind"
	ID      string
	Source  Source
	Field   string // the offending field, when there is one
	Action  string // ActionRejected or ActionWarning
	Message string
}

// Issue actions.
const (
	ActionRejected = "rejected"
	ActionWarning  = "warning"
)

func (i Issue) String() string {
	loc := i.Source.Loc()
	field := ""
	if i.Field != "" {
		field = " field " + i.Field + ":"
	}
	return fmt.Sprintf("%s: %s %s %s:%s %s", loc, i.Action, i.Entity, i.ID, field, i.Message)
}

// Validated is a schedule after validation: what a run may price with.
type Validated struct {
	// Priority maps each usable rate kind to its priority.
	Priority map[string]int
	// Contracts holds every contract with usable dates, rejected or not, so
	// that contract selection can report CONTRACT_INVALID.
	Contracts []Contract
	// Rejected maps a rejected contract's ID to the first reason.
	Rejected map[string]string
	// Rates holds the accepted rates of accepted contracts. When every rate
	// was accepted it shares storage with the Schedule's Rates: treat both
	// as read-only once validated.
	Rates []Rate
	// Issues lists every finding, in source order.
	Issues []Issue
	// Fingerprint identifies the loaded reference data (see Fingerprint).
	Fingerprint string
}

var contractNumberRE = regexp.MustCompile(`^CON-\d{4}-\d{5}$`)

// Validate applies the reference-data rules and returns what a run may use.
// It never fails: every rejected row is reported in Issues.
func Validate(s *Schedule) *Validated {
	x := NewValidation(s)
	accepted := make([]bool, len(s.Rates))
	for i := range s.Rates {
		accepted[i] = x.Rate(&s.Rates[i])
	}
	v := x.Finish()
	v.Fingerprint = s.Fingerprint()
	for i := range s.Rates {
		if _, rejected := v.Rejected[s.Rates[i].ContractID]; rejected {
			accepted[i] = false // its contract is not used; the contract's issue says why
		}
	}
	v.Rates = keep(s.Rates, accepted)
	return v
}

// Validation applies the reference-data rules to a schedule whose rates
// come one at a time, so that a loader can stream a large schedule without
// holding every rate; Validate runs it over a whole Schedule. Call Rate for
// each rate in source order, then Finish once.
type Validation struct {
	v       *Validated
	byID    map[string]*Contract
	rateIDs map[string]struct{}
	inOrder bool   // see InIDOrder
	lastID  string // InIDOrder: the previous rate's id
	anyRate bool   // InIDOrder: lastID is set
	usable  map[string]int
}

// InIDOrder tells the validation that rates will come in rate_id order
// (strings.Compare; a loader that checks it, such as one feeding a
// Fingerprinter, stops when they do not). A repeated id then follows its
// first row, so the validation keeps the previous id instead of the set of
// every id (about 40 MB for 1M rates). Call it before the first Rate.
func (x *Validation) InIDOrder() { x.inOrder, x.rateIDs = true, nil }

// NewValidation checks the kinds and contracts of s (its Rates are not
// read) and returns the validation its rates go through.
func NewValidation(s *Schedule) *Validation {
	v := &Validated{
		Priority: map[string]int{},
		Rejected: map[string]string{},
		Issues:   slices.Clone(s.Issues),
	}
	x := &Validation{v: v, byID: map[string]*Contract{}, rateIDs: map[string]struct{}{}, usable: map[string]int{}}
	for _, k := range EffectiveKinds(s.Kinds) {
		switch _, known := KindRequirements[k.Kind]; {
		case k.LoadError != nil:
			v.issue("rate_kind", k.Kind, k.Source, k.LoadError.Field, ActionRejected, k.LoadError.Detail())
		case !known:
			v.issue("rate_kind", k.Kind, k.Source, "kind", ActionRejected, "unknown rate kind; known kinds are "+strings.Join(knownKinds(), ", "))
		case k.Priority < 1 || k.Priority > 99:
			v.issue("rate_kind", k.Kind, k.Source, "priority", ActionRejected, fmt.Sprintf("priority %d is outside 1-99", k.Priority))
		case v.Priority[k.Kind] != 0:
			v.issue("rate_kind", k.Kind, k.Source, "kind", ActionRejected, "kind listed twice; the first row is used")
		default:
			v.Priority[k.Kind] = k.Priority
		}
	}

	numbers := map[string]string{}
	seen := map[string]bool{}
	for i := range s.Contracts {
		c := s.Contracts[i]
		if seen[c.ID] {
			v.issue("contract", c.ID, c.Source, "contract_id", ActionRejected, "duplicate contract_id; the first row is used")
			continue
		}
		if c.Effective.IsZero() || c.Expiration.IsZero() {
			field, msg := "effective_date", "effective_date and expiration_date are required"
			if le := c.LoadError; le != nil && (le.Field == "effective_date" || le.Field == "expiration_date") {
				field, msg = le.Field, le.Detail() // a date that is there but does not parse
			}
			v.issue("contract", c.ID, c.Source, field, ActionRejected, msg)
			continue
		}
		seen[c.ID] = true
		v.Contracts = append(v.Contracts, c)
	}
	for i := range v.Contracts {
		c := &v.Contracts[i]
		x.byID[c.ID] = c
		reject := func(field, msg string) {
			v.issue("contract", c.ID, c.Source, field, ActionRejected, msg)
			if _, done := v.Rejected[c.ID]; !done {
				v.Rejected[c.ID] = msg
			}
		}
		if c.LoadError != nil {
			reject(c.LoadError.Field, c.LoadError.Detail())
		}
		if prev, dup := numbers[c.Number]; dup && c.Number != "" {
			reject("contract_number", "contract_number already used by contract "+prev)
		} else {
			numbers[c.Number] = c.ID
		}
		if !contractNumberRE.MatchString(c.Number) {
			v.issue("contract", c.ID, c.Source, "contract_number", ActionWarning, fmt.Sprintf("contract_number %q does not follow CON-YYYY-NNNNN", c.Number))
		}
		if c.Expiration <= c.Effective {
			reject("expiration_date", "expiration_date must be after effective_date")
		}
		if c.Status == Terminated && strings.TrimSpace(c.StatusReason) == "" {
			reject("status_reason", "a Terminated contract needs a status_reason")
		}
		if c.TPA && strings.TrimSpace(c.TPAName) == "" {
			reject("tpa_name", "a TPA agreement needs a tpa_name")
		}
		if c.AutoRenewal && c.RenewalTermMonths <= 0 {
			reject("renewal_term_months", "auto_renewal needs renewal_term_months")
		}
		if c.AdminFeePct < 0 || c.AdminFeePct > 100*money.FixedScale {
			reject("admin_fee_pct", "admin_fee_pct must be between 0 and 100")
		}
		if c.StopLoss < 0 {
			reject("stop_loss_amount", "stop_loss_amount must be positive")
		}
		if c.HasDefaultRate {
			if msg := checkRateValue(c.DefaultRateType, c.DefaultRateValue); msg != "" {
				reject("default_rate_value", "default rate: "+msg)
			}
		}
	}

	return x
}

// Priority maps each usable rate kind to its priority.
func (x *Validation) Priority() map[string]int { return x.v.Priority }

// Rate checks one rate and reports whether it is accepted. An accepted rate
// is still dropped when Finish rejects its contract (see Validated.Rejected).
func (x *Validation) Rate(r *Rate) bool {
	v := x.v
	if x.duplicate(r.ID) {
		v.issue("rate", r.ID, r.Source, "rate_id", ActionRejected, "duplicate rate_id; the first row is used")
		return false
	}
	c := x.byID[r.ContractID]
	field, msg := checkRate(r, c, v.Priority)
	if msg != "" {
		v.issue("rate", r.ID, r.Source, field, ActionRejected, msg)
		return false
	}
	if r.Active {
		x.usable[c.ID]++
	}
	return true
}

// duplicate reports whether an earlier rate had id, and records id.
func (x *Validation) duplicate(id string) bool {
	if x.inOrder {
		dup := x.anyRate && x.lastID == id
		x.lastID, x.anyRate = id, true
		return dup
	}
	_, dup := x.rateIDs[id]
	x.rateIDs[id] = struct{}{}
	return dup
}

// Finish applies the rules that need every rate (a contract needs a usable
// rate or a default rate) and the overlap check, and returns the result
// without Rates or Fingerprint: the caller keeps the accepted rates of
// contracts not in Rejected, and fingerprints the schedule.
func (x *Validation) Finish() *Validated {
	v := x.v
	x.rateIDs = nil
	for i := range v.Contracts {
		c := &v.Contracts[i]
		if x.usable[c.ID] == 0 && !c.HasDefaultRate {
			if _, done := v.Rejected[c.ID]; !done {
				msg := "contract has neither an active valid rate nor a default rate"
				v.issue("contract", c.ID, c.Source, "default_rate_value", ActionRejected, msg)
				v.Rejected[c.ID] = msg
			}
		}
	}
	v.checkOverlaps()
	return v
}

// keep returns the rates whose flag is set. When all are, it returns rs
// itself rather than a copy: a schedule of a million rates is about 250 MB,
// and the loaders drop the Schedule once it is validated.
func keep(rs []Rate, flags []bool) []Rate {
	n := 0
	for _, ok := range flags {
		if ok {
			n++
		}
	}
	if n == len(rs) {
		return rs[:n:n]
	}
	out := make([]Rate, 0, n)
	for i, ok := range flags {
		if ok {
			out = append(out, rs[i])
		}
	}
	return out
}

// checkOverlaps rejects every pair of priceable contracts of one vendor whose
// terms overlap.
func (v *Validated) checkOverlaps() {
	byVendor := map[string][]*Contract{}
	var vendors []string
	for i := range v.Contracts {
		c := &v.Contracts[i]
		if !c.Status.Priceable() || c.Expiration <= c.Effective {
			continue
		}
		if byVendor[c.VendorID] == nil {
			vendors = append(vendors, c.VendorID)
		}
		byVendor[c.VendorID] = append(byVendor[c.VendorID], c)
	}
	for _, vendor := range vendors {
		cs := byVendor[vendor]
		slices.SortStableFunc(cs, func(a, b *Contract) int { return int(a.Effective - b.Effective) })
		for i, a := range cs {
			for _, b := range cs[i+1:] {
				if b.Effective > a.Expiration {
					break
				}
				for _, pair := range [][2]*Contract{{a, b}, {b, a}} {
					c, other := pair[0], pair[1]
					msg := fmt.Sprintf("term %s..%s overlaps contract %s (%s..%s) of the same vendor",
						c.Effective, c.Expiration, other.ID, other.Effective, other.Expiration)
					v.issue("contract", c.ID, c.Source, "effective_date", ActionRejected, msg)
					if _, done := v.Rejected[c.ID]; !done {
						v.Rejected[c.ID] = msg
					}
				}
			}
		}
	}
}

func checkRateValue(t RateType, val money.Fixed) string {
	switch t {
	case Percentage:
		if val < 0 || val > 200*money.FixedScale {
			return "percentage must be between 0 and 200"
		}
	case Amount:
		if val <= 0 {
			return "amount must be greater than 0"
		}
	default:
		return "rate_type must be Percentage or Amount"
	}
	return ""
}

// checkRate returns the field and reason that reject r, or "" when r is valid.
func checkRate(r *Rate, c *Contract, priority map[string]int) (field, msg string) {
	if r.LoadError != nil {
		return r.LoadError.Field, r.LoadError.Detail()
	}
	if c == nil {
		return "contract_id", fmt.Sprintf("contract %q is not in the schedule", r.ContractID)
	}
	req, known := KindRequirements[r.Kind]
	if !known || priority[r.Kind] == 0 {
		return "rate_kind", fmt.Sprintf("rate_kind %q is not a usable rate kind", r.Kind)
	}
	if msg := checkRateValue(r.Type, r.Value); msg != "" {
		return "rate_value", msg
	}
	if r.Type == Amount && c.StopLoss > 0 && r.Value > c.StopLoss.Fixed() {
		return "rate_value", fmt.Sprintf("amount %s is above the contract's stop loss %s", r.Value, c.StopLoss)
	}
	if !r.End.IsZero() && r.End < r.Effective {
		return "end_date", "end_date is before effective_date"
	}
	if r.Effective.IsZero() {
		return "effective_date", "effective_date is required"
	}
	if r.Effective < c.Effective || r.Effective > c.Expiration {
		return "effective_date", fmt.Sprintf("effective_date %s is outside the contract term %s..%s", r.Effective, c.Effective, c.Expiration)
	}
	if r.CPTCode != "" && (r.RangeStart != "" || r.RangeEnd != "") {
		return "cpt_code", "give either cpt_code or a cpt range, not both"
	}
	if (r.RangeStart == "") != (r.RangeEnd == "") {
		return "cpt_range_end", "a cpt range needs both cpt_range_start and cpt_range_end"
	}
	if r.RangeEnd < r.RangeStart {
		return "cpt_range_end", "cpt_range_end is before cpt_range_start"
	}
	if r.MinUnits < 0 || r.MaxUnits < 0 || (r.MaxUnits > 0 && r.MaxUnits < r.MinUnits) {
		return "max_units", "units limits must be positive with max_units >= min_units"
	}
	switch {
	case req.CPT && !r.HasCPT():
		return "cpt_code", r.Kind + " needs cpt_code or a cpt range"
	case req.Modifier && r.Modifier == "":
		return "modifier", r.Kind + " needs a modifier"
	case req.Specialty && r.Specialty == "":
		return "specialty", r.Kind + " needs a specialty"
	case req.VisitKind && r.VisitKind == "":
		return "visit_kind", r.Kind + " needs a visit_kind"
	}
	return "", ""
}

func knownKinds() []string {
	var ks []string
	for _, k := range DefaultRateKinds() {
		ks = append(ks, k.Kind)
	}
	return ks
}

func (v *Validated) issue(entity, id string, src Source, field, action, msg string) {
	v.Issues = append(v.Issues, Issue{Entity: entity, ID: id, Source: src, Field: field, Action: action, Message: msg})
}

// Fingerprint is a SHA-256 over a canonical form of the schedule (kinds,
// contracts and rates sorted by ID; sources left out), so the same reference
// data gives the same fingerprint whether it came from a bundle or a database.
func (s *Schedule) Fingerprint() string {
	f := NewFingerprinter(s)
	rs := make([]*Rate, len(s.Rates))
	for i := range s.Rates {
		rs[i] = &s.Rates[i]
	}
	slices.SortStableFunc(rs, func(a, b *Rate) int { return strings.Compare(a.ID, b.ID) })
	for _, r := range rs {
		f.Rate(r)
	}
	return f.Sum()
}

// Fingerprinter computes Schedule.Fingerprint for a loader that streams the
// rates: it needs them in id order, which exports and the generator write.
type Fingerprinter struct {
	h      hash.Hash
	b      fpBuf
	issues []Issue
	lastID string
	sorted bool
}

// NewFingerprinter takes the kinds, contracts and issues of s (its Rates
// are not read).
func NewFingerprinter(s *Schedule) *Fingerprinter {
	f := &Fingerprinter{h: sha256.New(), issues: s.Issues, sorted: true}
	b := &f.b
	// The effective kinds: a folder listing some kinds and a database
	// holding all six with the same priorities are the same schedule.
	kinds := EffectiveKinds(s.Kinds)
	slices.SortStableFunc(kinds, func(a, b RateKind) int { return strings.Compare(a.Kind, b.Kind) })
	for _, k := range kinds {
		b.str("K").str(k.Kind).int(int64(k.Priority)).end(f.h)
	}
	cs := make([]*Contract, len(s.Contracts))
	for i := range s.Contracts {
		cs[i] = &s.Contracts[i]
	}
	slices.SortStableFunc(cs, func(a, b *Contract) int { return strings.Compare(a.ID, b.ID) })
	for _, c := range cs {
		b.str("C").str(c.ID).str(c.Number).str(c.VendorID).str(string(c.Status)).str(c.StatusReason).
			int(int64(c.Effective)).int(int64(c.Expiration)).bool(c.AutoRenewal).int(int64(c.RenewalTermMonths)).
			int(int64(c.RenewalNoticeDays)).bool(c.TPA).str(c.TPAName).bool(c.TPAMedicalNecessity).
			bool(c.TPAPriorAuthRequired).int(int64(c.DefaultRateType)).int(int64(c.DefaultRateValue)).
			bool(c.HasDefaultRate).int(int64(c.StopLoss)).int(int64(c.AdminFeePct)).bool(c.LesserOfBilled).str(c.UpdatedAt)
		for _, r := range c.ExcludedServices {
			b.str(r.Lo).str(r.Hi)
		}
		b.end(f.h)
	}
	return f
}

// Rate adds the next rate and reports whether the rates so far came in id
// order; once one did not, Sum is not the schedule's fingerprint and the
// caller must fingerprint the whole Schedule instead.
func (f *Fingerprinter) Rate(r *Rate) bool {
	if strings.Compare(r.ID, f.lastID) < 0 {
		f.sorted = false
	}
	f.lastID = r.ID
	f.b.str("R").str(r.ID).str(r.ContractID).str(r.Kind).int(int64(r.Type)).int(int64(r.Value)).
		str(r.Specialty).str(r.VisitKind).str(r.CPTCode).str(r.RangeStart).str(r.RangeEnd).str(r.Modifier).
		int(int64(r.Effective)).int(int64(r.End)).int(int64(r.MinUnits)).int(int64(r.MaxUnits)).
		bool(r.RequiresAuth).bool(r.RequiresReview).bool(r.Active)
	for _, p := range r.PlaceOfService {
		f.b.str(p)
	}
	f.b.end(f.h)
	return f.sorted
}

// Sum adds the issues and returns the fingerprint.
func (f *Fingerprinter) Sum() string {
	for _, is := range f.issues {
		f.b.str("I").str(is.Entity).str(is.ID).str(is.Field).str(is.Message).end(f.h)
	}
	return hex.EncodeToString(f.h.Sum(nil))
}

// fpBuf builds one fingerprint record: fields separated by 0x1f (which
// no CSV field of ours contains unescaped), records ended by 0x1e.
type fpBuf []byte

func (b *fpBuf) str(s string) *fpBuf { *b = append(append(*b, s...), 0x1f); return b }
func (b *fpBuf) int(n int64) *fpBuf  { *b = append(strconv.AppendInt(*b, n, 10), 0x1f); return b }
func (b *fpBuf) bool(v bool) *fpBuf  { *b = append(strconv.AppendBool(*b, v), 0x1f); return b }
func (b *fpBuf) end(h hash.Hash) {
	h.Write(append(*b, 0x1e))
	*b = (*b)[:0]
}
