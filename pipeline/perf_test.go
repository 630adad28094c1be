package pipeline

import (
	"context"
	"os"
	"runtime/pprof"
	"testing"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

// TestProfileRun is a manual profiling hook: REPRICER_PROFILE_DIR names a
// folder made by `repricer gen` (contracts/ and claims.csv, or
// claims.parquet with REPRICER_PROFILE_FORMAT=parquet, whose output is
// Parquet too; REPRICER_PROFILE_OUT=csv|parquet|arrow picks the output).
// REPRICER_PROFILE_CPU names a CPU profile of the run alone, without the
// loading of the contracts that -cpuprofile would include:
//
//	REPRICER_PROFILE_DIR=DIR REPRICER_PROFILE_CPU=cpu.prof go test ./pipeline -run TestProfileRun -v
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
	if f := os.Getenv("REPRICER_PROFILE_OUT"); f != "" {
		format = f
	}
	if path := os.Getenv("REPRICER_PROFILE_CPU"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	sum, err := Run(context.Background(), Config{Engine: e, Claims: []string{claims}, Format: format, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", sum.Timings)
}
