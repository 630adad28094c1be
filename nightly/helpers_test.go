package nightly_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/internal/flock"
	"github.com/repricer/repricer/nightly"
	"github.com/repricer/repricer/synth"
)

// Environment of the helper process: the test binary re-executed as a
// "repricer run" of its own, so tests can kill a real process.
const (
	envHelperConfig = "NIGHTLY_HELPER_CONFIG"
	envHelperDate   = "NIGHTLY_HELPER_DATE"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(envHelperConfig); cfg != "" {
		os.Exit(helperMain(cfg, os.Getenv(envHelperDate)))
	}
	pgtest.Main(m)
}

// helperMain is what cmd/repricer's run command does, minus flag parsing.
func helperMain(path, date string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := nightly.LoadConfig(path)
	if err == nil {
		log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
		_, err = nightly.Run(ctx, cfg, nightly.Options{Date: date, Logger: log})
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "repricer:", err)
	var ec interface{ ExitStatus() int }
	if errors.As(err, &ec) {
		return ec.ExitStatus()
	}
	return 1
}

const runDate = "2024-05-15"

// noDatabase is the environment without DATABASE_URL: the test binary's
// names an unmigrated server, which the runs of tests that are not about
// the database must not use as their ledger.
func noDatabase(k string) string {
	if k == "DATABASE_URL" {
		return ""
	}
	return os.Getenv(k)
}

// fixture is a generated contract bundle and one night's claim file.
type fixture struct {
	dir, contracts, claims string
	lines                  int64
}

// newFixture writes a synthetic bundle and a claim file of n lines under
// dir/in/<runDate>/.
func newFixture(t *testing.T, n int64) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s := synth.Schedule(synth.ScheduleOptions{Seed: 7, Contracts: 60, Rates: 3000})
	f := &fixture{dir: dir, contracts: filepath.Join(dir, "contracts"), claims: filepath.Join(dir, "in", runDate, "claims.csv"), lines: n}
	if err := bundle.Write(ctx, f.contracts, s); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(f.claims), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(f.claims)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.WriteCSV(ctx, out, synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 7, Lines: n})); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// config returns a job configuration over the fixture writing to outRoot.
func (f *fixture) config(outRoot string) *nightly.Config {
	return &nightly.Config{
		Name:      "test",
		Contracts: f.contracts,
		Claims:    []string{filepath.Join(f.dir, "in", "{{date}}", "*.csv")},
		Out:       filepath.Join(outRoot, "{{date}}"),
		Format:    "csv",
		Timezone:  "UTC",
		Lock:      nightly.LockConfig{Mode: nightly.LockFile},
		Report:    nightly.ReportConfig{ExamplesPerCode: 3},
	}
}

// writeConfig writes cfg as a JSON file and returns its path.
func writeConfig(t *testing.T, cfg *nightly.Config) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nightly.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// helper starts this test binary as a run of the configuration.
func helper(t *testing.T, config string, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// The test binary's DATABASE_URL names an unmigrated server: a run uses
	// a database only when the test passes one in env.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envHelperConfig+"="+config, envHelperDate+"="+runDate)
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// exitCode waits for cmd and returns its exit status (-1 when killed).
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatal(err)
	return 0
}

// dataFiles are the files that must be byte-identical between runs over the
// same inputs.
var dataFiles = []string{"priced.csv", "exceptions.csv", "schedule_issues.csv", "report.html"}

// sameOutputs compares two output folders: the data files byte for byte,
// summary.json apart from its timings, and the manifests' file lists apart
// from summary.json (whose timings differ) and the files named in except.
func sameOutputs(t *testing.T, want, got string, except ...string) {
	t.Helper()
	for _, name := range dataFiles {
		if slices.Contains(except, name) {
			continue
		}
		a, err := os.ReadFile(filepath.Join(want, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(got, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the uninterrupted run (%d vs %d bytes)", name, len(a), len(b))
		}
	}
	sa, sb := summaryWithoutTimings(t, want), summaryWithoutTimings(t, got)
	if sa != sb {
		t.Error("summary.json differs from the uninterrupted run beyond timings")
	}
	ma, err := nightly.Verify(want)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := nightly.Verify(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(ma.Files) != len(mb.Files) {
		t.Fatalf("manifests list %d and %d files", len(ma.Files), len(mb.Files))
	}
	for i := range ma.Files {
		if ma.Files[i].Name != "summary.json" && !slices.Contains(except, ma.Files[i].Name) && ma.Files[i] != mb.Files[i] {
			t.Errorf("manifest entry %v, want %v", mb.Files[i], ma.Files[i])
		}
	}
}

func summaryWithoutTimings(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "timings")
	out, _ := json.Marshal(m)
	return string(out)
}

// checkNoPartialRun asserts what a consumer may rely on after a run was
// killed: a manifest, if any, verifies; a summary.json, if any, comes with
// the complete set of files whose line counts match it.
func checkNoPartialRun(t *testing.T, dir string) (complete bool) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, nightly.ManifestFile)); err == nil {
		if _, err := nightly.Verify(dir); err != nil {
			t.Errorf("a manifest is there but does not verify: %v", err)
		}
		complete = true
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		if complete {
			t.Error("a manifest without summary.json")
		}
		return complete
	}
	var s struct {
		Counts struct {
			PricedLines      int64 `json:"priced_lines"`
			ErrorExceptions  int64 `json:"error_exceptions"`
			ReviewExceptions int64 `json:"review_exceptions"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Errorf("summary.json is not whole: %v", err)
		return complete
	}
	for _, c := range []struct {
		name string
		want int64
	}{
		{"priced.csv", s.Counts.PricedLines + 1},
		{"exceptions.csv", s.Counts.ErrorExceptions + s.Counts.ReviewExceptions + 1},
	} {
		data, err := os.ReadFile(filepath.Join(dir, c.name))
		if err != nil {
			t.Errorf("summary.json without %s: %v", c.name, err)
			continue
		}
		if got := int64(bytes.Count(data, []byte("\n"))); got != c.want {
			t.Errorf("%s has %d lines, summary.json says %d", c.name, got, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "schedule_issues.csv")); err != nil {
		t.Errorf("summary.json without schedule_issues.csv: %v", err)
	}
	return complete
}

// leftovers lists what a finished run must not leave in its folder.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // killed before it made the folder: nothing left behind
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && e.Name() != nightly.LockFileName {
			out = append(out, e.Name())
		}
	}
	return out
}

// lockFree reports whether the lock file in dir, if there is one, is not
// held (the file itself stays between runs; its flock is the lock).
func lockFree(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, nightly.LockFileName))
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return flock.TryLock(f) == nil
}
