package postgres_test

import (
	"context"
	"testing"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

// TestConstraints checks that the database itself refuses bad rows, for
// writers that bypass Import.
func TestConstraints(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	base := []string{
		`INSERT INTO vendors (vendor_id) VALUES ('V1'), ('V2')`,
		`INSERT INTO contracts (contract_id, contract_number, vendor_id, status, effective_date, expiration_date)
		 VALUES ('C1', 'CON-2024-00001', 'V1', 'Active', '2024-01-01', '2024-12-31')`,
	}
	for _, q := range base {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	contract := func(id, number, vendor, status, eff, exp string) string {
		num := "NULL"
		if number != "" {
			num = "'" + number + "'"
		}
		return `INSERT INTO contracts (contract_id, contract_number, vendor_id, status, effective_date, expiration_date)
			VALUES ('` + id + `', ` + num + `, '` + vendor + `', '` + status + `', '` + eff + `', '` + exp + `')`
	}
	rate := func(cols, vals string) string {
		return `INSERT INTO rates (rate_id, contract_id, rate_kind, effective_date` + cols + `)
			VALUES ('R` + vals[:2] + `', 'C1', 'CPT', '2024-01-01'` + vals[2:] + `)`
	}
	tests := []struct {
		name       string
		sql        string
		code       pqerror.Code
		constraint string
	}{
		{"duplicate contract_number", contract("C2", "CON-2024-00001", "V2", "Draft", "2024-01-01", "2024-12-31"), pqerror.UniqueViolation, "contracts_contract_number_key"},
		{"overlapping active contracts", contract("C2", "CON-2024-00002", "V1", "Active", "2024-12-31", "2025-12-31"), pqerror.ExclusionViolation, "contracts_vendor_term_excl"},
		{"overlapping expired and terminated", contract("C2", "CON-2024-00002", "V1", "Expired", "2023-06-01", "2024-01-01"), pqerror.ExclusionViolation, "contracts_vendor_term_excl"},
		{"bad status", contract("C2", "CON-2024-00002", "V2", "Lapsed", "2024-01-01", "2024-12-31"), pqerror.CheckViolation, "contracts_status_check"},
		{"unknown vendor", contract("C2", "CON-2024-00002", "V9", "Draft", "2024-01-01", "2024-12-31"), pqerror.ForeignKeyViolation, "contracts_vendor_id_fkey"},
		{"term backwards", contract("C2", "CON-2024-00002", "V2", "Draft", "2024-12-31", "2024-01-01"), pqerror.CheckViolation, "contracts_term_check"},
		{"admin fee above 100", `UPDATE contracts SET admin_fee_pct = 100.5`, pqerror.CheckViolation, "contracts_admin_fee_pct_check"},
		{"default value without type", `UPDATE contracts SET default_rate_value = 10`, pqerror.CheckViolation, "contracts_default_rate_value_check"},
		{"empty contract_number", `UPDATE contracts SET contract_number = ''`, pqerror.CheckViolation, "contracts_contract_number_check"},
		{"negative stop loss", `UPDATE contracts SET stop_loss_amount = -1`, pqerror.CheckViolation, "contracts_stop_loss_amount_check"},
		{"comma in excluded services", `UPDATE contracts SET excluded_services = '{"1,2"}'`, pqerror.CheckViolation, "contracts_excluded_services_check"},
		{"descending excluded range", `UPDATE contracts SET excluded_services = '{"99215-99201"}'`, pqerror.CheckViolation, "contracts_excluded_services_check"},
		{"bad rate type", rate(", rate_type, rate_value", "01, 'Fixed', 10"), pqerror.CheckViolation, "rates_rate_type_check"},
		{"percentage above 200", rate(", rate_type, rate_value", "02, 'Percentage', 200.5"), pqerror.CheckViolation, "rates_rate_value_check"},
		{"amount zero", rate(", rate_type, rate_value", "03, 'Amount', 0"), pqerror.CheckViolation, "rates_rate_value_check"},
		{"unknown rate kind", `INSERT INTO rates (rate_id, contract_id, rate_kind, rate_type, rate_value, effective_date) VALUES ('R4', 'C1', 'NOPE', 'Amount', 1, '2024-01-01')`, pqerror.ForeignKeyViolation, "rates_rate_kind_fkey"},
		{"unknown contract", `INSERT INTO rates (rate_id, contract_id, rate_kind, rate_type, rate_value, effective_date) VALUES ('R5', 'C9', 'CPT', 'Amount', 1, '2024-01-01')`, pqerror.ForeignKeyViolation, "rates_contract_id_fkey"},
		{"end before effective", rate(", rate_type, rate_value, end_date", "06, 'Amount', 1, '2023-12-31'"), pqerror.CheckViolation, "rates_end_date_check"},
		{"code and range", rate(", rate_type, rate_value, cpt_code, cpt_range_start, cpt_range_end", "07, 'Amount', 1, '1', '1', '2'"), pqerror.CheckViolation, "rates_cpt_check"},
		{"half a range", rate(", rate_type, rate_value, cpt_range_start", "08, 'Amount', 1, '1'"), pqerror.CheckViolation, "rates_cpt_check"},
		{"units reversed", rate(", rate_type, rate_value, min_units, max_units", "09, 'Amount', 1, 5, 2"), pqerror.CheckViolation, "rates_units_check"},
		{"empty place of service", rate(", rate_type, rate_value, place_of_service", "10, 'Amount', 1, '{\"\"}'"), pqerror.CheckViolation, "rates_place_of_service_check"},
		{"unknown kind in rate_kinds", `INSERT INTO rate_kinds (kind, priority) VALUES ('NOPE', 3)`, pqerror.CheckViolation, "rate_kinds_kind_check"},
		{"priority out of range", `UPDATE rate_kinds SET priority = 0 WHERE kind = 'CPT'`, pqerror.CheckViolation, "rate_kinds_priority_check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Deferred constraints fire at commit, so run each in its own
			// transaction and look at both the statement and the commit.
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tx.ExecContext(ctx, tt.sql)
			if err == nil {
				err = tx.Commit()
			} else if rerr := tx.Rollback(); rerr != nil {
				t.Fatal(rerr)
			}
			pqErr := pq.As(err)
			if pqErr == nil {
				t.Fatalf("statement accepted (err %v); want %s on %s", err, tt.code, tt.constraint)
			}
			if pqErr.Code != tt.code || pqErr.Constraint != tt.constraint {
				t.Errorf("error %s (code %s, constraint %q); want %s on %s", pqErr.Message, pqErr.Code, pqErr.Constraint, tt.code, tt.constraint)
			}
		})
	}

	// Contracts that only touch, or are not in force, are fine.
	for _, q := range []string{
		contract("C3", "CON-2024-00003", "V1", "Active", "2025-01-01", "2025-12-31"),
		contract("C4", "CON-2024-00004", "V1", "Draft", "2024-03-01", "2024-12-31"),
		contract("C5", "", "V2", "Active", "2024-03-01", "2024-12-31"),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}
