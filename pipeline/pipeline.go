// Package pipeline runs a repricing job: it reads claim files, fans batches
// of lines out to worker goroutines that price them with the rates engine,
// writes priced lines and exceptions in input order, checks the books, and
// publishes the outputs atomically with a run summary.
package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
	"github.com/repricer/repricer/rates"
)

// Output file names.
const (
	SummaryFile        = "summary.json"
	ScheduleIssuesFile = "schedule_issues.csv"
)

// Config describes one run.
type Config struct {
	Engine *rates.Engine
	// Claims are the claim files, read in order; "-" is CSV on Stdin.
	Claims []string
	Stdin  io.Reader
	// OutDir receives priced.*, exceptions.*, schedule_issues.csv and
	// summary.json when the run succeeds, and nothing otherwise.
	OutDir string
	// Format of the priced and exception files: "csv" (default), "parquet",
	// or "arrow" (Arrow IPC streams, .arrows).
	Format string
	// PricedTo, when set, receives the priced file instead of OutDir (for
	// example standard output). It is copied there only once the run has
	// succeeded and its books balance, so a consumer never reads half a run.
	PricedTo io.Writer
	// Workers pricing in parallel; 0 means one per CPU.
	Workers int
	// BatchSize is the number of lines handed between stages at a time.
	BatchSize int
	// Mapping renames input columns: canonical name -> name in the file.
	Mapping map[string]string
	// ReferenceSource describes where the schedule came from (no secrets).
	ReferenceSource string
	// SystemDefaultRate is reported in the summary settings.
	SystemDefaultRate string
	// Progress, when set, is called from the writer after each batch it
	// writes.
	Progress func(Progress)
	// Supersedes names more files (path.Match patterns) that an earlier run
	// may have left in OutDir and that publishing this run removes, beyond
	// OutputPatterns: for example the adjustment report a caller writes
	// after some runs and not others.
	Supersedes []string
}

// Progress is how far a run has got, for a progress display.
type Progress struct {
	// Lines written so far (priced lines and exceptions).
	Lines int64
	// Fraction of the input read so far, 0 to 1, by size (CSV bytes,
	// Parquet rows by the footers' counts); -1 when it is unknown (Stream).
	Fraction float64
}

// errUngrouped stops the streaming pass when a claim's lines are not
// contiguous in the input.
var errUngrouped = errors.New("claim lines are not grouped by claim")

type batch struct {
	seq   int
	items []claims.Item
	// text holds the items' strings when the reader is an ArenaReader and
	// the writer a preEncoder (whose encoders copy what they keep), and is
	// reused with the batch.
	text []byte
	// Filled by the pricing worker: the encoded output rows (when the
	// writer supports it) and the batch's share of the summary.
	enc     claims.BatchEncoder
	encoded bool
	tally   *tally
}

// preEncoder is implemented by writers whose formatting can run in the
// pricing workers, in parallel, leaving only the byte copy to the writer:
// NewBatchEncoder returns an encoder that shares no state with the writer
// or with other encoders; WriteEncoded writes a finished one.
type preEncoder interface {
	NewBatchEncoder() claims.BatchEncoder
	WriteEncoded(ctx context.Context, enc claims.BatchEncoder) error
}

// lineSource hands the run's inputs, in order, to a reading stage.
type lineSource interface {
	each(ctx context.Context, fn func(LineReader) error) error
}

type run struct {
	cfg     Config
	inputs  lineSource
	summary Summary
	tally   *tally
	// Counted by the reader, checked against the tally.
	readLines  int64
	readBilled money.Cents
	readDur    time.Duration
	priceDur   time.Duration
	writeDur   time.Duration
	mu         sync.Mutex
}

