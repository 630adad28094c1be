package adjust

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/repricer/repricer/internal/atomicfile"
)

// LineColumns are the columns of adjustments.csv.
var LineColumns = []string{
	"claim_id", "line_number", "vendor_id", "cpt_code", "service_date", "billed_amount", "reason",
	"amendment_id", "amendment_reason",
	"old_status", "new_status", "old_contract_id", "new_contract_id", "old_contract_number", "new_contract_number",
	"old_rate_id", "new_rate_id", "old_rate_value", "new_rate_value",
	"old_allowed_amount", "new_allowed_amount", "delta_allowed_amount",
	"old_admin_fee", "new_admin_fee", "delta_admin_fee",
	"old_net_payable", "new_net_payable", "delta_net_payable",
}

// ContractColumns are the columns of adjustments_by_contract.csv and
// CodeColumns those of adjustments_by_code.csv.
var (
	ContractColumns = append([]string{"contract_id", "contract_number", "vendor_id"}, totalsColumns...)
	CodeColumns     = append([]string{"cpt_code"}, totalsColumns...)
)

var totalsColumns = []string{
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
		var aid, areason string
		if l.Amendment != nil {
			aid, areason = l.Amendment.ID, l.Amendment.Reason
		}
		if err := cw.Write([]string{
			l.ClaimID, l.LineNumber, l.VendorID, l.CPTCode, l.ServiceDate, l.BilledAmount, string(l.Reason),
			aid, areason,
			l.Old.Status, l.New.Status, l.Old.ContractID, l.New.ContractID, l.Old.ContractNumber, l.New.ContractNumber,
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

func totalsRecord(t *Totals) []string {
	return []string{
		fmt.Sprint(t.Lines), fmt.Sprint(t.ChangedLines),
		t.OldAllowed.String(), t.NewAllowed.String(), t.DeltaAllowed.String(),
		t.OldAdminFee.String(), t.NewAdminFee.String(), t.DeltaAdminFee.String(),
		t.OldNet.String(), t.NewNet.String(), t.DeltaNet.String(),
	}
}

// WriteByContractCSV writes adjustments_by_contract.csv: one row per
// contract (contract id, number and vendor), the row labelled
// NotPricedLabel for lines priced in neither run, and a last row labelled
// TotalLabel; the lines column adds up to the total.
func (rep *Report) WriteByContractCSV(w io.Writer) error {
	return writeGroups(w, ContractColumns, rep.ByContract, &rep.Totals, func(g *GroupTotals) []string {
		if g.Key == "" {
			return []string{NotPricedLabel, "", ""}
		}
		return []string{g.Key, g.ContractNumber, g.VendorID}
	})
}

// WriteByCodeCSV writes adjustments_by_code.csv: one row per procedure
// code, NoCodeLabel for lines without one, and a TotalLabel row.
func (rep *Report) WriteByCodeCSV(w io.Writer) error {
	return writeGroups(w, CodeColumns, rep.ByCode, &rep.Totals, func(g *GroupTotals) []string {
		if g.Key == "" {
			return []string{NoCodeLabel}
		}
		return []string{g.Key}
	})
}

func writeGroups(w io.Writer, header []string, groups []GroupTotals, total *Totals, key func(*GroupTotals) []string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	nkey := len(header) - len(totalsColumns)
	for i := range groups {
		if err := cw.Write(append(key(&groups[i]), totalsRecord(&groups[i].Totals)...)); err != nil {
			return err
		}
	}
	last := make([]string, nkey)
	last[0] = TotalLabel
	if err := cw.Write(append(last, totalsRecord(total)...)); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the summary (adjustment_summary.json): counts by reason,
// totals, totals by contract and by code, and the amendments named. The
// lines are not included.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// Write writes adjustments.csv, adjustments_by_contract.csv,
// adjustments_by_code.csv, adjustment_summary.json and
// adjustment_report.html into dir (created if needed). Each file is
// written aside and renamed into place.
func (rep *Report) Write(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("adjust: %w", err)
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{AdjustmentsFile, rep.WriteCSV},
		{ByContractFile, rep.WriteByContractCSV},
		{ByCodeFile, rep.WriteByCodeCSV},
		{SummaryFile, rep.WriteJSON},
		{HTMLFile, rep.WriteHTML},
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
func writeFile(path string, write func(io.Writer) error) error {
	return atomicfile.Write(path, write)
}
