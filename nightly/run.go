package nightly

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/sync/errgroup"

	"github.com/repricer/repricer/adjust"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/schedule"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/internal/ctxrun"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
	"github.com/repricer/repricer/report"
)

// Options are the run's inputs that do not come from the configuration.
type Options struct {
	// Date is the run date, YYYY-MM-DD; "" means today in the configured
	// time zone. A rerun of a failed night passes that night's date.
	Date string
	// RunID identifies the run in logs and the manifest; "" generates one.
	RunID string
	// Logger receives the run's structured logs (nil: none). Only counts,
	// durations, stages and file names are logged, never claim content,
	// amounts or secrets.
	Logger *slog.Logger
	// Progress, when set, is called as the repricing goes (see
	// pipeline.Config.Progress).
	Progress func(pipeline.Progress)
	// OnStage, when set, is called as the run enters each stage ("lock",
	// "load", "reprice", "report", "manifest", "ledger").
	OnStage func(stage string)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Getenv reads the environment (default os.Getenv).
	Getenv Getenv
	// HTTPClient is used for Business Central (default: a plain client).
	HTTPClient *http.Client
	// ScheduleCache, when set, opens the schedule's compiled image when it
	// is up to date (see load.Cache); a run that syncs Business Central
	// reads the schedule itself.
	ScheduleCache *load.Cache
}

// Result is a completed run.
type Result struct {
	OutDir   string
	Manifest *Manifest
	Summary  *pipeline.Summary
}

// NewRunID returns a run id: the UTC start time and 4 random bytes, e.g.
// 20240515T020000Z-1a2b3c4d.
func NewRunID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Run is the nightly job: it resolves the configuration for the run date,
// takes the lock, withdraws the previous manifest, then syncs contract
// changes to Business Central and reprices the night's claim files at the
// same time, writes report.html, and writes the manifest (_SUCCESS.json)
// last. Any failure, or ctx being cancelled, returns an error before the
// manifest is written.
//
// Errors carry their exit status: *ConfigError 2, *LockedError 3,
// *adjust.NotRecordedError 4 (returned with the Result: the run is
// published, only its ledger record is missing), the rest 1
// (pipeline.UsageError and bundle.FormatError are usage errors too).
func Run(ctx context.Context, cfg *Config, opts Options) (res *Result, err error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	start := now()
	runID := opts.RunID
	if runID == "" {
		runID = NewRunID(start)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("run_id", runID, "job", cfg.Name)
	// stage names what the run was doing, for the failure's log line.
	stage := "plan"
	enter := func(s string) {
		stage = s
		if opts.OnStage != nil {
			opts.OnStage(s)
		}
	}
	defer func() {
		var nr *adjust.NotRecordedError
		if err == nil || errors.As(err, &nr) {
			return // logged where it happened: the run is published
		}
		msg := "run failed"
		var se *pipeline.StoppedError
		if err = pipeline.Stopped(ctx, stage, err); errors.As(err, &se) {
			msg = "run stopped"
		}
		log.Error(msg, "stage", stage, "error", logMessage(err), "exit_status", exitStatus(err),
			"duration_ms", now().Sub(start).Milliseconds())
	}()

	plan, err := cfg.Resolve(opts.Date, start, opts.Getenv)
	if err != nil {
		return nil, err
	}
	var ropts rates.Options
	if cfg.SystemDefaultRate != "" {
		d, err := rates.ParseDefaultRate(cfg.SystemDefaultRate)
		if err != nil {
			return nil, &ConfigError{Err: fmt.Errorf(`"system_default_rate": %w`, err)}
		}
		ropts.SystemDefault = &d
	}
	log.Info("run starting", "stage", "plan", "run_date", plan.Date, "out", plan.OutDir,
		"claim_files", len(plan.Claims), "lock", plan.LockMode, "bc_sync", cfg.BC.Enabled, "format", cfg.Format)
	var db *sqlx.DB
	if plan.DatabaseURL != "" && (plan.LockMode == LockPostgres || cfg.BC.Enabled || plan.Contracts == plan.DatabaseURL) {
		db, err = postgres.Open(ctx, plan.DatabaseURL, postgres.Options{StatementTimeout: plan.DBTimeout})
		if err != nil {
			return nil, err
		}
		defer func() {
			if cerr := db.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("closing the database: %w", cerr)
			}
		}()
	}

	// The lock: everything below runs alone for this output folder.
	enter("lock")
	t := now()
	unlock := func() error { return nil }
	switch plan.LockMode {
	case LockPostgres:
		unlock, err = lockPostgres(ctx, db, plan.LockKey)
	case LockFile:
		unlock, err = lockFile(plan.OutDir, runID, start)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if uerr := unlock(); uerr != nil {
			// The outputs and manifest are complete and self-checking; a
			// lock that could not be released (or was lost) is reported.
			log.Warn("releasing the lock", "stage", "lock", "error", uerr.Error())
		}
	}()
	log.Info("lock taken", "stage", "lock", "lock", plan.LockMode, "duration_ms", now().Sub(t).Milliseconds())

	if err := prepareOut(plan.OutDir); err != nil {
		return nil, err
	}

	enter("load")
	t = now()
	// Validating and indexing a large schedule takes seconds without looking
	// at ctx: a stop request must not wait for it.
	type loaded struct {
		v      *contracts.Validated
		source string
		eng    *rates.Engine
	}
	l, err := ctxrun.Do(ctx, func() (loaded, error) {
		if opts.ScheduleCache != nil && !cfg.BC.Enabled {
			// The sync needs the schedule's rates, which an image keeps
			// only for Explain: without it the image serves.
			eng, source, err := load.Engine(ctx, plan.Contracts, load.Options{Rates: ropts,
				Postgres: postgres.Options{StatementTimeout: plan.DBTimeout}, Cache: opts.ScheduleCache})
			if err != nil {
				return loaded{}, sourceConfigError(err)
			}
			return loaded{eng.Schedule(), source, eng}, nil
		}
		v, source, err := loadSchedule(ctx, plan, db)
		if err != nil {
			return loaded{}, err
		}
		return loaded{v, source, rates.New(v, ropts)}, nil
	})
	if err != nil {
		return nil, err
	}
	v, source := l.v, l.source
	log.Info("schedule loaded", "stage", "load", "contracts", len(v.Contracts), "rejected_contracts", len(v.Rejected),
		"rates", l.eng.NumRates(), "schedule_issues", len(v.Issues), "duration_ms", now().Sub(t).Milliseconds())

	if cfg.BC.Enabled {
		enter("reprice+bc_sync")
	} else {
		enter("reprice")
	}
	var syncSum *SyncSummary
	g, gctx := errgroup.WithContext(ctx)
	if cfg.BC.Enabled {
		cl, err := bcClient(&cfg.BC, plan.BCSecret, opts.HTTPClient)
		if err != nil {
			return nil, err
		}
		store, err := newStateStore(ctx, db)
		if err != nil {
			return nil, err
		}
		g.Go(func() error {
			t := now()
			log.Info("stage started", "stage", "bc_sync", "contracts", len(v.Contracts)-len(v.Rejected))
			s, err := syncBC(gctx, cl, store, cfg.BC.Force, v)
			syncSum = s
			attrs := []any{"stage", "bc_sync", "duration_ms", now().Sub(t).Milliseconds()}
			if s != nil {
				attrs = append(attrs, "created", s.Created, "updated", s.Updated, "unchanged", s.Unchanged,
					"conflicts", s.Conflicts, "failed", s.Failed, "skipped", s.Skipped, "requests", s.Requests, "retries", s.Retries)
			}
			if err != nil {
				return err
			}
			log.Info("stage finished", attrs...)
			return nil
		})
	}
	var sum *pipeline.Summary
	pcfg := pipeline.Config{
		Engine: l.eng, Claims: plan.Claims, OutDir: plan.OutDir, Format: cfg.Format,
		Workers: cfg.Workers, Mapping: cfg.Map, ReferenceSource: source, Progress: opts.Progress,
		Supersedes: append(adjust.ReportPatterns(), report.File),
	}
	if ropts.SystemDefault != nil {
		pcfg.SystemDefaultRate = ropts.SystemDefault.String()
	}
	g.Go(func() error {
		t := now()
		log.Info("stage started", "stage", "reprice", "claim_files", len(plan.Claims), "workers", cfg.Workers)
		s, err := pipeline.Run(gctx, pcfg)
		if err != nil {
			return err
		}
		if s == nil {
			return errNoSummary
		}
		sum = s
		log.Info("stage finished", "stage", "reprice", "input_lines", s.Counts.InputLines, "priced_lines", s.Counts.PricedLines,
			"error_exceptions", s.Counts.ErrorExceptions, "review_exceptions", s.Counts.ReviewExceptions,
			"books_balanced", s.Books.Balanced, "mode", s.Settings.Mode, "duration_ms", now().Sub(t).Milliseconds(),
			"lines_per_second", int64(s.Timings.LinesPerSecond))
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}

	files := []string{"priced." + cfg.Format, "exceptions." + cfg.Format, pipeline.ScheduleIssuesFile, pipeline.SummaryFile}
	if !cfg.Report.Disabled {
		enter("report")
		t = now()
		var examples []report.ExceptionExample
		if cfg.Format == "csv" {
			if examples, err = exceptionExamples(ctx, filepath.Join(plan.OutDir, "exceptions.csv"), sum, cfg.Report.ExamplesPerCode); err != nil {
				return nil, fmt.Errorf("report: %w", err)
			}
		}
		if err := writeAside(plan.OutDir, report.File, func(w io.Writer) error {
			return report.Write(w, sum, examples, syncSection(syncSum)...)
		}); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		files = append(files, report.File)
		log.Info("stage finished", "stage", "report", "examples", len(examples), "duration_ms", now().Sub(t).Milliseconds())
	}

	enter("manifest")
	t = now()
	m := &Manifest{
		Version: ManifestVersion, RunID: runID, Job: cfg.Name, RunDate: plan.Date,
		StartedAt: start.UTC().Format(time.RFC3339Nano), Inputs: sum.Inputs, Reference: sum.Reference,
		Counts: sum.Counts, Books: sum.Books, BCSync: syncSum,
	}
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := hashFile(filepath.Join(plan.OutDir, name))
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		m.Files = append(m.Files, e)
	}
	// A stop requested now still leaves no manifest.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.FinishedAt = now().UTC().Format(time.RFC3339Nano)
	if err := writeManifest(plan.OutDir, m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	// Record the run in the ledger (the database when there is one, else a
	// JSON-lines file beside the output folder), for reprice --compare-run.
	ledger := plan.DatabaseURL
	if ledger == "" {
		ledger = filepath.Join(filepath.Dir(plan.OutDir), "repricer-ledger.jsonl")
	}
	enter("ledger")
	rec := adjust.NewRunRecord(runID, plan.OutDir, sum, start, now())
	var notRecorded error
	if err := adjust.RecordRun(ctx, ledger, plan.DBTimeout, rec); err != nil {
		// The outputs and manifest stand; only the ledger entry is missing:
		// a distinct exit status, so a scheduler neither reruns nor reports
		// the outputs as missing.
		notRecorded = &adjust.NotRecordedError{OutDir: plan.OutDir, Err: err}
		log.Warn("recording the run in the ledger failed", "stage", "ledger", "error", logMessage(err),
			"exit_status", adjust.ExitNotRecorded)
	}
	log.Info("run finished", "stage", "done", "files", len(m.Files), "input_lines", sum.Counts.InputLines,
		"priced_lines", sum.Counts.PricedLines, "error_exceptions", sum.Counts.ErrorExceptions,
		"review_exceptions", sum.Counts.ReviewExceptions, "manifest_ms", now().Sub(t).Milliseconds(),
		"duration_ms", now().Sub(start).Milliseconds())
	return &Result{OutDir: plan.OutDir, Manifest: m, Summary: sum}, notRecorded
}

// prepareOut withdraws the previous manifest, so that from now until this
// run's manifest is written the folder does not claim to hold a complete
// run, and removes what runs killed earlier left behind: staging folders
// and half-written temporary files. It runs under the lock, so none of
// them belongs to a live run.
func prepareOut(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	if err := removeManifest(dir); err != nil {
		return fmt.Errorf("withdraw the previous manifest: %w", err)
	}
	if _, err := pipeline.SweepStaging(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if (strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-")) || strings.HasPrefix(n, LockFileName+".stale-") {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("remove leftover %s: %w", n, err)
			}
		}
	}
	return nil
}

