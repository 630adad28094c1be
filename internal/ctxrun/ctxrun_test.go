package ctxrun

import (
	"context"
	"errors"
	"testing"
)

func TestDoReturnsResult(t *testing.T) {
	v, err := Do(context.Background(), func() (int, error) { return 42, nil })
	if v != 42 || err != nil {
		t.Fatalf("Do = %d, %v", v, err)
	}
}

// A cancelled context ends Do while fn is still running: fn here blocks
// until the test has seen Do return, so the test holds at any speed.
func TestDoReturnsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	started := make(chan struct{})
	go func() {
		<-started
		cancel()
	}()
	_, err := Do(ctx, func() (int, error) {
		close(started)
		<-release
		return 1, nil
	})
	close(release)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
