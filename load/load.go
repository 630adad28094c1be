// Package load builds a pricing engine from a contract schedule source (a
// bundle folder or a postgres:// URL) with bounded memory: each rate is
// validated and indexed as it is read, so the schedule's rates are never
// all held at once. It is how `repricer reprice` loads its schedule.
package load

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/schedule"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

// ErrUnsorted stops Stream at the first rate out of rate_id order.
var ErrUnsorted = errors.New("rates are not in rate_id order")

// Options are the engine's options and how to read a database.
type Options struct {
	Rates    rates.Options
	Postgres postgres.Options
	// Cache, when set, keeps the schedule's compiled image between runs
	// (see Cache); nil reads the source every time.
	Cache *Cache
}

// Engine loads the schedule at src and builds the pricing engine; it
// returns the source's description (schedule.Load's) too. With
// opts.Cache it opens the schedule's compiled image instead when that is
// up to date (see Cache). Otherwise, unless
// opts.Rates.Explain is set it streams (see Stream): for 1M rates the peak
// is about 250 MB lower than loading the schedule whole. The fingerprint
// needs the rates in rate_id order, as `contracts export` and `gen` write
// a bundle and the database returns them (in byte order under the C
// collation); at the first rate out of order, and for an engine that must
// Explain, the whole schedule is loaded first instead, with the same
// result.
func Engine(ctx context.Context, src string, opts Options) (*rates.Engine, string, error) {
	if opts.Cache != nil {
		e, desc, _, err := opts.Cache.Engine(ctx, src, opts)
		return e, desc, err
	}
	return build(ctx, src, opts)
}

// build is Engine without a cache.
func build(ctx context.Context, src string, opts Options) (*rates.Engine, string, error) {
	if !opts.Rates.Explain {
		e, desc, err := Stream(ctx, src, opts)
		if !errors.Is(err, ErrUnsorted) {
			return e, desc, err
		}
	}
	v, desc, err := schedule.Load(ctx, src, opts.Postgres)
	if err != nil {
		return nil, "", err
	}
	// Collect what reading and validating left behind before the engine is
	// built next to the schedule: peak memory is reached while both live.
	runtime.GC()
	e := rates.New(v, opts.Rates)
	if !opts.Rates.Explain {
		// The engine keeps a compact copy of the rates; the schedule's own
		// are garbage once v is dropped: return their memory now rather
		// than let the heap grow on top of it during the run.
		v = nil
		debug.FreeOSMemory()
	}
	return e, desc, nil
}

// Stream builds the engine while reading the schedule at src
// (schedule.Stream), through the same validation and index as
// contracts.Validate and rates.New, so the result equals theirs. It fails
// with ErrUnsorted at the first rate out of rate_id order, and ignores
// opts.Rates.Explain (the rates are not kept).
func Stream(ctx context.Context, src string, opts Options) (*rates.Engine, string, error) {
	var (
		val *contracts.Validation
		fp  *contracts.Fingerprinter
		b   *rates.Builder
	)
	ro := opts.Rates
	ro.Explain = false // Compile, when set, keeps the rates Explain needs
	desc, err := schedule.Stream(ctx, src, opts.Postgres, func(hdr *contracts.Schedule) error {
		val = contracts.NewValidation(hdr)
		val.InIDOrder() // the Fingerprinter stops the read at the first id out of order
		fp = contracts.NewFingerprinter(hdr)
		b = rates.NewBuilder(val.Priority(), ro)
		return nil
	}, func(r *contracts.Rate) error {
		if !fp.Rate(r) {
			return ErrUnsorted
		}
		if val.Rate(r) {
			b.Add(r)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	v := val.Finish()
	v.Fingerprint = fp.Sum()
	e := b.Build(v)
	debug.FreeOSMemory() // the validation's leftovers and the pending rates
	return e, desc, nil
}
