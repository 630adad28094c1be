package claimparquet

import (
	"strconv"
	"strings"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// An exception row's input columns that have a type are written typed
// (line_number and units INT64, service_date DATE, billed_amount
// DECIMAL(18,2)), null where the input was empty or did not parse; the text
// of a value that did not parse goes into the column of the same name with
// a _raw suffix, which is null otherwise. The CSV exceptions file keeps the
// input text in the columns themselves.
var typedInputs = [...]claims.Field{claims.LineNumber, claims.ServiceDate, claims.Units, claims.BilledAmount}

// RawColumns are the exceptions file's columns after those of
// claimcsv.ExceptionColumns: the text of typedInputs' values that did not
// parse.
var RawColumns = [len(typedInputs)]string{"line_number_raw", "service_date_raw", "units_raw", "billed_amount_raw"}

// typedIndex is the position of input column f in typedInputs, or -1.
func typedIndex(f claims.Field) int {
	for i, t := range typedInputs {
		if t == f {
			return i
		}
	}
	return -1
}

// maxDecimal18 bounds the unscaled value of a DECIMAL(18,2).
const maxDecimal18 = 999_999_999_999_999_999

// typedInput is an exception row's typedInputs: value i (days since
// 1970-01-01 for the date, cents for the amount) is set where ok[i], and
// raw[i] holds the text that did not parse.
type typedInput struct {
	value [len(typedInputs)]int64
	ok    [len(typedInputs)]bool
	raw   [len(typedInputs)]string
}

// parseTyped parses l's typedInputs on their own (Parse stops caring about
// a row at its first bad field; an exception row shows every value).
func parseTyped(l *claims.Line, epoch int64) (t typedInput) {
	for i, f := range typedInputs {
		s := strings.TrimSpace(l.Raw[f])
		if s == "" {
			continue
		}
		var v int64
		var err error
		switch f {
		case claims.ServiceDate:
			var d contracts.Date
			if d, err = contracts.ParseDate(s); err == nil {
				v = int64(d) - epoch
			}
		case claims.BilledAmount:
			var c money.Cents
			if c, err = money.ParseCents(s); err == nil && (c > maxDecimal18 || c < -maxDecimal18) {
				err = strconv.ErrRange
			}
			v = int64(c)
		default:
			v, err = strconv.ParseInt(s, 10, 64)
		}
		if err != nil {
			t.raw[i] = l.Raw[f]
			continue
		}
		t.value[i], t.ok[i] = v, true
	}
	return t
}