// Run executes the job. On success the outputs are published in OutDir and
// the summary is returned; on any error nothing is published.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	start := time.Now()
	cfg.defaults()
	out, err := lookupFormat(cfg.Format)
	if err != nil {
		return nil, err
	}
	if err := checkInputs(cfg.Claims); err != nil {
		return nil, err
	}
	st, err := newStaging(cfg.OutDir, cfg.Supersedes)
	if err != nil {
		return nil, err
	}
	published := false
	defer func() {
		if !published {
			st.abort()
		}
	}()
	// Standard input is spooled into the staging folder, so that a killed
	// run's copy goes with the rest of its leftovers.
	inputs, err := openInputs(ctx, cfg.Claims, cfg.Stdin, cfg.Mapping, st.dir)
	if err != nil {
		return nil, err
	}
	defer inputs.Close()

	r := newRun(cfg, inputs, out.name)
	v := cfg.Engine.Schedule()

	err = r.pass(ctx, st, out, r.stream)
	if errors.Is(err, errUngrouped) {
		if err := st.reset(); err != nil {
			return nil, err
		}
		inputs.rewind()
		r.summary.Settings.Mode = "buffered"
		err = r.pass(ctx, st, out, r.buffered)
	}
	if err != nil {
		return nil, err
	}
	if err := writeScheduleIssues(st, v.Issues); err != nil {
		return nil, err
	}
	r.summary.Inputs = inputs.summaries()
	r.timings(start)
	f, err := st.create(SummaryFile)
	if err != nil {
		return nil, err
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&r.summary); err != nil {
		return nil, fmt.Errorf("write summary: %w", err)
	}
	if cfg.PricedTo != nil {
		st.redirect("priced."+out.ext, cfg.PricedTo)
	}
	if err := st.commit(); err != nil {
		return nil, err
	}
	published = true
	return &r.summary, nil
}

func (cfg *Config) defaults() {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 4096
	}
}

func newRun(cfg Config, inputs lineSource, format string) *run {
	r := &run{cfg: cfg, inputs: inputs}
	v := cfg.Engine.Schedule()
	r.summary.Settings = Settings{Format: format, SystemDefaultRate: cfg.SystemDefaultRate, Mode: "streaming"}
	r.summary.Reference = ReferenceSummary{
		Source: cfg.ReferenceSource, Fingerprint: v.Fingerprint,
		Contracts: len(v.Contracts), RejectedContracts: len(v.Rejected), Rates: cfg.Engine.NumRates(), Issues: len(v.Issues),
	}
	return r
}

func (r *run) timings(start time.Time) {
	total := time.Since(start)
	r.summary.Timings = Timings{
		Workers: r.cfg.Workers, ReadSeconds: r.readDur.Seconds(), PriceSeconds: r.priceDur.Seconds(),
		WriteSeconds: r.writeDur.Seconds(), TotalSeconds: total.Seconds(),
	}
	if s := total.Seconds(); s > 0 {
		r.summary.Timings.LinesPerSecond = float64(r.summary.Counts.InputLines) / s
	}
}

// ErrUngrouped reports that Stream met a claim whose lines are not
// contiguous in its input; Stream cannot read its input twice, so such
// input needs StreamConfig.Buffered (or a file run, which falls back to
// buffering by itself).
var ErrUngrouped = errors.New("the input's claims are not grouped: a claim's lines must be contiguous (sort by claim_id, or set Buffered)")

// StreamConfig describes a run over readers and writers the caller owns,
// for embedding: nothing touches the file system.
type StreamConfig struct {
	Engine *rates.Engine
	// Sources are read in order, as one input.
	Sources []LineReader
	// Writer receives priced lines and exceptions; Stream calls its Close.
	Writer ResultWriter
	// Buffered holds every line in memory and groups claims itself, for
	// input whose claims may be scattered; otherwise memory stays bounded
	// and scattered claims fail with ErrUngrouped.
	Buffered          bool
	Workers           int
	BatchSize         int
	ReferenceSource   string
	SystemDefaultRate string
	Progress          func(Progress)
}

