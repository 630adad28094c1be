package claimparquet

import (
	"bufio"
	"context"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
)

// pricedRow is one row of priced.parquet: the columns and types of
// PricedSchema (text empty = null, DATE, DECIMAL(18,2) money and
// DECIMAL(18,6) rate values stored as INT64). Every column is
// written PLAIN: with snappy on top, dictionary encoding made the files
// about a fifth smaller but writing a third slower.
type pricedRow struct {
	ClaimID               string `parquet:"claim_id,optional"`
	LineNumber            int64  `parquet:"line_number"`
	VendorID              string `parquet:"vendor_id,optional"`
	MemberID              string `parquet:"member_id,optional"`
	ProviderNPI           string `parquet:"provider_npi,optional"`
	CPTCode               string `parquet:"cpt_code,optional"`
	Modifiers             string `parquet:"modifiers,optional"`
	Specialty             string `parquet:"specialty,optional"`
	VisitKind             string `parquet:"visit_kind,optional"`
	PlaceOfService        string `parquet:"place_of_service,optional"`
	ServiceDate           int32  `parquet:"service_date,date"`
	Units                 int64  `parquet:"units"`
	BilledAmount          int64  `parquet:"billed_amount,decimal(2:18)"`
	PriorAuthNumber       string `parquet:"prior_auth_number,optional"`
	ContractID            string `parquet:"contract_id,optional"`
	ContractNumber        string `parquet:"contract_number,optional"`
	RateID                string `parquet:"rate_id,optional"`
	RateKind              string `parquet:"rate_kind,optional"`
	MatchPriority         int32  `parquet:"match_priority"`
	RateType              string `parquet:"rate_type,optional"`
	RateValue             int64  `parquet:"rate_value,decimal(6:18)"`
	PricedUnits           int64  `parquet:"priced_units"`
	AllowedBeforeStopLoss int64  `parquet:"allowed_before_stop_loss,decimal(2:18)"`
	StopLossReduction     int64  `parquet:"stop_loss_reduction,decimal(2:18)"`
	AllowedAmount         int64  `parquet:"allowed_amount,decimal(2:18)"`
	AdminFee              int64  `parquet:"admin_fee,decimal(2:18)"`
	NetPayable            int64  `parquet:"net_payable,decimal(2:18)"`
	Flags                 string `parquet:"flags,optional"`
}

// exceptionRow is one row of exceptions.parquet (ExceptionSchema): the
// typed input columns are null where the input did not parse, and the
// *_raw columns hold that input (see RawColumns).
type exceptionRow struct {
	ClaimID         string `parquet:"claim_id,optional"`
	LineNumber      *int64 `parquet:"line_number"`
	SourceFile      string `parquet:"source_file,optional"`
	SourceRow       int64  `parquet:"source_row"`
	Code            string `parquet:"code,optional"`
	Severity        string `parquet:"severity,optional"`
	Message         string `parquet:"message,optional"`
	VendorID        string `parquet:"vendor_id,optional"`
	MemberID        string `parquet:"member_id,optional"`
	ProviderNPI     string `parquet:"provider_npi,optional"`
	CPTCode         string `parquet:"cpt_code,optional"`
	Modifiers       string `parquet:"modifiers,optional"`
	Specialty       string `parquet:"specialty,optional"`
	VisitKind       string `parquet:"visit_kind,optional"`
	PlaceOfService  string `parquet:"place_of_service,optional"`
	ServiceDate     *int32 `parquet:"service_date,date"`
	Units           *int64 `parquet:"units"`
	BilledAmount    *int64 `parquet:"billed_amount,decimal(2:18)"`
	PriorAuthNumber string `parquet:"prior_auth_number,optional"`
	LineNumberRaw   string `parquet:"line_number_raw,optional"`
	ServiceDateRaw  string `parquet:"service_date_raw,optional"`
	UnitsRaw        string `parquet:"units_raw,optional"`
	BilledAmountRaw string `parquet:"billed_amount_raw,optional"`
}

// newExceptionRow is the exceptions.parquet row of it for code.
func newExceptionRow(it *claims.Item, code claims.Code, epoch int64) exceptionRow {
	l, r := &it.Line, &it.Result
	t := parseTyped(l, epoch)
	opt := func(i int) *int64 {
		if !t.ok[i] {
			return nil
		}
		return &t.value[i]
	}
	var date *int32
	if t.ok[1] {
		d := int32(t.value[1])
		date = &d
	}
	return exceptionRow{
		ClaimID: l.Raw[claims.ClaimID], LineNumber: opt(0), SourceFile: l.Source.File,
		SourceRow: l.Source.Row, Code: code.String(), Severity: code.Severity(),
		Message: claimcsv.ExceptionMessage(r, code), VendorID: l.Raw[claims.VendorID], MemberID: l.Raw[claims.MemberID],
		ProviderNPI: l.Raw[claims.ProviderNPI], CPTCode: l.Raw[claims.CPTCode], Modifiers: l.Raw[claims.Modifiers],
		Specialty: l.Raw[claims.Specialty], VisitKind: l.Raw[claims.VisitKind], PlaceOfService: l.Raw[claims.PlaceOfService],
		ServiceDate: date, Units: opt(2), BilledAmount: opt(3), PriorAuthNumber: l.Raw[claims.PriorAuthNumber],
		LineNumberRaw: t.raw[0], ServiceDateRaw: t.raw[1], UnitsRaw: t.raw[2], BilledAmountRaw: t.raw[3],
	}
}

