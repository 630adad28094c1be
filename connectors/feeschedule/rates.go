package feeschedule

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// Errors of the rate conversion and the fee history.
var (
	ErrNoContract  = errors.New("contract id is required")
	ErrNoDate      = errors.New("schedule has no effective date")
	ErrOutOfOrder  = errors.New("schedules are not in strictly increasing effective-date order")
	ErrNoRate      = errors.New("no rate")
	ErrAmbiguous   = errors.New("more than one rate")
	ErrNoPOSConfig = errors.New("place-of-service set is empty")
)

// FacilityPOS returns the CMS place-of-service codes paid at the facility
// fee: 19 off-campus and 22 on-campus outpatient hospital, 21 inpatient
// hospital, 23 emergency room, 24 ambulatory surgical center, 26 military
// treatment facility, 31 skilled nursing facility, 34 hospice, 41/42
// ambulance, 51 inpatient psychiatric facility, 52 psychiatric partial
// hospitalization, 53 community mental health center, 56 psychiatric
// residential treatment center, 61 comprehensive inpatient rehabilitation.
func FacilityPOS() []string {
	return []string{"19", "21", "22", "23", "24", "26", "31", "34", "41", "42", "51", "52", "53", "56", "61"}
}

// NonFacilityPOS returns the place-of-service codes paid at the non-facility
// fee: every CMS code in use in 2014-2016 that is not in FacilityPOS, e.g.
// 11 office, 12 home, 20 urgent care, 32 nursing facility, 49 independent
// clinic, 50 FQHC, 72 rural health clinic, 81 independent lab, 99 other.
// The telehealth codes 02 and 10 are in neither set: a payer decides which
// fee they take, so they match only a rate without places of service.
func NonFacilityPOS() []string {
	return []string{
		"01", "03", "04", "05", "06", "07", "08", "09",
		"11", "12", "13", "14", "15", "16", "17", "18", "20", "25", "27",
		"32", "33", "49", "50", "54", "55", "57", "58", "60", "62", "65",
		"71", "72", "81", "99",
	}
}

// Option configures ToRates, Chain and NewHistory.
type Option func(*options)

type options struct {
	prefix      string
	nonFacility []string
	facility    []string
	split       bool
}

// WithIDPrefix sets the first part of rate IDs (default: the contract ID).
func WithIDPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithPlaceOfService replaces the two place-of-service sets.
func WithPlaceOfService(nonFacility, facility []string) Option {
	return func(o *options) {
		o.nonFacility = normCodes(nonFacility)
		o.facility = normCodes(facility)
	}
}

// SplitEqualFees emits separate NFS and FS rates even when the two fees are
// equal (by default one rate without places of service is emitted).
func SplitEqualFees() Option { return func(o *options) { o.split = true } }

func normCodes(in []string) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		if c = contracts.NormalizeCode(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

func buildOptions(contractID string, opts []Option) (options, error) {
	o := options{prefix: contractID, nonFacility: NonFacilityPOS(), facility: FacilityPOS()}
	for _, f := range opts {
		f(&o)
	}
	if len(o.nonFacility) == 0 || len(o.facility) == 0 {
		return o, ErrNoPOSConfig
	}
	return o, nil
}

// Setting says which fee a rate carries; it is the last part of its ID.
type Setting string

// Settings.
const (
	SettingNFS Setting = "NFS" // non-facility fee, non-facility places of service
	SettingFS  Setting = "FS"  // facility fee, facility places of service
	SettingAll Setting = "ALL" // both fees equal, no places of service
)

// RateID returns the deterministic rate ID
// <prefix>-<yyyymmdd>-<code>[-<modifier>]-<NFS|FS|ALL>, e.g.
// WA-20140101-99213-NFS or WA-20140101-71010-26-ALL.
func RateID(prefix string, effective contracts.Date, code, modifier string, setting Setting) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteByte('-')
	d := effective.String()
	b.WriteString(strings.ReplaceAll(d, "-", ""))
	b.WriteByte('-')
	b.WriteString(code)
	if modifier != "" {
		b.WriteByte('-')
		b.WriteString(modifier)
	}
	b.WriteByte('-')
	b.WriteString(string(setting))
	return b.String()
}

// ToRates converts a parsed schedule into Amount rates of contractID (see
// the package documentation). Rates are in row order, NFS before FS; their
// Source is the schedule name and the row's line.
func ToRates(s *Schedule, contractID string, opts ...Option) ([]contracts.Rate, error) {
	if contractID == "" {
		return nil, ErrNoContract
	}
	if s.Effective.IsZero() {
		return nil, &FileError{File: s.Name, Err: ErrNoDate}
	}
	o, err := buildOptions(contractID, opts)
	if err != nil {
		return nil, err
	}
	return toRates(s, contractID, &o, 0), nil
}