// Stream prices every line of the sources into the writer and checks the
// books. Unlike Run it publishes nothing atomically: rows reach the writer
// as they are priced, so a caller must discard them when Stream fails.
func Stream(ctx context.Context, sc StreamConfig) (*Summary, error) {
	start := time.Now()
	cfg := Config{Engine: sc.Engine, Workers: sc.Workers, BatchSize: sc.BatchSize, ReferenceSource: sc.ReferenceSource,
		SystemDefaultRate: sc.SystemDefaultRate, Progress: sc.Progress}
	cfg.defaults()
	r := newRun(cfg, readerList(sc.Sources), "stream")
	r.tally = newTally()
	process := r.stream
	if sc.Buffered {
		r.summary.Settings.Mode = "buffered"
		process = r.buffered
	}
	if err := process(ctx, sc.Writer); err != nil {
		if errors.Is(err, errUngrouped) {
			return nil, ErrUngrouped
		}
		return nil, err
	}
	if err := sc.Writer.Close(); err != nil {
		return nil, fmt.Errorf("write outputs: %w", err)
	}
	if err := r.tally.fill(&r.summary, r.readLines, r.readBilled); err != nil {
		return nil, err
	}
	r.timings(start)
	return &r.summary, nil
}

// readerList is a lineSource over readers the caller opened.
type readerList []LineReader

func (rl readerList) each(ctx context.Context, fn func(LineReader) error) error {
	for _, lr := range rl {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(lr); err != nil {
			return err
		}
	}
	return nil
}

// pass runs one way of processing the inputs into freshly staged outputs.
func (r *run) pass(ctx context.Context, st *staging, out outputFormat, process func(context.Context, ResultWriter) error) error {
	r.tally = newTally()
	r.readLines, r.readBilled = 0, 0
	r.readDur, r.priceDur, r.writeDur = 0, 0, 0
	pf, err := st.create("priced." + out.ext)
	if err != nil {
		return err
	}
	ef, err := st.create("exceptions." + out.ext)
	if err != nil {
		return err
	}
	w, err := out.newWriter(pf, ef)
	if err != nil {
		return err
	}
	if err := process(ctx, w); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write outputs: %w", err)
	}
	return r.tally.fill(&r.summary, r.readLines, r.readBilled)
}

// stream is the bounded-memory pass: batches hold whole claims, and a claim
// that reappears after another began aborts the pass with errUngrouped (at
// once when it is among the last claims, otherwise at the end of the input,
// see claimCheck).
func (r *run) stream(ctx context.Context, w ResultWriter) error {
	g, ctx := errgroup.WithContext(ctx)
	nfree := 2*r.cfg.Workers + 2
	free := make(chan *batch, nfree)
	for i := 0; i < nfree; i++ {
		free <- &batch{items: make([]claims.Item, 0, r.cfg.BatchSize+1), tally: newTally()}
	}
	pe, _ := w.(preEncoder)
	toPrice := make(chan *batch, r.cfg.Workers)
	toWrite := make(chan *batch, r.cfg.Workers)

	g.Go(func() error {
		defer close(toPrice)
		return r.readGrouped(ctx, free, toPrice, pe != nil)
	})
	var workers sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			p := r.cfg.Engine.NewPricer()
			var starts []int
			for {
				var b *batch
				select {
				case <-ctx.Done():
					return ctx.Err()
				case b = <-toPrice:
				}
				if b == nil {
					return nil
				}
				t := time.Now()
				b.tally.reset()
				if pe != nil {
					if b.enc == nil {
						b.enc = pe.NewBatchEncoder()
					}
					b.enc.Reset()
				}
				// Tally and encode each claim just after pricing it, while
				// its lines are still in the CPU's cache.
				starts = priceBatch(p, b.items, starts, func(claim []claims.Item) {
					for i := range claim {
						b.tally.add(&claim[i])
					}
					if pe != nil {
						b.enc.Encode(claim)
					}
				})
				if pe != nil {
					b.enc.Finish()
				}
				b.encoded = pe != nil
				r.addPriceTime(time.Since(t))
				select {
				case <-ctx.Done():
					return ctx.Err()
				case toWrite <- b:
				}
			}
		})
	}
	go func() {
		workers.Wait()
		close(toWrite)
	}()
	g.Go(func() error {
		pending := map[int]*batch{}
		next := 0
		for b := range toWrite {
			pending[b.seq] = b
			for b := pending[next]; b != nil; b = pending[next] {
				delete(pending, next)
				if err := r.writeBatch(ctx, w, b); err != nil {
					return err
				}
				// The reader zeroes each item as it appends it, so the
				// stale lines of a free batch pin at most its own text
				// buffer, or the text of one input batch (about a
				// megabyte) for a reader that allocates it.
				b.items, b.text = b.items[:0], b.text[:0]
				free <- b // never blocks: there are nfree slots for nfree batches
				next++
			}
		}
		return ctx.Err()
	})
	return g.Wait()
}

