package contracts

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Amendment is a change to the rates of one contract, as the seed spec's
// "Rate Amendment Workflow" describes: it end-dates the rates it replaces
// and adds new rate rows. History is never overwritten: a replaced rate
// stays in the schedule with its end date set (or, when it would only have
// started on or after the effective date, with Active false).
type Amendment struct {
	ID         string
	ContractID string
	Reason     string
	// AmendmentDate is the day the amendment was agreed (signed).
	AmendmentDate Date
	// EffectiveDate is the first day the new rates apply and the day
	// after the last day the replaced rates apply.
	EffectiveDate Date
	// Retroactive allows an EffectiveDate before the amendment date or
	// before today, so that claims already priced are repriced.
	Retroactive bool
	// Replace lists the IDs of the contract's rates the amendment ends.
	Replace []string
	// ReplacePrefix, when set, also replaces every rate of the contract
	// whose ID starts with it and that is in force on or after the
	// effective date (see Supersede): how a new version of a published fee
	// schedule replaces the previous one.
	ReplacePrefix string
	// Add are the new rates. An empty ContractID means the amendment's
	// contract; a zero Effective means the amendment's EffectiveDate.
	Add []Rate
}

// Errors of Apply. Apply returns them wrapped in an *AmendmentError.
var (
	ErrAmendmentField   = errors.New("required amendment field is missing")
	ErrUnknownContract  = errors.New("contract is not in the schedule")
	ErrUnknownRate      = errors.New("rate is not in the schedule")
	ErrRateOfOther      = errors.New("rate belongs to another contract")
	ErrDuplicateRate    = errors.New("rate_id already exists")
	ErrRetroactive      = errors.New("effective date lies in the past; the amendment must be marked retroactive")
	ErrOutsideTerm      = errors.New("effective date is outside the contract term")
	ErrRateBeforeEffect = errors.New("a new rate may not start before the amendment's effective date")
	ErrInvalidRate      = errors.New("new rate is not valid")
	ErrReplaceTwice     = errors.New("rate is listed twice in the replace list")
)

// AmendmentError is an amendment that Apply refused. Field names the
// amendment field at fault; RateID the rate, when one is.
type AmendmentError struct {
	AmendmentID string
	Field       string
	RateID      string
	Detail      string
	Err         error
}

