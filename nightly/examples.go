package nightly

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/report"
)

// exceptionExamples reads up to perCode rows of each exception code from a
// published exceptions CSV, in file order, grouped in the summary's code
// order. It stops reading once every code has its examples.
func exceptionExamples(ctx context.Context, path string, s *pipeline.Summary, perCode int) (_ []report.ExceptionExample, err error) {
	if perCode <= 0 || len(s.ByCode) == 0 {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	need := []string{"claim_id", "line_number", "source_file", "source_row", "code", "severity", "message"}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return nil, fmt.Errorf("%s: no %s column", path, n)
		}
	}
	byCode := map[string][]report.ExceptionExample{}
	missing := len(s.ByCode)
	for n := 0; missing > 0; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		code := rec[col["code"]]
		if len(byCode[code]) >= perCode {
			continue
		}
		row, _ := strconv.ParseInt(rec[col["source_row"]], 10, 64)
		byCode[code] = append(byCode[code], report.ExceptionExample{
			ClaimID: rec[col["claim_id"]], LineNumber: rec[col["line_number"]], SourceFile: rec[col["source_file"]],
			SourceRow: row, Code: code, Severity: rec[col["severity"]], Message: rec[col["message"]],
		})
		if len(byCode[code]) == perCode && slices.ContainsFunc(s.ByCode, func(c pipeline.CodeTotals) bool { return c.Code == code }) {
			missing--
		}
	}
	var out []report.ExceptionExample
	for _, c := range s.ByCode {
		out = append(out, byCode[c.Code]...)
	}
	return out, nil
}
