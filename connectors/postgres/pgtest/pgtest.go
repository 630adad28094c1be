// Package pgtest gives tests a real PostgreSQL database.
//
// A test binary that uses it calls Main from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Main uses the server in DATABASE_URL when it is set (scripts/
// with-postgres.sh sets it). Otherwise the first test that asks for a
// server (ServerURL, NewDatabase, DB) starts one throwaway cluster for the
// whole test binary from the installed server binaries (initdb, pg_ctl; run
// as the "postgres" OS user when the tests run as root), sets DATABASE_URL
// to it, and Main removes it when the tests end. A test binary none of
// whose selected tests needs a database (go test -run Example) starts none.
//
// DB(t) then creates a fresh, migrated database for the test and drops it
// at cleanup. When no server is available, DB skips the test — unless
// REPRICER_REQUIRE_POSTGRES=1 (CI sets it), in which case it fails it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/repricer/repricer/connectors/postgres"
)

// Environment variables.
const (
	// EnvURL names the server tests use (a database on it that the test
	// user may create databases from, e.g. .../postgres).
	EnvURL = "DATABASE_URL"
	// EnvRequire, when "1", turns "no PostgreSQL available" from a skip
	// into a failure.
	EnvRequire = "REPRICER_REQUIRE_POSTGRES"
	// EnvBin overrides where the server binaries are looked for.
	EnvBin = "PG_BIN"
)

// Required reports whether tests must fail rather than skip when no
// PostgreSQL is available.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Main runs the tests of m with a PostgreSQL server (see the package doc)
// and exits with their status.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it returns the tests' exit status, for a
// TestMain with its own clean-up to do.
func Run(m *testing.M) int {
	server.mu.Lock()
	server.managed = os.Getenv(EnvURL) == ""
	server.mu.Unlock()
	code := m.Run()
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.cluster != nil {
		server.cluster.Stop()
		server.cluster = nil
	}
	return code
}

// server is the test binary's lazily started cluster. It is the one piece
// of package state: a test binary has one server, shared by its tests, and
// Main must find it to stop it.
var server struct {
	mu      sync.Mutex
	managed bool   // Main runs the tests and DATABASE_URL was unset
	tried   bool   // the cluster was started, or failed to start
	url     string // the started cluster's URL
	err     error  // why it did not start
	cluster *Cluster
}

// serverURL returns DATABASE_URL, or under Main the lazily started
// cluster's URL ("" and why when there is no server).
func serverURL() (string, error) {
	server.mu.Lock()
	defer server.mu.Unlock()
	if !server.managed {
		if u := os.Getenv(EnvURL); u != "" {
			return u, nil
		}
		return "", errors.New(EnvURL + " is not set")
	}
	if !server.tried {
		server.tried = true
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		c, err := StartCluster(ctx)
		cancel()
		if err == nil {
			err = os.Setenv(EnvURL, c.URL()) // for code under test that reads it
			server.cluster, server.url = c, c.URL()
		}
		if err != nil {
			server.err = fmt.Errorf("cannot start a throwaway cluster: %w", err)
		}
	}
	return server.url, server.err
}

// unavailable skips or fails t because there is no server.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("PostgreSQL required (%s=1) but %s", EnvRequire, why)
	}
	t.Skipf("no PostgreSQL: %s (set %s, or call pgtest.Main from TestMain with server binaries installed)", why, EnvURL)
}

// ServerURL returns the URL of the test server, skipping or failing t when
// there is none.
func ServerURL(t testing.TB) string {
	t.Helper()
	u, err := serverURL()
	if err != nil {
		unavailable(t, err.Error())
	}
	return u
}

// NewDatabase creates an empty database with a unique name on the test
// server, drops it when the test ends, and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	ctx := context.Background()
	admin, err := postgres.Open(ctx, server, postgres.Options{RetryFor: 10 * time.Second})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := "test_" + sanitize(t.Name()) + "_" + hex.EncodeToString(rnd[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := postgres.Open(ctx, server, postgres.Options{})
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := WithDatabase(server, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// DB returns a connection to a fresh, migrated database that is dropped
// when the test ends.
func DB(t testing.TB) *sqlx.DB {
	t.Helper()
	db := Open(t, NewDatabase(t))
	if err := postgres.Migrate(context.Background(), db.DB); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return db
}

// Open connects to url and closes the connection when the test ends.
func Open(t testing.TB, url string) *sqlx.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.Options{RetryFor: 10 * time.Second})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("pgtest: close: %v", err)
		}
	})
	return db
}

// WithDatabase returns the server URL or key=value DSN with its database
// replaced by name.
func WithDatabase(server, name string) (string, error) {
	if postgres.IsURL(server) {
		u, err := url.Parse(server)
		if err != nil {
			return "", fmt.Errorf("pgtest: %s is not a URL", postgres.Redact(server))
		}
		u.Path = "/" + name
		q := u.Query()
		if q.Has("dbname") {
			q.Set("dbname", name)
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	return server + " dbname=" + name, nil
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 30 {
			break
		}
	}
	return b.String()
}

// Cluster is a throwaway PostgreSQL cluster.
type Cluster struct {
	dir, data, bin string
	port           int
	cred           *syscall.Credential
}

// URL returns the URL of the cluster's postgres database.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Dir returns the cluster's directory (data, socket and logs).
func (c *Cluster) Dir() string { return c.dir }

// FindBinaries returns the directory holding initdb and pg_ctl: $PG_BIN,
// else the PATH, else the newest /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	if d := os.Getenv(EnvBin); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl) found on PATH or in /usr/lib/postgresql/*/bin; set " + EnvBin)
}

// StartCluster initializes and starts a cluster tuned for tests (no fsync)
// in a new temporary directory, listening on 127.0.0.1 at a free port and
// on a unix socket in that directory.
func StartCluster(ctx context.Context) (c *Cluster, err error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{dir: dir, data: filepath.Join(dir, "data"), bin: bin}
	cluster := c // the error returns below reset c
	defer func() {
		if err != nil {
			cluster.Stop()
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: run the server as "postgres".
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := c.command(ctx, "initdb", "-D", c.data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c.port = port
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "+
			"-c full_page_writes=off -c shared_buffers=64MB -c max_connections=200 -c work_mem=16MB", port, dir)
		out, err := c.command(ctx, "pg_ctl", "-D", c.data, "-l", filepath.Join(dir, "server.log"),
			"-w", "-t", "60", "-o", opts, "start").CombinedOutput()
		if err == nil {
			return c, nil
		}
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		lastErr = fmt.Errorf("pg_ctl start: %w: %s\n%s", err, out, log)
	}
	return nil, lastErr
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// Stop stops the cluster (immediate shutdown) and removes its directory.
func (c *Cluster) Stop() {
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if out, err := c.command(ctx, "pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: pg_ctl stop: %v: %s\n", err, out)
		}
		cancel()
	}
	if err := os.RemoveAll(c.dir); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: remove %s: %v\n", c.dir, err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}
