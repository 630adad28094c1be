package synth

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
)

// Parquet layout of WriteParquet.
const (
	ParquetBatchRows    = 64 * 1024
	ParquetRowGroupRows = 1 << 20
)

// WriteError is a failure to write generated claims.
type WriteError struct {
	Format string // "csv" or "parquet"
	Lines  int64  // lines written before the failure
	Err    error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("synth: write %s claims after %d lines: %v", e.Format, e.Lines, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// WriteCSV writes a header (claims.FieldNames) and every line of g to w as
// CSV, and returns the number of lines written. It flushes its buffer but
// does not close w.
func WriteCSV(ctx context.Context, w io.Writer, g *ClaimGen) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var n int64
	fail := func(err error) (int64, error) { return n, &WriteError{Format: "csv", Lines: n, Err: err} }
	buf := make([]byte, 0, 4096)
	for i, name := range claims.FieldNames {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, name...)
	}
	buf = append(buf, '\n')
	var row Row
	var field []byte
	for g.Next(&row) {
		for f := claims.Field(0); f < claims.NumFields; f++ {
			if f > 0 {
				buf = append(buf, ',')
			}
			field = row.appendField(field[:0], f)
			buf = appendCSVField(buf, field)
		}
		buf = append(buf, '\n')
		n++
		if len(buf) >= 3072 {
			if _, err := bw.Write(buf); err != nil {
				return fail(err)
			}
			buf = buf[:0]
			if n%65536 == 0 {
				if err := ctx.Err(); err != nil {
					return fail(err)
				}
			}
		}
	}
	if _, err := bw.Write(buf); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	return n, nil
}

