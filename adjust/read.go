package adjust

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/shopspring/decimal"

	"github.com/repricer/repricer/amendment"
	"github.com/repricer/repricer/money"
)

// outputFormats are the extensions of the output formats, in the order
// readRun looks for them.
var outputFormats = []string{"csv", "parquet", "arrows"}

// findOutputs returns the priced and exceptions files of an output folder,
// of whichever format the run wrote.
func findOutputs(dir string) (priced, exceptions string, err error) {
	for _, ext := range outputFormats {
		p, e := filepath.Join(dir, "priced."+ext), filepath.Join(dir, "exceptions."+ext)
		if fileExists(p) && fileExists(e) {
			return p, e, nil
		}
	}
	return "", "", &FileError{File: dir, Err: ErrNoOutputs}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// cells gives a record's values by column name and parses money.
type cells struct {
	file string
	row  int
	get  func(col string) string
}

func (c *cells) cents(col string) (money.Cents, error) {
	v, err := money.ParseCents(c.get(col))
	if err != nil {
		return 0, &FileError{File: c.file, Row: c.row, Column: col, Err: fmt.Errorf("%w: %w", ErrValue, err)}
	}
	return v, nil
}

// readTable calls fn for each record of the output file at path (CSV,
// Parquet or an Arrow IPC stream, by extension), after checking that the
// required columns are there. Values are text as the CSV writer writes
// them: decimals with their scale, dates as YYYY-MM-DD, null as "".
func readTable(ctx context.Context, path string, required []string, fn func(*cells) error) error {
	switch filepath.Ext(path) {
	case ".parquet":
		return readArrow(ctx, path, required, fn, openParquet)
	case ".arrows":
		return readArrow(ctx, path, required, fn, openIPC)
	}
	return readCSV(ctx, path, required, fn)
}

func checkColumns(path string, cols map[string]int, required []string) error {
	for _, c := range required {
		if _, ok := cols[c]; !ok {
			return &FileError{File: path, Column: c, Err: ErrColumn}
		}
	}
	return nil
}

func readCSV(ctx context.Context, path string, required []string, fn func(*cells) error) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return &FileError{File: path, Err: err}
	}
	defer f.Close() // read-only; a close error loses nothing
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return &FileError{File: path, Err: err}
	}
	cols := map[string]int{}
	for i, h := range header {
		cols[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if err := checkColumns(path, cols, required); err != nil {
		return err
	}
	var rec []string
	c := &cells{file: path, get: func(col string) string {
		if i, ok := cols[col]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}}
	for {
		if err := ctxCheck(ctx, c.row); err != nil {
			return err
		}
		rec, err = cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		c.row++
		if err != nil {
			return &FileError{File: path, Row: c.row, Err: err}
		}
		if err := fn(c); err != nil {
			return err
		}
	}
}

// openRecords opens a file as a stream of Arrow record batches.
type openRecords func(ctx context.Context, f *os.File) (array.RecordReader, error)

func openParquet(ctx context.Context, f *os.File) (array.RecordReader, error) {
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 8192}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	return fr.GetRecordReader(ctx, nil, nil)
}

func openIPC(_ context.Context, f *os.File) (array.RecordReader, error) {
	return ipc.NewReader(f)
}

func readArrow(ctx context.Context, path string, required []string, fn func(*cells) error, open openRecords) error {
	f, err := os.Open(path)
	if err != nil {
		return &FileError{File: path, Err: err}
	}
	defer f.Close() // read-only
	rr, err := open(ctx, f)
	if err != nil {
		return &FileError{File: path, Err: err}
	}
	defer rr.Release()
	cols := map[string]int{}
	for i, fd := range rr.Schema().Fields() {
		cols[strings.ToLower(fd.Name)] = i
	}
	if err := checkColumns(path, cols, required); err != nil {
		return err
	}
	var (
		rec arrow.RecordBatch
		i   int
	)
	c := &cells{file: path, get: func(col string) string {
		if j, ok := cols[col]; ok {
			return strings.TrimSpace(cellText(rec.Column(j), i))
		}
		return ""
	}}
	for rr.Next() {
		rec = rr.RecordBatch()
		for i = 0; i < int(rec.NumRows()); i++ {
			c.row++
			if err := ctxCheck(ctx, c.row); err != nil {
				return err
			}
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return &FileError{File: path, Row: c.row, Err: err}
	}
	return nil
}

// cellText is value i of a as the CSV writer would write it.
func cellText(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return ""
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.StringView:
		return a.Value(i)
	case *array.Binary:
		return string(a.Value(i))
	case *array.Dictionary:
		return cellText(a.Dictionary(), a.GetValueIndex(i))
	case *array.Decimal128:
		s := a.DataType().(*arrow.Decimal128Type).Scale
		return decimal.NewFromBigInt(a.Value(i).BigInt(), -s).StringFixed(s)
	case *array.Decimal256:
		s := a.DataType().(*arrow.Decimal256Type).Scale
		return decimal.NewFromBigInt(a.Value(i).BigInt(), -s).StringFixed(s)
	case *array.Date32:
		return a.Value(i).FormattedString()
	case *array.Date64:
		return a.Value(i).FormattedString()
	}
	return a.ValueStr(i)
}

