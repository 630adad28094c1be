package businesscentral

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Entity set names of the custom API pages.
const (
	ContractsSet = "providerContracts"
	RatesSet     = "contractRates"
)

// blankDate is how Business Central represents an empty Date field.
const blankDate = "0001-01-01"

// BlankEnum is the name of a blank enum value (AL value " ") in Business
// Central's API with schema version 2.0 (the default of custom API pages
// since BC 24): enum values travel as their AL names, XML-encoded, so the
// blank name " " is "_x0020_". A blank value is written as BlankEnum too.
const BlankEnum = "_x0020_"

// EnumName returns the Business Central API name of the enum value v as
// repricer spells it ("" for blank): the AL value name with every
// character other than a letter, digit or underscore XML-encoded as
// _xHHHH_ (so "" is BlankEnum and "Prod. Order" "Prod_x002E__x0020_Order").
// It and EnumValue are the only places where enum values are mapped.
func EnumName(v string) string {
	if v == "" {
		return BlankEnum
	}
	var b strings.Builder
	for _, r := range v {
		if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "_x%04X_", r)
		}
	}
	return b.String()
}

// EnumValue returns the value repricer spells for a Business Central enum
// name: the inverse of EnumName. A blank value, whether BC sends it as
// BlankEnum (schema 2.0) or as the caption " " (schema 1.0), is "".
func EnumValue(name string) string {
	var b strings.Builder
	for {
		j := strings.IndexByte(name, '_')
		if j < 0 {
			b.WriteString(name)
			break
		}
		b.WriteString(name[:j])
		name = name[j:]
		if len(name) >= 7 && name[1] == 'x' && name[6] == '_' {
			if n, err := strconv.ParseUint(name[2:6], 16, 32); err == nil {
				b.WriteRune(rune(n))
				name = name[7:]
				continue
			}
		}
		b.WriteByte('_')
		name = name[1:]
	}
	return strings.TrimSpace(b.String())
}

// ContractPayload is the canonical body of a providerContracts entity: the
// fields repricer owns. Enum fields (status, defaultRateType) hold BC enum
// names (EnumName). Money is a decimal string with two places, rates
// and percentages are exact decimal strings (up to six places), dates are
// YYYY-MM-DD (0001-01-01 when not set). Field order is fixed, so the JSON
// encoding is deterministic.
type ContractPayload struct {
	ContractNumber       string `json:"contractNumber"`
	SourceID             string `json:"sourceId"`
	VendorNumber         string `json:"vendorNumber"`
	Status               string `json:"status"`
	StatusReason         string `json:"statusReason"`
	EffectiveDate        string `json:"effectiveDate"`
	ExpirationDate       string `json:"expirationDate"`
	AutoRenewal          bool   `json:"autoRenewal"`
	RenewalTermMonths    int    `json:"renewalTermMonths"`
	RenewalNoticeDays    int    `json:"renewalNoticeDays"`
	TPA                  bool   `json:"tpa"`
	TPAName              string `json:"tpaName"`
	TPAMedicalNecessity  bool   `json:"tpaMedicalNecessity"`
	TPAPriorAuthRequired bool   `json:"tpaPriorAuthRequired"`
	DefaultRateType      string `json:"defaultRateType"`
	DefaultRateValue     Dec    `json:"defaultRateValue"`
	HasDefaultRate       bool   `json:"hasDefaultRate"`
	StopLossAmount       Dec    `json:"stopLossAmount"`
	AdminFeePct          Dec    `json:"adminFeePct"`
	ExcludedServices     string `json:"excludedServices"`
	LesserOfBilled       bool   `json:"lesserOfBilled"`
	SourceUpdatedAt      string `json:"sourceUpdatedAt"`
}

// RatePayload is the canonical body of a contractRates entity. rateType
// holds a BC enum name (EnumName).
type RatePayload struct {
	ContractNumber string `json:"contractNumber"`
	RateID         string `json:"rateId"`
	Kind           string `json:"kind"`
	RateType       string `json:"rateType"`
	Value          Dec    `json:"value"`
	Specialty      string `json:"specialty"`
	VisitKind      string `json:"visitKind"`
	CPTCode        string `json:"cptCode"`
	RangeStart     string `json:"rangeStart"`
	RangeEnd       string `json:"rangeEnd"`
	Modifier       string `json:"modifier"`
	PlaceOfService string `json:"placeOfService"`
	EffectiveDate  string `json:"effectiveDate"`
	EndDate        string `json:"endDate"`
	MinUnits       int    `json:"minUnits"`
	MaxUnits       int    `json:"maxUnits"`
	RequiresAuth   bool   `json:"requiresAuth"`
	RequiresReview bool   `json:"requiresReview"`
	Active         bool   `json:"active"`
}

// Dec is an exact decimal. It is sent as a JSON string (the requests carry
// IEEE754Compatible=true) and read from a string or a JSON number.
type Dec string

// UnmarshalJSON accepts "12.5" and 12.5.
func (d *Dec) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = Dec(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*d = Dec(n.String())
	return nil
}

func fixedDec(f money.Fixed) Dec { return Dec(f.String()) }

// normalize rewrites decimals as repricer formats them, so a value that
// Business Central echoes as 12.5 hashes like the "12.50" that was sent.
func (p *ContractPayload) normalize() {
	p.Status, p.DefaultRateType = normEnum(p.Status), normEnum(p.DefaultRateType)
	p.DefaultRateValue = normFixed(p.DefaultRateValue)
	p.AdminFeePct = normFixed(p.AdminFeePct)
	if c, err := money.ParseCents(string(p.StopLossAmount)); err == nil {
		p.StopLossAmount = Dec(c.String())
	}
	p.EffectiveDate, p.ExpirationDate = normDate(p.EffectiveDate), normDate(p.ExpirationDate)
}

