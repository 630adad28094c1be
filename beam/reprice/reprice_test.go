package reprice

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/synth"
)

const (
	sampleContracts = "../../testdata/sample/contracts"
	sampleClaims    = "../../testdata/sample/claims.csv"
)

// repricerBin is `repricer reprice`, built once by TestMain from the main
// module: the reference every Beam run is compared with.
var repricerBin string

func TestMain(m *testing.M) {
	beam.Init()
	dir, err := os.MkdirTemp("", "repricer-beam-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repricerBin = filepath.Join(dir, "repricer")
	build := exec.Command("go", "build", "-o", repricerBin, "./cmd/repricer")
	build.Dir = "../.."
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build repricer:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// reprice runs `repricer reprice` and returns its output folder.
func reprice(t *testing.T, contracts string, files []string, format string, extra ...string) string {
	t.Helper()
	out := t.TempDir()
	args := []string{"reprice", "--contracts", contracts, "--out", out, "--format", format, "--ledger", "none", "--schedule-cache", "off"}
	for _, f := range files {
		args = append(args, "--claims", f)
	}
	cmd := exec.Command(repricerBin, append(args, extra...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("repricer reprice: %v\n%s", err, b)
	}
	return out
}

// runBeam builds the pipeline for cfg and runs it on Prism, in-process.
func runBeam(t *testing.T, cfg Config) (*Job, error) {
	t.Helper()
	job, err := Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = prism.Execute(context.Background(), job.Pipeline)
	if err != nil {
		job.Cleanup(context.Background())
	}
	return job, err
}

// rows reads every row of the files of one kind ("priced" or
// "exceptions") in dir, through encoding/csv or Arrow's Parquet reader
// (whatever the column types, each value as Arrow prints it), and returns
// the header and the rows sorted. Both runs' rows sorted the same way are
// equal exactly when the runs wrote the same rows, field for field.
func rows(t *testing.T, dir, kind, format string) ([]string, [][]string) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, kind+"-*-of-*."+format))
	if single := filepath.Join(dir, kind+"."+format); len(names) == 0 {
		names = []string{single}
	}
	var header []string
	var all [][]string
	for _, n := range names {
		var h []string
		var recs [][]string
		if format == "csv" {
			h, recs = readCSVFile(t, n)
		} else {
			h, recs = readParquetFile(t, n)
		}
		if header != nil && !slices.Equal(header, h) {
			t.Fatalf("%s: header %v, another shard has %v", n, h, header)
		}
		header = h
		all = append(all, recs...)
	}
	slices.SortFunc(all, slices.Compare)
	return header, all
}

func readCSVFile(t *testing.T, name string) ([]string, [][]string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("%s: %v (%d records)", name, err, len(recs))
	}
	return recs[0], recs[1:]
}

func readParquetFile(t *testing.T, name string) ([]string, [][]string) {
	t.Helper()
	pf, err := file.OpenParquetFile(name, false)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer tbl.Release()
	var header []string
	recs := make([][]string, tbl.NumRows())
	for i := range recs {
		recs[i] = make([]string, tbl.NumCols())
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		col := tbl.Column(c)
		header = append(header, col.Name())
		row := 0
		for _, chunk := range col.Data().Chunks() {
			for i := 0; i < chunk.Len(); i++ {
				if chunk.IsValid(i) {
					recs[row][c] = chunk.ValueStr(i)
				} else {
					recs[row][c] = "(null)"
				}
				row++
			}
		}
	}
	return header, recs
}

