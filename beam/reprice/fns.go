package reprice

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/google/uuid"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/load"
	"github.com/repricer/repricer/money"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/rates"
)

// fileRef is one matched claim file and its place in the reading order.
type fileRef struct {
	Index int
	Name  string
}

// inputCount is a reader's own account of one file, for the books check.
type inputCount struct {
	Index  int                   `json:"index"`
	Input  pipeline.InputSummary `json:"input"`
	Billed money.Cents           `json:"billed"`
}

// shard is the priced and exception files one pricing bundle wrote, and
// the account of the lines in them.
type shard struct {
	Priced     string         `json:"priced"`
	Exceptions string         `json:"exceptions"`
	Share      pipeline.Share `json:"share"`
}

// readFn reads one claim file with the project's CSV or Parquet reader and
// emits each line keyed by claim id, and the file's count. A row that did
// not parse (INVALID_ROW) is keyed by its file and row instead, so that it
// forms a group of its own: its claim id may be empty or wrong.
type readFn struct {
	Mapping map[string]string
}

func (fn *readFn) ProcessElement(ctx context.Context, f fileRef, emitLine func(string, []byte), emitCount func(string)) error {
	fs, err := filesystem.New(ctx, f.Name)
	if err != nil {
		return fmt.Errorf("claim file %s: %w", f.Name, err)
	}
	defer fs.Close()
	count := inputCount{Index: f.Index, Input: pipeline.InputSummary{File: f.Name}}
	emit := func(l *claims.Line) {
		count.Input.Lines++
		if l.BilledOK {
			count.Billed += l.Billed
		}
		key := l.ClaimID
		if l.Invalid != nil {
			key = "\x00" + strconv.Itoa(f.Index) + ":" + strconv.FormatInt(l.Source.Row, 10)
		}
		emitLine(key, encodeLine(nil, f.Index, l))
	}
	if isParquet(f.Name) {
		err = readParquet(ctx, fs, f.Name, fn.Mapping, &count.Input, emit)
	} else {
		err = readCSV(ctx, fs, f.Name, fn.Mapping, &count.Input, emit)
	}
	if err != nil {
		return err
	}
	b, err := json.Marshal(count)
	if err != nil {
		return err
	}
	emitCount(string(b))
	return nil
}

func readCSV(ctx context.Context, fs filesystem.Interface, name string, mapping map[string]string, in *pipeline.InputSummary, emit func(*claims.Line)) error {
	f, err := fs.OpenRead(ctx, name)
	if err != nil {
		return fmt.Errorf("claim file %s: %w", name, err)
	}
	defer f.Close()
	h := &hashingReader{r: f, h: sha256.New()}
	rd, err := claimcsv.NewReader(h, name, mapping)
	if err != nil {
		return err
	}
	if err := readLines(ctx, rd, emit); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, h); err != nil {
		return fmt.Errorf("claim file %s: %w", name, err)
	}
	in.SHA256, in.Bytes = hex.EncodeToString(h.h.Sum(nil)), h.n
	return nil
}

// readParquet reads a Parquet file whole into memory: the reader needs
// random access, which Beam's file systems do not offer.
func readParquet(ctx context.Context, fs filesystem.Interface, name string, mapping map[string]string, in *pipeline.InputSummary, emit func(*claims.Line)) error {
	b, err := filesystem.Read(ctx, fs, name)
	if err != nil {
		return fmt.Errorf("claim file %s: %w", name, err)
	}
	sum := sha256.Sum256(b)
	in.SHA256, in.Bytes = hex.EncodeToString(sum[:]), int64(len(b))
	rd, err := claimparquet.NewReader(ctx, bytes.NewReader(b), name, mapping)
	if err != nil {
		return err
	}
	err = readLines(ctx, rd, emit)
	if cerr := rd.Close(); err == nil {
		err = cerr
	}
	return err
}

