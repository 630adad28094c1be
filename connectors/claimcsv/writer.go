package claimcsv

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/money"
)

// PricedColumns are the columns of the priced-lines file.
var PricedColumns = append(claims.FieldNames[:len(claims.FieldNames):len(claims.FieldNames)],
	"contract_id", "contract_number", "rate_id", "rate_kind", "match_priority", "rate_type",
	"rate_value", "priced_units", "allowed_before_stop_loss", "stop_loss_reduction",
	"allowed_amount", "admin_fee", "net_payable", "flags")

// ExceptionColumns are the columns of the exceptions file: the line's key
// and source, the code, and the raw input values.
var ExceptionColumns = append([]string{"claim_id", "line_number", "source_file", "source_row", "code", "severity", "message"},
	claims.FieldNames[claims.VendorID:]...)

// Writer writes priced lines and exceptions as two CSV streams.
type Writer struct {
	priced, exc *bufio.Writer
	enc         batchEncoder
}

// NewWriter returns a Writer and writes both headers.
func NewWriter(priced, exceptions io.Writer) (*Writer, error) {
	w := &Writer{priced: bufio.NewWriterSize(priced, 1<<16), exc: bufio.NewWriterSize(exceptions, 1<<16)}
	if _, err := w.priced.Write(appendRecord(nil, PricedColumns)); err != nil {
		return nil, err
	}
	if _, err := w.exc.Write(appendRecord(nil, ExceptionColumns)); err != nil {
		return nil, err
	}
	return w, nil
}

// Write writes each item to the priced file or the exceptions file (and
// both for priced lines with review codes).
func (w *Writer) Write(ctx context.Context, items []claims.Item) error {
	w.enc.Reset()
	w.enc.Encode(items)
	return w.WriteEncoded(ctx, &w.enc)
}

// batchEncoder holds the priced and exception records of a batch.
type batchEncoder struct{ priced, exc []byte }

var _ claims.BatchEncoder = (*batchEncoder)(nil)

func (e *batchEncoder) Reset()  { e.priced, e.exc = e.priced[:0], e.exc[:0] }
func (e *batchEncoder) Finish() {}

func (e *batchEncoder) Encode(items []claims.Item) {
	var codes [4]claims.Code
	for i := range items {
		it := &items[i]
		if it.Result.Priced() {
			e.priced = AppendPriced(e.priced, it)
		}
		for _, code := range ExceptionCodes(codes[:0], &it.Result) {
			e.exc = AppendException(e.exc, it, code)
		}
	}
}

// NewBatchEncoder returns an encoder of a batch's records for
// WriteEncoded. It shares no state with w, so pricing workers encode in
// parallel.
func (w *Writer) NewBatchEncoder() claims.BatchEncoder { return &batchEncoder{} }

// WriteEncoded writes the records of an encoder from NewBatchEncoder.
func (w *Writer) WriteEncoded(ctx context.Context, enc claims.BatchEncoder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e := enc.(*batchEncoder)
	if _, err := w.priced.Write(e.priced); err != nil {
		return err
	}
	_, err := w.exc.Write(e.exc)
	return err
}

// Close flushes both streams; it does not close the underlying writers.
func (w *Writer) Close() error {
	if err := w.priced.Flush(); err != nil {
		return err
	}
	return w.exc.Flush()
}

// ExceptionCodes appends the exception codes a result reports: its error
// code, or the review codes of a priced line.
func ExceptionCodes(dst []claims.Code, r *claims.Result) []claims.Code {
	if !r.Priced() {
		return append(dst, r.Code)
	}
	return r.Flags.ReviewCodes(dst)
}

// AppendPriced appends the priced-file record of it.
func AppendPriced(dst []byte, it *claims.Item) []byte {
	l, r := &it.Line, &it.Result
	for f := claims.Field(0); f < claims.NumFields; f++ {
		switch f {
		case claims.Units:
			dst = strconv.AppendInt(dst, l.Units, 10)
		case claims.BilledAmount:
			dst = l.Billed.Append(dst)
		default:
			dst = appendRaw(dst, l.Raw[f], l.Plain)
		}
		dst = append(dst, ',')
	}
	dst = appendField(dst, r.Contract.ID)
	dst = append(dst, ',')
	dst = appendField(dst, r.Contract.Number)
	dst = append(dst, ',')
	dst = appendField(dst, r.RateID)
	dst = append(dst, ',')
	dst = appendField(dst, r.RateKind)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, int64(r.MatchPriority), 10)
	dst = append(dst, ',')
	dst = append(dst, r.RateType.String()...)
	dst = append(dst, ',')
	dst = r.RateValue.Append(dst)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, r.PricedUnits, 10)
	for _, c := range [...]money.Cents{r.AllowedBeforeStopLoss, r.StopLossReduction, r.Allowed, r.AdminFee, r.NetPayable} {
		dst = append(dst, ',')
		dst = c.Append(dst)
	}
	dst = append(dst, ',')
	dst = r.Flags.Append(dst)
	return append(dst, '\n')
}

// AppendException appends one exceptions-file record of it for code.
func AppendException(dst []byte, it *claims.Item, code claims.Code) []byte {
	l, r := &it.Line, &it.Result
	dst = appendField(dst, l.Raw[claims.ClaimID])
	dst = append(dst, ',')
	dst = appendField(dst, l.Raw[claims.LineNumber])
	dst = append(dst, ',')
	dst = appendField(dst, l.Source.File)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, l.Source.Row, 10)
	dst = append(dst, ',')
	dst = append(dst, code.String()...)
	dst = append(dst, ',')
	dst = append(dst, code.Severity()...)
	dst = append(dst, ',')
	dst = appendField(dst, ExceptionMessage(r, code))
	for f := claims.VendorID; f < claims.NumFields; f++ {
		dst = append(dst, ',')
		dst = appendRaw(dst, l.Raw[f], l.Plain)
	}
	return append(dst, '\n')
}

// ExceptionMessage is the message of one exception row.
func ExceptionMessage(r *claims.Result, code claims.Code) string {
	switch code {
	case claims.ExpiredContractHonoredReview:
		return "contract " + r.Contract.Number + " expired " + r.Contract.Expiration.String() + "; its rates were honored"
	case claims.RateConflictReview:
		return "rates of different value tie with rate " + r.RateID + "; the smallest rate_id was used"
	case claims.ReviewRequiredReview:
		if r.ReviewByRate {
			return "rate " + r.RateID + " requires medical review"
		}
		return "TPA contract " + r.Contract.Number + " requires a medical necessity review"
	}
	return r.Message
}

func appendRecord(dst []byte, fields []string) []byte {
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendField(dst, f)
	}
	return append(dst, '\n')
}

// appendRaw appends a raw input value; plain values (from a CSV record
// without quotes) hold no comma, quote or line break and need quoting only
// for a leading space or tab.
func appendRaw(dst []byte, f string, plain bool) []byte {
	if plain && f != "" && f[0] != ' ' && f[0] != '\t' && f != `\.` {
		return append(dst, f...)
	}
	return appendField(dst, f)
}

// appendField appends f, quoted the way encoding/csv quotes it.
func appendField(dst []byte, f string) []byte {
	if !needsQuotes(f) {
		return append(dst, f...)
	}
	dst = append(dst, '"')
	dst = append(dst, strings.ReplaceAll(f, `"`, `""`)...)
	return append(dst, '"')
}

func needsQuotes(f string) bool {
	if f == "" {
		return false
	}
	if f == `\.` || f[0] == ' ' || f[0] == '\t' {
		return true
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	return false
}
