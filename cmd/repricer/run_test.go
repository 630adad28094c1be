package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/internal/flock"
	"github.com/repricer/repricer/nightly"
	"github.com/repricer/repricer/pipeline"
)

// runRunCLI runs "repricer run ARGS" in-process (the command registered
// alone, as app.go registers it) and returns the exit status and stderr.
func runRunCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := &cli.App{Name: "repricer", Writer: &out, ErrWriter: &errOut,
		ExitErrHandler: func(*cli.Context, error) {}, OnUsageError: onUsageError,
		Commands: []*cli.Command{runCommand()}}
	err := app.RunContext(context.Background(), append([]string{"repricer", "run"}, args...))
	return report(err, &errOut), errOut.String()
}

// sampleRunConfig writes a job configuration over the sample data and
// returns its path and the output folder of runDate.
func sampleRunConfig(t *testing.T, edit func(map[string]any)) (config, out string) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in", "2024-05-15")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "claims.csv"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(sampleContracts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"contracts": abs, "claims": []string{filepath.Join(dir, "in", "{{date}}", "*.csv")},
		"out": filepath.Join(dir, "out", "{{date}}"), "lock": map[string]any{"mode": "file"},
	}
	if edit != nil {
		edit(cfg)
	}
	j, _ := json.Marshal(cfg)
	config = filepath.Join(dir, "nightly.json")
	if err := os.WriteFile(config, j, 0o600); err != nil {
		t.Fatal(err)
	}
	return config, filepath.Join(dir, "out", "2024-05-15")
}

func TestRunCommand(t *testing.T) {
	unsetEnv(t, "DATABASE_URL", envLogFormat)
	okConfig, okOut := sampleRunConfig(t, nil)
	lockedConfig, lockedOut := sampleRunConfig(t, nil)
	if err := os.MkdirAll(lockedOut, 0o755); err != nil {
		t.Fatal(err)
	}
	// A live holder: this process holds the lock file's flock (another
	// open file description of it excludes the run, as another process
	// would).
	lockPath := filepath.Join(lockedOut, nightly.LockFileName)
	if err := os.WriteFile(lockPath, []byte(`{"pid":1,"host":"elsewhere","run_id":"the-other-run"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := flock.TryLock(held); err != nil {
		t.Fatal(err)
	}
	typoConfig, _ := sampleRunConfig(t, func(m map[string]any) { m["wokers"] = 2 })
	pwConfig, _ := sampleRunConfig(t, func(m map[string]any) { m["database"] = "postgres://u:hunter2@127.0.0.1:1/x" })
	// Once the logger exists (JSON: standard error is not a terminal), every
	// line of standard error is one JSON object, failures included.
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
		json   bool
	}{
		{"success", []string{"--config", okConfig, "--date", "2024-05-15"}, 0, `"msg":"run finished"`, true},
		{"no config", nil, 2, "--config is required", false},
		{"config missing", []string{"--config", "nope.json"}, 2, "nope.json", true},
		{"unknown key", []string{"--config", typoConfig}, 2, `unknown field \"wokers\"`, true},
		{"password in the config", []string{"--config", pwConfig}, 2, "holds a password", true},
		{"bad date", []string{"--config", okConfig, "--date", "yesterday"}, 2, "YYYY-MM-DD", true},
		{"no claim files that night", []string{"--config", okConfig, "--date", "2024-05-16"}, 1, "no claim files", true},
		{"bad log format", []string{"--config", okConfig, "--log-format", "xml"}, 2, "log format", false},
		{"locked", []string{"--config", lockedConfig, "--date", "2024-05-15"}, 3, "the-other-run", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stderr := runRunCLI(t, tt.args...)
			if status != tt.status {
				t.Errorf("exit status %d, want %d; stderr:\n%s", status, tt.status, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr does not mention %q:\n%s", tt.stderr, stderr)
			}
			if tt.json {
				for i, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
					var obj map[string]any
					if err := json.Unmarshal([]byte(line), &obj); err != nil {
						t.Errorf("stderr line %d is not a JSON object: %q", i+1, line)
					} else if obj["level"] == "ERROR" && obj["stage"] != "config" && obj["run_id"] == nil {
						t.Errorf("the failure's log line has no run_id: %q", line)
					}
				}
			}
			if strings.Contains(stderr, "hunter2") {
				t.Error("stderr shows the password")
			}
		})
	}
	if _, err := nightly.Verify(okOut); err != nil {
		t.Error(err)
	}
	if entries, _ := os.ReadDir(lockedOut); len(entries) != 1 {
		t.Errorf("the locked-out run touched the folder: %d entries", len(entries))
	}
}

