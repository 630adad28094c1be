package rates

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// This file answers "why was this line priced like that?". Explain re-runs
// every pricing step of docs/pricing.md steps 1 to 7 for one line with tracing, in its own
// code, so that the hot path (priceLine, rateIndex.lookup, finishCases)
// stays untouched and allocation-free. The tests hold the trace to the real
// pricing: for every line of the sample, Explain's result equals PriceClaim's.

// Explanation is a structured trace of how one claim line was priced: the
// contract chosen and why, the candidate rates and tie-breaks, and every step
// of the arithmetic down to the net payable. String renders it for a
// terminal; it marshals to JSON as is.
type Explanation struct {
	Line     LineFacts      `json:"line"`
	Contract *ContractTrace `json:"contract,omitempty"`
	Rate     *RateTrace     `json:"rate,omitempty"`
	// Steps are the units, amount, authorization and review steps of
	// docs/pricing.md in the order they ran, then the admin fee and net payable.
	Steps    []Step         `json:"steps,omitempty"`
	StopLoss *StopLossTrace `json:"stop_loss,omitempty"`
	Outcome  Outcome        `json:"outcome"`

	res claims.Result
}

// Result returns the pricing result the trace arrived at; it equals the
// result PriceClaim gives the same line in the same claim.
func (x *Explanation) Result() claims.Result { return x.res }

// LineFacts are the parsed values of the explained line.
type LineFacts struct {
	ClaimID     string      `json:"claim_id"`
	LineNumber  int64       `json:"line_number"`
	VendorID    string      `json:"vendor_id"`
	CPT         string      `json:"cpt_code"`
	Modifiers   []string    `json:"modifiers,omitempty"`
	Specialty   string      `json:"specialty,omitempty"`
	VisitKind   string      `json:"visit_kind,omitempty"`
	POS         string      `json:"place_of_service,omitempty"`
	ServiceDate string      `json:"service_date"`
	Units       int64       `json:"units"`
	Billed      money.Cents `json:"billed_amount"`
	PriorAuth   string      `json:"prior_auth_number,omitempty"`
	// Invalid is why the row could not be parsed (INVALID_ROW).
	Invalid string `json:"invalid,omitempty"`
}

// Contract verdicts: how each contract of the vendor stood on the service date.
const (
	VerdictInForce       = "in_force"        // effective <= date <= expiration
	VerdictExpiredLatest = "expired_latest"  // the latest expiration before the date
	VerdictExpired       = "expired"         // expired, but a later one expired after it
	VerdictNotYet        = "not_yet"         // takes effect after the date
	VerdictNotActive     = "not_active"      // Draft or Pending covering the date
	VerdictNotPriceable  = "not_priceable"   // Draft or Pending not covering the date
	VerdictNoTerm        = "no_usable_dates" // neither in force, before nor after
)

// ContractTrace is docs/pricing.md step 1 (contract selection) and step 2
// (excluded services) for the line.
type ContractTrace struct {
	// Considered lists every contract of the vendor: the priceable ones
	// (Active, Expired, Terminated) by effective date, then Draft and Pending.
	Considered []ContractCandidate `json:"considered"`
	// Rule is the branch of docs/pricing.md step 1 that decided.
	Rule string `json:"rule"`
	// ChosenID is the contract whose rates price the line, if any.
	ChosenID string `json:"chosen_id,omitempty"`
	// ExcludedBy is the excluded-services item that matched the code.
	ExcludedBy string `json:"excluded_by,omitempty"`
}

// ContractCandidate is one contract of the vendor and how it stood.
type ContractCandidate struct {
	ID         string `json:"contract_id"`
	Number     string `json:"contract_number"`
	Status     string `json:"status"`
	Effective  string `json:"effective_date"`
	Expiration string `json:"expiration_date"`
	Verdict    string `json:"verdict"`
	Reason     string `json:"reason"`
	// Rejected is why schedule validation rejected the contract.
	Rejected string `json:"rejected,omitempty"`
	Chosen   bool   `json:"chosen,omitempty"`
}

// RateTrace is docs/pricing.md step 3 for the chosen contract.
type RateTrace struct {
	ContractID string `json:"contract_id"`
	// ContractRates counts the contract's rates that passed validation,
	// active or not.
	ContractRates int `json:"contract_rates"`
	// Candidates are the rates in the line's index buckets (same code,
	// covering ranges, same specialty, same visit kind), best first among
	// the accepted, then the rejected ones.
	Candidates []RateCandidate `json:"candidates"`
	// Others counts the contract's rates outside those buckets: they name
	// another code, range, specialty or visit kind and cannot apply.
	Others int `json:"others"`
	// TieBreaks says, for each accepted rate that lost, the first
	// criterion of the winner order that decided against it.
	TieBreaks []TieBreak `json:"tie_breaks,omitempty"`
	// Conflict is RATE_CONFLICT: another accepted rate ties with the winner
	// on criteria (a)-(d) with a different type or value.
	Conflict     bool     `json:"rate_conflict"`
	ConflictWith []string `json:"conflict_with,omitempty"`
	WinnerID     string   `json:"winner_id,omitempty"`
	// Fallback is the tier used when no rate is accepted:
	// CONTRACT_DEFAULT, SYSTEM_DEFAULT or NO_RATE.
	Fallback string `json:"fallback,omitempty"`
}

// Rate buckets of the index a candidate was found in.
const (
	BucketCode      = "code"
	BucketRange     = "range"
	BucketSpecialty = "specialty"
	BucketVisitKind = "visit_kind"
)

// Rejection criteria of a candidate rate.
const (
	RejectInactive   = "inactive"
	RejectEffective  = "effective_date"
	RejectEnd        = "end_date"
	RejectCode       = "cpt_code"
	RejectRange      = "cpt_range"
	RejectModifier   = "modifier"
	RejectSpecialty  = "specialty"
	RejectVisitKind  = "visit_kind"
	RejectPOS        = "place_of_service"
	criterionMatched = ""
)

