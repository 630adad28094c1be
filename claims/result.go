package claims

import (
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Code is an exception code.
type Code uint8

// Exception codes. Error codes mean the line was not priced.
const (
	NoException Code = iota
	InvalidRow
	DuplicateLine
	ContractOverlap
	ContractTerminated
	ContractNotActive
	NoContract
	ContractInvalid
	ExcludedService
	NoRate
	UnitsBelowMinimum
	PriorAuthMissing
	// Review codes: the line is priced and also reported.
	ExpiredContractHonoredReview
	RateConflictReview
	ReviewRequiredReview
	numCodes
)

var codeNames = [numCodes]string{
	"", "INVALID_ROW", "DUPLICATE_LINE", "CONTRACT_OVERLAP", "CONTRACT_TERMINATED",
	"CONTRACT_NOT_ACTIVE", "NO_CONTRACT", "CONTRACT_INVALID", "EXCLUDED_SERVICE", "NO_RATE",
	"UNITS_BELOW_MINIMUM", "PRIOR_AUTH_MISSING",
	"EXPIRED_CONTRACT_HONORED", "RATE_CONFLICT", "REVIEW_REQUIRED",
}

// AllCodes lists every exception code.
func AllCodes() []Code {
	out := make([]Code, 0, numCodes-1)
	for c := InvalidRow; c < numCodes; c++ {
		out = append(out, c)
	}
	return out
}

func (c Code) String() string { return codeNames[c] }

// Severity is "error" for codes that leave a line unpriced, "review" for
// priced lines that must be looked at.
func (c Code) Severity() string {
	if c >= ExpiredContractHonoredReview {
		return "review"
	}
	return "error"
}

// Flags is a set of pricing flags.
type Flags uint16

// Flags, in alphabetical order so that a set formats sorted.
const (
	AutoRenewedTerm Flags = 1 << iota
	ContractDefaultRate
	ExpiredContractHonored
	RateConflict
	ReviewRequired
	StopLossApplied
	SystemDefaultRate
	UnitsCapped
	numFlags = iota
)

var flagNames = [numFlags]string{
	"AUTO_RENEWED_TERM", "CONTRACT_DEFAULT_RATE", "EXPIRED_CONTRACT_HONORED", "RATE_CONFLICT",
	"REVIEW_REQUIRED", "STOP_LOSS_APPLIED", "SYSTEM_DEFAULT_RATE", "UNITS_CAPPED",
}

// reviewCodes maps the flags that also raise a review exception.
var reviewCodes = [...]struct {
	flag Flags
	code Code
}{
	{ExpiredContractHonored, ExpiredContractHonoredReview},
	{RateConflict, RateConflictReview},
	{ReviewRequired, ReviewRequiredReview},
}

// ReviewCodes returns the review exception codes that f raises, sorted.
func (f Flags) ReviewCodes(dst []Code) []Code {
	for _, rc := range reviewCodes {
		if f&rc.flag != 0 {
			dst = append(dst, rc.code)
		}
	}
	return dst
}

// Append appends the flag names of f, sorted and separated by ';'.
func (f Flags) Append(dst []byte) []byte {
	first := true
	for i := 0; i < numFlags; i++ {
		if f&(1<<i) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ';')
		}
		first = false
		dst = append(dst, flagNames[i]...)
	}
	return dst
}

func (f Flags) String() string { return string(f.Append(nil)) }

// Rate kinds reported for the two default tiers.
const (
	KindContractDefault = "CONTRACT_DEFAULT"
	KindSystemDefault   = "SYSTEM_DEFAULT"
)

// Result is the pricing of one line.
type Result struct {
	// Code is NoException for a priced line, or the error code.
	Code    Code
	Message string

	Contract      *contracts.Contract // nil when no contract was chosen
	RateID        string              // "" for default rates
	RateKind      string
	MatchPriority int
	RateType      contracts.RateType
	RateValue     money.Fixed
	PricedUnits   int64

	AllowedBeforeStopLoss money.Cents
	StopLossReduction     money.Cents
	Allowed               money.Cents
	AdminFee              money.Cents
	NetPayable            money.Cents
	Flags                 Flags
	// ReviewByRate reports that the rate's requires_review (rather than a
	// TPA's medical-necessity review) set the ReviewRequired flag.
	ReviewByRate bool
}

// Priced reports whether the line was priced.
func (r *Result) Priced() bool { return r.Code == NoException }

// Item is a line with its result, the unit that flows between stages.
type Item struct {
	Line   Line
	Result Result
}

// BatchEncoder encodes the output rows of one batch of items, so that a
// writer's formatting and compression run in the pricing workers, in
// parallel, and the writer itself only copies bytes. A writer that offers
// one hands it out per batch buffer; each encoder is used by one goroutine
// at a time.
type BatchEncoder interface {
	// Reset empties the encoder for a new batch.
	Reset()
	// Encode appends the output rows of items, in order. The items'
	// strings may point into a buffer that is reused once the batch is
	// written: an encoder copies what it keeps.
	Encode(items []Item)
	// Finish completes the batch (for example, compresses its last pages)
	// before the encoder is handed to the writer.
	Finish()
}
