package pipeline

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/contracts"
)

// LineReader reads the claim lines of one input. Read fills l and returns
// io.EOF after the last line. A record that cannot be parsed comes back as
// a line with Invalid set; an error means the input itself failed.
type LineReader interface {
	Read(l *claims.Line) error
}

// ArenaReader is a LineReader that can put a line's text in a buffer the
// caller owns, instead of allocating it: ReadArena reads like Read but
// appends the line's text to arena and returns the extended buffer, and
// l's strings may point into it (or into the array it outgrew). They are
// valid only while the caller leaves that buffer alone; the streaming pass
// reuses a batch's buffer once the batch is written, which takes the
// largest allocation per line out of a run.
type ArenaReader interface {
	LineReader
	ReadArena(l *claims.Line, arena []byte) ([]byte, error)
}

// ResultWriter writes priced lines and exceptions. Write is called from one
// goroutine with items in input order; Close flushes (but does not close
// the files underneath) and its error must be checked.
type ResultWriter interface {
	Write(ctx context.Context, items []claims.Item) error
	Close() error
}

var (
	_ ArenaReader  = (*claimcsv.Reader)(nil)
	_ ResultWriter = (*claimcsv.Writer)(nil)
	_ ArenaReader  = (*claimparquet.Reader)(nil)
	_ ArenaReader  = (*countingReader)(nil)
	_ ResultWriter = (*claimparquet.Writer)(nil)
	_ ResultWriter = (*claimparquet.FileWriter)(nil)
)

// UsageError is a run configuration that cannot work (exit status 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

type outputFormat struct {
	name, ext string
	newWriter func(priced, exceptions io.Writer) (ResultWriter, error)
}

func lookupFormat(name string) (outputFormat, error) {
	switch strings.ToLower(name) {
	case "", "csv":
		return outputFormat{name: "csv", ext: "csv", newWriter: func(p, e io.Writer) (ResultWriter, error) {
			return claimcsv.NewWriter(p, e)
		}}, nil
	case "parquet":
		return outputFormat{name: "parquet", ext: "parquet", newWriter: func(p, e io.Writer) (ResultWriter, error) {
			return claimparquet.NewWriter(p, e)
		}}, nil
	case "arrow":
		return outputFormat{name: "arrow", ext: "arrows", newWriter: func(p, e io.Writer) (ResultWriter, error) {
			return claimparquet.NewArrowWriter(p, e)
		}}, nil
	}
	return outputFormat{}, &UsageError{Err: fmt.Errorf("unknown output format %q (use csv, parquet or arrow)", name)}
}

// input is one claim file, re-readable so that a run can take a second pass.
type input struct {
	name    string // as given, reported in source_file
	path    string // where to read it (a spool file for standard input)
	spool   bool
	parquet bool // read as Parquet (by its name, or its content on stdin)
	// For progress: weight is the file's size; progress counts what has
	// been read of units, its bytes (CSV) or rows (Parquet).
	weight          int64
	progress, units atomic.Int64
	hash            string
	size            int64
	lines           int64
}

type inputSet struct {
	inputs  []*input
	mapping map[string]string
	// cur is the index of the input being read, for progress.
	cur atomic.Int64
}

// fraction is the share of the inputs read so far, weighing each input by
// its size: a CSV file by the bytes read, a Parquet file by the rows read
// of those its footer counts. It may be called from any goroutine.
func (s *inputSet) fraction() float64 {
	var total, done float64
	cur := int(s.cur.Load())
	for i, in := range s.inputs {
		w := float64(max(in.weight, 1))
		total += w
		switch {
		case i < cur:
			done += w
		case i == cur:
			if u := in.units.Load(); u > 0 {
				done += w * min(1, float64(in.progress.Load())/float64(u))
			}
		}
	}
	if total == 0 {
		return -1
	}
	return done / total
}

// checkInputs checks every claim file up front, so that a missing file, a
// folder, or a file whose content is not what its name says fails the run
// before any work.
func checkInputs(names []string) error {
	if len(names) == 0 {
		return &UsageError{Err: errors.New("no claim files given")}
	}
	for _, n := range names {
		if n == "-" {
			continue
		}
		if ext := strings.ToLower(filepath.Ext(n)); ext != ".csv" && !isParquet(n) {
			return &UsageError{Err: fmt.Errorf("claim file %s: unknown extension %q (use .csv, .parquet or .pq, or - for standard input)", n, ext)}
		}
		fi, err := os.Stat(n)
		if err != nil {
			return &UsageError{Err: fmt.Errorf("claim file: %w", err)}
		}
		if fi.IsDir() {
			return &UsageError{Err: fmt.Errorf("claim file %s is a folder", n)}
		}
		if err := checkContent(n, isParquet(n)); err != nil {
			return err
		}
	}
	return nil
}