// RateCandidate is one rate of the chosen contract in the line's buckets.
type RateCandidate struct {
	ID        string `json:"rate_id"`
	Kind      string `json:"rate_kind"`
	Priority  int    `json:"priority"`
	RateType  string `json:"rate_type"`
	RateValue string `json:"rate_value"`
	Criteria  string `json:"criteria"`
	Bucket    string `json:"bucket"`
	Accepted  bool   `json:"accepted"`
	// Criterion is the first criterion that rejected the rate.
	Criterion string `json:"criterion,omitempty"`
	Reason    string `json:"reason"`
	// Rank is the place among the accepted rates in winner order (1 wins).
	Rank int `json:"rank,omitempty"`
}

// Tie-break criteria, in the order docs/pricing.md step 3 applies them.
const (
	TiePriority   = "priority"
	TieCPTMatch   = "exact_range_none"
	TieRangeStart = "range_start"
	TieRangeEnd   = "range_end"
	TieOptional   = "optional_criteria"
	TieEffective  = "effective_date"
	TieRateID     = "rate_id"
)

// TieBreak is why Winner beat Loser.
type TieBreak struct {
	Winner    string `json:"winner"`
	Loser     string `json:"loser"`
	Criterion string `json:"criterion"`
	Detail    string `json:"detail"`
}

// Step is one step of the arithmetic or of the authorization checks.
type Step struct {
	Name   string `json:"name"`
	Detail string `json:"detail"`
	Result string `json:"result,omitempty"`
}

// StopLossTrace is docs/pricing.md step 7 for the line's case (claim_id, contract_id).
type StopLossTrace struct {
	ContractID string      `json:"contract_id"`
	StopLoss   money.Cents `json:"stop_loss"` // S; 0 = the contract has none
	Total      money.Cents `json:"total"`     // T, the case's allowed_before_stop_loss
	Applied    bool        `json:"applied"`
	// LeftoverCents is S minus the floored shares, handed out one each by
	// largest remainder.
	LeftoverCents int64      `json:"leftover_cents,omitempty"`
	Lines         []CaseLine `json:"lines"`
}

// CaseLine is one priced line of a case.
type CaseLine struct {
	LineNumber            int64       `json:"line_number"`
	AllowedBeforeStopLoss money.Cents `json:"allowed_before_stop_loss"`
	// Share is floor(pre × S / T) and Remainder its remainder over T.
	Share     money.Cents `json:"share,omitempty"`
	Remainder int64       `json:"remainder,omitempty"`
	ExtraCent bool        `json:"extra_cent,omitempty"`
	Allowed   money.Cents `json:"allowed_amount"`
	Explained bool        `json:"explained,omitempty"`
}

// Outcome is the final pricing of the line, as the output files show it.
type Outcome struct {
	Code                  string      `json:"code,omitempty"`
	Severity              string      `json:"severity,omitempty"`
	Message               string      `json:"message,omitempty"`
	ContractID            string      `json:"contract_id,omitempty"`
	ContractNumber        string      `json:"contract_number,omitempty"`
	RateID                string      `json:"rate_id,omitempty"`
	RateKind              string      `json:"rate_kind,omitempty"`
	MatchPriority         int         `json:"match_priority,omitempty"`
	RateType              string      `json:"rate_type,omitempty"`
	RateValue             string      `json:"rate_value,omitempty"`
	PricedUnits           int64       `json:"priced_units,omitempty"`
	AllowedBeforeStopLoss money.Cents `json:"allowed_before_stop_loss"`
	StopLossReduction     money.Cents `json:"stop_loss_reduction"`
	Allowed               money.Cents `json:"allowed_amount"`
	AdminFee              money.Cents `json:"admin_fee"`
	NetPayable            money.Cents `json:"net_payable"`
	Flags                 string      `json:"flags,omitempty"`
	// Review lists the review exception codes the flags raise.
	Review []string `json:"review,omitempty"`
}

// ExplainLine explains a line priced on its own (a one-line claim).
func (e *Engine) ExplainLine(l claims.Line) *Explanation {
	return e.Explain([]claims.Item{{Line: l}}, 0)
}

// Explain traces the pricing of items[i] as PriceClaim prices it among
// items, which hold all the lines of its claim (the other lines matter for
// duplicate line numbers and the stop loss of the case). It does not modify
// items. i must index items, and the engine must have its rates: built or
// opened from an image with Options.Explain (or Options.Compile).
func (e *Engine) Explain(items []claims.Item, i int) *Explanation {
	_ = items[i] // i must index items
	if !e.explainable {
		panic("rates: Explain needs an Engine built or opened from an image with Options.Explain (or Options.Compile)")
	}
	traces := make([]*Explanation, len(items))
	seen := map[int64]bool{}
	for j := range items {
		l := &items[j].Line
		x := &Explanation{Line: lineFacts(l)}
		traces[j] = x
		switch {
		case l.Invalid != nil:
			x.res = claims.Result{Code: claims.InvalidRow, Message: l.Invalid.Error()}
		case seen[l.LineNumber]:
			x.res = claims.Result{Code: claims.DuplicateLine, Message: "line_number repeats an earlier line of this claim"}
		default:
			seen[l.LineNumber] = true
			e.traceLine(l, x)
		}
	}
	e.traceCases(items, traces)
	x := traces[i]
	x.Outcome = newOutcome(&x.res)
	return x
}

