package nightly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/postgres"
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

// partialLockAge is how old a lock file with unreadable content must be
// before it is taken for the leftover of a process killed while writing it.
const partialLockAge = time.Minute

// lockFile takes the lock file in dir: created with O_EXCL and holding the
// pid. A lock file whose process is gone (same host, pid not alive) is
// stale: it is moved aside atomically, checked again, and removed. The
// returned function removes the lock file.
func lockFile(dir, runID string, now time.Time) (func() error, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &LockError{Err: err}
	}
	path := filepath.Join(dir, LockFileName)
	host, _ := os.Hostname()
	me := lockInfo{PID: os.Getpid(), Host: host, RunID: runID, Started: now.UTC().Format(time.RFC3339)}
	for attempt := 0; attempt < 3; attempt++ {
		err := createLock(path, &me)
		if err == nil {
			return func() error {
				if err := os.Remove(path); err != nil {
					return &LockError{Err: err}
				}
				return nil
			}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, &LockError{Err: err}
		}
		holder, stale := staleLock(path, host)
		if !stale {
			return nil, &LockedError{Key: path, Holder: holder}
		}
		if err := breakLock(path, holder); err != nil {
			return nil, err
		}
	}
	return nil, &LockedError{Key: path, Holder: "the lock file keeps reappearing"}
}

func createLock(path string, me *lockInfo) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(me)
	_, err = f.Write(append(b, '\n'))
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// staleLock reads the lock file and decides whether its owner is gone. It
// returns a description of the holder for messages, which is also the
// identity breakLock checks before removing the file.
func staleLock(path, host string) (holder string, stale bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unreadable lock file: " + err.Error(), errors.Is(err, fs.ErrNotExist)
	}
	var li lockInfo
	if err := json.Unmarshal(b, &li); err != nil || li.PID <= 0 {
		fi, serr := os.Stat(path)
		old := serr == nil && time.Since(fi.ModTime()) > partialLockAge
		return "lock file without a valid pid: " + strconv.Quote(string(b)), old
	}
	if li.Host != host {
		return li.String() + " (another host: remove the file by hand if that run is dead)", false
	}
	return li.String(), !processAlive(li.PID)
}

// breakLock removes a stale lock file without racing another run that
// breaks it at the same time: the file is renamed aside (only one rename of
// the same file succeeds), and if what was moved is not the stale lock that
// was examined (a live run re-created it meanwhile), it is put back.
func breakLock(path, holder string) error {
	aside := fmt.Sprintf("%s.stale-%d-%d", path, os.Getpid(), time.Now().UnixNano())
	if err := os.Rename(path, aside); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // someone else broke it; try again
		}
		return &LockError{Err: err}
	}
	again, stale := staleLock(aside, mustHostname())
	if again != holder || !stale {
		// Not the file we judged stale: give it back (Link fails if a new
		// lock appeared meanwhile, which then holds).
		if err := os.Link(aside, path); err != nil && !errors.Is(err, fs.ErrExist) {
			return &LockError{Err: err}
		}
		os.Remove(aside)
		return &LockedError{Key: path, Holder: again}
	}
	if err := os.Remove(aside); err != nil {
		return &LockError{Err: err}
	}
	return nil
}

func mustHostname() string {
	h, _ := os.Hostname()
	return h
}

// processAlive reports whether pid is a running process (signal 0).
// EPERM means it exists but belongs to someone else.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
