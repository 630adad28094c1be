// Command repricer-beam runs repricer's pricing as an Apache Beam pipeline
// (package reprice) on the runner that --runner names: prism (the default,
// in-process), flink, spark or dataflow, with Beam's own flags for each.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/s3"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/repricer/repricer/beam/reprice"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "repricer-beam:", err)
		var ue *reprice.UsageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run() error {
	var cfg reprice.Config
	var claimPatterns, mapping listFlag
	flag.StringVar(&cfg.Contracts, "contracts", os.Getenv("DATABASE_URL"), "contract bundle `DIR` (the same path on every worker) or a postgres:// URL without a password (default: $DATABASE_URL)")
	flag.Var(&claimPatterns, "claims", "claim file `PATTERN` (.csv, .parquet or .pq; local, gs:// or s3://); repeat for several")
	flag.StringVar(&cfg.Out, "out", "", "output folder or prefix (local, gs:// or s3://)")
	flag.StringVar(&cfg.Format, "format", "csv", "format of the priced and exception files: csv or parquet")
	flag.StringVar(&cfg.SystemDefaultRate, "system-default-rate", "", "rate for lines no contract rate or contract default covers, e.g. Percentage:60 or Amount:25.00")
	flag.Var(&mapping, "map", "input column mapping `CANONICAL=NAME`; repeat for several")
	flag.StringVar(&cfg.ScheduleCache, "schedule-cache", os.Getenv("REPRICER_SCHEDULE_CACHE"), "`DIR` of compiled schedule images, on the job's machine and every worker (see repricer contracts compile); empty: read the schedule on each worker")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process to `FILE` (with the in-process Prism runner, the whole run)")
	flag.Parse()
	beam.Init()

	cfg.Claims = claimPatterns
	if len(mapping) > 0 {
		cfg.Mapping = map[string]string{}
		for _, m := range mapping {
			k, v, ok := strings.Cut(m, "=")
			k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
			if !ok || k == "" || v == "" {
				return &reprice.UsageError{Err: fmt.Errorf("--map %q: want CANONICAL=NAME", m)}
			}
			cfg.Mapping[k] = v
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	job, err := reprice.Build(ctx, cfg)
	if err != nil {
		return err
	}
	if err := beamx.Run(ctx, job.Pipeline); err != nil {
		job.Cleanup(ctx)
		return fmt.Errorf("the pipeline failed and published nothing: %w", err)
	}
	fmt.Fprintf(os.Stderr, "priced %d claim files; summary in %s\n", len(job.Files), job.Summary)
	return nil
}
