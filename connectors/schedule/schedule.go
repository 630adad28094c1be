// Package schedule loads and validates a run's reference data from where a
// user points: a contract bundle folder or a postgres:// URL.
package schedule

import (
	"context"
	"fmt"
	"os"

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

// Load reads and validates the schedule at src. The returned description
// of the source ("bundle:DIR" or "postgres:URL") never holds a password.
func Load(ctx context.Context, src string, opts postgres.Options) (*contracts.Validated, string, error) {
	if postgres.IsURL(src) {
		s, err := postgres.LoadURL(ctx, src, opts)
		if err != nil {
			return nil, "", err
		}
		return contracts.Validate(s), "postgres:" + postgres.Redact(src), nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, "", &SourceError{Source: src, Err: err}
	}
	if !fi.IsDir() {
		return nil, "", &SourceError{Source: src, Err: fmt.Errorf("%s is neither a bundle folder nor a postgres:// URL", src)}
	}
	s, err := bundle.Read(ctx, src)
	if err != nil {
		return nil, "", err
	}
	return contracts.Validate(s), "bundle:" + src, nil
}