func toRates(s *Schedule, contractID string, o *options, end contracts.Date) []contracts.Rate {
	out := make([]contracts.Rate, 0, 2*len(s.Rows))
	mk := func(r *Row, fee money.Cents, setting Setting, pos []string) contracts.Rate {
		return contracts.Rate{
			ID:             RateID(o.prefix, s.Effective, r.Code, r.Modifier, setting),
			ContractID:     contractID,
			Kind:           contracts.KindCPT,
			Type:           contracts.Amount,
			Value:          fee.Fixed(),
			CPTCode:        r.Code,
			Modifier:       r.Modifier,
			PlaceOfService: slices.Clone(pos),
			Effective:      s.Effective,
			End:            end,
			RequiresAuth:   r.PARequired,
			Active:         true,
			Source:         contracts.Source{File: s.Name, Row: r.Line},
		}
	}
	for i := range s.Rows {
		r := &s.Rows[i]
		if r.HasNFS && r.HasFS && r.NFS == r.FS && !o.split {
			out = append(out, mk(r, r.NFS, SettingAll, nil))
			continue
		}
		if r.HasNFS {
			out = append(out, mk(r, r.NFS, SettingNFS, o.nonFacility))
		}
		if r.HasFS {
			out = append(out, mk(r, r.FS, SettingFS, o.facility))
		}
	}
	return out
}

// Chain converts schedules, given in strictly increasing effective-date
// order, into one list of rates applied as successive versions: the rates
// of each schedule end the day before the next schedule's effective date,
// and those of the last schedule are open-ended. A code missing from a
// later schedule thus has no rate from that schedule's date on.
func Chain(contractID string, schedules []*Schedule, opts ...Option) ([]contracts.Rate, error) {
	if contractID == "" {
		return nil, ErrNoContract
	}
	o, err := buildOptions(contractID, opts)
	if err != nil {
		return nil, err
	}
	n := 0
	for i, s := range schedules {
		if s.Effective.IsZero() {
			return nil, &FileError{File: s.Name, Err: ErrNoDate}
		}
		if i > 0 && s.Effective <= schedules[i-1].Effective {
			return nil, &FileError{File: s.Name, Err: fmt.Errorf("%w: %s is effective %s, not after %s of %s",
				ErrOutOfOrder, s.Name, s.Effective, schedules[i-1].Effective, schedules[i-1].Name)}
		}
		n += 2 * len(s.Rows)
	}
	out := make([]contracts.Rate, 0, n)
	for i, s := range schedules {
		var end contracts.Date
		if i+1 < len(schedules) {
			end = schedules[i+1].Effective - 1
		}
		out = append(out, toRates(s, contractID, &o, end)...)
	}
	return out, nil
}

// History answers the contracted fee of a code on a date from chained
// schedules. It looks at exactly the code and modifier asked for (the
// global line is modifier ""); it is a check of the imported rates, not the
// pricing engine.
type History struct {
	rates       []contracts.Rate
	byCode      map[string][]int // code|modifier -> indexes into rates
	nonFacility string           // representative POS of each setting
	facility    string
}

// NewHistory chains schedules (see Chain) and indexes the rates.
func NewHistory(contractID string, schedules []*Schedule, opts ...Option) (*History, error) {
	rates, err := Chain(contractID, schedules, opts...)
	if err != nil {
		return nil, err
	}
	o, err := buildOptions(contractID, opts)
	if err != nil {
		return nil, err
	}
	h := &History{rates: rates, byCode: make(map[string][]int),
		nonFacility: representative(o.nonFacility, "11"), facility: representative(o.facility, "21")}
	for i := range rates {
		k := rates[i].CPTCode + "|" + rates[i].Modifier
		h.byCode[k] = append(h.byCode[k], i)
	}
	return h, nil
}

// representative returns pref when set holds it, else the first code.
func representative(set []string, pref string) string {
	if slices.Contains(set, pref) {
		return pref
	}
	return set[0]
}

// Rates returns a copy of the chained rates.
func (h *History) Rates() []contracts.Rate { return slices.Clone(h.rates) }

// RateAt returns the one active rate for code and modifier in effect on the
// date at place of service pos: ErrNoRate when none is, ErrAmbiguous when
// more than one is.
func (h *History) RateAt(code, modifier, pos string, on contracts.Date) (contracts.Rate, error) {
	code, modifier, pos = contracts.NormalizeCode(code), contracts.NormalizeCode(modifier), contracts.NormalizeCode(pos)
	found := -1
	for _, i := range h.byCode[code+"|"+modifier] {
		r := &h.rates[i]
		if !r.Active || on < r.Effective || (!r.End.IsZero() && on > r.End) {
			continue
		}
		if len(r.PlaceOfService) > 0 && !slices.Contains(r.PlaceOfService, pos) {
			continue
		}
		if found >= 0 {
			return contracts.Rate{}, fmt.Errorf("%w for %s %s at POS %s on %s: %s and %s",
				ErrAmbiguous, code, modifier, pos, on, h.rates[found].ID, r.ID)
		}
		found = i
	}
	if found < 0 {
		return contracts.Rate{}, fmt.Errorf("%w for %s %s at POS %s on %s", ErrNoRate, code, modifier, pos, on)
	}
	return h.rates[found], nil
}

// Fee returns the fee for code and modifier on the date, at the facility
// fee when facility is true. It asks RateAt with POS 21 (inpatient
// hospital) or 11 (office), or with the first code of the configured set
// when that set lacks 21 or 11.
func (h *History) Fee(code, modifier string, facility bool, on contracts.Date) (money.Cents, error) {
	pos := h.nonFacility
	if facility {
		pos = h.facility
	}
	r, err := h.RateAt(code, modifier, pos, on)
	if err != nil {
		return 0, err
	}
	c, ok := r.Value.Cents()
	if !ok {
		return 0, fmt.Errorf("rate %s: value %s is not whole cents", r.ID, r.Value)
	}
	return c, nil
}
