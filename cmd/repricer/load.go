package main

import (
	"context"
	"time"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/rates"
)

// loadEngine loads the schedule at src (load.Engine: streamed, in bounded
// memory, unless the engine must Explain).
func loadEngine(ctx context.Context, src string, timeout time.Duration, opts rates.Options) (*rates.Engine, string, error) {
	e, desc, err := load.Engine(ctx, src, load.Options{Rates: opts, Postgres: postgres.Options{StatementTimeout: timeout}})
	return e, desc, contractsUsage(err)
}
