package pipeline

import (
	"context"
	"errors"
)

// StoppedError is work that stopped because its context was cancelled
// (typically a SIGINT or SIGTERM), rather than "context canceled": it says
// at which stage, and why (the context's cause, e.g. "SIGTERM received").
// Nothing was published by the stage it names.
type StoppedError struct {
	Stage string // e.g. "load", "reprice"
	Cause error  // context.Cause of the cancelled context
}

func (e *StoppedError) Error() string {
	cause := "cancelled"
	if e.Cause != nil && !errors.Is(e.Cause, context.Canceled) {
		cause = e.Cause.Error()
	}
	if e.Stage == "" {
		return "stopped: " + cause
	}
	return "stopped during " + e.Stage + ": " + cause
}

// Unwrap returns the cause and context.Canceled, so errors.Is(err,
// context.Canceled) still holds.
func (e *StoppedError) Unwrap() []error { return []error{e.Cause, context.Canceled} }

// Stopped returns err as a *StoppedError at stage when it is the result of
// ctx being cancelled, and err unchanged otherwise.
func Stopped(ctx context.Context, stage string, err error) error {
	var se *StoppedError
	if err == nil || ctx.Err() == nil || errors.As(err, &se) ||
		!(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return &StoppedError{Stage: stage, Cause: context.Cause(ctx)}
}
