package main

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/schedule"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

// errUnsorted stops streaming a schedule whose rates are not in rate_id order.
var errUnsorted = errors.New("rates are not in rate_id order")

// loadEngine loads the schedule at src and builds the pricing engine. A
// bundle folder or a database is streamed: each rate is validated and
// indexed as it is read, and the schedule's rates are never all held at
// once (for 1M rates, about 250 MB less at the peak). The fingerprint needs
// the rates in rate_id order, as `contracts export` and `gen` write a
// bundle and the database returns them (in byte order under the C
// collation); at the first rate out of order, and for an engine that must
// Explain, the whole schedule is loaded first instead.
func loadEngine(ctx context.Context, src string, timeout time.Duration, opts rates.Options) (*rates.Engine, string, error) {
	if !opts.Explain {
		e, desc, err := streamEngine(ctx, src, timeout, opts)
		if !errors.Is(err, errUnsorted) {
			return e, desc, contractsUsage(err)
		}
	}
	v, desc, err := loadSchedule(ctx, src, timeout)
	if err != nil {
		return nil, "", err
	}
	// Collect what reading and validating left behind before the engine is
	// built next to the schedule: peak memory is reached while both live.
	runtime.GC()
	e := rates.New(v, opts)
	if !opts.Explain {
		// The engine keeps a compact copy of the rates; the schedule's own
		// are garbage once v is dropped: return their memory now rather
		// than let the heap grow on top of it during the run.
		v = nil
		debug.FreeOSMemory()
	}
	return e, desc, nil
}

// streamEngine builds the engine while reading the schedule at src (see
// schedule.Stream), through the same validation and index as Validate and
// rates.New.
func streamEngine(ctx context.Context, src string, timeout time.Duration, opts rates.Options) (*rates.Engine, string, error) {
	var (
		val *contracts.Validation
		fp  *contracts.Fingerprinter
		b   *rates.Builder
	)
	desc, err := schedule.Stream(ctx, src, postgres.Options{StatementTimeout: timeout}, func(hdr *contracts.Schedule) error {
		val = contracts.NewValidation(hdr)
		val.InIDOrder() // the Fingerprinter stops the read at the first id out of order
		fp = contracts.NewFingerprinter(hdr)
		b = rates.NewBuilder(val.Priority(), opts)
		return nil
	}, func(r *contracts.Rate) error {
		if !fp.Rate(r) {
			return errUnsorted
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
