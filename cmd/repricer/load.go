package main

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

// errUnsorted stops streaming a schedule whose rates are not in rate_id order.
var errUnsorted = errors.New("rates.csv is not in rate_id order")

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
		var read scheduleStream
		var desc string
		switch fi, err := os.Stat(src); {
		case postgres.IsURL(src):
			read, desc = databaseStream(src, timeout), "postgres:"+postgres.Redact(src)
		case err == nil && fi.IsDir():
			read, desc = bundleStream(src), "bundle:"+src
		}
		if read != nil {
			e, err := streamSchedule(ctx, read, opts)
			if !errors.Is(err, errUnsorted) {
				return e, desc, err
			}
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

// scheduleStream reads a schedule: header gets the kinds and contracts,
// then rate each rate in source order (r is reused).
type scheduleStream func(ctx context.Context, header func(*contracts.Schedule) error, rate func(r *contracts.Rate) error) error

func bundleStream(dir string) scheduleStream {
	return func(ctx context.Context, header func(*contracts.Schedule) error, rate func(*contracts.Rate) error) error {
		hdr, err := bundle.ReadHeader(ctx, dir)
		if err != nil {
			return err
		}
		if err := header(hdr); err != nil {
			return err
		}
		return bundle.ReadRates(ctx, dir, rate)
	}
}

func databaseStream(url string, timeout time.Duration) scheduleStream {
	return func(ctx context.Context, header func(*contracts.Schedule) error, rate func(*contracts.Rate) error) (err error) {
		db, err := postgres.Open(ctx, url, postgres.Options{StatementTimeout: timeout})
		if err != nil {
			return err
		}
		defer func() {
			if cerr := db.Close(); err == nil {
				err = cerr
			}
		}()
		return postgres.LoadStream(ctx, db, header, rate)
	}
}

// streamSchedule builds the engine while reading the schedule, through the
// same validation and index as Validate and rates.New.
func streamSchedule(ctx context.Context, read scheduleStream, opts rates.Options) (*rates.Engine, error) {
	var (
		val *contracts.Validation
		fp  *contracts.Fingerprinter
		b   *rates.Builder
	)
	err := read(ctx, func(hdr *contracts.Schedule) error {
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
		return nil, err
	}
	v := val.Finish()
	v.Fingerprint = fp.Sum()
	e := b.Build(v)
	debug.FreeOSMemory() // the validation's leftovers and the pending rates
	return e, nil
}
