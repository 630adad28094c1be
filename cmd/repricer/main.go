// Command repricer prices claim lines against provider contracts and
// writes allowed amounts, exception reports and a run summary.
//
// Run "repricer --help" for the commands; see README.md for the rules.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// GC targets of the two phases of a run, unless GOGC is set (docs/decisions.md):
// while the schedule loads most of the heap is the schedule, and the
// default of 100 lets the heap grow to twice it for no speed; while lines
// flow the live heap is the compact engine plus bounded buffers, and a
// lower target keeps peak RSS flat for about the same CPU.
const (
	loadGCPercent = 50
	runGCPercent  = 25
)

// gcTuned reports whether repricer sets the GC target (GOGC is not set).
func gcTuned() bool { return os.Getenv("GOGC") == "" }

func main() {
	if gcTuned() {
		debug.SetGCPercent(loadGCPercent)
	}
	// A downstream pipe that closes (repricer reprice --out - | head) makes
	// writes fail with EPIPE instead of killing the process, so the run
	// fails like any other and cleans up its staging folder.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(report(err, os.Stderr))
}

// signalError is the cause of the run's context when a signal stopped it.
type signalError struct{ sig os.Signal }

func (e *signalError) Error() string {
	switch e.sig {
	case os.Interrupt:
		return "SIGINT received"
	case syscall.SIGTERM:
		return "SIGTERM received"
	}
	return e.sig.String() + " received"
}

// signalContext is signal.NotifyContext with the signal as the context's
// cause, so that a stopped run can say which signal stopped it. After the
// first signal the default action is restored: a second one ends the
// process at once.
func signalContext(parent context.Context, sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case sig := <-ch:
			signal.Stop(ch)
			cancel(&signalError{sig: sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// Exit statuses beyond 0 (success), 1 (failed, nothing published), 2
// (usage or configuration) and 3 (nightly.ExitLocked).
const (
	// exitNotRecorded: the run is complete and published, but recording it
	// in the run ledger failed. Rerunning is safe (identical outputs) and
	// records it; nothing needs to be rerun for the outputs' sake.
	exitNotRecorded = 4
)

// report prints err and returns the exit status: 0 success, 1 the run
// failed (nothing published), 2 a usage or configuration error, 3 another
// run holds the lock, 4 published but not recorded in the ledger. An error
// the command has already logged (JSON logs) is not printed again.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var le *loggedError
	if !errors.As(err, &le) {
		fmt.Fprintln(stderr, "repricer:", err)
	}
	return exitCode(err)
}

// exitCode is the exit status of a command that returned err.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if isUsage(err) {
		return 2
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitStatus()
	}
	return 1
}

type exitCoder interface{ ExitStatus() int }

// loggedError is an error the command has written to its log already, so
// that a log that must hold only JSON lines gets no plain-text line after
// it.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }
