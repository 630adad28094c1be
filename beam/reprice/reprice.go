// Package reprice is repricer's pricing as an Apache Beam pipeline, for
// runs too large for one machine: it reads claim files with Beam's file
// systems, groups the lines by claim id (one GroupByKey), prices each claim
// with the same rates engine and the same claim pricing as `repricer
// reprice`, writes sharded priced and exception files with the project's
// own writers, and finishes with one summary whose books are checked across
// every shard. A run whose books do not balance, or any of whose bundles
// fails, fails and publishes nothing.
//
// The same pipeline runs on Beam's Prism runner (in-process, for tests and
// small runs) and on Flink, Spark or Google Dataflow through Beam's runners.
package reprice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // plain paths
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
)

// Config describes one run.
type Config struct {
	// Contracts is a contract bundle folder that every worker can read at
	// the same path, or a postgres:// URL without a password (workers take
	// it from PGPASSWORD or ~/.pgpass, since the URL travels in the job).
	Contracts string
	// Claims are claim file patterns (globs), .csv or .parquet/.pq, on any
	// file system Beam knows (local paths, gs://, s3://). The files are
	// read in pattern order, names sorted within a pattern: that order
	// decides which of two duplicate lines is the first.
	Claims []string
	// Out is the output folder or prefix; it receives priced-NNNNN-of-NNNNN
	// and exceptions-NNNNN-of-NNNNN files, schedule_issues.csv and, last,
	// summary.json.
	Out string
	// Format of the priced and exception files: "csv" (default) or "parquet".
	Format string
	// SystemDefaultRate is the tier-8 rate ("Percentage:60", "Amount:25.00"),
	// or "" for none.
	SystemDefaultRate string
	// Mapping renames input columns: canonical name -> name in the file.
	Mapping map[string]string
	// ScheduleCache is the folder of compiled schedule images (see
	// load.Cache) on the machine building the job and on every worker: a
	// worker opens the schedule's image when it is up to date instead of
	// reading and indexing the schedule. "" is no cache.
	ScheduleCache string
}

// UsageError is a configuration that cannot work.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Job is a built pipeline and what it will write.
type Job struct {
	Pipeline *beam.Pipeline
	// Files are the matched claim files, in reading order.
	Files []string
	// Summary is the path of the summary the run writes last.
	Summary string
	// Temp is the folder under Out where shards wait to be published.
	Temp string
}

func init() {
	register.DoFn4x1[context.Context, fileRef, func(string, []byte), func(string), error]((*readFn)(nil))
	register.DoFn4x1[context.Context, string, func(*[]byte) bool, func(string), error]((*priceFn)(nil))
	register.DoFn4x1[context.Context, []byte, func(*string) bool, func(*string) bool, error]((*finishFn)(nil))
	register.Emitter1[string]()
	register.Emitter2[string, []byte]()
	register.Iter1[[]byte]()
	register.Iter1[string]()
	beam.RegisterType(reflect.TypeOf((*fileRef)(nil)).Elem())
}

// Build checks cfg, matches the claim files, loads the schedule once (for
// its fingerprint and the summary's reference counts) and constructs the
// pipeline. Nothing is written until the pipeline runs.
func Build(ctx context.Context, cfg Config) (*Job, error) {
	format, ext, err := outputFormat(cfg.Format)
	if err != nil {
		return nil, err
	}
	if cfg.Out == "" {
		return nil, usagef("no output prefix given")
	}
	if err := checkContracts(cfg.Contracts); err != nil {
		return nil, err
	}
	var opts rates.Options
	if cfg.SystemDefaultRate != "" {
		d, err := rates.ParseDefaultRate(cfg.SystemDefaultRate)
		if err != nil {
			return nil, &UsageError{Err: err}
		}
		opts.SystemDefault = &d
	}
	files, err := matchClaims(ctx, cfg.Claims)
	if err != nil {
		return nil, err
	}
	// The engine is built here only for the summary's rate count (the
	// rates it indexes), which must be the one `repricer reprice` reports,
	// and, with a cache, to compile the image the workers open.
	eng, source, err := load.Engine(ctx, cfg.Contracts, load.Options{Rates: opts, Cache: scheduleCache(cfg.ScheduleCache)})
	if err != nil {
		return nil, fmt.Errorf("load contracts: %w", err)
	}
	v := eng.Schedule()
	var issues strings.Builder
	if err := pipeline.WriteScheduleIssues(&issues, v.Issues); err != nil {
		return nil, err
	}
	head := pipeline.Summary{
		Reference: pipeline.ReferenceSummary{Source: source, Fingerprint: v.Fingerprint, Contracts: len(v.Contracts),
			RejectedContracts: len(v.Rejected), Rates: eng.NumRates(), Issues: len(v.Issues)},
		Settings: pipeline.Settings{Format: format, Mode: "beam"},
	}
	if opts.SystemDefault != nil {
		head.Settings.SystemDefaultRate = opts.SystemDefault.String()
	}

	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	out := strings.TrimSuffix(cfg.Out, "/")
	job := &Job{Files: files, Summary: join(out, pipeline.SummaryFile), Temp: join(out, ".tmp-"+hex.EncodeToString(id))}

	p, s := beam.NewPipelineWithRoot()
	refs := make([]fileRef, len(files))
	for i, f := range files {
		refs[i] = fileRef{Index: i, Name: f}
	}
	// Reshuffle spreads the files over workers: without it a runner may
	// read them all in the bundle that created the list.
	inputs := beam.Reshuffle(s, beam.CreateList(s, refs))
	lines, counts := beam.ParDo2(s, &readFn{Mapping: cfg.Mapping}, inputs)
	claims := beam.GroupByKey(s, lines)
	shards := beam.ParDo(s, &priceFn{Contracts: cfg.Contracts, SystemDefaultRate: cfg.SystemDefaultRate, ScheduleCache: cfg.ScheduleCache,
		Fingerprint: v.Fingerprint, Format: format, Ext: ext, Files: files, Temp: job.Temp}, claims)
	beam.ParDo0(s, &finishFn{Out: out, Temp: job.Temp, Ext: ext, Head: head, Issues: issues.String()},
		beam.Impulse(s), beam.SideInput{Input: shards}, beam.SideInput{Input: counts})
	job.Pipeline = p
	return job, nil
}

// outputFormat accepts the formats a Beam run writes: the project's CSV and
// Parquet writers. It returns the format's name and file extension.
func outputFormat(name string) (string, string, error) {
	switch strings.ToLower(name) {
	case "", "csv":
		return "csv", "csv", nil
	case "parquet":
		return "parquet", "parquet", nil
	}
	return "", "", usagef("unknown output format %q (use csv or parquet)", name)
}

// checkContracts refuses a contract source the workers could not use, or
// one that would put a password into the job's description.
func checkContracts(src string) error {
	if src == "" {
		return usagef("--contracts (a bundle folder or a postgres:// URL) is required")
	}
	if !postgres.IsURL(src) {
		return nil
	}
	u, err := url.Parse(src)
	if err != nil {
		return usagef("--contracts: not a valid URL: %s", postgres.Redact(src))
	}
	if _, ok := u.User.Password(); ok || u.Query().Has("password") {
		return usagef("--contracts: the URL holds a password, which would travel in the job description to every worker; give it to the workers as PGPASSWORD or in ~/.pgpass instead")
	}
	return nil
}

// matchClaims expands the claim patterns, in order, each one's files sorted
// by name. A pattern that matches nothing, a file matched twice and an
// unknown extension are usage errors.
func matchClaims(ctx context.Context, patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, usagef("no claim files given")
	}
	var files []string
	seen := map[string]bool{}
	for _, pat := range patterns {
		fs, err := filesystem.New(ctx, pat)
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("claim files %s: %w", pat, err)}
		}
		names, err := fs.List(ctx, pat)
		fs.Close()
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("claim files %s: %w", pat, err)}
		}
		if len(names) == 0 {
			return nil, usagef("claim files %s: no file matches", pat)
		}
		slices.Sort(names)
		for _, n := range names {
			if !isCSV(n) && !isParquet(n) {
				return nil, usagef("claim file %s: unknown extension %q (use .csv, .parquet or .pq)", n, path.Ext(n))
			}
			if seen[n] {
				return nil, usagef("claim file %s is matched twice", n)
			}
			seen[n] = true
			files = append(files, n)
		}
	}
	return files, nil
}

func isCSV(name string) bool { return strings.EqualFold(path.Ext(name), ".csv") }

func isParquet(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".parquet", ".pq":
		return true
	}
	return false
}

// join appends a file name to a folder or prefix of any Beam file system
// (path.Join would fold the "//" of "gs://bucket").
func join(dir, name string) string { return dir + "/" + name }

// Cleanup removes the shards a failed run left in its temporary folder,
// as far as the file system allows. Nothing of a failed run is published:
// the final names are given only once the books balance.
func (j *Job) Cleanup(ctx context.Context) {
	fs, err := filesystem.New(ctx, j.Temp)
	if err != nil {
		return
	}
	defer fs.Close()
	removeTemp(ctx, fs, j.Temp)
}

// scheduleCache is the cache in dir, nil for "".
func scheduleCache(dir string) *load.Cache {
	if dir == "" {
		return nil
	}
	return &load.Cache{Dir: dir}
}