// readGrouped reads every input into batches that end only between claims;
// with arena, the lines' text goes into their batch's buffer when the
// reader can put it there (ArenaReader).
func (r *run) readGrouped(ctx context.Context, free <-chan *batch, out chan<- *batch, arena bool) error {
	start := time.Now()
	defer func() { r.readDur = time.Since(start) }()
	seed := maphash.MakeSeed()
	var closed claimCheck
	last := ""
	seq := 0
	get := func() (*batch, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case b := <-free:
			b.seq = seq
			seq++
			return b, nil
		}
	}
	send := func(b *batch) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case out <- b:
			return nil
		}
	}
	b, err := get()
	if err != nil {
		return err
	}
	err = r.inputs.each(ctx, func(lr LineReader) error {
		ar, _ := lr.(ArenaReader)
		if !arena {
			ar = nil
		}
		for {
			b.items = append(b.items, claims.Item{})
			it := &b.items[len(b.items)-1]
			var err error
			if ar != nil {
				b.text, err = ar.ReadArena(&it.Line, b.text)
			} else {
				err = lr.Read(&it.Line)
			}
			if err != nil {
				b.items = b.items[:len(b.items)-1]
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			r.count(&it.Line)
			l := &it.Line
			if l.Invalid != nil || l.ClaimID == last {
				continue
			}
			if last != "" {
				if err := closed.add(maphash.String(seed, last)); err != nil {
					return err
				}
			}
			if closed.recentlySeen(maphash.String(seed, l.ClaimID)) {
				return errUngrouped
			}
			last = l.ClaimID
			if len(b.items) > r.cfg.BatchSize {
				nb, err := get()
				if err != nil {
					return err
				}
				nb.items = append(nb.items, *it)
				b.items = b.items[:len(b.items)-1]
				if ar != nil {
					// The claim's first line moves on: its text must too,
					// since b's buffer is reused once b is written.
					moved := &nb.items[0].Line
					nb.text = moved.CopyRaw(nb.text)
					moved.Parse()
					last = moved.ClaimID
				}
				if err := send(b); err != nil {
					return err
				}
				b = nb
			}
		}
	})
	if err == nil && last != "" {
		err = closed.add(maphash.String(seed, last))
	}
	if err != nil {
		closed.discard() // the run fails with err; a leftover file is all this could add
		return err
	}
	if repeat, err := closed.repeated(); err != nil || repeat {
		return cmp.Or(err, errUngrouped)
	}
	return send(b)
}

// count adds a line to the reader's own account for the books check.
func (r *run) count(l *claims.Line) {
	l.Seq = r.readLines
	r.readLines++
	if l.BilledOK {
		r.readBilled += l.Billed
	}
}

