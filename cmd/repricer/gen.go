package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/internal/atomicfile"
	"github.com/repricer/repricer/synth"
)

// genCommand is "repricer gen": synthetic contract bundles and claim files
// for benchmarks and demos.
func genCommand() *cli.Command {
	return &cli.Command{
		Name:  "gen",
		Usage: "generate a synthetic contract bundle and claim file for benchmarks and demos",
		Description: `Writes, into the output folder:
  contracts/      a contract bundle (contracts.csv, rates.csv, rate_kinds.csv)
  claims.csv      or claims.parquet: claim lines priced against that bundle

The data is deterministic from --seed. Most claim lines price; a share of them
(--bad-share) are malformed on purpose: bad dates, amounts or units, missing
required fields, duplicate line numbers.

Example:
  repricer gen --out /tmp/bench --lines 10000000 --format parquet
  repricer reprice --contracts /tmp/bench/contracts --claims /tmp/bench/claims.parquet --out /tmp/bench/out`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "output `DIR` (created if missing)"},
			&cli.Int64Flag{Name: "lines", Value: synth.DefaultLines, Usage: "`N` claim lines to generate"},
			&cli.IntFlag{Name: "contracts", Value: synth.DefaultContracts, Usage: "`N` contracts in the bundle"},
			&cli.IntFlag{Name: "rates", Value: synth.DefaultRates, Usage: "`N` rates over all contracts, 0 for none"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random `SEED`; the same seed gives the same files"},
			&cli.StringFlag{Name: "format", Value: "csv", Usage: "claim file `FORMAT`: csv or parquet"},
			&cli.Float64Flag{Name: "bad-share", Value: synth.DefaultBadShare, Usage: "`SHARE` of claim lines made malformed, 0 to 1"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success", DisableDefaultText: true},
		},
		Action: func(c *cli.Context) error {
			return gen(c.Context, c, c.App.Writer)
		},
	}
}

func gen(ctx context.Context, c *cli.Context, stdout io.Writer) error {
	if c.NArg() > 0 {
		return usagef("unexpected arguments %q", c.Args().Slice())
	}
	out := c.String("out")
	format := strings.ToLower(c.String("format"))
	switch {
	case out == "":
		return usagef("--out is required")
	case c.Int64("lines") < 0:
		return usagef("--lines must be zero or more")
	case c.Int("contracts") < 1:
		return usagef("--contracts must be at least 1")
	case c.Int("rates") < 0:
		return usagef("--rates must be zero or more")
	case format != "csv" && format != "parquet":
		return usagef("--format %q: use csv or parquet", c.String("format"))
	case c.Float64("bad-share") < 0 || c.Float64("bad-share") > 1:
		return usagef("--bad-share %v: want a share between 0 and 1", c.Float64("bad-share"))
	}
	start := time.Now()
	nrates := c.Int("rates")
	if nrates == 0 {
		nrates = -1 // synth: negative means none
	}
	s := synth.Schedule(synth.ScheduleOptions{Seed: c.Int64("seed"), Contracts: c.Int("contracts"), Rates: nrates})
	bundleDir := filepath.Join(out, "contracts")
	if err := bundle.Write(ctx, bundleDir, s); err != nil {
		return fmt.Errorf("gen: write bundle: %w", err)
	}
	bundleDur := time.Since(start)

	badShare := c.Float64("bad-share")
	if badShare == 0 {
		badShare = -1 // synth: negative means none
	}
	lines := c.Int64("lines")
	if lines == 0 {
		lines = -1 // synth: negative means none
	}
	g := synth.Claims(synth.ClaimOptions{Schedule: s, Seed: c.Int64("seed"), Lines: lines, BadShare: badShare})
	path := filepath.Join(out, "claims."+format)
	claimStart := time.Now()
	n, err := writeClaims(ctx, path, format, g)
	if err != nil {
		return err
	}
	if !c.Bool("quiet") {
		secs := time.Since(claimStart).Seconds()
		fmt.Fprintf(stdout, "wrote %s: %d contracts, %d rates (%.1fs)\n", bundleDir, len(s.Contracts), len(s.Rates), bundleDur.Seconds())
		fmt.Fprintf(stdout, "wrote %s: %d lines, %d bad (%.1fs, %.0f lines/s)\n", path, n, g.BadRows(), secs, float64(n)/max(secs, 1e-9))
	}
	return nil
}

// writeClaims writes the generator's lines to path through a temporary
// file, renamed into place only when every byte is written and closed.
func writeClaims(ctx context.Context, path, format string, g *synth.ClaimGen) (n int64, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, fmt.Errorf("gen: %w", err)
	}
	err = atomicfile.Write(path, func(w io.Writer) (err error) {
		if format == "parquet" {
			n, err = synth.WriteParquet(ctx, w, g)
		} else {
			n, err = synth.WriteCSV(ctx, w, g)
		}
		return err
	})
	if err != nil {
		return n, fmt.Errorf("gen: %w", err)
	}
	return n, nil
}