// summary reads a summary.json.
func summary(t *testing.T, dir string) pipeline.Summary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, pipeline.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var s pipeline.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// sameRun checks that the Beam run in got wrote what `repricer reprice`
// wrote in want: the same priced and exception rows, field for field, the
// same schedule issues, and a summary with the same inputs, reference
// data, counts, totals and books.
func sameRun(t *testing.T, want, got, format string) {
	t.Helper()
	for _, kind := range []string{"priced", "exceptions"} {
		wh, wr := rows(t, want, kind, format)
		gh, gr := rows(t, got, kind, format)
		if !slices.Equal(wh, gh) {
			t.Errorf("%s: header %v, want %v", kind, gh, wh)
		}
		if len(gr) != len(wr) {
			t.Errorf("%s: %d rows, want %d", kind, len(gr), len(wr))
		}
		for i := range min(len(gr), len(wr)) {
			if !slices.Equal(gr[i], wr[i]) {
				t.Errorf("%s: first difference at sorted row %d:\n got %q\nwant %q", kind, i, gr[i], wr[i])
				break
			}
		}
	}
	wi, _ := os.ReadFile(filepath.Join(want, pipeline.ScheduleIssuesFile))
	gi, err := os.ReadFile(filepath.Join(got, pipeline.ScheduleIssuesFile))
	if err != nil || !bytes.Equal(wi, gi) {
		t.Errorf("schedule issues differ (%v)", err)
	}
	ws, gs := summary(t, want), summary(t, got)
	if gs.Settings.Mode != "beam" {
		t.Errorf("summary mode %q, want beam", gs.Settings.Mode)
	}
	ws.Settings.Mode, gs.Settings.Mode = "", ""
	ws.Timings, gs.Timings = pipeline.Timings{}, pipeline.Timings{}
	if !gs.Books.Balanced {
		t.Error("the Beam summary does not report balanced books")
	}
	for _, part := range []struct {
		name      string
		got, want any
	}{
		{"inputs", gs.Inputs, ws.Inputs}, {"reference", gs.Reference, ws.Reference}, {"settings", gs.Settings, ws.Settings},
		{"counts", gs.Counts, ws.Counts}, {"totals", gs.Totals, ws.Totals}, {"by_contract", gs.ByContract, ws.ByContract},
		{"by_code", gs.ByCode, ws.ByCode}, {"books", gs.Books, ws.Books},
	} {
		if !reflect.DeepEqual(part.got, part.want) {
			t.Errorf("summary %s:\n got %+v\nwant %+v", part.name, part.got, part.want)
		}
	}
}

func TestSample(t *testing.T) {
	tests := []struct {
		name, format, sysDefault string
	}{
		{"csv", "csv", ""},
		{"parquet", "parquet", ""},
		{"csv system default", "csv", "Percentage:50"},
	}
	cache := t.TempDir() // compiled by the first run, opened by the others
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			if tc.sysDefault != "" {
				extra = []string{"--system-default-rate", tc.sysDefault}
			}
			want := reprice(t, sampleContracts, []string{sampleClaims}, tc.format, extra...)
			out := t.TempDir()
			if _, err := runBeam(t, Config{Contracts: sampleContracts, Claims: []string{sampleClaims}, Out: out,
				Format: tc.format, SystemDefaultRate: tc.sysDefault, ScheduleCache: cache}); err != nil {
				t.Fatal(err)
			}
			sameRun(t, want, out, tc.format)
		})
	}
}

// TestDuplicatesAcrossFiles gives the sample twice, the copy first: every
// line of the file read second is a DUPLICATE_LINE of the same line in
// the first, whichever worker sees which line first.
func TestDuplicatesAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "z-first", "claims.csv")
	copyFile(t, sampleClaims, first)
	files := []string{first, sampleClaims}
	want := reprice(t, sampleContracts, files, "csv")
	out := t.TempDir()
	if _, err := runBeam(t, Config{Contracts: sampleContracts, Claims: files, Out: out}); err != nil {
		t.Fatal(err)
	}
	sameRun(t, want, out, "csv")
	s := summary(t, out)
	var dups int64
	for _, c := range s.ByCode {
		if c.Code == "DUPLICATE_LINE" {
			dups = c.Lines
		}
	}
	if dups < s.Inputs[1].Lines/2 {
		t.Errorf("%d duplicate lines; want most of the %d lines of the second file", dups, s.Inputs[1].Lines)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBadFileFailsTheRun: one file the reader refuses fails the whole
// pipeline with an error naming it, and nothing is published.
func TestBadFileFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("claim_id,line_number\nC1,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, err := runBeam(t, Config{Contracts: sampleContracts, Claims: []string{sampleClaims, bad}, Out: out})
	if err == nil {
		t.Fatal("the pipeline succeeded over a file without the required columns")
	}
	if !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "vendor_id") {
		t.Errorf("error %q does not name the file and the missing column", err)
	}
	left, _ := filepath.Glob(filepath.Join(out, "*"))
	hidden, _ := filepath.Glob(filepath.Join(out, ".tmp-*", "*"))
	if len(left)+len(hidden) != 0 {
		t.Errorf("a failed run left %v %v", left, hidden)
	}
}