// TestRunCommandPostgresLock: with a database the lock is a Postgres
// advisory lock; while another session holds it, the command exits 3.
func TestRunCommandPostgresLock(t *testing.T) {
	url := pgtest.NewDatabase(t)
	if err := postgres.Migrate(context.Background(), pgtest.Open(t, url).DB); err != nil {
		t.Fatal(err) // the runs table: the run is recorded there
	}
	t.Setenv("DATABASE_URL", url)
	config, out := sampleRunConfig(t, func(m map[string]any) { m["lock"] = map[string]any{"mode": "postgres"} })
	abs, _ := filepath.Abs(out)
	db := pgtest.Open(t, url)
	unlock, ok, err := postgres.TryLock(context.Background(), db, "repricer-run:"+abs)
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	status, stderr := runRunCLI(t, "--config", config, "--date", "2024-05-15")
	if status != 3 || !strings.Contains(stderr, "advisory lock") {
		t.Fatalf("while locked: exit %d: %s", status, stderr)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if status, stderr := runRunCLI(t, "--config", config, "--date", "2024-05-15"); status != 0 {
		t.Fatalf("after unlock: exit %d: %s", status, stderr)
	}
	if _, err := nightly.Verify(out); err != nil {
		t.Error(err)
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		stage               string
		count               int64
		fraction, fraction0 float64
		elapsed             time.Duration
		want                string
	}{
		{"reprice", 0, -1, -1, 0, "repricer: reprice 0 lines, 0 lines/s"},
		{"reprice", 1_500_000, -1, -1, 2 * time.Second, "repricer: reprice 1,500,000 lines, 750,000 lines/s"},
		{"reprice", 250, 0.25, 0, time.Second, "repricer: reprice 250 lines, 250 lines/s, 25%, ETA 3s"},
		// The ETA counts from the fraction done when the clock started.
		{"reprice", 250, 0.5, 0.25, time.Second, "repricer: reprice 250 lines, 250 lines/s, 50%, ETA 2s"},
		{"reprice", 2000, 1, 0, time.Second, "repricer: reprice 2,000 lines, 2,000 lines/s, 100%"},
		{"load", 300_000, -1, -1, 3 * time.Second, "repricer: load 300,000 rates, 100,000 rates/s"},
		{"load", -1, -1, -1, 12*time.Second + 300*time.Millisecond, "repricer: load, 12s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := progressLine(tt.stage, tt.count, tt.fraction, tt.fraction0, tt.elapsed); got != tt.want {
				t.Errorf("got %q", got)
			}
		})
	}
}

