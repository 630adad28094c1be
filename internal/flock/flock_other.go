//go:build !unix

package flock

import "os"

// Without flock(2) every lock is granted: runs are not protected from each
// other on such systems.
func tryLock(*os.File) error { return nil }

func lock(*os.File) error { return nil }

func unlock(*os.File) error { return nil }