// parquetMagic starts and ends every Parquet file.
const parquetMagic = "PAR1"

// FileTypeError is a claim file whose content is not the format its name
// says (a Parquet file named .csv, a CSV file named .parquet). Like any
// unreadable input it fails the run (exit status 1), before any work.
type FileTypeError struct {
	File   string
	Reason string
}

func (e *FileTypeError) Error() string { return "claim file " + e.File + " " + e.Reason }

// checkContent compares what a claim file holds with what its name says:
// a Parquet file begins with PAR1, and a CSV file does not.
func checkContent(name string, wantParquet bool) error {
	f, err := os.Open(name)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("claim file: %w", err)}
	}
	defer f.Close()
	var head [len(parquetMagic)]byte
	n, _ := io.ReadFull(f, head[:])
	startsParquet := n == len(head) && string(head[:]) == parquetMagic
	switch {
	case wantParquet && n == 0:
		return &FileTypeError{File: name, Reason: "is empty, not a Parquet file"}
	case wantParquet && !startsParquet:
		return &FileTypeError{File: name, Reason: fmt.Sprintf("is not a Parquet file (it does not start with %q): %s; a CSV file must be named .csv", parquetMagic, describeStart(head[:n]))}
	case !wantParquet && startsParquet:
		return &FileTypeError{File: name, Reason: fmt.Sprintf("is a Parquet file (it starts with %q), not CSV: name it .parquet", parquetMagic)}
	}
	return nil
}

// describeStart says what the first bytes of a file look like, for
// messages.
func describeStart(b []byte) string {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\r' && c != '\n' || c == 0x7f {
			return "its first bytes are binary"
		}
	}
	return "it begins like text (CSV?)"
}

// openInputs lists the claim files and spools standard input into a file
// in spoolDir (the run's staging folder), so that it can be read twice. A
// standard input that holds Parquet (PAR1 magic) is read as Parquet.
func openInputs(ctx context.Context, names []string, stdin io.Reader, mapping map[string]string, spoolDir string) (*inputSet, error) {
	s := &inputSet{mapping: mapping}
	for i, n := range names {
		in := &input{name: n, path: n, parquet: isParquet(n)}
		if n == "-" {
			if stdin == nil {
				stdin = os.Stdin
			}
			var err error
			if in.path, in.parquet, err = spool(ctx, stdin, filepath.Join(spoolDir, fmt.Sprintf("stdin-%d", i))); err != nil {
				s.Close()
				return nil, err
			}
			in.spool = true
		}
		if fi, err := os.Stat(in.path); err == nil {
			in.weight = fi.Size()
		}
		s.inputs = append(s.inputs, in)
	}
	return s, nil
}

// spool copies r to a new file at path and reports whether it holds
// Parquet (its first bytes are the Parquet magic).
func spool(ctx context.Context, r io.Reader, path string) (string, bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("spool standard input: %w", err)
	}
	br := bufio.NewReader(&ctxReader{ctx: ctx, r: r})
	head, _ := br.Peek(len(parquetMagic)) // shorter at the end of input: not Parquet
	isParquet := string(head) == parquetMagic
	_, err = io.Copy(f, br)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", false, fmt.Errorf("read standard input: %w", err)
	}
	return path, isParquet, nil
}

// rewind forgets what a previous pass counted.
func (s *inputSet) rewind() {
	for _, in := range s.inputs {
		in.lines, in.hash, in.size = 0, "", 0
		in.progress.Store(0)
	}
	s.cur.Store(0)
}

// each opens the inputs in order and hands each one's reader to fn,
// hashing the bytes as they are read.
func (s *inputSet) each(ctx context.Context, fn func(LineReader) error) error {
	for i, in := range s.inputs {
		s.cur.Store(int64(i))
		if err := s.readOne(ctx, in, fn); err != nil {
			return err
		}
	}
	s.cur.Store(int64(len(s.inputs)))
	return nil
}

// isParquet reports whether a claim file is read as Parquet: by its
// extension, .parquet or .pq in any case.
func isParquet(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".parquet", ".pq":
		return true
	}
	return false
}