func (p *RatePayload) normalize() {
	p.RateType = normEnum(p.RateType)
	p.Value = normFixed(p.Value)
	p.EffectiveDate, p.EndDate = normDate(p.EffectiveDate), normDate(p.EndDate)
}

// normEnum rewrites an enum value as read into its canonical name, so a
// blank value hashes the same however BC spells it.
func normEnum(name string) string { return EnumName(EnumValue(name)) }

func normFixed(d Dec) Dec {
	if f, err := money.ParseFixed(string(d)); err == nil {
		return fixedDec(f)
	}
	return d
}

func normDate(s string) string {
	if s == "" {
		return blankDate
	}
	return s
}

func dateString(d contracts.Date) string {
	if d.IsZero() {
		return blankDate
	}
	return d.String()
}

// NewContractPayload returns the canonical header of c.
func NewContractPayload(c *contracts.Contract) ContractPayload {
	ex := make([]string, len(c.ExcludedServices))
	for i, r := range c.ExcludedServices {
		if r.Lo == r.Hi {
			ex[i] = r.Lo
		} else {
			ex[i] = r.Lo + "-" + r.Hi
		}
	}
	return ContractPayload{
		ContractNumber:       c.Number,
		SourceID:             c.ID,
		VendorNumber:         c.VendorID,
		Status:               EnumName(string(c.Status)),
		StatusReason:         c.StatusReason,
		EffectiveDate:        dateString(c.Effective),
		ExpirationDate:       dateString(c.Expiration),
		AutoRenewal:          c.AutoRenewal,
		RenewalTermMonths:    c.RenewalTermMonths,
		RenewalNoticeDays:    c.RenewalNoticeDays,
		TPA:                  c.TPA,
		TPAName:              c.TPAName,
		TPAMedicalNecessity:  c.TPAMedicalNecessity,
		TPAPriorAuthRequired: c.TPAPriorAuthRequired,
		DefaultRateType:      EnumName(c.DefaultRateType.String()),
		DefaultRateValue:     fixedDec(c.DefaultRateValue),
		HasDefaultRate:       c.HasDefaultRate,
		StopLossAmount:       Dec(c.StopLoss.String()),
		AdminFeePct:          fixedDec(c.AdminFeePct),
		ExcludedServices:     strings.Join(ex, ";"),
		LesserOfBilled:       c.LesserOfBilled,
		SourceUpdatedAt:      c.UpdatedAt,
	}
}

// NewRatePayload returns the canonical body of r under contract number.
func NewRatePayload(number string, r *contracts.Rate) RatePayload {
	return RatePayload{
		ContractNumber: number,
		RateID:         r.ID,
		Kind:           r.Kind,
		RateType:       EnumName(r.Type.String()),
		Value:          fixedDec(r.Value),
		Specialty:      r.Specialty,
		VisitKind:      r.VisitKind,
		CPTCode:        r.CPTCode,
		RangeStart:     r.RangeStart,
		RangeEnd:       r.RangeEnd,
		Modifier:       r.Modifier,
		PlaceOfService: strings.Join(r.PlaceOfService, ","),
		EffectiveDate:  dateString(r.Effective),
		EndDate:        dateString(r.End),
		MinUnits:       r.MinUnits,
		MaxUnits:       r.MaxUnits,
		RequiresAuth:   r.RequiresAuth,
		RequiresReview: r.RequiresReview,
		Active:         r.Active,
	}
}

func hashJSON(v any) string {
	b, _ := json.Marshal(v) // plain structs of strings, ints and bools always encode
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Hash returns the SHA-256 of the canonical JSON of p.
func (p ContractPayload) Hash() string { return hashJSON(p) }

// Hash returns the SHA-256 of the canonical JSON of p.
func (p RatePayload) Hash() string { return hashJSON(p) }

// desired is a contract as it must appear in Business Central.
type desired struct {
	contract   *contracts.Contract
	header     ContractPayload
	headerHash string
	rates      map[string]RatePayload // by rate id
	rateHash   map[string]string
	hash       string // header and rates together
}

func newDesired(c *contracts.Contract, rates []*contracts.Rate) *desired {
	d := &desired{contract: c, header: NewContractPayload(c), rates: map[string]RatePayload{}, rateHash: map[string]string{}}
	d.headerHash = d.header.Hash()
	for _, r := range rates {
		p := NewRatePayload(c.Number, r)
		d.rates[r.ID] = p
		d.rateHash[r.ID] = p.Hash()
	}
	ids := make([]string, 0, len(d.rates))
	for id := range d.rates {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := sha256.New()
	h.Write([]byte(d.headerHash))
	for _, id := range ids {
		h.Write([]byte("\n" + id + "=" + d.rateHash[id]))
	}
	d.hash = hex.EncodeToString(h.Sum(nil))
	return d
}

// remoteContract is a providerContracts entity as read from Business Central.
type remoteContract struct {
	ID           string `json:"id"`
	ETag         string `json:"@odata.etag"`
	LastModified string `json:"lastModifiedDateTime"`
	ContractPayload
}

func (r *remoteContract) hash() string {
	p := r.ContractPayload
	p.normalize()
	return p.Hash()
}

// remoteRate is a contractRates entity as read from Business Central.
type remoteRate struct {
	ID           string `json:"id"`
	ETag         string `json:"@odata.etag"`
	LastModified string `json:"lastModifiedDateTime"`
	RatePayload
}

func (r *remoteRate) hash() string {
	p := r.RatePayload
	p.normalize()
	return p.Hash()
}
