package flock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Two open file descriptions of the same file exclude each other, as two
// processes would; closing the holder releases the lock.
func TestTryLock(t *testing.T) {
	for _, dir := range []bool{false, true} {
		name := "file"
		if dir {
			name = "dir"
		}
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "lock")
			if dir {
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := TryLock(a); err != nil {
				t.Fatalf("first lock: %v", err)
			}
			if err := TryLock(b); !errors.Is(err, ErrLocked) {
				t.Fatalf("second lock while held: %v, want ErrLocked", err)
			}
			a.Close()
			if err := TryLock(b); err != nil {
				t.Fatalf("lock after the holder closed: %v", err)
			}
			if err := Unlock(b); err != nil {
				t.Fatal(err)
			}
		})
	}
}
