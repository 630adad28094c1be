package adjust

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/repricer/repricer/pipeline"
)

func ledgerRecord(id string) RunRecord {
	t := time.Date(2024, 5, 15, 2, 0, 0, 0, time.UTC)
	return RunRecord{RunID: id, StartedAt: t, FinishedAt: t.Add(time.Minute),
		Inputs:         []pipeline.InputSummary{{File: "claims-" + id + ".csv", SHA256: "ab", Bytes: 10, Lines: 3}},
		Counts:         pipeline.Counts{InputLines: 3, PricedLines: 2, ErrorExceptions: 1},
		OutputLocation: "/out/" + id}
}

func recordLine(t *testing.T, id string) []byte {
	t.Helper()
	b, err := json.Marshal(ledgerRecord(id))
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func runIDs(recs []RunRecord) []string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.RunID)
	}
	return ids
}

// A record cut at any byte (a full disk, a kill) never makes the ledger
// unreadable: the next append completes or rolls back the torn record, and
// every other record stays readable.
func TestLedgerTornRecordAtEveryOffset(t *testing.T) {
	ctx := context.Background()
	a, b := recordLine(t, "run-a"), recordLine(t, "run-b")
	dir := t.TempDir()
	for k := 0; k <= len(b); k++ {
		path := filepath.Join(dir, "ledger.jsonl")
		if err := os.WriteFile(path, append(slices.Clone(a), b[:k]...), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := RecordRunFile(ctx, path, ledgerRecord("run-c")); err != nil {
			t.Fatalf("cut at %d: append: %v", k, err)
		}
		recs, skipped, err := ReadRunsFile(ctx, path)
		if err != nil {
			t.Fatalf("cut at %d: read: %v", k, err)
		}
		want := []string{"run-a", "run-c"}
		if k >= len(b)-1 { // whole record, with or without its newline
			want = []string{"run-a", "run-b", "run-c"}
		}
		if got := runIDs(recs); !slices.Equal(got, want) || len(skipped) != 0 {
			t.Fatalf("cut at %d: records %v, skipped %v; want %v and none skipped", k, got, skipped, want)
		}
		for _, id := range want {
			if _, err := GetRunFile(ctx, path, id); err != nil {
				t.Fatalf("cut at %d: GetRunFile(%s): %v", k, id, err)
			}
		}
	}
}

// A ledger damaged by an earlier version (a torn record with the next
// record glued onto it, or a torn record in the middle) is still read: the
// torn part is skipped with a warning naming its line.
func TestLedgerReadsAroundTornRecords(t *testing.T) {
	ctx := context.Background()
	a, b, c := recordLine(t, "run-a"), recordLine(t, "run-b"), recordLine(t, "run-c")
	dir := t.TempDir()
	for k := 1; k < len(b)-1; k++ {
		for _, glued := range []bool{true, false} {
			var buf bytes.Buffer
			buf.Write(a)
			buf.Write(b[:k])
			if !glued {
				buf.WriteByte('\n')
			}
			buf.Write(c)
			path := filepath.Join(dir, "ledger.jsonl")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			recs, skipped, err := ReadRunsFile(ctx, path)
			if err != nil {
				t.Fatalf("cut at %d (glued %v): %v", k, glued, err)
			}
			if got := runIDs(recs); !slices.Equal(got, []string{"run-a", "run-c"}) {
				t.Fatalf("cut at %d (glued %v): records %v, want run-a and run-c", k, glued, got)
			}
			if len(skipped) != 1 || skipped[0].Line != 2 {
				t.Fatalf("cut at %d (glued %v): skipped %v, want one warning for line 2", k, glued, skipped)
			}
			if _, err := GetRunFile(ctx, path, "run-c"); err != nil {
				t.Fatalf("cut at %d (glued %v): %v", k, glued, err)
			}
		}
	}
}

// A write that fails part-way (a full disk; here a file size limit, in a
// child process so the limit binds nothing else) is rolled back: the
// ledger holds exactly what it held before, and the next append works.
func TestLedgerFailedAppendIsRolledBack(t *testing.T) {
	if path := os.Getenv("LEDGER_TEST_FSIZE_CHILD"); path != "" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// Room for a few bytes of the next record, not for all of it.
		lim := uint64(fi.Size()) + 20
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
			t.Fatal(err)
		}
		if err := RecordRunFile(context.Background(), path, ledgerRecord("run-big")); err == nil {
			t.Fatal("append beyond the size limit succeeded")
		}
		return
	}
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	before := recordLine(t, "run-a")
	if err := os.WriteFile(path, before, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLedgerFailedAppendIsRolledBack$")
	cmd.Env = append(os.Environ(), "LEDGER_TEST_FSIZE_CHILD="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, before) {
		t.Fatalf("after a failed append the ledger holds %q, want %q", after, before)
	}
	if err := RecordRunFile(context.Background(), path, ledgerRecord("run-b")); err != nil {
		t.Fatal(err)
	}
	if _, err := GetRunFile(context.Background(), path, "run-b"); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultLedgerFile(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/h"}, "/s/repricer/ledger.jsonl"},
		{map[string]string{"XDG_STATE_HOME": "rel", "HOME": "/h"}, "/h/.local/state/repricer/ledger.jsonl"},
		{map[string]string{"HOME": "/h"}, "/h/.local/state/repricer/ledger.jsonl"},
		{map[string]string{}, ""},
	}
	for _, tt := range tests {
		if got := DefaultLedgerFile(env(tt.env)); got != tt.want {
			t.Errorf("DefaultLedgerFile(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}
