// Package money holds the exact fixed-point number types the engine uses for
// money and rates, and the few exact integer operations pricing needs.
//
// Amounts are int64 cents (Cents). Rates, percentages and other decimal
// settings are int64 millionths (Fixed), so a rate value may carry up to six
// decimal places. Products are computed in 128-bit (or big.Int) arithmetic so
// intermediate values keep full precision; rounding happens only where the
// caller asks for it.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// Cents is an amount of money in cents.
type Cents int64

// Fixed is a decimal number in millionths (six decimal places).
type Fixed int64

// FixedScale is the number of Fixed units in 1.
const FixedScale = 1_000_000

// ErrSyntax reports a value that is not a plain decimal number.
var ErrSyntax = errors.New("not a plain decimal number")

// ErrPrecision reports a value with more decimal places than the type holds.
var ErrPrecision = errors.New("too many decimal places")

// ErrRange reports a value too large for the type.
var ErrRange = errors.New("value out of range")

// ParseCents parses a plain decimal such as "123", "-4.5" or "123.45" into
// cents. It rejects exponents, thousands separators and more than two places.
func ParseCents(s string) (Cents, error) {
	v, err := parseScaled(s, 2)
	return Cents(v), err
}

// ParseFixed parses a plain decimal with at most six decimal places.
func ParseFixed(s string) (Fixed, error) {
	v, err := parseScaled(s, 6)
	return Fixed(v), err
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000}

func parseScaled(s string, places int) (int64, error) {
	i, neg := 0, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var v int64
	digits, frac, dot := 0, 0, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if dot {
				frac++
				if frac > places {
					return 0, ErrPrecision
				}
			}
			digits++
			if v > (math.MaxInt64-9)/10 {
				return 0, ErrRange
			}
			v = v*10 + int64(c-'0')
		case c == '.' && !dot:
			dot = true
		default:
			return 0, ErrSyntax
		}
	}
	if digits == 0 || (dot && frac == 0) {
		return 0, ErrSyntax
	}
	m := pow10[places-frac]
	if v > math.MaxInt64/m {
		return 0, ErrRange
	}
	v *= m
	if neg {
		v = -v
	}
	return v, nil
}

// String formats c as a plain decimal with exactly two places.
func (c Cents) String() string {
	var buf [24]byte
	return string(c.Append(buf[:0]))
}

// Append appends the String form of c to dst.
func (c Cents) Append(dst []byte) []byte {
	u := uint64(c)
	if c < 0 {
		dst = append(dst, '-')
		u = uint64(-c)
	}
	dst = strconv.AppendUint(dst, u/100, 10)
	r := u % 100
	return append(dst, '.', byte('0'+r/10), byte('0'+r%10))
}

// String formats f with at least two and at most six decimal places,
// dropping trailing zeros beyond the second.
func (f Fixed) String() string {
	var buf [32]byte
	return string(f.Append(buf[:0]))
}

// Append appends the String form of f to dst.
func (f Fixed) Append(dst []byte) []byte {
	u := uint64(f)
	if f < 0 {
		dst = append(dst, '-')
		u = uint64(-f)
	}
	dst = strconv.AppendUint(dst, u/FixedScale, 10)
	frac := u % FixedScale
	digits := [6]byte{}
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 6
	for n > 2 && digits[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, digits[:n]...)
}

// Cents converts f (a money amount in dollars) to cents when that is exact.
func (f Fixed) Cents() (Cents, bool) {
	const per = FixedScale / 100
	return Cents(f / per), f%per == 0
}

// Fixed converts c to a Fixed number of dollars.
func (c Cents) Fixed() Fixed { return Fixed(c) * (FixedScale / 100) }

// MulDivRound returns a*b/d rounded half away from zero, for a, b >= 0 and
// d > 0, computed exactly. ok is false when the result does not fit in int64.
func MulDivRound(a, b, d int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi < uint64(d) {
		q, r := bits.Div64(hi, lo, uint64(d))
		// Round half away from zero: compare 2r with d without overflow.
		if r >= uint64(d)-r {
			q++
		}
		if q > math.MaxInt64 {
			return 0, false
		}
		return int64(q), true
	}
	return 0, false
}

// MulDivFloor returns floor(a*b/d) and the remainder, for a, b >= 0, d > 0.
// ok is false when the quotient does not fit in int64.
func MulDivFloor(a, b, d int64) (q, rem int64, ok bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(d) {
		return 0, 0, false
	}
	uq, ur := bits.Div64(hi, lo, uint64(d))
	if uq > math.MaxInt64 {
		return 0, 0, false
	}
	return int64(uq), int64(ur), true
}

// RatDivRound rounds the exact quotient of the products of nums over the
// products of dens half away from zero. All factors must be >= 0 and the
// dens > 0. It is the slow, always-exact path used when the 128-bit fast
// path could overflow.
func RatDivRound(nums, dens []int64) (int64, error) {
	n, d := big.NewInt(1), big.NewInt(1)
	for _, x := range nums {
		n.Mul(n, big.NewInt(x))
	}
	for _, x := range dens {
		d.Mul(d, big.NewInt(x))
	}
	// floor((2n + d) / 2d)
	n.Mul(n, big.NewInt(2)).Add(n, d)
	d.Mul(d, big.NewInt(2))
	n.Quo(n, d)
	if !n.IsInt64() {
		return 0, fmt.Errorf("amount %w", ErrRange)
	}
	return n.Int64(), nil
}

// MarshalJSON writes c as a JSON string with two decimal places, so that
// consumers never read money through binary floating point.
func (c Cents) MarshalJSON() ([]byte, error) {
	b := append([]byte{'"'}, c.Append(nil)...)
	return append(b, '"'), nil
}

// UnmarshalJSON reads the string form written by MarshalJSON.
func (c *Cents) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("money: %s is not a quoted decimal", b)
	}
	v, err := ParseCents(string(b[1 : len(b)-1]))
	*c = v
	return err
}