// buffered is the fallback for input whose claims are scattered: it holds
// every line in memory, prices each claim's lines together, and writes in
// input order.
func (r *run) buffered(ctx context.Context, w ResultWriter) error {
	start := time.Now()
	var items []claims.Item
	err := r.inputs.each(ctx, func(lr LineReader) error {
		for {
			items = append(items, claims.Item{})
			l := &items[len(items)-1].Line
			if err := lr.Read(l); err != nil {
				items = items[:len(items)-1]
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			r.count(l)
		}
	})
	if err != nil {
		return err
	}
	r.readDur = time.Since(start)

	// Group the valid lines by claim, keeping input order inside a claim.
	var order []int32
	for i := range items {
		if items[i].Line.Invalid == nil {
			order = append(order, int32(i))
		} else {
			items[i].Result = claims.Result{Code: claims.InvalidRow, Message: items[i].Line.Invalid.Error()}
		}
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		return cmpString(items[a].Line.ClaimID, items[b].Line.ClaimID)
	})
	var groups [][]int32
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && items[order[j]].Line.ClaimID == items[order[i]].Line.ClaimID {
			j++
		}
		groups = append(groups, order[i:j])
		i = j
	}

	t := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan []int32)
	g.Go(func() error {
		defer close(next)
		for _, grp := range groups {
			select {
			case <-gctx.Done():
				return gctx.Err()
			case next <- grp:
			}
		}
		return nil
	})
	for i := 0; i < r.cfg.Workers; i++ {
		g.Go(func() error {
			p := r.cfg.Engine.NewPricer()
			var scratch []claims.Item
			for grp := range next {
				scratch = scratch[:0]
				for _, idx := range grp {
					scratch = append(scratch, items[idx])
				}
				p.PriceClaim(scratch)
				for k, idx := range grp {
					items[idx].Result = scratch[k].Result
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r.priceDur = time.Since(t)
	for i := 0; i < len(items); i += r.cfg.BatchSize {
		if err := r.write(ctx, w, items[i:min(i+r.cfg.BatchSize, len(items))]); err != nil {
			return err
		}
	}
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// priceBatch prices a batch claim by claim (a run of lines with one
// claim_id, with any invalid rows among them), handing each claim to priced
// once it is priced. starts is scratch space, returned for reuse.
func priceBatch(p *rates.Pricer, items []claims.Item, starts []int, priced func([]claims.Item)) []int {
	starts = starts[:0]
	cur := ""
	for i := range items {
		l := &items[i].Line
		if l.Invalid != nil {
			continue
		}
		if cur != "" && l.ClaimID != cur {
			starts = append(starts, i)
		}
		cur = l.ClaimID
	}
	// Claim k spans starts[k-1] (0 for the first) to starts[k]; pricing a
	// claim prefetches the rates of the claim two ahead (see Pricer.Prefetch).
	starts = append(starts, len(items))
	claim := func(k int) []claims.Item {
		if k >= len(starts) {
			return nil
		}
		from := 0
		if k > 0 {
			from = starts[k-1]
		}
		return items[from:starts[k]]
	}
	p.Prefetch(claim(0))
	p.Prefetch(claim(1))
	for k := range starts {
		p.Prefetch(claim(k + 2))
		c := claim(k)
		p.PriceClaim(c)
		priced(c)
	}
	return starts
}

// writeBatch writes a priced batch, using the rows and tally the worker
// prepared.
func (r *run) writeBatch(ctx context.Context, w ResultWriter, b *batch) error {
	if !b.encoded {
		return r.write(ctx, w, b.items)
	}
	t := time.Now()
	if err := w.(preEncoder).WriteEncoded(ctx, b.enc); err != nil {
		return fmt.Errorf("write outputs: %w", err)
	}
	b.encoded = false
	r.tally.merge(b.tally)
	r.writeDur += time.Since(t)
	r.progress()
	return nil
}

func (r *run) write(ctx context.Context, w ResultWriter, items []claims.Item) error {
	t := time.Now()
	if err := w.Write(ctx, items); err != nil {
		return fmt.Errorf("write outputs: %w", err)
	}
	for i := range items {
		r.tally.add(&items[i])
	}
	r.writeDur += time.Since(t)
	r.progress()
	return nil
}

// progress reports how far the run has got, when it is asked to.
func (r *run) progress() {
	if r.cfg.Progress == nil {
		return
	}
	p := Progress{Lines: r.tally.counts.InputLines, Fraction: -1}
	if in, ok := r.inputs.(*inputSet); ok {
		p.Fraction = in.fraction()
	}
	r.cfg.Progress(p)
}

func (r *run) addPriceTime(d time.Duration) {
	r.mu.Lock()
	r.priceDur += d
	r.mu.Unlock()
}

// scheduleIssueColumns are the columns of schedule_issues.csv.
var scheduleIssueColumns = []string{"entity", "id", "source_file", "source_row", "field", "action", "message"}

func writeScheduleIssues(st *staging, issues []contracts.Issue) error {
	f, err := st.create(ScheduleIssuesFile)
	if err != nil {
		return err
	}
	return WriteScheduleIssues(f, issues)
}
