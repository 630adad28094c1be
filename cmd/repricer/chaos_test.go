package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/nightly"
	"github.com/repricer/repricer/synth"
)

// The kill-at-random harness: go test ./cmd/repricer -run KillAtRandom
// -kills 50 -kill-lines 1000000 for a long session; CI runs a few kills.
var (
	kills     = flag.Int("kills", 3, "random SIGKILLs of each command in TestKillAtRandom")
	killLines = flag.Int64("kill-lines", 150_000, "claim lines of TestKillAtRandom's runs")
)

// asMain starts the test binary as "repricer ARGS" (see TestMain).
func asMain(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") { // an unmigrated test server
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envAsMain+"=1", envLogFormat+"=json")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// outputSet is a published run: its files' bytes, summary.json without
// its timings.
type outputSet map[string]string

func readOutputs(t *testing.T, dir string) outputSet {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	set := outputSet{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		switch n {
		case "summary.json", nightly.ManifestFile, "report.html":
			b = withoutVolatile(t, n, b)
		}
		set[n] = string(b)
	}
	return set
}

// withoutVolatile drops what differs between identical runs: timings,
// run ids, times, and the report that shows them.
func withoutVolatile(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	if name == "report.html" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s is not whole: %v", name, err)
	}
	for _, k := range []string{"timings", "run_id", "started_at", "finished_at", "files"} {
		delete(m, k)
	}
	out, _ := json.Marshal(m)
	return out
}

func stagingLeft(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".repricer-staging-") || strings.Contains(e.Name(), ".tmp-") {
			left = append(left, e.Name())
		}
	}
	return left
}

// sameSet reports whether a folder's run is exactly one of the given runs.
func sameSet(got outputSet, want ...outputSet) bool {
	for _, w := range want {
		if len(got) == len(w) {
			same := true
			for k, v := range w {
				if got[k] != v {
					same = false
				}
			}
			if same {
				return true
			}
		}
	}
	return false
}

// runFixture is a generated bundle, claim files written over it, and a
// nightly configuration for the night of 2024-05-15 whose claims are
// dir/in/2024-05-15/*.csv.
type runFixture struct {
	dir, bundle, config string
	schedule            *contracts.Schedule
}