// canonicalRate writes a rate value with at least two decimals and no
// trailing zeros beyond them, so that 80.00 (CSV) and 80.000000 (a
// DECIMAL(18,6) column) compare equal; other text is kept.
func canonicalRate(s string) string {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return s
	}
	places := max(int32(2), -d.Exponent())
	out := d.StringFixed(places)
	for places > 2 && strings.HasSuffix(out, "0") {
		out = out[:len(out)-1]
		places--
	}
	return out
}

// runSummary is what readRun uses of a run's summary.json.
type runSummary struct {
	Reference struct {
		Source string `json:"source"`
	} `json:"reference"`
	Inputs []struct {
		File  string `json:"file"`
		Lines int64  `json:"lines"`
	} `json:"inputs"`
}

// readSummary reads dir/summary.json; nil when it is missing or unreadable
// (the order then falls back to priced rows before exceptions).
func readSummary(dir string) *runSummary {
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		return nil
	}
	var s runSummary
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return &s
}

// ReferenceBundle returns the contract bundle folder the run in dir
// priced with (the reference source "bundle:DIR" of its summary.json) when
// that folder keeps an amendment log; "" otherwise. A relative DIR is
// taken as it was given to the run.
func ReferenceBundle(dir string) string {
	sum := readSummary(dir)
	if sum == nil {
		return ""
	}
	b, ok := strings.CutPrefix(sum.Reference.Source, "bundle:")
	if !ok || !fileExists(filepath.Join(b, amendment.LogFile)) {
		return ""
	}
	return b
}

// sourceOrder interleaves the priced rows (input order) with the error
// exceptions (each at its source file and row) into input order. Every
// input line is a priced row or an error exception, so the exceptions
// sit at their positions and the priced rows fill the others in turn. When
// the positions do not fit (no summary, unknown file, a gap), it returns
// the priced rows, then the exceptions.
func sourceOrder(sum *runSummary, priced, excs []*row) []*row {
	fallback := append(append([]*row(nil), priced...), excs...)
	if sum == nil {
		return fallback
	}
	offset := map[string]int64{}
	var total int64
	for _, in := range sum.Inputs {
		if _, dup := offset[in.File]; dup {
			return fallback
		}
		offset[in.File] = total
		total += in.Lines
	}
	if total != int64(len(priced)+len(excs)) {
		return fallback
	}
	at := make([]*row, total)
	for _, e := range excs {
		off, ok := offset[e.sourceFile]
		n, err := strconv.ParseInt(e.sourceRow, 10, 64)
		if !ok || err != nil || n < 1 || off+n > total || at[off+n-1] != nil {
			return fallback
		}
		at[off+n-1] = e
	}
	p := 0
	for i := range at {
		if at[i] == nil {
			at[i] = priced[p]
			p++
		}
	}
	return at
}

var pricedColumns = []string{"claim_id", "line_number", "cpt_code", "service_date", "contract_id", "rate_id",
	"rate_type", "rate_value", "allowed_amount", "admin_fee", "net_payable"}

var exceptionColumns = []string{"claim_id", "line_number", "code", "severity", "cpt_code", "service_date"}

func readRun(ctx context.Context, dir string) (*runLines, error) {
	pp, ep, err := findOutputs(dir)
	if err != nil {
		return nil, err
	}
	var priced, excs []*row
	err = readTable(ctx, pp, pricedColumns, func(c *cells) error {
		ln := &row{claimID: c.get("claim_id"), lineNumber: c.get("line_number"), vendor: c.get("vendor_id"),
			cpt: c.get("cpt_code"), serviceDate: c.get("service_date"), billed: c.get("billed_amount"),
			out: Outcome{Status: StatusPriced, ContractID: c.get("contract_id"), ContractNumber: c.get("contract_number"),
				RateID: c.get("rate_id"), RateType: c.get("rate_type"), RateValue: canonicalRate(c.get("rate_value"))}}
		var err error
		if ln.out.Allowed, err = c.cents("allowed_amount"); err != nil {
			return err
		}
		if ln.out.AdminFee, err = c.cents("admin_fee"); err != nil {
			return err
		}
		if ln.out.NetPayable, err = c.cents("net_payable"); err != nil {
			return err
		}
		priced = append(priced, ln)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readTable(ctx, ep, exceptionColumns, func(c *cells) error {
		if c.get("severity") != "error" {
			return nil // review rows repeat a priced line
		}
		code := c.get("code")
		excs = append(excs, &row{claimID: c.get("claim_id"), lineNumber: c.get("line_number"), vendor: c.get("vendor_id"),
			cpt: c.get("cpt_code"), serviceDate: c.get("service_date"), billed: c.get("billed_amount"),
			sourceFile: c.get("source_file"), sourceRow: c.get("source_row"),
			out: Outcome{Status: code}, secondary: code == "INVALID_ROW" || code == "DUPLICATE_LINE"})
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := &runLines{primary: map[key]*row{}, secondary: map[key][]*row{}}
	for _, ln := range sourceOrder(readSummary(dir), priced, excs) {
		r.add(ln)
	}
	return r, nil
}