func (s *inputSet) readOne(ctx context.Context, in *input, fn func(LineReader) error) error {
	if in.parquet {
		return s.readParquet(ctx, in, fn)
	}
	f, err := os.Open(in.path)
	if err != nil {
		return fmt.Errorf("claim file: %w", err)
	}
	defer f.Close()
	h := &hashingReader{r: f, h: sha256.New(), progress: &in.progress}
	if fi, err := f.Stat(); err == nil {
		in.units.Store(fi.Size())
	}
	cr, err := claimcsv.NewReader(&ctxReader{ctx: ctx, r: h}, in.name, s.mapping)
	if err != nil {
		return err
	}
	counted := newCountingReader(cr, &in.lines)
	if err := fn(counted); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, h); err != nil {
		return fmt.Errorf("%s: %w", in.name, err)
	}
	in.hash, in.size = hex.EncodeToString(h.h.Sum(nil)), h.n
	return nil
}

// readParquet reads one Parquet claim file. Parquet is read by offset (the
// footer first), so the input checksum cannot be taken on the way like the
// CSV path does: a goroutine hashes the same open file sequentially with
// ReadAt while the reader decodes it, and the result is waited for before
// returning on every path.
func (s *inputSet) readParquet(ctx context.Context, in *input, fn func(LineReader) error) (err error) {
	f, err := os.Open(in.path)
	if err != nil {
		return fmt.Errorf("claim file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("claim file %s: %w", in.name, cerr)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("claim file %s: %w", in.name, err)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type hashed struct {
		sum []byte
		n   int64
		err error
	}
	done := make(chan hashed, 1)
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, &ctxReader{ctx: hctx, r: io.NewSectionReader(f, 0, fi.Size())})
		done <- hashed{sum: h.Sum(nil), n: n, err: err}
	}()
	abort := func(err error) error {
		cancel()
		<-done
		return err
	}
	pr, err := claimparquet.NewReader(ctx, f, in.name, s.mapping)
	if err != nil {
		return abort(err)
	}
	in.units.Store(pr.NumRows())
	counted := newCountingReader(pr, &in.lines)
	counted.progress = &in.progress
	ferr := fn(counted)
	if cerr := pr.Close(); ferr == nil {
		ferr = cerr
	}
	if ferr != nil {
		return abort(ferr)
	}
	h := <-done
	if h.err != nil {
		return fmt.Errorf("%s: %w", in.name, h.err)
	}
	in.hash, in.size = hex.EncodeToString(h.sum), h.n
	return nil
}

func (s *inputSet) summaries() []InputSummary {
	out := make([]InputSummary, len(s.inputs))
	for i, in := range s.inputs {
		out[i] = InputSummary{File: in.name, SHA256: in.hash, Bytes: in.size, Lines: in.lines}
	}
	return out
}

// Close removes spooled standard input.
func (s *inputSet) Close() error {
	for _, in := range s.inputs {
		if in.spool {
			os.Remove(in.path)
		}
	}
	return nil
}

type hashingReader struct {
	r        io.Reader
	h        hash.Hash
	n        int64
	progress *atomic.Int64 // bytes read, for progress
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	r.progress.Store(r.n)
	return n, err
}

// ctxReader stops reading when the run is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

type countingReader struct {
	r  LineReader
	ar ArenaReader // r, when it is one
	n  *int64
	// progress, when set, follows n for other goroutines.
	progress *atomic.Int64
}

func newCountingReader(r LineReader, n *int64) *countingReader {
	ar, _ := r.(ArenaReader)
	return &countingReader{r: r, ar: ar, n: n}
}

func (c *countingReader) Read(l *claims.Line) error {
	err := c.r.Read(l)
	if err == nil {
		c.count()
	}
	return err
}

func (c *countingReader) count() {
	*c.n++
	if c.progress != nil && *c.n%256 == 0 {
		c.progress.Store(*c.n)
	}
}

// ReadArena is the reader's ReadArena, or its Read when it has none.
func (c *countingReader) ReadArena(l *claims.Line, arena []byte) ([]byte, error) {
	if c.ar == nil {
		return arena, c.Read(l)
	}
	arena, err := c.ar.ReadArena(l, arena)
	if err == nil {
		c.count()
	}
	return arena, err
}

// WriteScheduleIssues writes the schedule-issues report as CSV.
func WriteScheduleIssues(w io.Writer, issues []contracts.Issue) error {
	rec := make([][]string, 0, len(issues)+1)
	rec = append(rec, scheduleIssueColumns)
	for _, is := range issues {
		row := ""
		if is.Source.Row > 0 {
			row = strconv.Itoa(is.Source.Row)
		}
		rec = append(rec, []string{is.Entity, is.ID, is.Source.File, row, is.Field, is.Action, is.Message})
	}
	cw := csv.NewWriter(w)
	if err := cw.WriteAll(rec); err != nil {
		return fmt.Errorf("write schedule issues: %w", err)
	}
	return nil
}
