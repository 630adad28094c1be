package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const (
	sampleContracts = "../testdata/sample/contracts"
	sampleClaims    = "../testdata/sample/claims.csv"
)

func sampleEngine(t testing.TB, opts rates.Options) *rates.Engine {
	t.Helper()
	s, err := bundle.Read(context.Background(), sampleContracts)
	if err != nil {
		t.Fatal(err)
	}
	return rates.New(contracts.Validate(s), opts)
}

// normalizedSummary zeroes the wall-clock timings, the only part of the
// summary that differs between reruns.
func normalizedSummary(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Timings = Timings{}
	out, err := json.MarshalIndent(&s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func TestGoldenSample(t *testing.T) {
	sysDefault, err := rates.ParseDefaultRate("Percentage:50")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts rates.Options
	}{
		{"sample", rates.Options{}},
		{"sample-system-default", rates.Options{SystemDefault: &sysDefault}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			cfg := Config{Engine: sampleEngine(t, tt.opts), Claims: []string{sampleClaims}, OutDir: out, Workers: 2, BatchSize: 16, ReferenceSource: "bundle:sample"}
			if tt.opts.SystemDefault != nil {
				cfg.SystemDefaultRate = tt.opts.SystemDefault.String()
			}
			if _, err := Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("..", "testdata", "golden", tt.name)
			for _, name := range []string{"priced.csv", "exceptions.csv", ScheduleIssuesFile, SummaryFile} {
				var got []byte
				if name == SummaryFile {
					got = normalizedSummary(t, filepath.Join(out, name))
				} else if got, err = os.ReadFile(filepath.Join(out, name)); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(golden, name)
				if *update {
					if err := os.MkdirAll(golden, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./pipeline -run Golden -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s; rerun with -update if the change is intended\n%s", name, path, firstDiff(got, want))
				}
			}
		})
	}
}

func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			return "line " + itoa(i+1) + ":\n got: " + g[i] + "\nwant: " + w[i]
		}
	}
	return "lengths differ: " + itoa(len(g)) + " vs " + itoa(len(w)) + " lines"
}

func itoa(n int) string { return strconv.Itoa(n) }
