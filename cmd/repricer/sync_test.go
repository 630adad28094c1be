package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/businesscentral"
	"github.com/repricer/repricer/connectors/businesscentral/bcemu"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/contracts"
)

// The sample bundle: 15 contracts, 3 rejected by validation, 48 usable
// rates of the 12 others.
const (
	syncSample          = "../../testdata/sample/contracts"
	syncSampleContracts = 12
	syncSampleSkipped   = 3
	syncSampleRates     = 48
)

// bcEnvVars returns the variables the sync command reads; tests start
// with none of them set.
func bcEnvVars() []string {
	return []string{"BC_BASE_URL", "BC_TENANT", "BC_ENVIRONMENT", "BC_COMPANY_ID", "BC_CLIENT_ID",
		"BC_PUBLISHER", "BC_GROUP", "BC_API_VERSION", "BC_TOKEN_URL", "BC_CONCURRENCY", "BC_MAX_RETRIES",
		envBCSecret, envBCSecretFile}
}

// unsetEnv unsets the variables for the test and restores them after it.
func unsetEnv(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		t.Setenv(n, "") // registers the restore
		if err := os.Unsetenv(n); err != nil {
			t.Fatal(err)
		}
	}
}

// syncEnv is an emulator and the flags that point the command at it.
type syncEnv struct {
	emu    *bcemu.Emulator
	flags  []string
	secret string
}

// newSyncEnv starts an emulator, clears the BC_* environment and sets
// BC_CLIENT_SECRET to the emulator's secret.
func newSyncEnv(t *testing.T) *syncEnv { return newSyncEnvWrap(t, nil) }

// newSyncEnvWrap is newSyncEnv with the emulator behind wrap, if set.
func newSyncEnvWrap(t *testing.T, wrap func(http.Handler) http.Handler) *syncEnv {
	t.Helper()
	unsetEnv(t, bcEnvVars()...)
	e := bcemu.New(bcemu.Options{Seed: 1})
	var h http.Handler = e
	if wrap != nil {
		h = wrap(e)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	o := e.Options()
	t.Setenv(envBCSecret, o.ClientSecret)
	return &syncEnv{emu: e, secret: o.ClientSecret, flags: []string{
		"--base-url", srv.URL, "--token-url", srv.URL + e.TokenPath(),
		"--tenant", o.Tenant, "--environment", o.Environment, "--company", o.CompanyID, "--client-id", o.ClientID,
		"--publisher", o.Publisher, "--group", o.Group,
	}}
}

// migratedDB returns the URL of a fresh migrated database.
func migratedDB(t *testing.T) string {
	t.Helper()
	url := pgtest.NewDatabase(t)
	db := pgtest.Open(t, url)
	if err := postgres.Migrate(context.Background(), db.DB); err != nil {
		t.Fatal(err)
	}
	return url
}

// runSync runs "repricer sync bc ARGS..." through run and report and
// returns the exit status and output.
func runSync(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	return runSyncCtx(t, context.Background(), args...)
}

func runSyncCtx(t *testing.T, ctx context.Context, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(ctx, append([]string{"repricer", "sync", "bc"}, args...), strings.NewReader(""), &out, &errOut)
	status = report(err, &errOut)
	return status, out.String(), errOut.String()
}

// stateRows counts the contract and rate rows of the sync state.
func stateRows(t *testing.T, url string) (contracts, rates int) {
	t.Helper()
	db := pgtest.Open(t, url)
	if err := db.Get(&contracts, "SELECT count(*) FROM bc_sync_contracts"); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&rates, "SELECT count(*) FROM bc_sync_rates"); err != nil {
		t.Fatal(err)
	}
	return contracts, rates
}

// countLines counts the output lines starting with word.
func countLines(out, word string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, word+" ") {
			n++
		}
	}
	return n
}

// checkNoLeaks fails if the output shows the secret or a sample amount.
func checkNoLeaks(t *testing.T, secret string, outs ...string) {
	t.Helper()
	for _, o := range outs {
		for _, bad := range []string{secret, "access_token", "Bearer", "1850.00", "5000.00", "1600.00"} {
			if strings.Contains(o, bad) {
				t.Errorf("output shows %q:\n%s", bad, o)
			}
		}
	}
}

func TestSyncBC(t *testing.T) {
	e := newSyncEnv(t)
	state := migratedDB(t)
	args := append([]string{"--contracts", syncSample, "--state", state}, e.flags...)

	t.Run("dry run prints the plan and writes nothing", func(t *testing.T) {
		status, stdout, stderr := runSync(t, append(args, "--dry-run")...)
		checkNoLeaks(t, e.secret, stdout, stderr)
		if status != 0 {
			t.Fatalf("exit status %d; stderr:\n%s", status, stderr)
		}
		if n := countLines(stdout, "create"); n != syncSampleContracts {
			t.Errorf("%d create lines, want %d:\n%s", n, syncSampleContracts, stdout)
		}
		if n := countLines(stdout, "skipped"); n != syncSampleSkipped {
			t.Errorf("%d skipped lines, want %d:\n%s", n, syncSampleSkipped, stdout)
		}
		if !strings.Contains(stdout, "CON-2024-00001") || !strings.Contains(stderr, "dry run") {
			t.Errorf("plan or summary incomplete:\n%s\n%s", stdout, stderr)
		}
		if st := e.emu.Stats(); st.WriteRequests != 0 {
			t.Errorf("dry run sent %d write requests", st.WriteRequests)
		}
		if c, r := stateRows(t, state); c+r != 0 {
			t.Errorf("dry run saved %d contract and %d rate states", c, r)
		}
	})

	t.Run("sync", func(t *testing.T) {
		reportFile := filepath.Join(t.TempDir(), "report.json")
		status, stdout, stderr := runSync(t, append(args, "--report", reportFile)...)
		checkNoLeaks(t, e.secret, stdout, stderr)
		if status != 0 {
			t.Fatalf("exit status %d; stderr:\n%s", status, stderr)
		}
		b, err := os.ReadFile(reportFile)
		if err != nil {
			t.Fatal(err)
		}
		var rep syncReport
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("report: %v\n%s", err, b)
		}
		if rep.Created != syncSampleContracts || rep.RatesCreated != syncSampleRates || len(rep.Skipped) != syncSampleSkipped || rep.DryRun {
			t.Errorf("report: created %d, rates %d, skipped %d, dry run %v", rep.Created, rep.RatesCreated, len(rep.Skipped), rep.DryRun)
		}
		if n, r := len(e.emu.Entities(bcemu.SetContracts)), len(e.emu.Entities(bcemu.SetRates)); n != syncSampleContracts || r != syncSampleRates {
			t.Errorf("BC holds %d contracts, %d rates", n, r)
		}
		if c, r := stateRows(t, state); c != syncSampleContracts || r != syncSampleRates {
			t.Errorf("state holds %d contracts, %d rates", c, r)
		}
	})

	t.Run("second sync sends nothing", func(t *testing.T) {
		before := e.emu.Stats()
		status, stdout, stderr := runSync(t, args...)
		if status != 0 {
			t.Fatalf("exit status %d; stderr:\n%s", status, stderr)
		}
		if w := e.emu.Stats().WriteRequests - before.WriteRequests; w != 0 {
			t.Errorf("second sync sent %d write requests", w)
		}
		if countLines(stdout, "create")+countLines(stdout, "update") != 0 || !strings.Contains(stderr, "12 unchanged") {
			t.Errorf("second sync output:\n%s\n%s", stdout, stderr)
		}
	})

	t.Run("conflict exits 1 naming the contract; --force overwrites", func(t *testing.T) {
		for _, m := range e.emu.Entities(bcemu.SetContracts) {
			if m["contractNumber"] == "CON-2024-00002" {
				if err := e.emu.Edit(bcemu.SetContracts, m["id"].(string), map[string]any{"statusReason": "edited in BC"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		status, stdout, stderr := runSync(t, args...)
		if status != 1 || !strings.Contains(stderr, "1 contract(s) in conflict") || !strings.Contains(stderr, "CON-2024-00002") ||
			countLines(stdout, "conflict") != 1 {
			t.Fatalf("exit status %d; stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
		}
		status, stdout, stderr = runSync(t, append(args, "--force")...)
		if status != 0 || countLines(stdout, "update") != 1 {
			t.Fatalf("forced: exit status %d; stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
		}
	})

	t.Run("JSON report on standard output", func(t *testing.T) {
		status, stdout, stderr := runSync(t, append(args, "--report", "-")...)
		if status != 0 {
			t.Fatalf("exit status %d; stderr:\n%s", status, stderr)
		}
		var rep syncReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
		}
		if rep.Unchanged != syncSampleContracts || len(rep.Results) != syncSampleContracts {
			t.Errorf("report: %d unchanged, %d results", rep.Unchanged, len(rep.Results))
		}
	})
}

// TestSyncBCFromPostgres reads the schedule from Postgres and keeps the
// state in the same database (no --state), with the secret in a file.
func TestSyncBCFromPostgres(t *testing.T) {
	ctx := context.Background()
	e := newSyncEnv(t)
	url := migratedDB(t)
	s, err := bundle.Read(ctx, syncSample)
	if err != nil {
		t.Fatal(err)
	}
	v := contracts.Validate(s)
	cs, rs, _ := syncable(v)
	if _, err := postgres.Import(ctx, pgtest.Open(t, url), &contracts.Schedule{Kinds: s.Kinds, Contracts: cs, Rates: rs}); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(e.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unsetEnv(t, envBCSecret)
	t.Setenv(envBCSecretFile, secretFile)
	t.Setenv(envDatabaseURL, url) // the default of --contracts

	for i, want := range []businesscentral.Action{businesscentral.ActionCreate, businesscentral.ActionUnchanged} {
		status, stdout, stderr := runSync(t, append(e.flags, "--report", "-")...)
		checkNoLeaks(t, e.secret, stdout, stderr)
		if status != 0 {
			t.Fatalf("sync %d: exit status %d; stderr:\n%s", i+1, status, stderr)
		}
		var rep syncReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != syncSampleContracts || len(rep.Skipped) != 0 {
			t.Fatalf("sync %d: %d results, %d skipped", i+1, len(rep.Results), len(rep.Skipped))
		}
		for _, r := range rep.Results {
			if r.Action != want {
				t.Errorf("sync %d: %s %s, want %s", i+1, r.Number, r.Action, want)
			}
		}
	}
	if c, r := stateRows(t, url); c != syncSampleContracts || r != syncSampleRates {
		t.Errorf("state holds %d contracts, %d rates", c, r)
	}
}

func TestSyncBCUsage(t *testing.T) {
	e := newSyncEnv(t)
	state := migratedDB(t)
	unmigrated := pgtest.NewDatabase(t)
	dir := t.TempDir()
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	without := func(flag string) []string { // e.flags without one flag and its value
		var out []string
		for i := 0; i < len(e.flags); i += 2 {
			if e.flags[i] != flag {
				out = append(out, e.flags[i], e.flags[i+1])
			}
		}
		return out
	}
	base := []string{"--contracts", syncSample, "--state", state}
	tests := []struct {
		name   string
		env    map[string]string // set for the case; "" unsets
		args   []string
		status int
		stderr string
	}{
		{"missing secret", map[string]string{envBCSecret: ""}, append(base, e.flags...), 2, "BC_CLIENT_SECRET"},
		{"secret file missing", map[string]string{envBCSecret: "", envBCSecretFile: filepath.Join(dir, "nope")}, append(base, e.flags...), 2, "BC_CLIENT_SECRET_FILE"},
		{"secret file empty", map[string]string{envBCSecret: "", envBCSecretFile: emptyFile}, append(base, e.flags...), 2, "is empty"},
		{"secret twice", map[string]string{envBCSecretFile: emptyFile}, append(base, e.flags...), 2, "set only one"},
		{"secret as a flag", nil, append(append(base, e.flags...), "--client-secret", "x"), 2, "flag provided but not defined"},
		{"missing tenant", nil, append(base, without("--tenant")...), 2, "--tenant (or BC_TENANT) is required"},
		{"missing company", nil, append(base, without("--company")...), 2, "BC_COMPANY_ID"},
		{"tenant from the environment", map[string]string{"BC_TENANT": "tenant"}, append(append(base, without("--tenant")...), "--dry-run"), 0, "dry run"},
		{"bad concurrency", nil, append(append(base, e.flags...), "--concurrency", "0"), 2, "--concurrency"},
		{"no state database", map[string]string{envDatabaseURL: ""}, append([]string{"--contracts", syncSample}, e.flags...), 2, "sync state lives in Postgres"},
		{"state not a URL", nil, append([]string{"--contracts", syncSample, "--state", dir}, e.flags...), 2, "--state must be a postgres:// URL"},
		{"state not migrated", nil, append([]string{"--contracts", syncSample, "--state", unmigrated}, e.flags...), 2, "repricer db migrate"},
		{"contracts folder missing", nil, append([]string{"--contracts", filepath.Join(dir, "nowhere"), "--state", state}, e.flags...), 2, "nowhere"},
		{"no contracts", map[string]string{envDatabaseURL: ""}, append([]string{"--state", state}, e.flags...), 2, "--contracts"},
		{"extra argument", nil, append(append(base, e.flags...), "extra"), 2, "unexpected arguments"},
		{"bad max retries", nil, append(append(base, e.flags...), "--max-retries", "0"), 2, "--max-retries"},
		// Not a usage error: the token endpoint refuses the secret, which
		// ends the run at once, naming the token URL and the OAuth code.
		{"wrong secret", map[string]string{envBCSecret: "wrong-secret-value"}, append(append(base, e.flags...), "--max-retries", "1"), 1, `"invalid_client"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				if v == "" {
					unsetEnv(t, k)
				} else {
					t.Setenv(k, v)
				}
			}
			before := e.emu.Stats()
			status, stdout, stderr := runSync(t, tt.args...)
			checkNoLeaks(t, e.secret, stdout, stderr)
			if v := tt.env[envBCSecret]; v != "" && strings.Contains(stdout+stderr, v) {
				t.Errorf("output shows the secret:\n%s\n%s", stdout, stderr)
			}
			if status != tt.status || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit status %d, want %d with %q; stderr:\n%s", status, tt.status, tt.stderr, stderr)
			}
			if w := e.emu.Stats().WriteRequests - before.WriteRequests; w != 0 {
				t.Errorf("%d write requests", w)
			}
		})
	}
	if c, r := stateRows(t, state); c+r != 0 {
		t.Errorf("usage errors saved %d contract and %d rate states", c, r)
	}
}

// readReport reads a --report file.
func readReport(t *testing.T, path string) syncReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	var rep syncReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	return rep
}

// Every run writes its report and lines, also when it stops: when
// Business Central is unreachable, and on SIGTERM.
func TestSyncBCReportOnEveryRun(t *testing.T) {
	state := migratedDB(t)

	t.Run("Business Central unreachable", func(t *testing.T) {
		e := newSyncEnv(t)
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close()
		flags := append([]string{}, e.flags...)
		for i := range flags {
			if flags[i] == "--base-url" {
				flags[i+1] = deadURL
			}
			if flags[i] == "--token-url" {
				flags[i+1] = deadURL + "/tenant/oauth2/v2.0/token"
			}
		}
		reportFile := filepath.Join(t.TempDir(), "report.json")
		status, stdout, stderr := runSync(t, append([]string{"--contracts", syncSample, "--state", state,
			"--report", reportFile, "--max-retries", "1"}, flags...)...)
		if status != 1 || !strings.Contains(stderr, deadURL+"/tenant/oauth2/v2.0/token") {
			t.Errorf("exit status %d; stderr:\n%s", status, stderr)
		}
		rep := readReport(t, reportFile)
		if rep.NotSynced != syncSampleContracts || !strings.Contains(rep.Stopped, "/oauth2/v2.0/token") {
			t.Errorf("report: %d not synced, stopped %q", rep.NotSynced, rep.Stopped)
		}
		if countLines(stdout, "not-synced") != syncSampleContracts {
			t.Errorf("lines:\n%s", stdout)
		}
	})

	t.Run("SIGTERM", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		var n atomic.Int64
		e := newSyncEnvWrap(t, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/token") && n.Add(1) == 5 {
					cancel(&signalError{sig: syscall.SIGTERM})
				}
				next.ServeHTTP(w, r)
			})
		})
		reportFile := filepath.Join(t.TempDir(), "report.json")
		status, stdout, stderr := runSyncCtx(t, ctx, append([]string{"--contracts", syncSample, "--state", state,
			"--report", reportFile}, e.flags...)...)
		checkNoLeaks(t, e.secret, stdout, stderr)
		if status != 1 || !strings.Contains(stderr, "SIGTERM received") {
			t.Errorf("exit status %d; stderr:\n%s", status, stderr)
		}
		rep := readReport(t, reportFile)
		if !strings.Contains(rep.Stopped, "SIGTERM") || rep.NotSynced == 0 ||
			rep.Created+rep.NotSynced+rep.Failed != syncSampleContracts || len(rep.Skipped) != syncSampleSkipped {
			t.Errorf("report: created %d, not synced %d, failed %d, skipped %d, stopped %q",
				rep.Created, rep.NotSynced, rep.Failed, len(rep.Skipped), rep.Stopped)
		}
		if !strings.Contains(stderr, "not synced") {
			t.Errorf("summary:\n%s", stderr)
		}
	})
}

// A contract that leaves the schedule is listed as removed (exit 0), in
// the dry run as to be deleted with --prune, and deleted with --prune.
// Contracts validation rejects are skipped, never removed.
func TestSyncBCRemovedContract(t *testing.T) {
	e := newSyncEnv(t)
	state := migratedDB(t)
	if status, _, stderr := runSync(t, append([]string{"--contracts", syncSample, "--state", state}, e.flags...)...); status != 0 {
		t.Fatalf("first sync: %d\n%s", status, stderr)
	}
	// The schedule without C001.
	dir := t.TempDir()
	for _, f := range []string{"contracts.csv", "rates.csv", "rate_kinds.csv"} {
		b, err := os.ReadFile(filepath.Join(syncSample, f))
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if !strings.HasPrefix(l, "C001,") && !strings.Contains(l, ",C001,") {
				keep = append(keep, l)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.Join(keep, "")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"--contracts", dir, "--state", state}, e.flags...)
	inBC := func() bool {
		for _, m := range e.emu.Entities(bcemu.SetContracts) {
			if m["contractNumber"] == "CON-2024-00001" {
				return true
			}
		}
		return false
	}
	for _, step := range []struct {
		name   string
		flags  []string
		line   string
		inBC   bool
		report func(syncReport) bool
	}{
		{"listed", nil, "removed", true, func(r syncReport) bool { return r.Removed == 1 && r.Deleted == 0 }},
		{"dry run", []string{"--prune", "--dry-run"}, "deleted", true, func(r syncReport) bool { return r.Deleted == 1 && r.DryRun }},
		{"prune", []string{"--prune"}, "deleted", false, func(r syncReport) bool { return r.Deleted == 1 && r.RatesDeleted == 12 }},
		{"gone", []string{"--prune"}, "", false, func(r syncReport) bool { return r.Deleted+r.Removed == 0 }},
	} {
		t.Run(step.name, func(t *testing.T) {
			reportFile := filepath.Join(t.TempDir(), "report.json")
			status, stdout, stderr := runSync(t, append(append(args, "--report", reportFile), step.flags...)...)
			if status != 0 {
				t.Fatalf("exit status %d\n%s", status, stderr)
			}
			if step.line != "" && !strings.Contains(stdout, step.line+" ") {
				t.Errorf("no %s line:\n%s", step.line, stdout)
			}
			if countLines(stdout, "removed")+countLines(stdout, "deleted") > 1 {
				t.Errorf("more than C001 listed:\n%s", stdout)
			}
			if rep := readReport(t, reportFile); !step.report(rep) {
				t.Errorf("report: removed %d deleted %d rates deleted %d", rep.Removed, rep.Deleted, rep.RatesDeleted)
			}
			if inBC() != step.inBC {
				t.Errorf("in BC: %v, want %v", inBC(), step.inBC)
			}
		})
	}
}
