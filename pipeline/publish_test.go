package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/internal/flock"
	"github.com/repricer/repricer/rates"
	"github.com/repricer/repricer/synth"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// A killed run's staging folder (its flock gone with the process) is
// removed by the next run into the same folder; a live run's (flock held)
// is left alone.
func TestRunSweepsDeadStagingFolders(t *testing.T) {
	out := t.TempDir()
	dead := filepath.Join(out, stagingPrefix+"killed")
	live := filepath.Join(out, stagingPrefix+"live")
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "priced.csv"), []byte("half a run"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	held, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := flock.TryLock(held); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), Config{Engine: sampleEngine(t, rates.Options{}), Claims: []string{sampleClaims}, OutDir: out}); err != nil {
		t.Fatal(err)
	}
	want := []string{stagingPrefix + "live", "exceptions.csv", "priced.csv", ScheduleIssuesFile, SummaryFile}
	slices.Sort(want)
	if got := dirNames(t, out); !slices.Equal(got, want) {
		t.Fatalf("after the run the folder holds %v, want %v", got, want)
	}
	held.Close()
	if removed, err := SweepStaging(out); err != nil || !slices.Equal(removed, []string{stagingPrefix + "live"}) {
		t.Fatalf("sweep after the holder ended: %v, %v", removed, err)
	}
}

// A failed run leaves no staging folder, also when it fails while
// publishing to a downstream pipe that has closed (EPIPE).
func TestBrokenPipeCleansUp(t *testing.T) {
	out := t.TempDir()
	_, err := Run(context.Background(), Config{Engine: sampleEngine(t, rates.Options{}), Claims: []string{sampleClaims},
		OutDir: out, PricedTo: brokenPipe{}})
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("err = %v, want EPIPE", err)
	}
	for _, n := range dirNames(t, out) {
		if strings.HasPrefix(n, stagingPrefix) {
			t.Errorf("a staging folder is left: %s", n)
		}
	}
}

type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// Publishing removes what an earlier run left that this one does not
// write: a CSV run with an adjustment report, then a Parquet run, leaves
// only the Parquet run's files.
func TestPublishRemovesEarlierRunsFiles(t *testing.T) {
	out := t.TempDir()
	e := sampleEngine(t, rates.Options{})
	if _, err := Run(context.Background(), Config{Engine: e, Claims: []string{sampleClaims}, OutDir: out}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"adjustments.csv", "adjustments_by_contract.csv", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(out, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Run(context.Background(), Config{Engine: e, Claims: []string{sampleClaims}, OutDir: out, Format: "parquet",
		Supersedes: []string{"adjustment*"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"exceptions.parquet", "notes.txt", "priced.parquet", ScheduleIssuesFile, SummaryFile}
	if got := dirNames(t, out); !slices.Equal(got, want) {
		t.Fatalf("the folder holds %v, want %v", got, want)
	}
}

// A claim file whose content is not what its name says is refused before
// any work, naming what it really is.
func TestClaimFileContentMustMatchItsName(t *testing.T) {
	dir := t.TempDir()
	pq := writeSynthParquet(t, dir, 50)
	csvBytes, err := os.ReadFile(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	pqBytes, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file, want string
	}{
		{"Parquet named .csv", write("really-parquet.csv", pqBytes), "is a Parquet file"},
		{"CSV named .parquet", write("really-csv.parquet", csvBytes), "is not a Parquet file"},
		{"empty .parquet", write("empty.parquet", nil), "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out")
			_, err := Run(context.Background(), Config{Engine: sampleEngine(t, rates.Options{}), Claims: []string{tt.file}, OutDir: out})
			var fe *FileTypeError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.file) {
				t.Fatalf("err = %v, want a *FileTypeError naming the file and saying %q", err, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("the run created its output folder before checking its inputs")
			}
		})
	}
}

// Parquet bytes on standard input are read as Parquet, pricing exactly
// like the same file.
func TestParquetOnStdin(t *testing.T) {
	dir := t.TempDir()
	_, e := synthSchedule(t)
	pq := writeSynthParquet(t, dir, 2000)
	b, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, fromStdin := filepath.Join(dir, "file"), filepath.Join(dir, "stdin")
	if _, err := Run(context.Background(), Config{Engine: e, Claims: []string{pq}, OutDir: fromFile}); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), Config{Engine: e, Claims: []string{"-"}, Stdin: bytes.NewReader(b), OutDir: fromStdin})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.InputLines != 2000 {
		t.Fatalf("%d lines read from standard input, want 2000", sum.Counts.InputLines)
	}
	a, _ := os.ReadFile(filepath.Join(fromFile, "priced.csv"))
	c, _ := os.ReadFile(filepath.Join(fromStdin, "priced.csv"))
	if len(a) == 0 || !bytes.Equal(a, c) {
		t.Fatal("Parquet from standard input priced differently from the same file")
	}
}

func synthSchedule(t *testing.T) (*contracts.Schedule, *rates.Engine) {
	t.Helper()
	s := synth.Schedule(synth.ScheduleOptions{Seed: 5, Contracts: 20, Rates: 400})
	return s, rates.New(contracts.Validate(s), rates.Options{})
}

// writeSynthParquet writes n generated claim lines over synthSchedule's
// schedule as Parquet.
func writeSynthParquet(t *testing.T, dir string, n int64) string {
	t.Helper()
	s, _ := synthSchedule(t)
	p := filepath.Join(dir, "claims.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.WriteParquet(context.Background(), f, synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 9, Lines: n})); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}
