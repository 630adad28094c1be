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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(report(err, os.Stderr))
}

// report prints err and returns the exit status: 0 success, 1 the run
// failed (nothing published), 2 a usage or configuration error.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "repricer:", err)
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
