package nightly_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/repricer/repricer/connectors/businesscentral/bcemu"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
	"github.com/repricer/repricer/nightly"
)

// TestEndToEndPostgresBC runs the job as real processes against Postgres
// (advisory lock, sync state) and the Business Central emulator: a second
// run while the first holds the lock exits 3; the first is killed mid-run;
// the rerun completes with files byte-identical to an uninterrupted run and
// Business Central holds the contracts.
func TestEndToEndPostgresBC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes against Postgres")
	}
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	db := pgtest.Open(t, url)
	if err := postgres.Migrate(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	emu := bcemu.New(bcemu.Options{Seed: 1})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	o := emu.Options()

	f := newFixture(t, 300_000)
	refOut := t.TempDir()
	if _, err := nightly.Run(ctx, f.config(refOut), nightly.Options{Getenv: noDatabase, Date: runDate}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cfg := f.config(out)
	cfg.Lock.Mode = nightly.LockAuto // a database is configured: Postgres
	cfg.BC = nightly.BCConfig{Enabled: true, BaseURL: srv.URL, TokenURL: srv.URL + emu.TokenPath(), Tenant: o.Tenant,
		Environment: o.Environment, CompanyID: o.CompanyID, ClientID: o.ClientID, Publisher: o.Publisher, Group: o.Group}
	config := writeConfig(t, cfg)
	env := []string{"DATABASE_URL=" + url, "BC_CLIENT_SECRET=" + o.ClientSecret, "BC_CLIENT_SECRET_FILE="}
	dir := filepath.Join(out, runDate)

	advisoryLocks := func() int {
		var n int
		if err := db.GetContext(ctx, &n, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitLocks := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for advisoryLocks() != want {
			if time.Now().After(deadline) {
				t.Fatalf("advisory locks never became %d", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	first, firstErr := helper(t, config, env...)
	waitLocks(1)
	second, secondErr := helper(t, config, env...)
	if code := exitCode(t, second); code != nightly.ExitLocked {
		t.Fatalf("concurrent run: exit %d, want %d: %s", code, nightly.ExitLocked, secondErr)
	}
	if !strings.Contains(secondErr.String(), "another run holds the lock") {
		t.Errorf("concurrent run's message: %s", secondErr)
	}
	time.Sleep(300 * time.Millisecond)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, first); code != -1 {
		t.Logf("the first run finished before the kill (exit %d): %s", code, firstErr)
	}
	checkNoPartialRun(t, dir)
	waitLocks(0) // the server dropped the dead session's lock

	rerun, rerunErr := helper(t, config, env...)
	if code := exitCode(t, rerun); code != 0 {
		t.Fatalf("rerun: exit %d: %s", code, rerunErr)
	}
	// report.html differs by design: this run's shows the sync.
	sameOutputs(t, filepath.Join(refOut, runDate), dir, "report.html")
	m, err := nightly.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if html := mustRead(t, filepath.Join(dir, "report.html")); !strings.Contains(html, "<h2>Business Central sync</h2>") {
		t.Error("report.html does not show the Business Central sync")
	}
	if m.BCSync == nil || m.BCSync.Failed+m.BCSync.Conflicts != 0 || m.BCSync.Contracts == 0 {
		t.Fatalf("manifest bc_sync %+v", m.BCSync)
	}
	if got := len(emu.Entities(bcemu.SetContracts)); got != m.BCSync.Contracts {
		t.Errorf("Business Central holds %d contracts, want %d", got, m.BCSync.Contracts)
	}
	if strings.Contains(rerunErr.String(), o.ClientSecret) {
		t.Error("the logs show the client secret")
	}
}