// loadSchedule reads and validates the schedule: from the open database
// when it is the configured one, else from its URL or bundle folder. The
// source description holds no password.
func loadSchedule(ctx context.Context, plan *Plan, db *sqlx.DB) (*contracts.Validated, string, error) {
	src := plan.Contracts
	if db != nil && src == plan.DatabaseURL && postgres.IsURL(src) {
		s, err := postgres.Load(ctx, db)
		if err != nil {
			return nil, "", err
		}
		if err := schedule.CheckNotEmpty(s, src); err != nil {
			return nil, "", &ConfigError{Err: fmt.Errorf(`"contracts": %w`, err)}
		}
		return contracts.Validate(s), "postgres:" + postgres.Redact(src), nil
	}
	v, desc, err := schedule.Load(ctx, src, postgres.Options{StatementTimeout: plan.DBTimeout})
	return v, desc, sourceConfigError(err)
}

// sourceConfigError makes a "contracts" value that names no schedule, or
// an empty one, a configuration error.
func sourceConfigError(err error) error {
	var se *schedule.SourceError
	var ee *schedule.EmptyError
	if errors.As(err, &se) || errors.As(err, &ee) {
		return &ConfigError{Err: fmt.Errorf(`"contracts": %w`, err)}
	}
	return err
}

// exitStatus is the status an error maps to, for the logs.
func exitStatus(err error) int {
	var ec interface{ ExitStatus() int }
	var pu *pipeline.UsageError
	var bf *bundle.FormatError
	switch {
	case errors.As(err, &ec):
		return ec.ExitStatus()
	case errors.As(err, &pu), errors.As(err, &bf):
		return 2
	}
	return 1
}

// logMessage is err's message for the logs: a books failure is named
// without the amounts its message quotes.
func logMessage(err error) string {
	var be *pipeline.BooksError
	if errors.As(err, &be) {
		return "the books do not balance (amounts in the error output, not in the logs)"
	}
	return err.Error()
}
