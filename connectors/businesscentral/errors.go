package businesscentral

import (
	"errors"
	"fmt"
	"time"
)

// Error kinds. Every error the client returns matches exactly one of
// ErrRetryable, ErrConflict and ErrFatal with errors.Is; ErrDuplicateKey and
// ErrNotFound refine ErrFatal.
var (
	// ErrRetryable: throttling (429), 502/503/504 or a network failure. The
	// client already retried; the operation may be tried again later.
	ErrRetryable = errors.New("businesscentral: retryable error")
	// ErrConflict: 409 Request_EntityChanged, the ETag sent is stale.
	ErrConflict = errors.New("businesscentral: entity changed in Business Central")
	// ErrFatal: any other failure; repeating the request will not help.
	ErrFatal = errors.New("businesscentral: fatal error")
	// ErrDuplicateKey: Internal_EntityWithSameKeyExists.
	ErrDuplicateKey = errors.New("businesscentral: entity with the same key exists")
	// ErrNotFound: 404.
	ErrNotFound = errors.New("businesscentral: not found")
)

// Business Central error codes the client interprets.
const (
	CodeEntityChanged   = "Request_EntityChanged"
	CodeSameKeyExists   = "Internal_EntityWithSameKeyExists"
	CodeInvalidToken    = "BadRequest_InvalidToken"
	CodeTooManyRequests = "Application_TooManyRequests"
)

// APIError is a non-success HTTP response from Business Central.
type APIError struct {
	Method     string
	URL        string // without query
	Status     int
	Code       string // error.code of the body, if any
	Message    string // error.message of the body, if any
	Retryable  bool
	RetryAfter time.Duration // from Retry-After; 0 when absent
}

func (e *APIError) Error() string {
	return fmt.Sprintf("businesscentral: %s %s: %d %s: %s", e.Method, e.URL, e.Status, e.Code, e.Message)
}

// Is makes APIError match its kind.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRetryable:
		return e.Retryable
	case ErrConflict:
		return e.conflict()
	case ErrDuplicateKey:
		return e.Code == CodeSameKeyExists
	case ErrNotFound:
		return e.Status == 404
	case ErrFatal:
		return !e.Retryable && !e.conflict()
	}
	return false
}

func (e *APIError) conflict() bool {
	return e.Code == CodeEntityChanged || (e.Status == 409 && e.Code != CodeSameKeyExists)
}

func retryableStatus(s int) bool { return s == 429 || s == 502 || s == 503 || s == 504 }

// NetworkError is a transport failure: no response was read. A write may
// or may not have been committed.
type NetworkError struct {
	Method, URL string
	Err         error
}

func (e *NetworkError) Error() string {
	return fmt.Sprintf("businesscentral: %s %s: %v", e.Method, e.URL, e.Err)
}

// Unwrap returns the cause.
func (e *NetworkError) Unwrap() error { return e.Err }

// Is makes NetworkError retryable.
func (e *NetworkError) Is(target error) bool { return target == ErrRetryable }

// AuthError is a failure to obtain an access token: a definite refusal
// by the token endpoint (Status set: a 4xx, or an answer without an access
// token; not retried), or an endpoint that stayed unreachable or
// overloaded through every retry (Status 0, Err a *RetriesExhaustedError).
// Either way no request of the run can succeed: the sync stops at once.
type AuthError struct {
	TokenURL    string
	Status      int    // HTTP status of the refusal; 0 when there was none
	Code        string // OAuth error code, e.g. "invalid_client"; "" when the answer had none
	Description string // OAuth error_description, if any
	Err         error  // the cause
}

func (e *AuthError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("businesscentral: token endpoint %s: %v", e.TokenURL, e.Err)
	}
	if e.Code == "" {
		return fmt.Sprintf("businesscentral: token endpoint %s answered HTTP %d without an access token", e.TokenURL, e.Status)
	}
	msg := fmt.Sprintf("businesscentral: token endpoint %s refused the client credentials: HTTP %d, OAuth error %q", e.TokenURL, e.Status, e.Code)
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Unwrap returns the cause.
func (e *AuthError) Unwrap() error { return e.Err }

// Is makes AuthError fatal unless its cause is retryable (an unreachable
// endpoint: a later run may succeed).
func (e *AuthError) Is(target error) bool {
	return target == ErrFatal && !errors.Is(e.Err, ErrRetryable)
}

// RetriesExhaustedError wraps the last retryable error after MaxRetries.
type RetriesExhaustedError struct {
	Attempts int
	Last     error
}

func (e *RetriesExhaustedError) Error() string {
	return fmt.Sprintf("businesscentral: giving up after %d attempts: %v", e.Attempts, e.Last)
}

// Unwrap returns the last error (so the error stays ErrRetryable).
func (e *RetriesExhaustedError) Unwrap() error { return e.Last }

// BatchError reports a failed operation of a $batch. With snapshot
// isolation nothing of the batch was committed.
type BatchError struct {
	Index int       // position of the failed operation in the batch
	Err   *APIError // the failed operation's response
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("businesscentral: $batch operation %d failed (batch rolled back): %v", e.Index, e.Err)
}

// Unwrap returns the operation's error.
func (e *BatchError) Unwrap() error { return e.Err }
