package bundle

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/repricer/repricer/contracts"
)

// FuzzRead writes arbitrary contracts.csv and rates.csv files and reads
// them: the reader must return a schedule or a *FormatError, never panic,
// and validation of whatever it returns must not panic either.
func FuzzRead(f *testing.F) {
	sample := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sample", "contracts", name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(sample(ContractsFile), sample(RatesFile))
	f.Add([]byte("contract_id,vendor_id,status,effective_date,expiration_date\nC1,V1,Active,2024-01-01,2023-01-01\n"),
		[]byte("rate_id,contract_id,rate_kind,rate_type,rate_value,effective_date,cpt_range_start,cpt_range_end\n1,C1,CPT,Amount,1e9,2024-01-01,9,1\n"))
	f.Fuzz(func(t *testing.T, contractsCSV, ratesCSV []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ContractsFile), contractsCSV, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, RatesFile), ratesCSV, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Read(context.Background(), dir)
		if err != nil {
			return
		}
		v := contracts.Validate(s)
		for _, c := range v.Contracts {
			if c.Effective.IsZero() || c.Expiration.IsZero() {
				t.Fatalf("contract %q kept without dates", c.ID)
			}
		}
	})
}