func readLines(ctx context.Context, rd pipeline.LineReader, emit func(*claims.Line)) error {
	var l claims.Line
	for {
		// Readers fill a zeroed line (Parse leaves BilledOK alone when
		// billed_amount does not parse).
		l = claims.Line{}
		if err := rd.Read(&l); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		emit(&l)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	return n, err
}

// priceFn prices whole claims. Its engine is built in Setup, once per
// instance, by loading the schedule from the contract source; Setup fails
// when the source no longer has the fingerprint the job was built with, so
// every worker prices with the same reference data. Each bundle writes one
// priced and one exceptions file under Temp and emits them with their
// account when it finishes.
type priceFn struct {
	Contracts, SystemDefaultRate, Fingerprint string
	ScheduleCache                             string
	Format, Ext                               string
	Files                                     []string
	Temp                                      string

	pricer *rates.Pricer
	fs     filesystem.Interface
	out    pipeline.ResultWriter
	pf, ef io.WriteCloser
	cur    shard
	tally  *pipeline.Tally
	items  []claims.Item
	files  []int // the file index of each of items
}

func (fn *priceFn) Setup(ctx context.Context) error {
	var opts rates.Options
	if fn.SystemDefaultRate != "" {
		d, err := rates.ParseDefaultRate(fn.SystemDefaultRate)
		if err != nil {
			return err
		}
		opts.SystemDefault = &d
	}
	eng, _, err := load.Engine(ctx, fn.Contracts, load.Options{Rates: opts, Cache: scheduleCache(fn.ScheduleCache)})
	if err != nil {
		return fmt.Errorf("load contracts on a worker: %w", err)
	}
	if fp := eng.Schedule().Fingerprint; fp != fn.Fingerprint {
		return fmt.Errorf("the contract schedule changed since the job was built (fingerprint %s, was %s): rerun the job", fp, fn.Fingerprint)
	}
	fn.pricer = eng.NewPricer()
	fs, err := filesystem.New(ctx, fn.Temp)
	if err != nil {
		return err
	}
	fn.fs = fs
	return nil
}

// StartBundle drops the files of a bundle that failed before finishing, if
// the runner reuses the instance: they are never published, and the finish
// step or the program removes them with the temporary folder.
func (fn *priceFn) StartBundle(_ context.Context, _ func(string)) {
	if fn.out != nil {
		fn.pf.Close()
		fn.ef.Close()
		fn.out = nil
	}
}

func (fn *priceFn) ProcessElement(ctx context.Context, key string, lines func(*[]byte) bool, _ func(string)) error {
	// The lines of one claim, in input order (file, then row): the first
	// of two lines with one line number is the one priced, as in a
	// single-machine run.
	fn.items, fn.files = fn.items[:0], fn.files[:0]
	var rec []byte
	for lines(&rec) {
		fn.items = append(fn.items, claims.Item{})
		file, err := decodeLine(rec, fn.Files, &fn.items[len(fn.items)-1].Line)
		if err != nil {
			return err
		}
		fn.files = append(fn.files, file)
	}
	sort.Sort(inputOrder{fn.items, fn.files})
	items := fn.items
	fn.pricer.PriceClaim(items)
	if fn.out == nil {
		if err := fn.open(ctx); err != nil {
			return err
		}
	}
	if err := fn.out.Write(ctx, items); err != nil {
		return fmt.Errorf("write %s: %w", fn.cur.Priced, err)
	}
	fn.tally.Add(items)
	return nil
}

// inputOrder sorts a claim's lines by file and row: files[i] is the index
// of the file of items[i].
type inputOrder struct {
	items []claims.Item
	files []int
}

func (o inputOrder) Len() int { return len(o.items) }
func (o inputOrder) Less(i, j int) bool {
	return cmp.Or(cmp.Compare(o.files[i], o.files[j]), cmp.Compare(o.items[i].Line.Source.Row, o.items[j].Line.Source.Row)) < 0
}
func (o inputOrder) Swap(i, j int) {
	o.items[i], o.items[j] = o.items[j], o.items[i]
	o.files[i], o.files[j] = o.files[j], o.files[i]
}

// open starts the bundle's shard files.
func (fn *priceFn) open(ctx context.Context) error {
	id := uuid.NewString()
	fn.cur = shard{Priced: join(fn.Temp, "priced-"+id+"."+fn.Ext), Exceptions: join(fn.Temp, "exceptions-"+id+"."+fn.Ext)}
	var err error
	if fn.pf, err = fn.fs.OpenWrite(ctx, fn.cur.Priced); err != nil {
		return err
	}
	if fn.ef, err = fn.fs.OpenWrite(ctx, fn.cur.Exceptions); err != nil {
		return err
	}
	if fn.out, _, err = pipeline.NewResultWriter(fn.Format, fn.pf, fn.ef); err != nil {
		return err
	}
	fn.tally = pipeline.NewTally()
	return nil
}

func (fn *priceFn) FinishBundle(ctx context.Context, emit func(string)) error {
	if fn.out == nil {
		return nil
	}
	err := fn.out.Close()
	if cerr := fn.pf.Close(); err == nil {
		err = cerr
	}
	if cerr := fn.ef.Close(); err == nil {
		err = cerr
	}
	fn.out = nil
	if err != nil {
		return fmt.Errorf("write %s: %w", fn.cur.Priced, err)
	}
	fn.cur.Share = fn.tally.Share()
	b, err := json.Marshal(fn.cur)
	if err != nil {
		return err
	}
	emit(string(b))
	return nil
}

func (fn *priceFn) Teardown() error {
	if fn.fs == nil {
		return nil
	}
	return fn.fs.Close()
}

// finishFn runs once, after every shard is written: it merges the shards'
// accounts, checks the books against the readers' counts, and only then
// publishes: the shards get their final names, then schedule_issues.csv,
// and summary.json last, so a summary means a complete, balanced run. When
// the books do not balance it removes the shards and fails.
type finishFn struct {
	Out, Temp, Ext string
	// Head is the summary's reference data and settings, from Build.
	Head   pipeline.Summary
	Issues string
}

func (fn *finishFn) ProcessElement(ctx context.Context, _ []byte, shardIter func(*string) bool, countIter func(*string) bool) error {
	var shards []shard
	var s string
	for shardIter(&s) {
		var sh shard
		if err := json.Unmarshal([]byte(s), &sh); err != nil {
			return err
		}
		shards = append(shards, sh)
	}
	var counts []inputCount
	for countIter(&s) {
		var c inputCount
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			return err
		}
		counts = append(counts, c)
	}
	slices.SortFunc(shards, func(a, b shard) int { return strings.Compare(a.Priced, b.Priced) })
	slices.SortFunc(counts, func(a, b inputCount) int { return cmp.Compare(a.Index, b.Index) })

	fs, err := filesystem.New(ctx, fn.Temp)
	if err != nil {
		return err
	}
	defer fs.Close()

	sum := fn.Head
	var total pipeline.Share
	for _, sh := range shards {
		total.Merge(sh.Share)
	}
	var readLines int64
	var readBilled money.Cents
	for _, c := range counts {
		sum.Inputs = append(sum.Inputs, c.Input)
		readLines += c.Input.Lines
		readBilled += c.Billed
	}
	if err := total.Fill(&sum, readLines, readBilled); err != nil {
		removeAll(ctx, fs, shards, fn.Temp)
		return err
	}

	// Publish. What an earlier run left goes first, its summary before its
	// shards, so that no summary stands beside a half-published run and no
	// old shard beside new ones.
	if err := remove(ctx, fs, join(fn.Out, pipeline.SummaryFile)); err != nil {
		return err
	}
	for _, pat := range []string{"priced-*-of-*", "exceptions-*-of-*"} {
		old, err := fs.List(ctx, join(fn.Out, pat))
		if err != nil {
			return err
		}
		for _, n := range old {
			if err := remove(ctx, fs, n); err != nil {
				return err
			}
		}
	}
	for i, sh := range shards {
		suffix := fmt.Sprintf("-%05d-of-%05d.%s", i, len(shards), fn.Ext)
		if err := filesystem.Rename(ctx, fs, sh.Priced, join(fn.Out, "priced"+suffix)); err != nil {
			return err
		}
		if err := filesystem.Rename(ctx, fs, sh.Exceptions, join(fn.Out, "exceptions"+suffix)); err != nil {
			return err
		}
	}
	removeTemp(ctx, fs, fn.Temp)
	if err := filesystem.Write(ctx, fs, join(fn.Out, pipeline.ScheduleIssuesFile), []byte(fn.Issues)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(&sum, "", "  ")
	if err != nil {
		return err
	}
	return filesystem.Write(ctx, fs, join(fn.Out, pipeline.SummaryFile), append(b, '\n'))
}

// remove deletes name if it exists, on file systems that can.
func remove(ctx context.Context, fs filesystem.Interface, name string) error {
	r, ok := fs.(filesystem.Remover)
	if !ok {
		return nil
	}
	if m, err := fs.List(ctx, name); err != nil || len(m) == 0 {
		return err
	}
	return r.Remove(ctx, name)
}

// removeAll deletes a failed run's shards and its temporary folder, as far
// as the file system allows; the run's error is what matters.
func removeAll(ctx context.Context, fs filesystem.Interface, shards []shard, temp string) {
	for _, sh := range shards {
		remove(ctx, fs, sh.Priced)
		remove(ctx, fs, sh.Exceptions)
	}
	removeTemp(ctx, fs, temp)
}

// removeTemp removes the temporary folder (a no-op on object stores, which
// have no folders) and anything a retried bundle left in it.
func removeTemp(ctx context.Context, fs filesystem.Interface, temp string) {
	if left, err := fs.List(ctx, join(temp, "*")); err == nil {
		for _, n := range left {
			remove(ctx, fs, n)
		}
	}
	remove(ctx, fs, temp)
}
