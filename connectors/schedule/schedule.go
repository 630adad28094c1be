// Package schedule loads and validates a run's reference data from where a
// user points: a contract bundle folder or a postgres:// URL.
package schedule

import (
	"context"
	"fmt"
	"os"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
)

// SourceError is a source that names neither a bundle folder nor a
// database: a configuration mistake rather than a failed load.
type SourceError struct {
	Source string
	Err    error
}

func (e *SourceError) Error() string { return e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// EmptyError is a schedule that holds no contract at all (an empty store,
// a contracts.csv with only its header): a configuration mistake, since a
// run against it would turn every line into an exception.
type EmptyError struct {
	Source string // as describe gives it: no password
}

func (e *EmptyError) Error() string {
	return "the contract schedule from " + e.Source + " holds no contract: check --contracts (a store needs `repricer contracts import` first)"
}

// CheckNotEmpty returns an *EmptyError when s holds no contract.
func CheckNotEmpty(s *contracts.Schedule, src string) error {
	if len(s.Contracts) == 0 {
		return &EmptyError{Source: describe(src)}
	}
	return nil
}

// Load reads and validates the schedule at src. The returned description
// of the source ("bundle:DIR" or "postgres:URL") never holds a password.
func Load(ctx context.Context, src string, opts postgres.Options) (*contracts.Validated, string, error) {
	if postgres.IsURL(src) {
		s, err := postgres.LoadURL(ctx, src, opts)
		if err != nil {
			return nil, "", err
		}
		if err := CheckNotEmpty(s, src); err != nil {
			return nil, "", err
		}
		return contracts.Validate(s), describe(src), nil
	}
	if err := checkBundle(src); err != nil {
		return nil, "", err
	}
	s, err := bundle.Read(ctx, src)
	if err != nil {
		return nil, "", err
	}
	if err := CheckNotEmpty(s, src); err != nil {
		return nil, "", err
	}
	return contracts.Validate(s), describe(src), nil
}

// Stream reads the schedule at src without holding its rates, for a caller
// that validates and indexes them as they come (bundle.ReadStream,
// postgres.LoadStream): header gets the kinds and contracts, then rate each
// rate in source order. It returns the description Load returns.
func Stream(ctx context.Context, src string, opts postgres.Options, header func(*contracts.Schedule) error, rate func(r *contracts.Rate) error) (desc string, err error) {
	checked := func(s *contracts.Schedule) error {
		if err := CheckNotEmpty(s, src); err != nil {
			return err
		}
		return header(s)
	}
	if postgres.IsURL(src) {
		return describe(src), postgres.WithDB(ctx, src, opts, func(db *sqlx.DB) error { return postgres.LoadStream(ctx, db, checked, rate) })
	}
	if err := checkBundle(src); err != nil {
		return "", err
	}
	return describe(src), bundle.ReadStream(ctx, src, checked, rate)
}

// checkBundle reports a src that is not a folder as a *SourceError.
func checkBundle(src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return &SourceError{Source: src, Err: err}
	}
	if !fi.IsDir() {
		return &SourceError{Source: src, Err: fmt.Errorf("%s is neither a bundle folder nor a postgres:// URL", src)}
	}
	return nil
}

// describe names src for summaries and logs, without a password.
func describe(src string) string {
	if postgres.IsURL(src) {
		return "postgres:" + postgres.Redact(src)
	}
	return "bundle:" + src
}
