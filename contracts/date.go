package contracts

import (
	"errors"
	"time"
)

// Date is a calendar date as a day number (1 = 0001-01-01). The zero Date
// means "not set", so optional dates need no extra flag.
type Date int32

// ErrDate reports a date that is not a valid YYYY-MM-DD calendar date.
var ErrDate = errors.New("not a valid YYYY-MM-DD date")

// ParseDate parses a strict YYYY-MM-DD date.
func ParseDate(s string) (Date, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, ErrDate
	}
	y, ok1 := atoiN(s[0:4])
	m, ok2 := atoiN(s[5:7])
	d, ok3 := atoiN(s[8:10])
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, ErrDate
	}
	return DateOf(y, m, d), nil
}

func atoiN(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// DateOf returns the Date of a valid year, month and day.
func DateOf(y, m, d int) Date {
	// Days from civil, after Howard Hinnant's algorithm, shifted so that
	// 0001-01-01 is day 1.
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return Date(era*146097 + doe - 305)
}

// Civil returns the year, month and day of a set date.
func (d Date) Civil() (y, m, day int) {
	z := int(d) + 305
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, day
}

// IsZero reports whether the date is not set.
func (d Date) IsZero() bool { return d == 0 }

// String formats the date as YYYY-MM-DD, or "" when not set.
func (d Date) String() string {
	if d == 0 {
		return ""
	}
	return string(d.Append(nil))
}

// Append appends the YYYY-MM-DD form of a set date to dst.
func (d Date) Append(dst []byte) []byte {
	y, m, day := d.Civil()
	return append(dst,
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-',
		byte('0'+day/10), byte('0'+day%10))
}

// AddMonths returns the date n months later, clamped to the month's end.
func (d Date) AddMonths(n int) Date {
	y, m, day := d.Civil()
	m += n
	y += (m - 1) / 12
	m = (m-1)%12 + 1
	if day > daysIn(y, m) {
		day = daysIn(y, m)
	}
	return DateOf(y, m, day)
}

// DateFromTime returns the calendar date of t in its location.
func DateFromTime(t time.Time) Date {
	y, m, d := t.Date()
	return DateOf(y, int(m), d)
}