func lineFacts(l *claims.Line) LineFacts {
	f := LineFacts{
		ClaimID: strings.TrimSpace(l.Raw[claims.ClaimID]), VendorID: l.VendorID, CPT: l.CPT,
		Specialty: l.Specialty, VisitKind: l.VisitKind, POS: l.POS,
		LineNumber: l.LineNumber, ServiceDate: l.ServiceDate.String(), Units: l.Units,
		Billed: l.Billed, PriorAuth: l.PriorAuth,
	}
	if l.ClaimID != "" {
		f.ClaimID = l.ClaimID
	}
	for k := 0; k < l.NumMods; k++ {
		f.Modifiers = append(f.Modifiers, l.Modifiers[k])
	}
	if l.Invalid != nil {
		f.Invalid = l.Invalid.Error()
	}
	return f
}

// traceLine is priceLine with tracing (docs/pricing.md).
func (e *Engine) traceLine(l *claims.Line, x *Explanation) {
	res := &x.res
	*res = claims.Result{}
	ce := e.traceContract(l, x)
	if ce == nil {
		return
	}
	c := ce.c
	for _, r := range c.ExcludedServices {
		if r.Contains(l.CPT) {
			x.Contract.ExcludedBy = r.Lo
			if r.Hi != r.Lo {
				x.Contract.ExcludedBy += "-" + r.Hi
			}
			res.Code, res.Message = claims.ExcludedService, "code "+l.CPT+" is excluded by contract "+c.Number
			return
		}
	}
	best := e.traceRates(ce, l, x)
	var minUnits, maxUnits int64
	rt := x.Rate
	switch {
	case best != nil:
		r := best.r
		res.RateID, res.RateKind, res.MatchPriority = r.ID, r.Kind, best.priority
		res.RateType, res.RateValue = r.Type, r.Value
		res.ReviewByRate = r.RequiresReview
		minUnits, maxUnits = int64(r.MinUnits), int64(r.MaxUnits)
		if rt.Conflict {
			res.Flags |= claims.RateConflict
		}
	case c.HasDefaultRate:
		rt.Fallback = claims.KindContractDefault
		res.RateKind, res.MatchPriority = claims.KindContractDefault, contracts.PriorityContractDefault
		res.RateType, res.RateValue = c.DefaultRateType, c.DefaultRateValue
		res.Flags |= claims.ContractDefaultRate
	case e.opts.SystemDefault != nil:
		rt.Fallback = claims.KindSystemDefault
		res.RateKind, res.MatchPriority = claims.KindSystemDefault, contracts.PrioritySystemDefault
		res.RateType, res.RateValue = e.opts.SystemDefault.Type, e.opts.SystemDefault.Value
		res.Flags |= claims.SystemDefaultRate
	default:
		rt.Fallback = "NO_RATE"
		res.Code, res.Message = claims.NoRate, fmt.Sprintf("no rate of contract %s applies to code %s on %s and the contract has no default rate", c.Number, l.CPT, l.ServiceDate)
		return
	}
	x.step("rate", rateDesc(res), res.RateType.String()+" "+res.RateValue.String())

	// Units (docs/pricing.md step 4).
	res.PricedUnits = l.Units
	limits := "no unit limits"
	if minUnits > 0 || maxUnits > 0 {
		limits = "min " + optInt(minUnits) + ", max " + optInt(maxUnits)
	}
	switch {
	case minUnits > 0 && l.Units < minUnits:
		res.Code, res.Message = claims.UnitsBelowMinimum, fmt.Sprintf("%d units is below the minimum of %d for rate %s", l.Units, minUnits, res.RateID)
		x.step("units", fmt.Sprintf("%d units, %s: below the minimum", l.Units, limits), "UNITS_BELOW_MINIMUM")
		return
	case maxUnits > 0 && l.Units > maxUnits:
		res.PricedUnits = maxUnits
		res.Flags |= claims.UnitsCapped
		x.step("units", fmt.Sprintf("%d units, %s: capped", l.Units, limits), fmt.Sprintf("priced_units = %d (UNITS_CAPPED)", maxUnits))
	default:
		x.step("units", fmt.Sprintf("%d units, %s", l.Units, limits), fmt.Sprintf("priced_units = %d", l.Units))
	}

	// Amount (docs/pricing.md step 5), in exact rationals.
	amt, ok := x.traceAmount(res.RateType, res.RateValue, l.Billed, l.Units, res.PricedUnits, c.LesserOfBilled)
	if !ok {
		return
	}
	res.AllowedBeforeStopLoss = amt

	// Authorization and review (docs/pricing.md step 6).
	if l.PriorAuth == "" {
		switch {
		case best != nil && best.r.RequiresAuth:
			res.Code, res.Message = claims.PriorAuthMissing, "rate "+res.RateID+" requires prior authorization and the line has no prior_auth_number"
			x.step("prior auth", "rate "+res.RateID+" requires_auth and the line has no prior_auth_number", "PRIOR_AUTH_MISSING")
			return
		case c.TPA && c.TPAPriorAuthRequired:
			res.Code, res.Message = claims.PriorAuthMissing, "TPA contract "+c.Number+" requires prior authorization and the line has no prior_auth_number"
			x.step("prior auth", "TPA contract "+c.Number+" has tpa_prior_auth_required and the line has no prior_auth_number", "PRIOR_AUTH_MISSING")
			return
		}
		x.step("prior auth", "no prior_auth_number; neither the rate nor the contract requires one", "ok")
	} else {
		x.step("prior auth", "prior_auth_number "+l.PriorAuth+" present", "ok")
	}
	switch {
	case res.ReviewByRate:
		res.Flags |= claims.ReviewRequired
		x.step("review", "rate "+res.RateID+" has requires_review", "REVIEW_REQUIRED")
	case c.TPA && c.TPAMedicalNecessity:
		res.Flags |= claims.ReviewRequired
		x.step("review", "TPA contract "+c.Number+" has tpa_medical_necessity", "REVIEW_REQUIRED")
	}
}

func (x *Explanation) step(name, detail, result string) {
	x.Steps = append(x.Steps, Step{Name: name, Detail: detail, Result: result})
}

func optInt(n int64) string {
	if n <= 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func rateDesc(res *claims.Result) string {
	id := res.RateKind
	if res.RateID != "" {
		id = "rate " + res.RateID + " (" + res.RateKind + ")"
	}
	return fmt.Sprintf("%s, priority %d", id, res.MatchPriority)
}

// traceContract is selectContract with tracing (docs/pricing.md step 1).
func (e *Engine) traceContract(l *claims.Line, x *Explanation) *contractEntry {
	res := &x.res
	tr := &ContractTrace{}
	x.Contract = tr
	ve := e.vendors[l.VendorID]
	if ve == nil {
		tr.Rule = "the schedule has no contract of vendor " + l.VendorID
		res.Code, res.Message = claims.NoContract, "no contract for vendor "+l.VendorID
		return nil
	}
	d := l.ServiceDate
	var inForce []*contractEntry
	var latest *contractEntry
	for _, ce := range ve.priceable {
		c := ce.c
		if c.Effective <= d && d <= c.Expiration {
			inForce = append(inForce, ce)
		} else if c.Expiration < d && (latest == nil || c.Expiration > latest.c.Expiration) {
			latest = ce
		}
	}
	var chosen *contractEntry
	switch {
	case len(inForce) > 1:
		tr.Rule = fmt.Sprintf("step 1a: %d contracts are in force on %s", len(inForce), d)
		res.Code = claims.ContractOverlap
		res.Message = fmt.Sprintf("%d contracts of vendor %s are in force on %s", len(inForce), l.VendorID, d)
	case len(inForce) == 1:
		tr.Rule = "step 1a: exactly one contract is in force on " + d.String()
		chosen = inForce[0]
	case latest != nil:
		c := latest.c
		switch {
		case c.Status == contracts.Terminated:
			tr.Rule = "step 1b: none in force; the latest to expire before " + d.String() + " was terminated"
			res.Code = claims.ContractTerminated
			res.Message = fmt.Sprintf("contract %s was terminated (%s) and ended %s", c.Number, c.StatusReason, c.Expiration)
			res.Contract = c
		case c.AutoRenewal && c.RenewalTermMonths > 0:
			tr.Rule = fmt.Sprintf("step 1b: none in force; the latest to expire before %s auto-renews in %d-month terms (AUTO_RENEWED_TERM)", d, c.RenewalTermMonths)
			res.Flags |= claims.AutoRenewedTerm
			chosen = latest
		default:
			tr.Rule = "step 1b: none in force; the latest to expire before " + d.String() + " is honored (EXPIRED_CONTRACT_HONORED)"
			res.Flags |= claims.ExpiredContractHonored
			chosen = latest
		}
	default:
		tr.Rule = "step 1c: no priceable contract is in force or expired before " + d.String()
		for _, ce := range ve.inactive {
			if ce.c.Effective <= d && d <= ce.c.Expiration {
				res.Code = claims.ContractNotActive
				res.Message = fmt.Sprintf("contract %s covering %s is %s", ce.c.Number, d, ce.c.Status)
				res.Contract = ce.c
				break
			}
		}
		if res.Code == claims.NoException {
			res.Code = claims.NoContract
			res.Message = fmt.Sprintf("no contract of vendor %s covers %s", l.VendorID, d)
		}
	}

	for _, ce := range ve.priceable {
		c := ce.c
		cc := candidate(ce)
		switch {
		case c.Effective <= d && d <= c.Expiration:
			cc.Verdict, cc.Reason = VerdictInForce, fmt.Sprintf("in force: %s <= %s <= %s", c.Effective, d, c.Expiration)
		case ce == latest:
			cc.Verdict, cc.Reason = VerdictExpiredLatest, fmt.Sprintf("expired %s, the latest expiration before %s", c.Expiration, d)
		case c.Expiration < d:
			cc.Verdict, cc.Reason = VerdictExpired, fmt.Sprintf("expired %s, before %s expired", c.Expiration, latest.c.Number)
		case c.Effective > d:
			cc.Verdict, cc.Reason = VerdictNotYet, "takes effect "+c.Effective.String()+", after the service date"
		default:
			cc.Verdict, cc.Reason = VerdictNoTerm, "its term does not place it before, on or after the service date"
		}
		cc.Chosen = ce == chosen
		tr.Considered = append(tr.Considered, cc)
	}
	for _, ce := range ve.inactive {
		c := ce.c
		cc := candidate(ce)
		if c.Effective <= d && d <= c.Expiration {
			cc.Verdict, cc.Reason = VerdictNotActive, fmt.Sprintf("covers %s but is %s: only Active, Expired and Terminated contracts price", d, c.Status)
		} else {
			cc.Verdict, cc.Reason = VerdictNotPriceable, fmt.Sprintf("%s, and does not cover %s", c.Status, d)
		}
		tr.Considered = append(tr.Considered, cc)
	}
	if chosen == nil {
		return nil
	}
	tr.ChosenID = chosen.c.ID
	res.Contract = chosen.c
	if chosen.rejected != "" {
		tr.Rule += "; the contract was rejected by schedule validation"
		res.Code = claims.ContractInvalid
		res.Message = "contract " + chosen.c.Number + " was rejected: " + chosen.rejected
		return nil
	}
	return chosen
}

func candidate(ce *contractEntry) ContractCandidate {
	c := ce.c
	return ContractCandidate{
		ID: c.ID, Number: c.Number, Status: string(c.Status),
		Effective: c.Effective.String(), Expiration: c.Expiration.String(), Rejected: ce.rejected,
	}
}

// rateBucket returns the index bucket of r that the line looks in, or "".
func rateBucket(r *contracts.Rate, l *claims.Line) string {
	switch {
	case r.CPTCode != "":
		if r.CPTCode == l.CPT {
			return BucketCode
		}
	case r.IsRange():
		if r.RangeStart <= l.CPT && l.CPT <= r.RangeEnd {
			return BucketRange
		}
	case r.Specialty != "":
		if l.Specialty != "" && r.Specialty == l.Specialty {
			return BucketSpecialty
		}
	default:
		if l.VisitKind != "" && r.VisitKind == l.VisitKind {
			return BucketVisitKind
		}
	}
	return ""
}

// rejectRate returns the first criterion of r that does not accept the
// line and why, or criterionMatched. Without the active check it agrees
// with matches (asserted in the tests).
func rejectRate(r *contracts.Rate, l *claims.Line) (criterion, reason string) {
	switch {
	case !r.Active:
		return RejectInactive, "the rate is not active"
	case r.Effective > l.ServiceDate:
		return RejectEffective, "takes effect " + r.Effective.String() + ", after the service date"
	case r.End != 0 && r.End < l.ServiceDate:
		return RejectEnd, "ended " + r.End.String() + ", before the service date"
	case r.CPTCode != "" && r.CPTCode != l.CPT:
		return RejectCode, "code " + r.CPTCode + " is not " + l.CPT
	case r.CPTCode == "" && r.RangeStart != "" && (l.CPT < r.RangeStart || l.CPT > r.RangeEnd):
		return RejectRange, "range " + r.RangeStart + "-" + r.RangeEnd + " does not cover " + l.CPT
	case r.Modifier != "" && !l.HasModifier(r.Modifier):
		return RejectModifier, "needs modifier " + r.Modifier + "; the line has " + modList(l)
	case r.Specialty != "" && r.Specialty != l.Specialty:
		return RejectSpecialty, "needs specialty " + r.Specialty + "; the line has " + orNone(l.Specialty)
	case r.VisitKind != "" && r.VisitKind != l.VisitKind:
		return RejectVisitKind, "needs visit kind " + r.VisitKind + "; the line has " + orNone(l.VisitKind)
	case len(r.PlaceOfService) > 0 && !slices.Contains(r.PlaceOfService, l.POS):
		return RejectPOS, "needs place of service " + strings.Join(r.PlaceOfService, ",") + "; the line has " + orNone(l.POS)
	}
	return criterionMatched, "every criterion matches"
}

func modList(l *claims.Line) string {
	if l.NumMods == 0 {
		return "none"
	}
	return strings.Join(l.Modifiers[:l.NumMods], " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// rateCriteria describes the populated criteria of r.
func rateCriteria(r *contracts.Rate) string {
	var parts []string
	switch {
	case r.CPTCode != "":
		parts = append(parts, "code "+r.CPTCode)
	case r.IsRange():
		parts = append(parts, "range "+r.RangeStart+"-"+r.RangeEnd)
	}
	if r.Modifier != "" {
		parts = append(parts, "modifier "+r.Modifier)
	}
	if r.Specialty != "" {
		parts = append(parts, "specialty "+r.Specialty)
	}
	if r.VisitKind != "" {
		parts = append(parts, "visit kind "+r.VisitKind)
	}
	if len(r.PlaceOfService) > 0 {
		parts = append(parts, "pos "+strings.Join(r.PlaceOfService, ","))
	}
	term := r.Effective.String() + ".."
	if r.End != 0 {
		term += r.End.String()
	}
	parts = append(parts, term)
	if r.MinUnits > 0 || r.MaxUnits > 0 {
		parts = append(parts, "units "+optInt(int64(r.MinUnits))+".."+optInt(int64(r.MaxUnits)))
	}
	return strings.Join(parts, ", ")
}

// traceRates is rateIndex.lookup with tracing: it examines every rate of
// the contract in the line's buckets, orders the accepted ones by the full
// winner order and reports the tie-breaks and any RATE_CONFLICT.
func (e *Engine) traceRates(ce *contractEntry, l *claims.Line, x *Explanation) *indexedRate {
	rt := &RateTrace{ContractID: ce.c.ID}
	x.Rate = rt
	var accepted []*indexedRate
	var rejected []RateCandidate
	candidates := map[*contracts.Rate]RateCandidate{}
	rs := e.contractRates(ce)
	for k := range rs {
		r := &rs[k]
		rt.ContractRates++
		bucket := rateBucket(r, l)
		if bucket == "" {
			rt.Others++
			continue
		}
		rc := RateCandidate{
			ID: r.ID, Kind: r.Kind, Priority: e.sched.Priority[r.Kind], RateType: r.Type.String(),
			RateValue: r.Value.String(), Criteria: rateCriteria(r), Bucket: bucket,
		}
		rc.Criterion, rc.Reason = rejectRate(r, l)
		if rc.Criterion != criterionMatched {
			rejected = append(rejected, rc)
			continue
		}
		ir := new(indexedRate)
		*ir = newIndexedRate(r, e.sched.Priority)
		rc.Accepted = true
		rc.Priority = ir.priority
		candidates[r] = rc
		accepted = append(accepted, ir)
	}
	slices.SortFunc(accepted, func(a, b *indexedRate) int { return compareRates(*a, *b) })
	for n, ir := range accepted {
		rc := candidates[ir.r]
		rc.Rank = n + 1
		if n == 0 {
			rc.Reason = "every criterion matches; wins"
		} else {
			crit, detail := decidingCriterion(accepted[0], ir)
			rc.Reason = "every criterion matches; loses to " + accepted[0].r.ID + " on " + crit
			rt.TieBreaks = append(rt.TieBreaks, TieBreak{Winner: accepted[0].r.ID, Loser: ir.r.ID, Criterion: crit, Detail: detail})
		}
		rt.Candidates = append(rt.Candidates, rc)
	}
	slices.SortStableFunc(rejected, func(a, b RateCandidate) int { return compareIDs(a.ID, b.ID) })
	rt.Candidates = append(rt.Candidates, rejected...)
	if len(accepted) == 0 {
		return nil
	}
	best := accepted[0]
	rt.WinnerID = best.r.ID
	for _, other := range accepted[1:] {
		if compareKey(best, other) != 0 {
			break
		}
		if other.r.Type != best.r.Type || other.r.Value != best.r.Value {
			rt.Conflict = true
			rt.ConflictWith = append(rt.ConflictWith, other.r.ID)
		}
	}
	return best
}

var classNames = [...]string{classExact: "exact code", classRange: "code range", classNone: "no code"}

// decidingCriterion names the first criterion of the winner order (docs/pricing.md
// step 3 a-e) on which a beats b, with a sentence for people. The tests
// hold it to compareRates.
func decidingCriterion(a, b *indexedRate) (criterion, detail string) {
	switch {
	case a.priority != b.priority:
		return TiePriority, fmt.Sprintf("kind %s has priority %d, %s has %d (lower wins)", a.r.Kind, a.priority, b.r.Kind, b.priority)
	case a.class != b.class:
		return TieCPTMatch, fmt.Sprintf("%s beats %s", classNames[a.class], classNames[b.class])
	case a.class == classRange && a.r.RangeStart != b.r.RangeStart:
		return TieRangeStart, fmt.Sprintf("range %s-%s starts later than %s-%s (the nested range wins)", a.r.RangeStart, a.r.RangeEnd, b.r.RangeStart, b.r.RangeEnd)
	case a.class == classRange && a.r.RangeEnd != b.r.RangeEnd:
		return TieRangeEnd, fmt.Sprintf("range %s-%s ends earlier than %s-%s (the nested range wins)", a.r.RangeStart, a.r.RangeEnd, b.r.RangeStart, b.r.RangeEnd)
	case a.optional != b.optional:
		return TieOptional, fmt.Sprintf("%d optional criteria (modifier, place of service) matched against %d", a.optional, b.optional)
	case a.r.Effective != b.r.Effective:
		return TieEffective, fmt.Sprintf("effective %s is later than %s", a.r.Effective, b.r.Effective)
	}
	detail = fmt.Sprintf("tie on priority, code match, optional criteria and effective date; rate id %s is smaller than %s", a.r.ID, b.r.ID)
	if a.r.Type != b.r.Type || a.r.Value != b.r.Value {
		detail += fmt.Sprintf(" and the values differ (%s %s vs %s %s): RATE_CONFLICT", a.r.Type, a.r.Value, b.r.Type, b.r.Value)
	}
	return TieRateID, detail
}

// traceAmount computes allowed_before_stop_loss in exact rationals and
// records each step. It mirrors Allowed; the tests hold the two equal.
func (x *Explanation) traceAmount(t contracts.RateType, value money.Fixed, billed money.Cents, units, priced int64, lesser bool) (money.Cents, bool) {
	res := &x.res
	b := new(big.Rat).SetFrac64(int64(billed), 100)
	v := new(big.Rat).SetFrac64(int64(value), money.FixedScale)
	eff := new(big.Rat).Mul(b, big.NewRat(priced, units))
	var amt *big.Rat
	switch t {
	case contracts.Percentage:
		if priced != units {
			x.step("pro-rate", fmt.Sprintf("effective billed = %s × %d / %d units", billed, priced, units), fmtRat(eff))
		}
		amt = new(big.Rat).Mul(eff, v)
		amt.Quo(amt, big.NewRat(100, 1))
		x.step("percentage", fmt.Sprintf("%s × %s%%", fmtRat(eff), value), fmtRat(amt))
	case contracts.Amount:
		amt = new(big.Rat).Mul(v, big.NewRat(priced, 1))
		x.step("amount", fmt.Sprintf("%s × %d priced units", value, priced), fmtRat(amt))
	default:
		res.Code, res.Message = claims.InvalidRow, "rate has no rate type"
		x.step("amount", "the rate has no rate type", "INVALID_ROW")
		return 0, false
	}
	if lesser {
		what := "billed"
		if priced != units {
			what = "pro-rated billed"
		}
		if amt.Cmp(eff) > 0 {
			x.step("lesser of billed", fmt.Sprintf("min(%s, %s %s)", fmtRat(amt), what, fmtRat(eff)), fmtRat(eff)+" (billed is less)")
			amt = eff
		} else {
			x.step("lesser of billed", fmt.Sprintf("min(%s, %s %s)", fmtRat(amt), what, fmtRat(eff)), fmtRat(amt))
		}
	}
	c, ok := roundCents(amt)
	if !ok {
		res.Code, res.Message = claims.InvalidRow, ErrOverflow.Error()
		x.step("round", "the amount does not fit exact 64-bit cents", "INVALID_ROW")
		return 0, false
	}
	x.step("round", "half away from zero to cents: "+fmtRat(amt), "allowed_before_stop_loss = "+c.String())
	return c, true
}

// roundCents rounds a non-negative amount in dollars half away from zero
// to cents.
func roundCents(dollars *big.Rat) (money.Cents, bool) {
	n := new(big.Int).Mul(dollars.Num(), big.NewInt(200))
	d := new(big.Int).Mul(dollars.Denom(), big.NewInt(2))
	n.Add(n, dollars.Denom())
	n.Quo(n, d) // floor((2·100·x + 1) / 2) over the denominator
	if !n.IsInt64() {
		return 0, false
	}
	return money.Cents(n.Int64()), true
}

// fmtRat formats an exact amount: as a terminating decimal when it has at
// most eight places, else to eight places followed by "…".
func fmtRat(r *big.Rat) string {
	for p := 2; p <= 8; p++ {
		s := r.FloatString(p)
		back, ok := new(big.Rat).SetString(s)
		if ok && back.Cmp(r) == 0 {
			return s
		}
	}
	return r.FloatString(8) + "…"
}

// traceCases applies stop loss per case and the admin fee (docs/pricing.md step 7) to the
// traced lines, mirroring finishCases and applyStopLoss.
func (e *Engine) traceCases(items []claims.Item, traces []*Explanation) {
	done := make([]bool, len(items))
	for i := range items {
		if !traces[i].res.Priced() || done[i] {
			continue
		}
		c := traces[i].res.Contract
		var members []int
		var total int64
		for j := i; j < len(items); j++ {
			if traces[j].res.Priced() && traces[j].res.Contract == c {
				members = append(members, j)
				total += int64(traces[j].res.AllowedBeforeStopLoss)
				done[j] = true
			}
		}
		sl := &StopLossTrace{ContractID: c.ID, StopLoss: c.StopLoss, Total: money.Cents(total)}
		s := int64(c.StopLoss)
		for _, j := range members {
			r := &traces[j].res
			sl.Lines = append(sl.Lines, CaseLine{LineNumber: items[j].Line.LineNumber, AllowedBeforeStopLoss: r.AllowedBeforeStopLoss})
		}
		if s > 0 && total > s {
			sl.Applied = true
			left := s
			for k, j := range members {
				r := &traces[j].res
				q, rem := new(big.Int).QuoRem(
					new(big.Int).Mul(big.NewInt(int64(r.AllowedBeforeStopLoss)), big.NewInt(s)),
					big.NewInt(total), new(big.Int))
				sl.Lines[k].Share, sl.Lines[k].Remainder = money.Cents(q.Int64()), rem.Int64()
				left -= q.Int64()
			}
			sl.LeftoverCents = left
			order := make([]int, len(members))
			for k := range order {
				order[k] = k
			}
			slices.SortStableFunc(order, func(a, b int) int {
				if c := cmp.Compare(sl.Lines[b].Remainder, sl.Lines[a].Remainder); c != 0 {
					return c
				}
				return cmp.Compare(sl.Lines[a].LineNumber, sl.Lines[b].LineNumber)
			})
			for k := 0; k < int(left); k++ {
				sl.Lines[order[k]].ExtraCent = true
			}
			for k, j := range members {
				cl := &sl.Lines[k]
				cl.Allowed = cl.Share
				if cl.ExtraCent {
					cl.Allowed++
				}
				traces[j].res.Allowed = cl.Allowed
				traces[j].res.Flags |= claims.StopLossApplied
			}
		} else {
			for k, j := range members {
				sl.Lines[k].Allowed = sl.Lines[k].AllowedBeforeStopLoss
				traces[j].res.Allowed = sl.Lines[k].Allowed
			}
		}
		pct := new(big.Rat).SetFrac64(int64(c.AdminFeePct), money.FixedScale)
		for k, j := range members {
			x := traces[j]
			r := &x.res
			line := *sl
			line.Lines = slices.Clone(sl.Lines)
			line.Lines[k].Explained = true
			x.StopLoss = &line
			if sl.Applied {
				cl := sl.Lines[k]
				detail := fmt.Sprintf("case T = %s > S = %s: floor(%s × %s / %s) = %s, remainder %d/%d",
					sl.Total, sl.StopLoss, cl.AllowedBeforeStopLoss, sl.StopLoss, sl.Total, cl.Share, cl.Remainder, total)
				if cl.ExtraCent {
					detail += fmt.Sprintf("; one of the %d leftover cents (largest remainders)", sl.LeftoverCents)
				}
				x.step("stop loss", detail, "allowed_amount = "+r.Allowed.String()+" (STOP_LOSS_APPLIED)")
			} else if s > 0 {
				x.step("stop loss", fmt.Sprintf("case T = %s <= S = %s", sl.Total, sl.StopLoss), "allowed_amount = "+r.Allowed.String())
			} else {
				x.step("stop loss", "the contract has no stop loss", "allowed_amount = "+r.Allowed.String())
			}
			r.StopLossReduction = r.AllowedBeforeStopLoss - r.Allowed
			fee := money.Cents(0)
			if c.AdminFeePct > 0 && r.Allowed > 0 {
				exact := new(big.Rat).SetFrac64(int64(r.Allowed), 100)
				exact.Mul(exact, pct).Quo(exact, big.NewRat(100, 1))
				fee, _ = roundCents(exact) // at most the allowed amount: fits
				x.step("admin fee", fmt.Sprintf("%s × %s%% = %s, rounded half away from zero", r.Allowed, c.AdminFeePct, fmtRat(exact)), "admin_fee = "+fee.String())
			} else {
				x.step("admin fee", fmt.Sprintf("admin_fee_pct %s", c.AdminFeePct), "admin_fee = 0.00")
			}
			r.AdminFee = fee
			r.NetPayable = r.Allowed - r.AdminFee
			x.step("net payable", fmt.Sprintf("%s − %s", r.Allowed, r.AdminFee), "net_payable = "+r.NetPayable.String())
		}
	}
}

func newOutcome(r *claims.Result) Outcome {
	o := Outcome{
		Message: r.Message, AllowedBeforeStopLoss: r.AllowedBeforeStopLoss, StopLossReduction: r.StopLossReduction,
		Allowed: r.Allowed, AdminFee: r.AdminFee, NetPayable: r.NetPayable, Flags: r.Flags.String(),
	}
	if r.Code != claims.NoException {
		o.Code, o.Severity = r.Code.String(), r.Code.Severity()
	}
	if r.Contract != nil {
		o.ContractID, o.ContractNumber = r.Contract.ID, r.Contract.Number
	}
	o.RateID = r.RateID
	if r.Priced() {
		o.RateKind, o.MatchPriority, o.RateType, o.RateValue = r.RateKind, r.MatchPriority, r.RateType.String(), r.RateValue.String()
		o.PricedUnits = r.PricedUnits
		for _, c := range r.Flags.ReviewCodes(nil) {
			o.Review = append(o.Review, c.String())
		}
	}
	return o
}

// String renders the explanation as multi-line text for a terminal.
func (x *Explanation) String() string {
	var b strings.Builder
	l := &x.Line
	fmt.Fprintf(&b, "Line %s #%d  vendor %s  code %s", l.ClaimID, l.LineNumber, l.VendorID, l.CPT)
	if len(l.Modifiers) > 0 {
		fmt.Fprintf(&b, "  modifiers %s", strings.Join(l.Modifiers, " "))
	}
	fmt.Fprintf(&b, "\n  service %s  units %d  billed %s  specialty %s  visit kind %s  pos %s  prior auth %s\n",
		l.ServiceDate, l.Units, l.Billed, orNone(l.Specialty), orNone(l.VisitKind), orNone(l.POS), orNone(l.PriorAuth))
	if l.Invalid != "" {
		fmt.Fprintf(&b, "  invalid row: %s\n", l.Invalid)
	}

	if ct := x.Contract; ct != nil {
		b.WriteString("\nContract (docs/pricing.md step 1)\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, c := range ct.Considered {
			mark := " "
			if c.Chosen {
				mark = "*"
			}
			reason := c.Reason
			if c.Rejected != "" {
				reason += "; REJECTED at load: " + c.Rejected
			}
			fmt.Fprintf(tw, "  %s %s\t%s\t%s\t%s..%s\t%s\t%s\n", mark, c.ID, c.Number, c.Status, c.Effective, c.Expiration, c.Verdict, reason)
		}
		tw.Flush()
		fmt.Fprintf(&b, "  decision: %s\n", ct.Rule)
		if ct.ExcludedBy != "" {
			fmt.Fprintf(&b, "  excluded services: %s matches %s\n", ct.ExcludedBy, l.CPT)
		}
	}

	if rt := x.Rate; rt != nil {
		fmt.Fprintf(&b, "\nRates of %s (docs/pricing.md step 3): %d in the line's buckets, %d others name another code, range, specialty or visit kind\n",
			rt.ContractID, len(rt.Candidates), rt.Others)
		if len(rt.Candidates) > 0 {
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  rank\trate\tkind\tprio\tvalue\tbucket\tcriteria\tverdict")
			for _, c := range rt.Candidates {
				rank, verdict := "-", "rejected: "+c.Criterion+": "+c.Reason
				if c.Accepted {
					rank, verdict = strconv.Itoa(c.Rank), "accepted: "+strings.TrimPrefix(c.Reason, "every criterion matches; ")
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s %s\t%s\t%s\t%s\n", rank, c.ID, c.Kind, c.Priority, c.RateType, c.RateValue, c.Bucket, c.Criteria, verdict)
			}
			tw.Flush()
		}
		for _, tb := range rt.TieBreaks {
			fmt.Fprintf(&b, "  tie-break %s over %s on %s: %s\n", tb.Winner, tb.Loser, tb.Criterion, tb.Detail)
		}
		switch {
		case rt.Conflict:
			fmt.Fprintf(&b, "  RATE_CONFLICT: %s ties with %s on (a)-(d) with a different value\n", strings.Join(rt.ConflictWith, ", "), rt.WinnerID)
		case rt.WinnerID != "":
			fmt.Fprintf(&b, "  winner %s; no RATE_CONFLICT\n", rt.WinnerID)
		}
		switch rt.Fallback {
		case claims.KindContractDefault:
			b.WriteString("  no rate accepted: the contract default rate applies (CONTRACT_DEFAULT_RATE)\n")
		case claims.KindSystemDefault:
			b.WriteString("  no rate accepted and no contract default: the system default rate applies (SYSTEM_DEFAULT_RATE)\n")
		case "NO_RATE":
			b.WriteString("  no rate accepted, no contract default and no system default: NO_RATE\n")
		}
	}

	if len(x.Steps) > 0 {
		b.WriteString("\nSteps\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, s := range x.Steps {
			res := s.Result
			if res != "" {
				res = "→ " + res
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Name, s.Detail, res)
		}
		tw.Flush()
	}

	if sl := x.StopLoss; sl != nil && sl.Applied {
		fmt.Fprintf(&b, "\nStop loss of case (%s, %s): S = %s, T = %s, %d leftover cents\n", l.ClaimID, sl.ContractID, sl.StopLoss, sl.Total, sl.LeftoverCents)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  line\tbefore\tshare\tremainder\textra cent\tallowed")
		for _, cl := range sl.Lines {
			mark := ""
			if cl.Explained {
				mark = "\t<- this line"
			}
			extra := ""
			if cl.ExtraCent {
				extra = "+0.01"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s%s\n", cl.LineNumber, cl.AllowedBeforeStopLoss, cl.Share, cl.Remainder, extra, cl.Allowed, mark)
		}
		tw.Flush()
	}

	o := &x.Outcome
	b.WriteString("\nResult\n")
	if o.Code != "" {
		fmt.Fprintf(&b, "  %s (%s): %s\n", o.Code, o.Severity, o.Message)
		return b.String()
	}
	rate := o.RateKind
	if o.RateID != "" {
		rate = "rate " + o.RateID + " " + o.RateKind
	}
	fmt.Fprintf(&b, "  priced by %s %s, %s priority %d, %s %s, %d units\n", o.ContractID, o.ContractNumber, rate, o.MatchPriority, o.RateType, o.RateValue, o.PricedUnits)
	fmt.Fprintf(&b, "  allowed before stop loss %s  stop loss reduction %s  allowed %s  admin fee %s  net payable %s\n",
		o.AllowedBeforeStopLoss, o.StopLossReduction, o.Allowed, o.AdminFee, o.NetPayable)
	flags := o.Flags
	if flags == "" {
		flags = "none"
	}
	fmt.Fprintf(&b, "  flags: %s", flags)
	if len(o.Review) > 0 {
		fmt.Fprintf(&b, "  (review: %s)", strings.Join(o.Review, ", "))
	}
	b.WriteString("\n")
	return b.String()
}
