package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// Defaults for Options fields left zero.
const (
	DefaultRetryFor         = 5 * time.Second
	DefaultInitialBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff       = 1 * time.Second
	DefaultConnectTimeout   = 3 * time.Second
	DefaultStatementTimeout = 10 * time.Minute
	DefaultMaxOpenConns     = 4
	DefaultApplicationName  = "repricer"
)

// Options tune Open. The zero value uses the defaults above.
type Options struct {
	// RetryFor bounds how long Open keeps retrying a database that is down
	// or unreachable. Negative: a single attempt.
	RetryFor time.Duration
	// InitialBackoff is the wait after the first failed attempt; it doubles
	// after each further failure, up to MaxBackoff.
	InitialBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds one connection attempt (dial and startup).
	ConnectTimeout time.Duration
	// StatementTimeout is the server-side statement_timeout of every
	// connection. Negative: none (the server's setting applies).
	StatementTimeout time.Duration
	// MaxOpenConns caps the pool (0: DefaultMaxOpenConns).
	MaxOpenConns int
	// ApplicationName is reported in pg_stat_activity.
	ApplicationName string
}

func (o Options) withDefaults() Options {
	if o.RetryFor == 0 {
		o.RetryFor = DefaultRetryFor
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.StatementTimeout == 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = DefaultMaxOpenConns
	}
	if o.ApplicationName == "" {
		o.ApplicationName = DefaultApplicationName
	}
	return o
}

// IsURL reports whether s names a PostgreSQL database (postgres:// or
// postgresql://) rather than, say, a bundle directory.
func IsURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Open connects to the database at dsn (a postgres:// URL or a libpq
// key=value string) and checks the connection. A database that is down or
// unreachable is retried with exponential backoff for opts.RetryFor; errors
// that retrying cannot fix (bad password, unknown database, bad URL) fail at
// once. Errors are *ConnectError and never contain the password.
func Open(ctx context.Context, dsn string, opts Options) (*sqlx.DB, error) {
	opts = opts.withDefaults()
	target := Redact(dsn)
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		// The parser's message may quote the input; keep only its type.
		return nil, &ConnectError{Target: target, Attempts: 0, Err: errInvalidDSN}
	}
	cfg.ConnectTimeout = opts.ConnectTimeout
	if cfg.Runtime == nil {
		cfg.Runtime = map[string]string{}
	}
	if opts.StatementTimeout > 0 {
		cfg.Runtime["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	}
	if _, set := cfg.Runtime["application_name"]; !set && cfg.ApplicationName == "" {
		cfg.ApplicationName = opts.ApplicationName
	}
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, &ConnectError{Target: target, Err: errInvalidDSN}
	}
	sdb := sql.OpenDB(connector)
	sdb.SetMaxOpenConns(opts.MaxOpenConns)
	sdb.SetMaxIdleConns(opts.MaxOpenConns)
	sdb.SetConnMaxIdleTime(5 * time.Minute)

	start := time.Now()
	backoff := opts.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := sdb.PingContext(ctx)
		if err == nil {
			return sqlx.NewDb(sdb, "postgres"), nil
		}
		fail := func(err error) (*sqlx.DB, error) {
			_ = sdb.Close() // the pool holds no usable connection; its Close error adds nothing
			return nil, &ConnectError{Target: target, Attempts: attempt, Elapsed: time.Since(start), Retryable: IsRetryable(err), Err: err}
		}
		if ctx.Err() != nil || !IsRetryable(err) {
			return fail(err)
		}
		wait := backoff
		if remaining := opts.RetryFor - time.Since(start); wait > remaining {
			return fail(err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fail(errors.Join(err, ctx.Err()))
		case <-t.C:
		}
		backoff = min(backoff*2, opts.MaxBackoff)
	}
}

var errInvalidDSN = errors.New("not a valid postgres URL or connection string")

// ConnectError is a database Open could not connect to.
type ConnectError struct {
	Target    string // the URL with its password redacted
	Attempts  int
	Elapsed   time.Duration
	Retryable bool // the last failure was a connection problem, not a refusal
	Err       error
}

func (e *ConnectError) Error() string {
	if e.Attempts == 0 {
		return fmt.Sprintf("postgres: cannot connect to %s: %v", e.Target, e.Err)
	}
	return fmt.Sprintf("postgres: cannot connect to %s after %d attempt(s) in %s: %v",
		e.Target, e.Attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is a connection problem that may go away
// when retried (server down, starting up, unreachable, connection dropped),
// as opposed to an error the same request will hit again (bad password,
// unknown database, constraint violation, syntax error).
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if pqErr := pq.As(err); pqErr != nil {
		switch pqErr.Code {
		case pqerror.CannotConnectNow, pqerror.TooManyConnections, pqerror.AdminShutdown,
			pqerror.CrashShutdown, pqerror.TRSerializationFailure, pqerror.TRDeadlockDetected:
			return true
		}
		return pqErr.Code.Class() == pqerror.ClassConnectionException
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// Redact returns dsn with any password replaced by "xxxxx", for messages
// and logs. It handles URLs (user:password@ and ?password=) and libpq
// key=value strings.
func Redact(dsn string) string {
	if IsURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "postgres://(unparsable URL redacted)"
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	// key=value form: values may be single-quoted with backslash escapes.
	var b strings.Builder
	i := 0
	for i < len(dsn) {
		j := strings.IndexByte(dsn[i:], '=')
		if j < 0 {
			b.WriteString(dsn[i:])
			break
		}
		key := strings.TrimSpace(dsn[i : i+j])
		b.WriteString(dsn[i : i+j+1])
		i += j + 1
		for i < len(dsn) && dsn[i] == ' ' {
			b.WriteByte(' ')
			i++
		}
		start := i
		if i < len(dsn) && dsn[i] == '\'' {
			i++
			for i < len(dsn) && dsn[i] != '\'' {
				if dsn[i] == '\\' {
					i++
				}
				i++
			}
			i++
		} else {
			for i < len(dsn) && dsn[i] != ' ' {
				i++
			}
		}
		i = min(i, len(dsn))
		if strings.EqualFold(key, "password") {
			b.WriteString("xxxxx")
		} else {
			b.WriteString(dsn[start:i])
		}
	}
	return b.String()
}

// closeInto closes c and keeps its error in *err unless *err already holds
// one, for deferred closes whose error matters.
// WithDB opens the database at dsn (Open), calls fn with it and closes it;
// a failed close is the error when fn succeeded. It is the one-call form
// for a command that needs a connection for one piece of work.
func WithDB(ctx context.Context, dsn string, opts Options, fn func(*sqlx.DB) error) (err error) {
	db, err := Open(ctx, dsn, opts)
	if err != nil {
		return err
	}
	defer closeInto(&err, db)
	return fn(db)
}

func closeInto(err *error, c io.Closer) {
	if cerr := c.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