// The progress display is throttled, measures each stage from its own
// first report (a long load does not dilute the pricing rate), and a log
// line written meanwhile starts on a clean line.
func TestProgressDisplay(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := newProgress(&buf, func() time.Time { return now })
	now = now.Add(20 * time.Second) // a long schedule load before the first report
	for i := range 10 {
		p.update(pipeline.Progress{Lines: int64(i) * 1000, Fraction: float64(i) / 10})
		now = now.Add(100 * time.Millisecond)
	}
	if n := strings.Count(buf.String(), "\r"); n != 3 {
		t.Errorf("%d progress lines, want 3 (one per 250 ms): %q", n, buf.String())
	}
	last := buf.String()[strings.LastIndex(buf.String(), "\r")+1:]
	if !strings.Contains(last, "10,000 lines/s") || !strings.Contains(last, "%") || !strings.Contains(last, "ETA") {
		t.Errorf("last progress line %q: want the stage's own rate (10,000 lines/s), a percentage and an ETA", last)
	}
	buf.Reset()
	fmt.Fprint(p.logWriter(), "level=INFO msg=x\n")
	if got := buf.String(); got != "\r\x1b[Klevel=INFO msg=x\n" {
		t.Errorf("a log line after a progress line is written as %q, want it to clear the progress line first", got)
	}
	buf.Reset()
	p.done()
	if buf.Len() != 0 {
		t.Errorf("done after a log line wrote %q", buf.String())
	}
}

func TestLoggerFormat(t *testing.T) {
	unsetEnv(t, envLogFormat)
	tests := []struct {
		format string
		want   string
	}{{"", `{"time":`}, {"json", `{"time":`}, {"text", "time="}}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer // not a terminal
			log, _, err := newLogger(&buf, tt.format, false)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("x", "stage", "reprice")
			if !strings.HasPrefix(buf.String(), tt.want) {
				t.Errorf("log %q, want it to start with %q", buf.String(), tt.want)
			}
		})
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Error("/dev/null taken for a terminal")
	}
}

// buildRepricer builds the command into a temporary folder.
func buildRepricer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "repricer")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRepriceSIGKILL kills "repricer reprice" at random moments: the output
// folder never holds a summary.json without the complete set of files it
// describes, and the rerun publishes byte-identical files.
func TestRepriceSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it")
	}
	bin := buildRepricer(t)
	data := t.TempDir()
	if out, err := exec.Command(bin, "gen", "--out", data, "--lines", "300000", "--contracts", "100", "--rates", "5000", "-q").CombinedOutput(); err != nil {
		t.Fatalf("gen: %v\n%s", err, out)
	}
	reprice := func(out string) *exec.Cmd {
		cmd := exec.Command(bin, "reprice", "--contracts", filepath.Join(data, "contracts"),
			"--claims", filepath.Join(data, "claims.csv"), "--out", out, "-q")
		cmd.Env = append(os.Environ(), "DATABASE_URL=")
		return cmd
	}
	ref := filepath.Join(data, "ref")
	start := time.Now()
	if out, err := reprice(ref).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	full := time.Since(start)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("uninterrupted run %v; kill delays from seed %d", full, seed)
	out := filepath.Join(data, "out")
	for i := range 5 {
		delay := time.Duration((float64(i) + rng.Float64()) / 5 * float64(full))
		cmd := reprice(out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // killed, or finished first
		complete := checkPublished(t, out)
		t.Logf("kill %d after %v: complete set %v", i, delay, complete)
	}
	if b, err := reprice(out).CombinedOutput(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, b)
	}
	for _, name := range []string{"priced.csv", "exceptions.csv", "schedule_issues.csv"} {
		a, _ := os.ReadFile(filepath.Join(ref, name))
		b, _ := os.ReadFile(filepath.Join(out, name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the uninterrupted run", name)
		}
	}
}

// checkPublished asserts that a summary.json in dir comes with the priced
// and exception files whose line counts it states.
func checkPublished(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		return false
	}
	var s struct {
		Counts struct {
			Priced int64 `json:"priced_lines"`
			Errors int64 `json:"error_exceptions"`
			Review int64 `json:"review_exceptions"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary.json is not whole: %v", err)
	}
	c := s.Counts
	for name, want := range map[string]int64{
		"priced.csv":     c.Priced + 1,
		"exceptions.csv": c.Errors + c.Review + 1,
	} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("summary.json without %s", name)
			continue
		}
		if got := int64(bytes.Count(data, []byte("\n"))); got != want || want <= 1 {
			t.Errorf("%s: %d lines, summary.json says %d", name, got, want)
		}
	}
	return true
}
