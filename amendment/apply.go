package amendment

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
)

// ErrApplied is an amendment id the schedule's log already holds: an
// amendment is applied once (postgres.ErrAmendmentExists in a store).
var ErrApplied = errors.New("the amendment is already in the schedule's amendment log")

// Refused reports whether err is an amendment the rules refuse (a
// *contracts.AmendmentError, or an id already applied) rather than a
// failure to read or write.
func Refused(err error) bool {
	var ae *contracts.AmendmentError
	return errors.As(err, &ae) || errors.Is(err, ErrApplied) || errors.Is(err, postgres.ErrAmendmentExists)
}

// Apply applies amendments in order to the schedule at src: a postgres://
// URL (each amendment in one transaction, logged in the amendments
// tables; out must be "") or a bundle folder, whose amended copy, with its
// amendment log extended, is written to out (which may be src). Nothing is
// written for a bundle unless every amendment applies. The results are in
// the order of as; with a store, the amendments applied before a failing
// one stay applied and their results are returned with the error.
func Apply(ctx context.Context, src, out string, as []contracts.Amendment, today contracts.Date, opts postgres.Options) ([]*contracts.Applied, error) {
	if postgres.IsURL(src) {
		if out != "" {
			return nil, errors.New("amendment: a postgres:// store is amended in place; no output folder")
		}
		return applyDB(ctx, src, as, today, opts)
	}
	if out == "" {
		return nil, errors.New("amendment: an output folder is required to amend a bundle")
	}
	s, err := bundle.Read(ctx, src)
	if err != nil {
		return nil, err
	}
	log, err := ReadLog(ctx, src)
	if err != nil {
		return nil, err
	}
	var res []*contracts.Applied
	for _, a := range as {
		if log.Has(a.ID) {
			return nil, fmt.Errorf("amendment %s: %w", a.ID, ErrApplied)
		}
		next, r, err := contracts.Apply(s, a, today)
		if err != nil {
			return nil, err
		}
		s = next
		log.Append(a, r)
		res = append(res, r)
	}
	if err := bundle.Write(ctx, out, s); err != nil {
		return nil, fmt.Errorf("write amended bundle: %w", err)
	}
	if err := log.Write(ctx, out); err != nil {
		return nil, fmt.Errorf("write amendment log: %w", err)
	}
	return res, nil
}

func applyDB(ctx context.Context, url string, as []contracts.Amendment, today contracts.Date, opts postgres.Options) (res []*contracts.Applied, err error) {
	err = postgres.WithDB(ctx, url, opts, func(db *sqlx.DB) error {
		for _, a := range as {
			r, err := postgres.ApplyAmendment(ctx, db, a, today)
			if err != nil {
				return err
			}
			res = append(res, r)
		}
		return nil
	})
	return res, err
}

// LoadSchedule reads the unvalidated schedule of a bundle folder or a
// postgres:// URL, and a description of the source without secrets
// ("bundle:DIR" or "postgres:REDACTED-URL").
func LoadSchedule(ctx context.Context, src string, opts postgres.Options) (*contracts.Schedule, string, error) {
	if postgres.IsURL(src) {
		s, err := postgres.LoadURL(ctx, src, opts)
		if err != nil {
			return nil, "", err
		}
		return s, "postgres:" + postgres.Redact(src), nil
	}
	s, err := bundle.Read(ctx, src)
	if err != nil {
		return nil, "", err
	}
	return s, "bundle:" + src, nil
}

// ErrNotProposal is a --proposed folder that holds neither an amendment
// nor a contract bundle.
var ErrNotProposal = errors.New("holds neither amendment.csv nor contracts.csv")

// Proposed returns the schedule proposed by dir: an amendment folder
// applied in memory to current, or a contract bundle folder.
func Proposed(ctx context.Context, current *contracts.Schedule, dir string, today contracts.Date) (*contracts.Schedule, error) {
	switch {
	case IsFolder(dir):
		a, err := ReadFolder(ctx, dir)
		if err != nil {
			return nil, err
		}
		next, _, err := contracts.Apply(current, a, today)
		return next, err
	case fileExists(filepath.Join(dir, bundle.ContractsFile)):
		return bundle.Read(ctx, dir)
	}
	return nil, fmt.Errorf("%s %w", dir, ErrNotProposal)
}
