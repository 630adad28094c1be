package adjust

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListRunsFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	start := time.Date(2024, 7, 5, 10, 15, 0, 0, time.UTC)
	for i, id := range []string{"r1", "r2", "r1", "r3"} {
		rec := RunRecord{RunID: id, StartedAt: start.Add(time.Duration(i) * time.Minute), OutputLocation: "/out/" + id}
		rec.Counts.InputLines = int64(i)
		if err := RecordRunFile(ctx, path, rec); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"run_id":"r4","start`); err != nil { // a write torn by a crash
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := ListRunsFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.RunID)
	}
	// r1 was recorded again after r2: its last record counts, where it is.
	if strings.Join(got, " ") != "r2 r1 r3" || recs[1].Counts.InputLines != 2 {
		t.Errorf("runs %v (r1 input lines %d), want r2 r1 r3 with r1's second record", got, recs[1].Counts.InputLines)
	}
	var buf bytes.Buffer
	if err := WriteRunList(&buf, recs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[2], "r1  ") || !strings.Contains(lines[2], "2024-07-05T10:17:00Z") || !strings.HasSuffix(lines[2], "/out/r1") {
		t.Errorf("run list:\n%s", buf.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"run_id\":\"a\"}\nnot json\n{\"run_id\":\"b\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A line that is not a record (a torn write) is left out; the records
	// around it stay usable.
	if recs, err := ListRunsFile(ctx, bad); err != nil || len(recs) != 2 {
		t.Errorf("a bad line in the middle: %d runs, %v; want the 2 around it", len(recs), err)
	}
}
