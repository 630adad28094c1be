// Package ctxrun runs work that cannot check a context itself (a pure
// computation such as validating and indexing a schedule) so that its
// caller still returns as soon as the context is done.
package ctxrun

import "context"

// Do runs fn in its own goroutine and returns its result, or ctx.Err() as
// soon as ctx is done, without waiting for fn: fn then runs to its end in the background and its result is
// dropped. Use it only for work that holds no resource a caller must see
// released, in a process that is about to stop when ctx is cancelled.
func Do[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned fn never blocks
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