// noBounds are the columns written without min/max (column index and chunk
// statistics), by both writers: people's and authorizations' identifiers, which would
// otherwise sit in clear in the footer and which no query prunes on, and
// free text. Computing bounds took a sixth of the writer's time, most of it
// on these columns.
var noBounds = []string{"member_id", "provider_npi", "prior_auth_number", "modifiers", "line_number", "flags", "message"}

// ParquetGoWriter writes the same files as FileWriter through
// parquet-go/parquet-go's row writer, in the writing goroutine alone. It was
// the product's writer until FileWriter encoded pages in the pricing
// workers; it stays as the benchmarks' baseline and as a second, independent
// encoder the tests compare FileWriter's files with.
type ParquetGoWriter struct {
	pbw, ebw *bufio.Writer
	pw       *parquet.GenericWriter[pricedRow]
	ew       *parquet.GenericWriter[exceptionRow]
	prows    []pricedRow
	erows    []exceptionRow
	codes    []claims.Code
	flags    [256]string // formatted flag sets of the first 8 flags, to format each once
	epoch    int64
	err      error // sticky
	closed   bool
}

// NewParquetGoWriter returns a ParquetGoWriter of the priced lines to
// priced and of the exceptions to exceptions. Close must be called to
// finish both files; it does not close priced or exceptions.
func NewParquetGoWriter(priced, exceptions io.Writer) (*ParquetGoWriter, error) {
	w := &ParquetGoWriter{pbw: bufio.NewWriterSize(priced, 1<<20), ebw: bufio.NewWriterSize(exceptions, 1<<20), epoch: epochDay()}
	opts := []parquet.WriterOption{parquet.Compression(&fastSnappy{}), parquet.MaxRowsPerRowGroup(RowGroupRows), parquet.CreatedBy("repricer", "1", "parquet-go"),
		// Min/max go into the column index and the column chunk statistics,
		// which query engines prune with; repeating them in every data page
		// header computed each page's bounds twice.
		parquet.DataPageStatistics(false)}
	for _, c := range noBounds {
		opts = append(opts, parquet.SkipPageBounds(c))
	}
	w.pw = parquet.NewGenericWriter[pricedRow](w.pbw, opts...)
	w.ew = parquet.NewGenericWriter[exceptionRow](w.ebw, opts...)
	return w, nil
}

// Write appends the items' rows to the two files.
func (w *ParquetGoWriter) Write(ctx context.Context, items []claims.Item) error {
	if err := writable(ctx, w.closed, w.err); err != nil {
		return err
	}
	w.prows, w.erows = w.prows[:0], w.erows[:0]
	for i := range items {
		it := &items[i]
		l, r := &it.Line, &it.Result
		if r.Priced() {
			w.prows = append(w.prows, pricedRow{
				ClaimID: l.Raw[claims.ClaimID], LineNumber: l.LineNumber, VendorID: l.Raw[claims.VendorID],
				MemberID: l.Raw[claims.MemberID], ProviderNPI: l.Raw[claims.ProviderNPI], CPTCode: l.Raw[claims.CPTCode],
				Modifiers: l.Raw[claims.Modifiers], Specialty: l.Raw[claims.Specialty], VisitKind: l.Raw[claims.VisitKind],
				PlaceOfService: l.Raw[claims.PlaceOfService], ServiceDate: int32(int64(l.ServiceDate) - w.epoch),
				Units: l.Units, BilledAmount: int64(l.Billed), PriorAuthNumber: l.Raw[claims.PriorAuthNumber],
				ContractID: r.Contract.ID, ContractNumber: r.Contract.Number, RateID: r.RateID, RateKind: r.RateKind,
				MatchPriority: int32(r.MatchPriority), RateType: r.RateType.String(), RateValue: int64(r.RateValue),
				PricedUnits: r.PricedUnits, AllowedBeforeStopLoss: int64(r.AllowedBeforeStopLoss),
				StopLossReduction: int64(r.StopLossReduction), AllowedAmount: int64(r.Allowed), AdminFee: int64(r.AdminFee),
				NetPayable: int64(r.NetPayable), Flags: w.flagString(r.Flags),
			})
		}
		w.codes = claimcsv.ExceptionCodes(w.codes[:0], r)
		for _, code := range w.codes {
			w.erows = append(w.erows, newExceptionRow(it, code, w.epoch))
		}
	}
	if _, err := w.pw.Write(w.prows); err != nil {
		w.err = &WriteError{File: "priced", Err: err}
		return w.err
	}
	if _, err := w.ew.Write(w.erows); err != nil {
		w.err = &WriteError{File: "exceptions", Err: err}
		return w.err
	}
	return nil
}

func (w *ParquetGoWriter) flagString(f claims.Flags) string {
	if int(f) >= len(w.flags) {
		return f.String()
	}
	if w.flags[f] == "" {
		w.flags[f] = f.String() // "" again for no flags, which is right
	}
	return w.flags[f]
}

// Close finishes both files (footers) and flushes them; it does not close
// the underlying writers.
func (w *ParquetGoWriter) Close() error {
	return closeFiles(&w.closed, &w.err, finishFile{"priced", w.pw.Close, w.pbw}, finishFile{"exceptions", w.ew.Close, w.ebw})
}
