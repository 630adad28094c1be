package postgres_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

// seeded returns a database holding a schedule with n*perContract rates.
func seeded(t *testing.T, n, perContract int) (string, *postgres.ImportReport) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	db := pgtest.Open(t, url)
	if err := postgres.Migrate(context.Background(), db.DB); err != nil {
		t.Fatal(err)
	}
	return url, mustImport(t, db, genSchedule(n, perContract))
}

func TestLoadFailsWhenConnectionKilled(t *testing.T) {
	ctx := context.Background()
	url, _ := seeded(t, 20, 5000) // 100k rates: more than socket buffers hold
	db := pgtest.Open(t, url)
	admin := pgtest.Open(t, url)

	killed := false
	s, err := postgres.LoadHooked(ctx, db, func(table string, n int) {
		if killed {
			return
		}
		killed = true
		var pids []int
		if err := admin.SelectContext(ctx, &pids, `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%FROM rates WHERE retired_at%'`); err != nil || len(pids) != 1 {
			t.Errorf("find the loading backend: %v %v", pids, err)
			return
		}
		var ok bool
		if err := admin.GetContext(ctx, &ok, `SELECT pg_terminate_backend($1, 5000)`, pids[0]); err != nil || !ok {
			t.Errorf("terminate backend %d: %v %v", pids[0], ok, err)
		}
	})
	if !killed {
		t.Fatal("the hook never ran")
	}
	if err == nil || s != nil {
		t.Fatalf("Load after the connection was killed = %v rates, %v; want an error and no schedule", len(s.Rates), err)
	}
	var le *postgres.LoadError
	if !errors.As(err, &le) {
		t.Errorf("error %T %v is not a *LoadError", err, err)
	}
	if !postgres.IsRetryable(err) {
		t.Errorf("a killed connection should be retryable: %v", err)
	}
	t.Logf("error: %v", err)
}

func TestLoadFailsWhenContextEnds(t *testing.T) {
	url, _ := seeded(t, 10, 3000)
	db := pgtest.Open(t, url)
	tests := []struct {
		name string
		ctx  func() (context.Context, func(string, int))
		want error
	}{
		{"cancelled mid-stream", func() (context.Context, func(string, int)) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			return ctx, func(string, int) { cancel() }
		}, context.Canceled},
		{"deadline already passed", func() (context.Context, func(string, int)) {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			t.Cleanup(cancel)
			return ctx, nil
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, hook := tt.ctx()
			s, err := postgres.LoadHooked(ctx, db, hook)
			if s != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Load = %v, %v; want no schedule and %v", s != nil, err, tt.want)
			}
		})
	}
	// The pool is still usable afterwards.
	if _, err := postgres.Load(context.Background(), db); err != nil {
		t.Fatalf("Load after a cancelled load: %v", err)
	}
}

func TestLoadIsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	url, rep := seeded(t, 4, 2000)
	db := pgtest.Open(t, url)
	writer := pgtest.Open(t, url)
	changed := false
	s, err := postgres.LoadHooked(ctx, db, func(string, int) {
		if changed {
			return
		}
		changed = true
		// Change both tables while Load is between them and mid-rates.
		for _, q := range []string{
			`UPDATE contracts SET tpa_name = 'changed'`,
			`UPDATE rates SET rate_value = rate_value + 1 WHERE rate_type = 'Percentage' AND rate_value < 199`,
			`UPDATE rates SET retired_at = now() WHERE rate_id LIKE 'C000003-%'`,
		} {
			if _, err := writer.ExecContext(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Fatal("the hook never ran")
	}
	if got := s.Fingerprint(); got != genSchedule(4, 2000).Fingerprint() || len(s.Rates) != 8000 {
		t.Errorf("Load saw changes committed while it ran (%d rates, fingerprint %s; import fingerprint %s)", len(s.Rates), got, rep.Fingerprint)
	}
	after, err := postgres.Load(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Rates) != 6000 || after.Contracts[0].TPAName != "changed" {
		t.Errorf("a later Load does not see the changes: %d rates, tpa %q", len(after.Rates), after.Contracts[0].TPAName)
	}
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestOpenUnreachable(t *testing.T) {
	const secret = "s3cr3t-pw"
	url := "postgres://repricer:" + secret + "@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/contracts?sslmode=disable"
	start := time.Now()
	db, err := postgres.Open(context.Background(), url, postgres.Options{RetryFor: 800 * time.Millisecond, InitialBackoff: 50 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	var ce *postgres.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %T is not a *ConnectError: %v", err, err)
	}
	if ce.Attempts < 3 || !ce.Retryable {
		t.Errorf("attempts %d, retryable %v; want several retries of a retryable error", ce.Attempts, ce.Retryable)
	}
	if elapsed < 400*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("Open gave up after %s; want about the 800ms retry budget", elapsed)
	}
	msg := err.Error()
	if strings.Contains(msg, secret) || !strings.Contains(msg, "repricer:xxxxx@127.0.0.1") || !strings.Contains(msg, "connection refused") {
		t.Errorf("message %q must name the redacted URL and the cause, without the password", msg)
	}
	var ne net.Error
	if !errors.As(err, &ne) {
		t.Errorf("the cause is not a net.Error: %v", err)
	}
}

func TestOpenFatalErrorsAreNotRetried(t *testing.T) {
	server := pgtest.ServerURL(t)
	url, err := pgtest.WithDatabase(server, "no_such_database_xyz")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = postgres.Open(context.Background(), url, postgres.Options{RetryFor: 5 * time.Second})
	var ce *postgres.ConnectError
	if !errors.As(err, &ce) || ce.Attempts != 1 || ce.Retryable {
		t.Fatalf("Open of a missing database = %v; want one attempt, not retryable", err)
	}
	if pq.As(err, pqerror.InvalidCatalogName) == nil {
		t.Errorf("cause is not invalid_catalog_name: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("a fatal error took %s", time.Since(start))
	}
}

func TestStatementTimeout(t *testing.T) {
	url := pgtest.ServerURL(t)
	db, err := postgres.Open(context.Background(), url, postgres.Options{StatementTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(context.Background(), `SELECT pg_sleep(2)`)
	if pq.As(err, pqerror.QueryCanceled) == nil {
		t.Fatalf("a 2s statement with a 100ms timeout = %v; want query_canceled", err)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:pw@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db"},
		{"postgres://h/db?password=pw&sslmode=disable", "postgres://h/db?password=xxxxx&sslmode=disable"},
		{"host=h user=u password=pw dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password='p w\\'x' dbname=db", "host=h password=xxxxx dbname=db"},
		{"password = pw host=h", "password = xxxxx host=h"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := postgres.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&pq.Error{Code: pqerror.CannotConnectNow}, true},
		{&pq.Error{Code: pqerror.AdminShutdown}, true},
		{&pq.Error{Code: "08006"}, true},
		{&pq.Error{Code: pqerror.InvalidPassword}, false},
		{&pq.Error{Code: pqerror.UniqueViolation}, false},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{context.Canceled, false},
		{errors.New("other"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := postgres.IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