// appendCSVField appends a field, quoted when it needs to be.
func appendCSVField(dst, field []byte) []byte {
	quote := false
	for _, c := range field {
		if c == ',' || c == '"' || c == '\n' || c == '\r' {
			quote = true
			break
		}
	}
	if !quote {
		return append(dst, field...)
	}
	dst = append(dst, '"')
	for _, c := range field {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// BilledType is the Arrow type of billed_amount: DECIMAL(18,2).
var BilledType = &arrow.Decimal128Type{Precision: 18, Scale: 2}

// ParquetSchema returns the canonical typed claim schema: strings for the
// text columns, INT64 line_number and units, DATE32 service_date and
// DECIMAL(18,2) billed_amount. Every column is nullable so that files can
// carry missing values; units null means the default of 1.
func ParquetSchema() *arrow.Schema {
	fields := make([]arrow.Field, claims.NumFields)
	for f := claims.Field(0); f < claims.NumFields; f++ {
		var t arrow.DataType = arrow.BinaryTypes.String
		switch f {
		case claims.LineNumber, claims.Units:
			t = arrow.PrimitiveTypes.Int64
		case claims.ServiceDate:
			t = arrow.FixedWidthTypes.Date32
		case claims.BilledAmount:
			t = BilledType
		}
		fields[f] = arrow.Field{Name: claims.FieldNames[f], Type: t, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// unixEpoch is 1970-01-01, day 0 of DATE32.
var unixEpoch = contracts.DateOf(1970, 1, 1)

// WriteParquet writes every line of g to w as Parquet with ParquetSchema:
// record batches of ParquetBatchRows, row groups of ParquetRowGroupRows,
// snappy compression. Bad rows carry nulls in required columns or
// out-of-range numbers (a DATE32 column cannot hold "2024-02-30"). It
// returns the number of lines written and does not close w.
func WriteParquet(ctx context.Context, w io.Writer, g *ClaimGen) (n int64, err error) {
	fail := func(err error) (int64, error) { return n, &WriteError{Format: "parquet", Lines: n, Err: err} }
	schema := ParquetSchema()
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(ParquetRowGroupRows),
		parquet.WithCreatedBy("repricer synth"),
		// Nearly unique columns gain nothing from dictionaries.
		parquet.WithDictionaryFor("claim_id", false),
		parquet.WithDictionaryFor("member_id", false),
		parquet.WithDictionaryFor("provider_npi", false),
		parquet.WithDictionaryFor("prior_auth_number", false),
	)
	// The file writer closes a sink that is an io.Closer; hide Close so
	// that the caller keeps ownership of w and checks its Close error.
	fw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{w}, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return fail(err)
	}
	closed := false
	defer func() {
		if !closed {
			fw.Close()
		}
	}()
	rb := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer rb.Release()
	str := func(f claims.Field) *array.StringBuilder { return rb.Field(int(f)).(*array.StringBuilder) }
	var (
		claimID   = str(claims.ClaimID)
		lineNo    = rb.Field(int(claims.LineNumber)).(*array.Int64Builder)
		vendor    = str(claims.VendorID)
		member    = str(claims.MemberID)
		npi       = str(claims.ProviderNPI)
		cpt       = str(claims.CPTCode)
		mods      = str(claims.Modifiers)
		spec      = str(claims.Specialty)
		visit     = str(claims.VisitKind)
		pos       = str(claims.PlaceOfService)
		date      = rb.Field(int(claims.ServiceDate)).(*array.Date32Builder)
		units     = rb.Field(int(claims.Units)).(*array.Int64Builder)
		billed    = rb.Field(int(claims.BilledAmount)).(*array.Decimal128Builder)
		priorAuth = str(claims.PriorAuthNumber)
	)
	flush := func() error {
		rec := rb.NewRecordBatch()
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		return fw.WriteBuffered(rec)
	}
	var row Row
	var buf []byte
	inBatch := 0
	for g.Next(&row) {
		buf = row.appendField(buf[:0], claims.ClaimID)
		claimID.BinaryBuilder.Append(buf)
		if row.Bad == BadLineNumber {
			lineNo.AppendNull()
		} else {
			lineNo.Append(row.LineNumber)
		}
		switch {
		case row.Bad == BadMissingVendor && row.Variant&1 == 0:
			vendor.AppendNull()
		case row.Bad == BadMissingVendor:
			vendor.Append("")
		default:
			vendor.Append(row.VendorID)
		}
		buf = row.appendField(buf[:0], claims.MemberID)
		member.BinaryBuilder.Append(buf)
		buf = row.appendField(buf[:0], claims.ProviderNPI)
		npi.BinaryBuilder.Append(buf)
		switch {
		case row.Bad == BadMissingCPT && row.Variant&1 == 0:
			cpt.AppendNull()
		case row.Bad == BadMissingCPT:
			cpt.Append("")
		default:
			cpt.Append(row.CPT)
		}
		appendOpt(mods, row.Modifiers)
		appendOpt(spec, row.Specialty)
		appendOpt(visit, row.VisitKind)
		appendOpt(pos, row.POS)
		if row.Bad == BadDate || row.ServiceDate == 0 {
			date.AppendNull()
		} else {
			date.Append(arrow.Date32(row.ServiceDate - unixEpoch))
		}
		switch {
		case row.Bad == BadUnits:
			units.Append([...]int64{0, -2, 0, -1}[row.Variant&3])
		case row.Units == 0:
			units.AppendNull()
		default:
			units.Append(row.Units)
		}
		switch {
		case row.Bad == BadAmount:
			billed.AppendNull()
		case row.Bad == BadNegativeAmount:
			billed.Append(decimal128.FromI64(-int64(row.Billed)))
		default:
			billed.Append(decimal128.FromI64(int64(row.Billed)))
		}
		if row.PriorAuth == 0 {
			priorAuth.AppendNull()
		} else {
			buf = row.appendField(buf[:0], claims.PriorAuthNumber)
			priorAuth.BinaryBuilder.Append(buf)
		}
		n++
		if inBatch++; inBatch == ParquetBatchRows {
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
			if err := flush(); err != nil {
				return fail(err)
			}
			inBatch = 0
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	closed = true
	if err := fw.Close(); err != nil {
		return fail(err)
	}
	return n, nil
}

// appendOpt appends s, or null when it is empty.
func appendOpt(b *array.StringBuilder, s string) {
	if s == "" {
		b.AppendNull()
		return
	}
	b.Append(s)
}