// generated writes a synthetic schedule and n claim lines with bad rows
// (malformed values, duplicate line numbers), spread over several files so
// that most claims have lines in more than one file: the lines are dealt
// round-robin to a CSV, a text-column Parquet and another CSV file; a
// typed Parquet file from the generator with another seed follows.
func generated(t *testing.T, n int64) (contracts string, files []string) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	s := synth.Schedule(synth.ScheduleOptions{Seed: 19, Contracts: 40, Rates: 6000, BadRateShare: 0.05})
	contracts = filepath.Join(dir, "contracts")
	if err := bundle.Write(ctx, contracts, s); err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	if _, err := synth.WriteCSV(ctx, &all, synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 19, Lines: n, BadShare: 0.02})); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(all.String(), "\n"), "\n")
	header, body := lines[0], lines[1:]
	parts := make([][]string, 3)
	for i, l := range body {
		parts[i%3] = append(parts[i%3], l)
	}
	files = []string{filepath.Join(dir, "part-0.csv"), filepath.Join(dir, "part-1.parquet"), filepath.Join(dir, "part-2.csv")}
	for i, f := range files {
		if strings.HasSuffix(f, ".csv") {
			if err := os.WriteFile(f, []byte(header+strings.Join(parts[i], "")), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeTextParquet(t, f, header+strings.Join(parts[i], ""))
	}
	typed := filepath.Join(dir, "typed.parquet")
	tf, err := os.Create(typed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.WriteParquet(ctx, tf, synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 20, Lines: n / 10, BadShare: 0.02})); err != nil {
		t.Fatal(err)
	}
	if err := tf.Close(); err != nil {
		t.Fatal(err)
	}
	return contracts, append(files, typed)
}

// writeTextParquet writes CSV text as a Parquet file of text columns.
func writeTextParquet(t *testing.T, name, text string) {
	t.Helper()
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var fields []arrow.Field
	for _, h := range recs[0] {
		fields = append(fields, arrow.Field{Name: h, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, rec := range recs[1:] {
		for c := range fields {
			v := ""
			if c < len(rec) {
				v = rec[c]
			}
			b.Field(c).(*array.StringBuilder).Append(v)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGenerated prices 120k generated lines in four files, CSV and
// Parquet, with claims split across files, into CSV and into Parquet.
func TestGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("120k lines on Prism")
	}
	contracts, files := generated(t, 120_000)
	cache := t.TempDir() // compiled by the first run, opened by the second
	for _, format := range []string{"csv", "parquet"} {
		t.Run(format, func(t *testing.T) {
			want := reprice(t, contracts, files, format)
			if s := summary(t, want); s.Settings.Mode != "buffered" || s.Counts.InputLines < 100_000 {
				t.Fatalf("want a run over at least 100k lines whose claims are split across files (buffered), got %+v %+v", s.Settings, s.Counts)
			}
			out := t.TempDir()
			if _, err := runBeam(t, Config{Contracts: contracts, Claims: files, Out: out, Format: format, ScheduleCache: cache}); err != nil {
				t.Fatal(err)
			}
			sameRun(t, want, out, format)
		})
	}
}

// TestBuildRefuses: configurations that cannot work are usage errors
// before anything runs, and a password never goes into the job.
func TestBuildRefuses(t *testing.T) {
	txt := filepath.Join(t.TempDir(), "claims.txt")
	if err := os.WriteFile(txt, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := Config{Contracts: sampleContracts, Claims: []string{sampleClaims}, Out: t.TempDir()}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no claims", func(c *Config) { c.Claims = nil }, "no claim files"},
		{"nothing matches", func(c *Config) { c.Claims = []string{"../../testdata/sample/nothing-*.csv"} }, "no file matches"},
		{"unknown extension", func(c *Config) { c.Claims = []string{txt} }, "unknown extension"},
		{"matched twice", func(c *Config) { c.Claims = []string{sampleClaims, sampleClaims} }, "matched twice"},
		{"format", func(c *Config) { c.Format = "arrow" }, "unknown output format"},
		{"no output", func(c *Config) { c.Out = "" }, "no output prefix"},
		{"system default", func(c *Config) { c.SystemDefaultRate = "Fee:1" }, "Fee"},
		{"password in URL", func(c *Config) { c.Contracts = "postgres://u:secret@db/contracts" }, "PGPASSWORD"},
		{"password parameter", func(c *Config) { c.Contracts = "postgres://u@db/contracts?password=secret" }, "PGPASSWORD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := Build(context.Background(), cfg)
			var ue *UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *UsageError saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}
