package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// LockError is a failure taking or releasing an advisory lock (not the lock
// being busy: TryLock reports that with ok == false).
type LockError struct {
	Op  string // "lock" or "unlock"
	Key string
	Err error
}

func (e *LockError) Error() string {
	return fmt.Sprintf("postgres: advisory %s %q: %v", e.Op, e.Key, e.Err)
}

func (e *LockError) Unwrap() error { return e.Err }

// ErrLockLost means the session that held an advisory lock no longer held it
// when it was released: its connection was lost (and with it the lock)
// while the work it protected ran.
var ErrLockLost = errors.New("the lock was no longer held (its connection was lost)")

// unlockTimeout bounds the release of a lock; it runs after the caller's
// context may already be cancelled.
const unlockTimeout = 10 * time.Second

// TryLock takes the session-level advisory lock named by key
// (pg_try_advisory_lock(hashtext(key))) without waiting. The lock lives on
// a connection taken out of db's pool and held until unlock is called, so
// it is released when unlock runs or, if the process dies, when the server
// notices the connection is gone.
//
// When another session holds the lock, TryLock returns ok == false and a nil
// error. unlock releases the lock and returns the connection; it reports
// ErrLockLost when the lock had been lost meanwhile, and is safe to call
// more than once. hashtext is 32 bits: distinct keys can collide, which
// makes two unrelated jobs exclude each other, never two equal ones run at
// once.
func TryLock(ctx context.Context, db *sqlx.DB, key string) (unlock func() error, ok bool, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, false, &LockError{Op: "lock", Key: key, Err: err}
	}
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, key).Scan(&ok); err != nil {
		return nil, false, &LockError{Op: "lock", Key: key, Err: errors.Join(err, conn.Close())}
	}
	if !ok {
		if err := conn.Close(); err != nil {
			return nil, false, &LockError{Op: "lock", Key: key, Err: err}
		}
		return nil, false, nil
	}
	released := false
	unlock = func() error {
		if released {
			return nil
		}
		released = true
		return release(conn, key)
	}
	return unlock, true, nil
}

// release unlocks key on conn and returns conn to the pool, or discards it
// when the unlock failed so a broken session is not reused.
func release(conn *sql.Conn, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	var held bool
	err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, key).Scan(&held)
	if err == nil && !held {
		err = ErrLockLost
	}
	if err != nil {
		// Make sure the session ends: the server then drops every lock it
		// still holds.
		// (driver.ErrBadConn from Raw makes database/sql close it.)
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	if cerr := conn.Close(); cerr != nil && !errors.Is(cerr, sql.ErrConnDone) {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return &LockError{Op: "unlock", Key: key, Err: err}
	}
	return nil
}
