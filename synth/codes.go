package synth

import (
	"math"
	"math/rand/v2"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// The procedure code universe: the numeric CPT-like codes 00100..99599
// followed by HCPCS-like level II codes (a letter and four digits). Pool
// index order is string order, so a code range [code(a), code(b)] holds
// exactly the pool codes a..b.
const (
	numericCodes = 99500 // "00100" .. "99599"
	hcpcsPer     = 2000  // "A0000" .. "A1999" per letter
	hcpcsLetters = "AEGJKLQ"
	poolSize     = numericCodes + len(hcpcsLetters)*hcpcsPer
	codeLen      = 5
)

// codePool holds every code of the universe as substrings of one string,
// so generators reuse the strings instead of allocating one per rate/line.
type codePool struct {
	codes []string
}

func newCodePool() *codePool {
	buf := make([]byte, 0, poolSize*codeLen)
	for k := 0; k < poolSize; k++ {
		buf = appendCode(buf, k)
	}
	all := string(buf)
	p := &codePool{codes: make([]string, poolSize)}
	for k := range p.codes {
		p.codes[k] = all[k*codeLen : (k+1)*codeLen]
	}
	return p
}

func appendCode(dst []byte, k int) []byte {
	if k < numericCodes {
		n := k + 100
		return append(dst, byte('0'+n/10000), byte('0'+n/1000%10), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
	}
	k -= numericCodes
	n := k % hcpcsPer
	return append(dst, hcpcsLetters[k/hcpcsPer], byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// codeIndex is the pool index of a pool code, or -1.
func codeIndex(code string) int {
	if len(code) != codeLen {
		return -1
	}
	n := 0
	for i := 1; i < codeLen; i++ {
		c := code[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	switch c := code[0]; {
	case c >= '0' && c <= '9':
		n += int(c-'0') * 10000
		if n < 100 || n >= numericCodes+100 {
			return -1
		}
		return n - 100
	default:
		for i := 0; i < len(hcpcsLetters); i++ {
			if hcpcsLetters[i] == c && n < hcpcsPer {
				return numericCodes + i*hcpcsPer + n
			}
		}
	}
	return -1
}

// Reference vocabularies. They are read-only tables.
var (
	specialties = [...]string{
		"ANESTHESIOLOGY", "CARDIOLOGY", "DERMATOLOGY", "EMERGENCY MEDICINE", "ENDOCRINOLOGY",
		"FAMILY MEDICINE", "GASTROENTEROLOGY", "GENERAL SURGERY", "HEMATOLOGY ONCOLOGY", "INFECTIOUS DISEASE",
		"INTERNAL MEDICINE", "NEPHROLOGY", "NEUROLOGY", "NEUROSURGERY", "OBSTETRICS GYNECOLOGY",
		"OPHTHALMOLOGY", "ORTHOPEDIC SURGERY", "OTOLARYNGOLOGY", "PAIN MANAGEMENT", "PATHOLOGY",
		"PEDIATRICS", "PHYSICAL THERAPY", "PLASTIC SURGERY", "PODIATRY", "PSYCHIATRY",
		"PSYCHOLOGY", "PULMONOLOGY", "RADIATION ONCOLOGY", "RADIOLOGY", "RHEUMATOLOGY",
		"SLEEP MEDICINE", "SPEECH THERAPY", "UROLOGY", "VASCULAR SURGERY", "HOME HEALTH",
		"URGENT CARE", "CHIROPRACTIC", "AUDIOLOGY", "OCCUPATIONAL THERAPY", "NUTRITION",
	}
	visitKinds       = [...]string{"OFFICE", "TELEHEALTH", "INPATIENT", "OUTPATIENT", "EMERGENCY", "PREVENTIVE", "HOME"}
	pairedModifiers  = [...]string{"26", "TC"}
	kindModifiers    = [...]string{"80", "50", "59", "LT", "RT", "25", "51", "76"}
	lineModifiers    = [...]string{"59", "25", "LT", "RT", "GT", "95", "XU", "51"}
	facilityPOS      = "21,22,23"
	termReasons      = [...]string{"Credentialing lapsed", "Breach of contract", "Practice closed", "Vendor requested termination", "Network restructuring"}
	tpaNames         = [...]string{"Sound TPA", "Cascade Benefit Administrators", "Northwest Claims Services", "Summit Health TPA"}
	professionalPOS  = [...]string{"11", "11", "11", "11", "11", "11", "11", "22", "21", "02", "19", "23", "81", "12"}
	claimSizeWeights = [...]int{35, 20, 13, 9, 7, 5, 4, 3, 2, 2} // 1..10 lines
)

// rng is the seeded random source of one generator, with the helpers the
// generators share.
type rng struct{ *rand.Rand }

func newRNG(seed int64, stream uint64) rng {
	return rng{rand.New(rand.NewPCG(uint64(seed), stream))}
}

// chance reports true with probability p.
func (r rng) chance(p float64) bool { return r.Float64() < p }

// between returns an int in [lo, hi].
func (r rng) between(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + r.IntN(hi-lo+1)
}

// logUniform returns a value in [lo, hi) with a log-uniform distribution.
func (r rng) logUniform(lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo)))
}

// dollars returns an amount in [lo, hi) dollars, log-uniform, in cents.
func (r rng) dollars(lo, hi float64) money.Cents {
	return money.Cents(math.Round(r.logUniform(lo, hi) * 100))
}

// dateIn returns a date in [lo, hi].
func (r rng) dateIn(lo, hi contracts.Date) contracts.Date {
	if hi <= lo {
		return lo
	}
	return lo + contracts.Date(r.Int64N(int64(hi-lo)+1))
}

func monthStart(d contracts.Date) contracts.Date {
	y, m, _ := d.Civil()
	return contracts.DateOf(y, m, 1)
}
