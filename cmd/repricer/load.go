package main

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/rates"
)

// errUnsorted stops streaming a bundle whose rates are not in rate_id order.
var errUnsorted = errors.New("rates.csv is not in rate_id order")

// loadEngine loads the schedule at src and builds the pricing engine. A
// bundle folder is streamed: each rate is validated and indexed as it is
// read, and the schedule's rates are never all held at once (for 1M rates,
// about 250 MB less at the peak). Its fingerprint needs rates.csv in
// rate_id order, as `contracts export` and `gen` write it; a bundle in
// another order, a database, and an engine for Explain load the whole
// schedule first.
func loadEngine(ctx context.Context, src string, timeout time.Duration, opts rates.Options) (*rates.Engine, string, error) {
	if fi, err := os.Stat(src); err == nil && fi.IsDir() && !opts.Explain {
		e, err := streamBundle(ctx, src, opts)
		if !errors.Is(err, errUnsorted) {
			return e, "bundle:" + src, err
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

// streamBundle builds the engine for the bundle in dir while reading its
// rates, through the same validation and index as Validate and rates.New.
func streamBundle(ctx context.Context, dir string, opts rates.Options) (*rates.Engine, error) {
	hdr, err := bundle.ReadHeader(ctx, dir)
	if err != nil {
		return nil, err
	}
	val := contracts.NewValidation(hdr)
	val.InIDOrder() // the Fingerprinter stops the read at the first id out of order
	fp := contracts.NewFingerprinter(hdr)
	b := rates.NewBuilder(val.Priority(), opts)
	err = bundle.ReadRates(ctx, dir, func(r *contracts.Rate) error {
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
	debug.FreeOSMemory() // the validation's id set and the pending rates
	return e, nil
}
