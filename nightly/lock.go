package nightly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/internal/flock"
)

// LockFileName is the lock file a run without a database keeps in its
// output folder.
const LockFileName = ".repricer.lock"

// ExitLocked is the exit status of a run that found another run holding
// the lock.
const ExitLocked = 3

// LockedError is a run that did not start because another run holds the
// lock (exit status 3). Nothing was read or written.
type LockedError struct {
	Key    string // the lock key, or the lock file
	Holder string // who holds it, when known ("pid 1234 on host x since ...")
}

func (e *LockedError) Error() string {
	msg := "another run holds the lock " + e.Key
	if e.Holder != "" {
		msg += " (" + e.Holder + ")"
	}
	return msg + "; not started"
}

// ExitStatus is 3.
func (e *LockedError) ExitStatus() int { return ExitLocked }

// LockError is a lock that could not be taken or released for a reason
// other than another run holding it.
type LockError struct{ Err error }

func (e *LockError) Error() string { return "lock: " + e.Err.Error() }
func (e *LockError) Unwrap() error { return e.Err }

// lockPostgres takes the advisory lock key on db.
func lockPostgres(ctx context.Context, db *sqlx.DB, key string) (func() error, error) {
	unlock, ok, err := postgres.TryLock(ctx, db, key)
	if err != nil {
		return nil, &LockError{Err: err}
	}
	if !ok {
		return nil, &LockedError{Key: key, Holder: "a Postgres advisory lock held by another session"}
	}
	return unlock, nil
}

// lockInfo is the content of a lock file.
type lockInfo struct {
	PID     int    `json:"pid"`
	Host    string `json:"host"`
	RunID   string `json:"run_id"`
	Started string `json:"started"`
}

func (l *lockInfo) String() string {
	return fmt.Sprintf("pid %d on %s, run %s, since %s", l.PID, l.Host, l.RunID, l.Started)
}

// lockFile takes the lock of the output folder dir: an exclusive flock(2)
// on its lock file, which the kernel releases when the holding process
// ends, however it ends. So a killed run never leaves a lock behind, and
// nothing guesses from a pid whether a holder is alive (in a container
// every night's run is pid 1 on the same host name). The file also tells
// who holds it (pid, host, run id, start), for the message of a run that
// finds it locked. The returned function releases the lock; the file
// stays.
func lockFile(dir, runID string, now time.Time) (func() error, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &LockError{Err: err}
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, &LockError{Err: err}
	}
	if err := flock.TryLock(f); err != nil {
		f.Close()
		if errors.Is(err, flock.ErrLocked) {
			return nil, &LockedError{Key: path, Holder: lockHolder(path)}
		}
		return nil, &LockError{Err: err}
	}
	host, _ := os.Hostname()
	me := lockInfo{PID: os.Getpid(), Host: host, RunID: runID, Started: now.UTC().Format(time.RFC3339)}
	b, _ := json.Marshal(&me)
	if err := writeHolder(f, append(b, '\n')); err != nil {
		f.Close()
		return nil, &LockError{Err: fmt.Errorf("write %s: %w", path, err)}
	}
	return func() error {
		// Closing the file releases the lock.
		if err := f.Close(); err != nil {
			return &LockError{Err: err}
		}
		return nil
	}, nil
}

// writeHolder replaces the lock file's content with b.
func writeHolder(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

// lockHolder describes the holder recorded in the lock file at path.
func lockHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable lock file: " + err.Error()
	}
	var li lockInfo
	if err := json.Unmarshal(b, &li); err != nil || li.PID <= 0 {
		return "holder not recorded yet"
	}
	return li.String()
}
