package nightly_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/internal/flock"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/nightly"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, json, err string
	}{
		{"minimal", `{"contracts":"c","claims":["in/*.csv"],"out":"out/{{date}}"}`, ""},
		{"example file", mustRead(t, "../testdata/nightly/nightly.json"), ""},
		{"unknown key", `{"contracts":"c","claims":["x"],"out":"o","wokers":4}`, `unknown field "wokers"`},
		{"no claims", `{"contracts":"c","out":"o"}`, `"claims" is required`},
		{"no out", `{"contracts":"c","claims":["x"]}`, `"out" is required`},
		{"bad format", `{"claims":["x"],"out":"o","format":"xlsx"}`, `"format"`},
		{"bad lock mode", `{"claims":["x"],"out":"o","lock":{"mode":"flock"}}`, `"lock.mode"`},
		{"bad timezone", `{"claims":["x"],"out":"o","timezone":"Mars/Base"}`, `"timezone"`},
		{"bad timeout", `{"claims":["x"],"out":"o","db_timeout":"soon"}`, `"db_timeout"`},
		{"password in config", `{"claims":["x"],"out":"o","database":"postgres://u:hunter2@db/x"}`, `holds a password`},
		{"two values", `{"claims":["x"],"out":"o"} {}`, "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := nightly.ParseConfig([]byte(tt.json), "nightly.json")
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *nightly.ConfigError
			if !errors.As(err, &ce) || ce.ExitStatus() != 2 {
				t.Fatalf("error %v, want a *ConfigError (exit 2)", err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %q does not mention %q", err, tt.err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.csv", "a.csv", "c.parquet"} {
		if err := os.MkdirAll(filepath.Join(dir, "2024-05-15"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "2024-05-15", n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 5, 15, 23, 30, 0, 0, time.UTC)
	base := func() *nightly.Config {
		c, err := nightly.ParseConfig([]byte(fmt.Sprintf(`{"claims":[%q,%q],"out":%q,"contracts":"bundle"}`,
			filepath.Join(dir, "{{date}}", "*.csv"), filepath.Join(dir, "{{date}}", "a.*"), filepath.Join(dir, "out", "{{date}}"))), "t")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	env := func(kv ...string) nightly.Getenv {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name   string
		edit   func(*nightly.Config)
		date   string
		env    nightly.Getenv
		check  func(*testing.T, *nightly.Plan)
		errAs  any
		errHas string
	}{
		{"today in UTC, globs sorted and deduplicated, file lock", nil, "", env(), func(t *testing.T, p *nightly.Plan) {
			want := []string{filepath.Join(dir, "2024-05-15", "a.csv"), filepath.Join(dir, "2024-05-15", "b.csv")}
			if p.Date != "2024-05-15" || fmt.Sprint(p.Claims) != fmt.Sprint(want) || p.LockMode != nightly.LockFile ||
				p.OutDir != filepath.Join(dir, "out", "2024-05-15") || p.LockKey != "repricer-run:"+p.OutDir {
				t.Errorf("plan %+v", p)
			}
		}, nil, ""},
		{"time zone moves today", func(c *nightly.Config) { c.Timezone = "Asia/Tokyo" }, "", env(), nil, new(*nightly.InputError), "2024-05-16"},
		{"a database makes the lock Postgres", nil, "", env("DATABASE_URL", "postgres://u:pw@h/db"), func(t *testing.T, p *nightly.Plan) {
			if p.LockMode != nightly.LockPostgres || p.DatabaseURL != "postgres://u:pw@h/db" {
				t.Errorf("plan %+v", p)
			}
		}, nil, ""},
		{"no files that night", nil, "2024-05-16", env(), nil, new(*nightly.InputError), "no claim files"},
		{"bad date", nil, "15/05/2024", env(), nil, new(*nightly.ConfigError), "YYYY-MM-DD"},
		{"postgres lock without database", func(c *nightly.Config) { c.Lock.Mode = nightly.LockPostgres }, "", env(), nil, new(*nightly.ConfigError), "DATABASE_URL"},
		{"bc without database", func(c *nightly.Config) { c.BC.Enabled = true }, "", env("BC_CLIENT_SECRET", "x"), nil, new(*nightly.ConfigError), "sync state"},
		{"bc without secret", func(c *nightly.Config) { c.BC.Enabled = true }, "", env("DATABASE_URL", "postgres://h/db"), nil, new(*nightly.ConfigError), "BC_CLIENT_SECRET"},
		{"bc secret from a file", func(c *nightly.Config) { c.BC.Enabled = true }, "", env("DATABASE_URL", "postgres://h/db", "BC_CLIENT_SECRET_FILE", secretFile), func(t *testing.T, p *nightly.Plan) {
			if p.BCSecret != "s3cret" {
				t.Errorf("secret %q", p.BCSecret)
			}
		}, nil, ""},
		{"bc secret twice", func(c *nightly.Config) { c.BC.Enabled = true }, "", env("DATABASE_URL", "postgres://h/db", "BC_CLIENT_SECRET", "s3cret", "BC_CLIENT_SECRET_FILE", secretFile), nil, new(*nightly.ConfigError), "only one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			if tt.edit != nil {
				tt.edit(c)
			}
			p, err := c.Resolve(tt.date, now, tt.env)
			if tt.errAs != nil {
				if err == nil || !errors.As(err, tt.errAs) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want %T mentioning %q", err, tt.errAs, tt.errHas)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error shows the secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

// TestRun runs the job in-process twice over the same inputs: the second
// run replaces the first and publishes identical files; the logs are
// structured and free of member ids and amounts.
func TestRun(t *testing.T) {
	f := newFixture(t, 3000)
	out := t.TempDir()
	cfg := f.config(out)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	res, err := nightly.Run(context.Background(), cfg, nightly.Options{Date: runDate, Logger: log, RunID: "run-1", Getenv: noDatabase})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, runDate)
	if res.OutDir != dir {
		t.Fatalf("out %s, want %s", res.OutDir, dir)
	}
	m, err := nightly.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fe := range m.Files {
		names = append(names, fe.Name)
	}
	if got := strings.Join(names, " "); got != "priced.csv exceptions.csv schedule_issues.csv summary.json report.html" {
		t.Errorf("manifest files: %s", got)
	}
	if m.RunID != "run-1" || m.RunDate != runDate || !m.Books.Balanced || len(m.Inputs) != 1 || m.Inputs[0].SHA256 == "" || m.Counts.InputLines != f.lines {
		t.Errorf("manifest %+v", m)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
	// Without a database the run is recorded in the ledger file beside the
	// output folder, so that reprice --compare-run can find it.
	if rec, err := adjust.GetRunFile(context.Background(), filepath.Join(out, "repricer-ledger.jsonl"), "run-1"); err != nil || rec.OutputLocation != dir {
		t.Errorf("ledger entry %+v, %v\n%s", rec, err, logs.String())
	}
	html := mustRead(t, filepath.Join(dir, "report.html"))
	if !strings.Contains(html, "Exception examples") || !strings.Contains(html, "<svg") {
		t.Error("report.html lacks its sections")
	}

	// The logs: JSON lines with the run id and stages, nothing sensitive.
	stages := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if rec["run_id"] != "run-1" {
			t.Errorf("log line without the run id: %s", line)
		}
		stages[fmt.Sprint(rec["stage"])] = true
	}
	for _, s := range []string{"plan", "lock", "load", "reprice", "report", "done"} {
		if !stages[s] {
			t.Errorf("no log of stage %s", s)
		}
	}
	claims := mustRead(t, f.claims)
	member := strings.Split(strings.Split(claims, "\n")[1], ",")[3]
	if !strings.HasPrefix(member, "M") || strings.Contains(logs.String(), member) {
		t.Errorf("the logs hold member id %q (or the fixture changed)", member)
	}
	if strings.Contains(logs.String(), res.Summary.Totals.Allowed.String()) {
		t.Error("the logs hold the allowed total")
	}

	// Rerun: the old manifest is withdrawn, the new one lists identical
	// data files.
	first := t.TempDir()
	for _, n := range append(dataFiles, "summary.json", nightly.ManifestFile) {
		if err := os.WriteFile(filepath.Join(first, n), []byte(mustRead(t, filepath.Join(dir, n))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The reruns open the schedule's compiled image (built by the first,
	// used by the second) and publish the same files.
	cache := &load.Cache{Dir: t.TempDir()}
	for i, want := range []string{"schedule image built", "schedule image used"} {
		var logs bytes.Buffer
		cache.Log = slog.New(slog.NewJSONHandler(&logs, nil))
		if _, err := nightly.Run(context.Background(), cfg, nightly.Options{Getenv: noDatabase, Date: runDate, RunID: fmt.Sprint("run-", i+2),
			ScheduleCache: cache}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), `"msg":"`+want+`"`) {
			t.Errorf("rerun %d: no %q in the logs:\n%s", i+1, want, logs.String())
		}
		sameOutputs(t, first, dir)
	}

	// A tampered file fails verification.
	if err := os.WriteFile(filepath.Join(dir, "priced.csv"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var me *nightly.ManifestError
	if _, err := nightly.Verify(dir); !errors.As(err, &me) {
		t.Errorf("verify of a tampered folder: %v", err)
	}
}

// TestRunFailurePublishesNoManifest: a run that fails after a complete
// one withdraws the old manifest and writes none.
func TestRunFailurePublishesNoManifest(t *testing.T) {
	f := newFixture(t, 500)
	out := t.TempDir()
	cfg := f.config(out)
	if _, err := nightly.Run(context.Background(), cfg, nightly.Options{Getenv: noDatabase, Date: runDate}); err != nil {
		t.Fatal(err)
	}
	cfg.SystemDefaultRate = "Fee:1"
	_, err := nightly.Run(context.Background(), cfg, nightly.Options{Getenv: noDatabase, Date: runDate})
	var ce *nightly.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("bad default rate: %v", err)
	}
	cfg.SystemDefaultRate = ""
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := nightly.Run(ctx, cfg, nightly.Options{Getenv: noDatabase, Date: runDate}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
	dir := filepath.Join(out, runDate)
	if _, err := os.Stat(filepath.Join(dir, nightly.ManifestFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled run left a manifest: %v", err)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

func TestFileLock(t *testing.T) {
	f := newFixture(t, 200)
	host, _ := os.Hostname()
	tests := []struct {
		name    string
		content string // "" = no lock file
		held    bool   // another open file description holds its flock
		wantErr bool
		holder  string
	}{
		{"free", "", false, false, ""},
		{"held by a live run", `{"pid":4242,"host":"h","run_id":"other"}`, true, true, "run other"},
		{"held, holder not written yet", "", true, true, "not recorded yet"},
		// A killed run's file names a pid that is alive again: in a
		// container the next night's run is pid 1 on the same host name.
		{"left by a killed run whose pid is ours", fmt.Sprintf(`{"pid":%d,"host":%q,"run_id":"dead"}`, os.Getpid(), host), false, false, ""},
		{"left by a killed run on another host", `{"pid":1,"host":"elsewhere.example","run_id":"dead"}`, false, false, ""},
		{"left half-written", `{"pid":`, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			dir := filepath.Join(out, runDate)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			lock := filepath.Join(dir, nightly.LockFileName)
			if tt.content != "" || tt.held {
				if err := os.WriteFile(lock, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.held {
				h, err := os.Open(lock)
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				if err := flock.TryLock(h); err != nil {
					t.Fatal(err)
				}
			}
			_, err := nightly.Run(context.Background(), f.config(out), nightly.Options{Getenv: noDatabase, Date: runDate})
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				// The lock is free again for the next run.
				l, err := os.Open(lock)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				if err := flock.TryLock(l); err != nil {
					t.Errorf("the lock is still held after the run: %v", err)
				}
				return
			}
			var le *nightly.LockedError
			if !errors.As(err, &le) || le.ExitStatus() != 3 || !strings.Contains(err.Error(), tt.holder) {
				t.Fatalf("error %v, want a *LockedError naming %q", err, tt.holder)
			}
			if got, err := os.ReadFile(lock); err != nil || string(got) != tt.content {
				t.Errorf("the holder's lock file changed: %q, %v", got, err)
			}
		})
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd, _ := helper(t, "/nonexistent/config.json")
	pid := cmd.Process.Pid
	exitCode(t, cmd)
	if err := syscall.Kill(pid, 0); err == nil {
		t.Skip("pid reused at once")
	}
	return pid
}

// TestKillAtRandomPoints SIGKILLs real runs at random moments: the output
// folder never claims a partial run, stale locks and staging folders are
// cleaned up, and the rerun publishes files byte-identical to an
// uninterrupted run's.
func TestKillAtRandomPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills processes")
	}
	f := newFixture(t, 300_000)
	refOut := t.TempDir()
	start := time.Now()
	ref, refErr := helper(t, writeConfig(t, f.config(refOut)))
	if code := exitCode(t, ref); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, refErr)
	}
	full := time.Since(start)
	out := t.TempDir()
	config := writeConfig(t, f.config(out))
	dir := filepath.Join(out, runDate)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("uninterrupted run %v; kill delays from seed %d", full, seed)
	for i := range 5 {
		// Spread the kills over the run (process start included).
		lo, hi := float64(i)/5, float64(i+1)/5
		delay := time.Duration((lo + rng.Float64()*(hi-lo)) * float64(full))
		cmd, stderr := helper(t, config)
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		code := exitCode(t, cmd)
		if code != -1 && code != 0 {
			t.Fatalf("run %d exited %d before the kill: %s", i, code, stderr)
		}
		complete := checkNoPartialRun(t, dir)
		if !lockFree(t, dir) {
			t.Errorf("kill %d: the killed run's lock is still held", i)
		}
		t.Logf("kill %d after %v: exit %d, complete %v, left %v", i, delay, code, complete, leftovers(t, dir))
	}

	// SIGTERM stops a run cleanly: exit 1, no manifest, no lock left.
	cmd, stderr := helper(t, config)
	time.Sleep(full / 3)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 1 && code != 0 {
		t.Fatalf("SIGTERM: exit %d: %s", code, stderr)
	} else if code == 1 {
		if _, err := os.Stat(filepath.Join(dir, nightly.ManifestFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a stopped run left a manifest")
		}
		if !lockFree(t, dir) {
			t.Errorf("a stopped run left its lock held")
		}
	}

	cmd, stderr = helper(t, config)
	if code := exitCode(t, cmd); code != 0 {
		t.Fatalf("rerun: exit %d: %s", code, stderr)
	}
	sameOutputs(t, filepath.Join(refOut, runDate), dir)
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("the rerun left behind: %v", l)
	}
}
