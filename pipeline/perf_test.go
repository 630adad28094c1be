package pipeline

import (
	"context"
	"os"
	"testing"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

// TestProfileRun is a manual profiling hook: REPRICER_PROFILE_DIR names a
// folder made by `repricer gen` (contracts/ and claims.csv, or
// claims.parquet with REPRICER_PROFILE_FORMAT=parquet):
//
//	REPRICER_PROFILE_DIR=DIR go test ./pipeline -run TestProfileRun -v -cpuprofile cpu.prof
func TestProfileRun(t *testing.T) {
	dir := os.Getenv("REPRICER_PROFILE_DIR")
	if dir == "" {
		t.Skip("REPRICER_PROFILE_DIR not set")
	}
	s, err := bundle.Read(context.Background(), dir+"/contracts")
	if err != nil {
		t.Fatal(err)
	}
	e := rates.New(contracts.Validate(s), rates.Options{})
	claims, format := dir+"/claims.csv", "csv"
	if f := os.Getenv("REPRICER_PROFILE_FORMAT"); f == "parquet" {
		claims, format = dir+"/claims.parquet", f
	}
	sum, err := Run(context.Background(), Config{Engine: e, Claims: []string{claims}, Format: format, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", sum.Timings)
}
