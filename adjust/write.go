package adjust

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// LineColumns are the columns of adjustments.csv.
var LineColumns = []string{
	"claim_id", "line_number", "cpt_code", "service_date", "reason",
	"old_status", "new_status", "old_contract_id", "new_contract_id",
	"old_rate_id", "new_rate_id", "old_rate_value", "new_rate_value",
	"old_allowed_amount", "new_allowed_amount", "delta_allowed_amount",
	"old_admin_fee", "new_admin_fee", "delta_admin_fee",
	"old_net_payable", "new_net_payable", "delta_net_payable",
}

// GroupColumns are the columns of adjustments_by_contract.csv (first column
// contract_id) and adjustments_by_code.csv (first column cpt_code).
var GroupColumns = []string{
	"lines", "changed_lines",
	"old_allowed_amount", "new_allowed_amount", "delta_allowed_amount",
	"old_admin_fee", "new_admin_fee", "delta_admin_fee",
	"old_net_payable", "new_net_payable", "delta_net_payable",
}

// WriteCSV writes the per-line report (adjustments.csv), one row per line in
// report order; money as plain decimals with two places.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(LineColumns); err != nil {
		return err
	}
	for i := range rep.Lines {
		l := &rep.Lines[i]
		da, df, dn := l.Delta()
		if err := cw.Write([]string{
			l.ClaimID, l.LineNumber, l.CPTCode, l.ServiceDate, string(l.Reason),
			l.Old.Status, l.New.Status, l.Old.ContractID, l.New.ContractID,
			l.Old.RateID, l.New.RateID, l.Old.RateValue, l.New.RateValue,
			l.Old.Allowed.String(), l.New.Allowed.String(), da.String(),
			l.Old.AdminFee.String(), l.New.AdminFee.String(), df.String(),
			l.Old.NetPayable.String(), l.New.NetPayable.String(), dn.String(),
		}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteGroupsCSV writes group totals with keyColumn as the first column.
func WriteGroupsCSV(w io.Writer, keyColumn string, groups []GroupTotals) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(append([]string{keyColumn}, GroupColumns...)); err != nil {
		return err
	}
	for _, g := range groups {
		t := &g.Totals
		if err := cw.Write([]string{
			g.Key, fmt.Sprint(t.Lines), fmt.Sprint(t.ChangedLines),
			t.OldAllowed.String(), t.NewAllowed.String(), t.DeltaAllowed.String(),
			t.OldAdminFee.String(), t.NewAdminFee.String(), t.DeltaAdminFee.String(),
			t.OldNet.String(), t.NewNet.String(), t.DeltaNet.String(),
		}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the summary (adjustment_summary.json): counts by reason,
// totals, and totals by contract and by code. The lines are not included.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// Write writes adjustments.csv, adjustments_by_contract.csv,
// adjustments_by_code.csv and adjustment_summary.json into dir (created if
// needed). Each file is written aside and renamed into place.
func (rep *Report) Write(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("adjust: %w", err)
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{AdjustmentsFile, rep.WriteCSV},
		{ByContractFile, func(w io.Writer) error { return WriteGroupsCSV(w, "contract_id", rep.ByContract) }},
		{ByCodeFile, func(w io.Writer) error { return WriteGroupsCSV(w, "cpt_code", rep.ByCode) }},
		{SummaryFile, rep.WriteJSON},
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return fmt.Errorf("adjust: write %s: %w", f.name, err)
		}
	}
	return nil
}

// writeFile writes path through a temporary file renamed into place.
func writeFile(path string, write func(io.Writer) error) (err error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close() // already failing; the write error is the one to report
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