func newRunFixture(t *testing.T, contractsN, ratesN int) *runFixture {
	t.Helper()
	dir := t.TempDir()
	f := &runFixture{dir: dir, bundle: filepath.Join(dir, "contracts"), config: filepath.Join(dir, "nightly.json"),
		schedule: synth.Schedule(synth.ScheduleOptions{Seed: int64(contractsN), Contracts: contractsN, Rates: ratesN})}
	if err := bundle.Write(context.Background(), f.bundle, f.schedule); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"contracts": f.bundle, "claims": []string{filepath.Join(dir, "in", "{{date}}", "*.csv")},
		"out": filepath.Join(dir, "run-out", "{{date}}"), "lock": map[string]any{"mode": "file"}})
	if err := os.WriteFile(f.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// claims writes n generated lines to path.
func (f *runFixture) claims(t *testing.T, path string, seed, n int64) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.WriteCSV(context.Background(), out, synth.Claims(synth.ClaimOptions{Schedule: f.schedule, Seed: seed, Lines: n})); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKillAtRandom SIGKILLs real reprice and run processes at random
// moments while they replace an earlier run in the same folder. After each
// kill the folder holds the old run or the new one, or no complete run (no
// summary.json for reprice, no _SUCCESS.json for run); the rerun that follows
// publishes files byte-identical to an uninterrupted run, and no staging
// folder is ever left behind. A broken downstream pipe cleans up too.
func TestKillAtRandom(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	fx := newRunFixture(t, 60, 3000)
	dir, bundleDir, config := fx.dir, fx.bundle, fx.config
	oldClaims := fx.claims(t, filepath.Join(dir, "old", "claims.csv"), 1, 2000)
	newClaims := fx.claims(t, filepath.Join(dir, "in", "2024-05-15", "claims.csv"), 2, *killLines)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("kill delays from seed %d", seed)

	reprice := func(claims, out string) []string {
		return []string{"reprice", "--contracts", bundleDir, "--claims", claims, "--out", out, "--ledger", "none", "-q"}
	}
	runOut := filepath.Join(dir, "run-out", "2024-05-15")

	commands := []struct {
		name     string
		out      string
		old, new []string // the earlier run, and the one that is killed
		marker   string   // the file that says the folder holds a complete run
	}{
		{"reprice", filepath.Join(dir, "reprice-out"), reprice(oldClaims, filepath.Join(dir, "reprice-out")), reprice(newClaims, filepath.Join(dir, "reprice-out")), "summary.json"},
		{"run", runOut, nil, []string{"run", "--config", config, "--date", "2024-05-15"}, nightly.ManifestFile},
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			mustRun := func(args []string) {
				t.Helper()
				var stderr bytes.Buffer
				cmd := asMain(t, nil, args...)
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("repricer %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
				}
			}
			// The uninterrupted new run, for reference, then the earlier run
			// the kills replace.
			refDir := t.TempDir()
			ref := slices.Clone(c.new)
			if c.name == "reprice" {
				ref = reprice(newClaims, refDir)
			}
			start := time.Now()
			mustRun(ref)
			full := time.Since(start)
			var newSet outputSet
			if c.name == "reprice" {
				newSet = readOutputs(t, refDir)
			} else {
				newSet = readOutputs(t, c.out)
			}
			var oldSet outputSet
			if c.old != nil {
				mustRun(c.old)
				oldSet = readOutputs(t, c.out)
			} else {
				oldSet = newSet // run: the earlier run is the same night's
			}
			for i := range *kills {
				cmd := asMain(t, nil, c.new...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				delay := time.Duration(rng.Float64() * float64(full))
				time.Sleep(delay)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				err := cmd.Wait()
				var ee *exec.ExitError
				if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != -1) {
					t.Fatalf("kill %d: the run failed on its own: %v\n%s", i, err, stderr.String())
				}
				got := readOutputs(t, c.out)
				_, complete := got[c.marker]
				if complete && !sameSet(got, oldSet, newSet) {
					t.Fatalf("kill %d after %v: the folder holds a %s but neither the old run nor the new one: %v", i, delay, c.marker, keys(got))
				}
				// The rerun sweeps what the killed run left and publishes
				// the new run exactly.
				mustRun(c.new)
				if l := stagingLeft(t, c.out); len(l) > 0 {
					t.Fatalf("kill %d: the rerun left %v", i, l)
				}
				if got := readOutputs(t, c.out); !sameSet(got, newSet) {
					t.Fatalf("kill %d: the rerun's outputs differ from an uninterrupted run's: %v", i, keys(got))
				}
				if c.old != nil {
					mustRun(c.old) // back to the earlier run for the next kill
				}
			}
		})
	}

	t.Run("broken pipe", func(t *testing.T) {
		side := filepath.Join(dir, "pipe-side")
		cmd := asMain(t, nil, "reprice", "--contracts", bundleDir, "--claims", newClaims, "--out", "-", "--side-out", side, "--ledger", "none", "-q")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(stdout, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		stdout.Close() // like head -c 1000
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("exit %v, want status 1 (a failed run): %s", err, stderr.String())
		}
		if l := stagingLeft(t, side); len(l) > 0 {
			t.Errorf("a broken pipe left %v", l)
		}
	})
}

func keys(m outputSet) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// SIGTERM stops a run with exit status 1 and one JSON log line that names
// the signal and the stage, never "context canceled", and nothing but JSON
// on standard error.
func TestSIGTERMIsNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and signals processes")
	}
	fx := newRunFixture(t, 200, 100_000)
	fx.claims(t, filepath.Join(fx.dir, "in", "2024-05-15", "claims.csv"), 1, 100_000)
	config := fx.config
	cmd := asMain(t, nil, "run", "--config", config, "--date", "2024-05-15")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Signal once the lock is taken: the run is loading its schedule (or,
	// on a fast machine, already pricing).
	var lines []string
	buf := make([]byte, 0, 64<<10)
	chunk := make([]byte, 4096)
	signalled := false
	for {
		n, rerr := stderr.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			line := string(buf[:i])
			buf = buf[i+1:]
			lines = append(lines, line)
			if !signalled && strings.Contains(line, `"msg":"lock taken"`) {
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				signalled = true
			}
		}
		if rerr != nil {
			break
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; stderr:\n%s", err, strings.Join(lines, "\n"))
	}
	var last map[string]any
	for i, line := range lines {
		last = nil
		if err := json.Unmarshal([]byte(line), &last); err != nil {
			t.Fatalf("stderr line %d is not JSON: %q", i+1, line)
		}
	}
	msg, _ := last["error"].(string)
	if last["msg"] != "run stopped" || !strings.Contains(msg, "SIGTERM") || strings.Contains(msg, "context canceled") ||
		last["stage"] == nil || last["stage"] == "done" {
		t.Errorf("the last log line %v: want \"run stopped\" naming SIGTERM and the stage", last)
	}
}
