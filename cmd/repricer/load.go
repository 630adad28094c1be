package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/rates"
)

// loadEngine loads the schedule at src (load.Engine: from its compiled
// image in cache when that is up to date, else streamed, in bounded
// memory, unless the engine must Explain).
func loadEngine(ctx context.Context, src string, timeout time.Duration, opts rates.Options, cache *load.Cache) (*rates.Engine, string, error) {
	e, desc, err := load.Engine(ctx, src, load.Options{Rates: opts, Postgres: postgres.Options{StatementTimeout: timeout}, Cache: cache})
	return e, desc, contractsUsage(err)
}

// scheduleCacheFlag names the folder of compiled schedule images.
func scheduleCacheFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "schedule-cache", EnvVars: []string{"REPRICER_SCHEDULE_CACHE"},
		Usage: "`DIR` of compiled schedule images, reused while the schedule is unchanged; off to read the schedule every time (default: $XDG_CACHE_HOME/repricer/schedules, i.e. ~/.cache/repricer/schedules)"}
}

// scheduleCache is the cache --schedule-cache names, nil when it is off;
// log receives its warnings (a damaged image, an image it could not keep).
func scheduleCache(c *cli.Context, log *slog.Logger) *load.Cache {
	dir := c.String("schedule-cache")
	if dir == "" {
		dir = load.DefaultCacheDir(os.Getenv)
	}
	if dir == "" || dir == "off" {
		return nil
	}
	return &load.Cache{Dir: dir, Log: log}
}

// warnLogger prints warnings (and worse) on w as repricer's other
// messages are printed.
func warnLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, slog.LevelKey:
				return slog.Attr{}
			case slog.MessageKey:
				return slog.String(a.Key, fmt.Sprint("repricer: ", a.Value))
			}
			return a
		}}))
}

// compileCommand is `repricer contracts compile`: build (or check) the
// schedule's image in the cache ahead of the runs that use it.
func compileCommand() *cli.Command {
	return &cli.Command{
		Name:  "compile",
		Usage: "compile a contract schedule into the image that runs open in a fraction of a second",
		Description: `Reads, validates and indexes the schedule once and writes the result, the
pricing engine, to the schedule cache (--schedule-cache). reprice, explain and
run then open that image instead of reading the schedule, for as long as the
schedule is unchanged: a folder's files are hashed, a database's change counter
is read (one row), and any difference makes them read the schedule and compile
it again. A damaged image fails its checksum and is rebuilt, never used.

Run it after importing or amending a schedule so that the next run, or every
"repricer explain", starts at once. When the image is up to date it does
nothing but say so.

Example:
  repricer contracts compile --contracts testdata/sample/contracts`,
		OnUsageError: onUsageError,
		Flags:        []cli.Flag{contractsFlag(), dbTimeoutFlag(), scheduleCacheFlag()},
		Action: func(c *cli.Context) error {
			if c.String("contracts") == "" {
				return usagef("--contracts (a bundle folder or a postgres:// URL, or DATABASE_URL) is required")
			}
			cache := scheduleCache(c, warnLogger(c.App.ErrWriter))
			if cache == nil {
				return usagef("--schedule-cache is off (or HOME is unset): name the cache folder")
			}
			start := time.Now()
			e, desc, use, err := cache.Engine(c.Context, c.String("contracts"),
				load.Options{Postgres: postgres.Options{StatementTimeout: c.Duration("db-timeout")}})
			if err != nil {
				return contractsUsage(err)
			}
			v := e.Schedule()
			what := map[load.CacheStatus]string{load.CacheHit: "up to date", load.CacheBuilt: "compiled",
				load.CacheUnkept: "compiled but not kept (see the warning above)",
				load.CacheBypass: "not compiled: the database has no change counter (run `repricer db migrate`)"}[use.Status]
			fmt.Fprintf(c.App.Writer, "%s: %s in %.2fs; %d contracts (%d rejected), %d rates, fingerprint %s\n",
				desc, what, time.Since(start).Seconds(), len(v.Contracts), len(v.Rejected), e.NumRates(), v.Fingerprint)
			if use.Image != "" && use.Status != load.CacheUnkept && use.Status != load.CacheBypass {
				fmt.Fprintf(c.App.Writer, "image: %s\n", use.Image)
			}
			if use.Status == load.CacheUnkept || use.Status == load.CacheBypass {
				return &exitStatus{code: 1, err: fmt.Errorf("the schedule image was not kept")}
			}
			return nil
		},
	}
}