func (e *AmendmentError) Error() string {
	var b strings.Builder
	b.WriteString("amendment ")
	b.WriteString(e.AmendmentID)
	if e.RateID != "" {
		b.WriteString(" rate ")
		b.WriteString(e.RateID)
	}
	if e.Field != "" {
		b.WriteString(" field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	return b.String()
}

func (e *AmendmentError) Unwrap() error { return e.Err }

// RateChange is one replaced rate and what Apply did to it.
type RateChange struct {
	RateID string
	// Action is ActionEndDated, ActionDeactivated or ActionAlreadyEnded.
	Action string
	// OldEnd and NewEnd are the end dates before and after (0 = open).
	OldEnd, NewEnd Date
}

// Actions of a RateChange.
const (
	// ActionEndDated: the rate started before the effective date; its end
	// date is now the day before the effective date.
	ActionEndDated = "end_dated"
	// ActionDeactivated: the rate would only have started on or after the
	// effective date; it is kept with Active false.
	ActionDeactivated = "deactivated"
	// ActionAlreadyEnded: the rate already ended before the effective
	// date; it is left as it was (end-dating it would extend it).
	ActionAlreadyEnded = "already_ended"
)

// Applied is what Apply did.
type Applied struct {
	Replaced []RateChange
	// Added are the new rates as stored (defaults filled in).
	Added []Rate
}

// Apply returns a copy of s with the amendment applied; s is not modified.
//
// Rules:
//   - ID, ContractID, Reason, AmendmentDate and EffectiveDate are required.
//   - The contract must be in s and EffectiveDate inside its term.
//   - Unless Retroactive, EffectiveDate may be neither before the
//     AmendmentDate nor before today (a zero today skips that check only).
//   - Every replaced rate must be a rate of the contract, listed once. A
//     replaced rate in force on the effective date (or open-ended) is
//     end-dated at EffectiveDate-1; one starting on or after EffectiveDate
//     is deactivated (kept, Active false) since an end date before its
//     start is not allowed; one already ended before EffectiveDate is left
//     alone.
//   - New rates take the amendment's contract and EffectiveDate when they
//     leave them empty, may not start before EffectiveDate, may not reuse
//     an existing rate_id, and must pass the rate rules of Validate.
//
// Refusals are *AmendmentError values wrapping one of the Err* values.
func Apply(s *Schedule, a Amendment, today Date) (*Schedule, *Applied, error) {
	fail := func(field, rateID string, err error, detail string) (*Schedule, *Applied, error) {
		return nil, nil, &AmendmentError{AmendmentID: a.ID, Field: field, RateID: rateID, Err: err, Detail: detail}
	}
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"amendment_id", strings.TrimSpace(a.ID) != ""},
		{"contract_id", strings.TrimSpace(a.ContractID) != ""},
		{"reason", strings.TrimSpace(a.Reason) != ""},
		{"amendment_date", !a.AmendmentDate.IsZero()},
		{"effective_date", !a.EffectiveDate.IsZero()},
	} {
		if !f.ok {
			return fail(f.name, "", ErrAmendmentField, "")
		}
	}
	ci := slices.IndexFunc(s.Contracts, func(c Contract) bool { return c.ID == a.ContractID })
	if ci < 0 {
		return fail("contract_id", "", ErrUnknownContract, a.ContractID)
	}
	c := &s.Contracts[ci]
	if a.EffectiveDate < c.Effective || a.EffectiveDate > c.Expiration {
		return fail("effective_date", "", ErrOutsideTerm,
			fmt.Sprintf("%s is outside %s..%s", a.EffectiveDate, c.Effective, c.Expiration))
	}
	if !a.Retroactive {
		if a.EffectiveDate < a.AmendmentDate {
			return fail("effective_date", "", ErrRetroactive,
				fmt.Sprintf("effective %s is before the amendment date %s", a.EffectiveDate, a.AmendmentDate))
		}
		if !today.IsZero() && a.EffectiveDate < today {
			return fail("effective_date", "", ErrRetroactive,
				fmt.Sprintf("effective %s is before today %s", a.EffectiveDate, today))
		}
	}

	if a.ReplacePrefix != "" {
		sup, err := Supersede(s, a, a.ReplacePrefix, a.Add)
		if err != nil {
			return nil, nil, err
		}
		have := make(map[string]bool, len(a.Replace))
		for _, id := range a.Replace {
			have[id] = true
		}
		a.Replace = slices.Clip(a.Replace)
		for _, id := range sup.Replace {
			if !have[id] {
				a.Replace = append(a.Replace, id)
			}
		}
	}

	out := &Schedule{
		Kinds:     slices.Clone(s.Kinds),
		Contracts: slices.Clone(s.Contracts),
		Rates:     make([]Rate, len(s.Rates), len(s.Rates)+len(a.Add)),
		Issues:    slices.Clone(s.Issues),
	}
	copy(out.Rates, s.Rates)
	byID := make(map[string]int, len(s.Rates))
	for i := range out.Rates {
		if _, dup := byID[out.Rates[i].ID]; !dup {
			byID[out.Rates[i].ID] = i
		}
	}

	res := &Applied{}
	listed := make(map[string]bool, len(a.Replace))
	for _, id := range a.Replace {
		if listed[id] {
			return fail("replace", id, ErrReplaceTwice, "")
		}
		listed[id] = true
		i, ok := byID[id]
		if !ok {
			return fail("replace", id, ErrUnknownRate, "")
		}
		r := &out.Rates[i]
		if r.ContractID != a.ContractID {
			return fail("replace", id, ErrRateOfOther, "contract "+r.ContractID)
		}
		ch := RateChange{RateID: id, OldEnd: r.End, NewEnd: r.End}
		switch {
		case r.Effective >= a.EffectiveDate:
			ch.Action = ActionDeactivated
			r.Active = false
		case !r.End.IsZero() && r.End < a.EffectiveDate:
			ch.Action = ActionAlreadyEnded
		default:
			ch.Action = ActionEndDated
			r.End = a.EffectiveDate - 1
			ch.NewEnd = r.End
		}
		res.Replaced = append(res.Replaced, ch)
	}

	priority := map[string]int{}
	for _, k := range EffectiveKinds(s.Kinds) {
		if _, known := KindRequirements[k.Kind]; known && priority[k.Kind] == 0 {
			priority[k.Kind] = k.Priority
		}
	}
	for n, r := range a.Add {
		if r.ContractID == "" {
			r.ContractID = a.ContractID
		}
		if r.Effective.IsZero() {
			r.Effective = a.EffectiveDate
		}
		if r.Source == (Source{}) {
			r.Source = Source{File: "amendment:" + a.ID, Row: n + 1}
		}
		switch {
		case r.ContractID != a.ContractID:
			return fail("contract_id", r.ID, ErrRateOfOther, "contract "+r.ContractID)
		case strings.TrimSpace(r.ID) == "":
			return fail("rate_id", "", ErrAmendmentField, fmt.Sprintf("new rate %d has no rate_id", n+1))
		case r.Effective < a.EffectiveDate:
			return fail("effective_date", r.ID, ErrRateBeforeEffect,
				fmt.Sprintf("rate starts %s, amendment %s", r.Effective, a.EffectiveDate))
		}
		if _, dup := byID[r.ID]; dup {
			return fail("rate_id", r.ID, ErrDuplicateRate, "")
		}
		if field, msg := checkRate(&r, c, priority); msg != "" {
			return fail(field, r.ID, ErrInvalidRate, msg)
		}
		byID[r.ID] = len(out.Rates)
		out.Rates = append(out.Rates, r)
		res.Added = append(res.Added, r)
	}
	return out, res, nil
}

// Supersede builds an amendment that replaces the rates of a contract whose
// ID starts with prefix and that are still in force on or after effective
// (active, and open-ended or ending on or after effective) with add. It is
// how a new version of a published fee schedule is applied: the previous
// version's rates (one prefix per schedule) end the day before.
//
// It refuses (ErrScheduleOrder) when one of those rates starts after
// effective: a later version is already applied, and applying an older one
// over it would deactivate it.
func Supersede(s *Schedule, base Amendment, prefix string, add []Rate) (Amendment, error) {
	a := base
	a.Replace = nil
	a.ReplacePrefix = ""
	a.Add = add
	for i := range s.Rates {
		r := &s.Rates[i]
		if r.ContractID != a.ContractID || !strings.HasPrefix(r.ID, prefix) || !r.Active {
			continue
		}
		if !r.End.IsZero() && r.End < a.EffectiveDate {
			continue
		}
		if r.Effective > a.EffectiveDate {
			return Amendment{}, &AmendmentError{AmendmentID: a.ID, Field: "effective_date", RateID: r.ID, Err: ErrScheduleOrder,
				Detail: fmt.Sprintf("rate starts %s, after the new effective date %s", r.Effective, a.EffectiveDate)}
		}
		a.Replace = append(a.Replace, r.ID)
	}
	return a, nil
}

// ErrScheduleOrder is a fee schedule older than one already applied.
var ErrScheduleOrder = errors.New("a later version of the schedule is already applied")
