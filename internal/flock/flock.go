// Package flock takes advisory whole-file locks with flock(2). The kernel
// drops such a lock when the process holding it dies, however it dies, so a
// lock never outlives its holder and nothing has to guess from process ids
// whether a holder is still alive (a guess that fails in containers, where
// every run is pid 1 on the same host name).
package flock

import (
	"errors"
	"os"
)

// ErrLocked is returned by TryLock when another open file description holds
// the lock.
var ErrLocked = errors.New("locked by another process")

// TryLock takes an exclusive lock on f without waiting: nil when taken,
// ErrLocked when another holder has it, another error when locking is not
// possible. f may be a regular file or a directory. The lock lasts until
// Unlock, until f is closed, or until the process ends.
func TryLock(f *os.File) error { return tryLock(f) }

// Unlock releases a lock taken with TryLock.
func Unlock(f *os.File) error { return unlock(f) }

// Lock takes an exclusive lock on f, waiting while another holder has it.
func Lock(f *os.File) error { return lock(f) }
