package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

func TestTryLock(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	a := pgtest.Open(t, url) // two pools: two sessions, like two processes
	b := pgtest.Open(t, url)

	unlockA, ok, err := postgres.TryLock(ctx, a, "nightly:/out/2024-05-15")
	if err != nil || !ok {
		t.Fatalf("first lock: ok %v, err %v", ok, err)
	}
	tests := []struct {
		name   string
		key    string
		wantOK bool
	}{
		{"same key from another session is busy", "nightly:/out/2024-05-15", false},
		{"another key is free", "nightly:/out/2024-05-16", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unlock, ok, err := postgres.TryLock(ctx, b, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK {
				t.Fatalf("ok %v, want %v", ok, tt.wantOK)
			}
			if ok {
				if err := unlock(); err != nil {
					t.Fatal(err)
				}
			} else if unlock != nil {
				t.Error("a busy lock returned an unlock function")
			}
		})
	}
	if err := unlockA(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if err := unlockA(); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	unlockB, ok, err := postgres.TryLock(ctx, b, "nightly:/out/2024-05-15")
	if err != nil || !ok {
		t.Fatalf("lock after release: ok %v, err %v", ok, err)
	}
	if err := unlockB(); err != nil {
		t.Fatal(err)
	}
	// A busy lock must not keep a pooled connection checked out.
	if st := b.Stats(); st.InUse != 0 {
		t.Errorf("%d connections still in use after the locks were released", st.InUse)
	}
}

// TestTryLockLost kills the session holding the lock: the server drops the
// lock, another session can take it, and the holder's unlock reports the
// loss.
func TestTryLockLost(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	a := pgtest.Open(t, url)
	b := pgtest.Open(t, url)
	unlock, ok, err := postgres.TryLock(ctx, a, "lost")
	if err != nil || !ok {
		t.Fatalf("lock: ok %v, err %v", ok, err)
	}
	if _, err := b.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND objid = (hashtext('lost')::bigint & x'ffffffff'::bigint)::oid AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	// pg_terminate_backend only signals the session: wait until it is gone
	// and its lock with it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := b.GetContext(ctx, &n, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
			AND objid = (hashtext('lost')::bigint & x'ffffffff'::bigint)::oid`); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the terminated session still holds the lock")
		}
	}
	unlockB, ok, err := postgres.TryLock(ctx, b, "lost")
	if err != nil || !ok {
		t.Fatalf("lock after the holder died: ok %v, err %v", ok, err)
	}
	defer unlockB()
	err = unlock()
	var le *postgres.LockError
	if !errors.As(err, &le) || le.Op != "unlock" {
		t.Fatalf("unlock of a lost lock: %v, want a *LockError", err)
	}
}
