package adjust

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
)

// Schedule is a contract schedule and the description of its source
// ("bundle:DIR", "postgres:URL" or "proposed:DIR").
type Schedule struct {
	S      *contracts.Schedule
	Source string
	// Engine, when set, is S's engine already built (or opened from its
	// compiled image, see load.Cache), priced with instead of validating
	// and indexing S again. It must be S's: its options are the engine's.
	Engine *rates.Engine
}

// WhatIf prices the claim files against the current and the proposed
// schedule, in a temporary folder removed afterwards, and compares the
// two runs: the impact of a proposed amendment, touching no stored data.
// The report's Prior and Current name the two sources.
func WhatIf(ctx context.Context, current, proposed Schedule, claimFiles []string, opts rates.Options) (rep *Report, err error) {
	tmp, err := os.MkdirTemp("", "repricer-what-if-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	for _, r := range []struct {
		dir string
		s   Schedule
	}{{"current", current}, {"proposed", proposed}} {
		eng := r.s.Engine
		if eng == nil {
			eng = rates.New(contracts.Validate(r.s.S), opts)
		}
		cfg := pipeline.Config{Engine: eng, Claims: claimFiles,
			OutDir: filepath.Join(tmp, r.dir), Format: "csv", ReferenceSource: r.s.Source}
		if opts.SystemDefault != nil {
			cfg.SystemDefaultRate = opts.SystemDefault.String()
		}
		if _, err := pipeline.Run(ctx, cfg); err != nil {
			return nil, fmt.Errorf("what-if %s run: %w", r.dir, err)
		}
	}
	rep, err = Compare(ctx, filepath.Join(tmp, "current"), filepath.Join(tmp, "proposed"))
	if err != nil {
		return nil, err
	}
	rep.Prior, rep.Current = "current:"+current.Source, "proposed:"+proposed.Source
	return rep, nil
}
