package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/connectors/postgres/pgtest"
)

func TestAmendLedgerRuns(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	start := time.Date(2024, 9, 20, 10, 0, 0, 0, time.UTC)
	rec := postgres.RunRecord{
		RunID: "20240920T100000Z-abcd1234", StartedAt: start, FinishedAt: start.Add(3 * time.Second),
		Inputs:               json.RawMessage(`{"files":[{"file":"claims.csv","sha256":"00ff"}]}`),
		ReferenceFingerprint: "fp1",
		Counts:               json.RawMessage(`{"input_lines":8}`),
		Totals:               json.RawMessage(`{"totals":{"allowed_amount":"650.00"}}`),
		OutputLocation:       "/data/out/run1",
	}
	if err := postgres.RecordRun(ctx, db, rec); err != nil {
		t.Fatal(err)
	}
	got, err := postgres.GetRun(ctx, db, rec.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got.OutputLocation != rec.OutputLocation || got.ReferenceFingerprint != "fp1" ||
		!got.StartedAt.Equal(rec.StartedAt) || !got.FinishedAt.Equal(rec.FinishedAt) {
		t.Errorf("GetRun = %+v", got)
	}
	var counts map[string]int
	if err := json.Unmarshal(got.Counts, &counts); err != nil || counts["input_lines"] != 8 {
		t.Errorf("counts = %s (%v)", got.Counts, err)
	}
	// Recording again replaces the row.
	rec.OutputLocation = "/data/out/run1b"
	if err := postgres.RecordRun(ctx, db, rec); err != nil {
		t.Fatal(err)
	}
	if got, err := postgres.GetRun(ctx, db, rec.RunID); err != nil || got.OutputLocation != "/data/out/run1b" {
		t.Errorf("after re-record: %+v, %v", got, err)
	}
	if _, err := postgres.GetRun(ctx, db, "nope"); !errors.Is(err, postgres.ErrRunNotFound) {
		t.Errorf("unknown run: %v, want ErrRunNotFound", err)
	}
	if err := postgres.RecordRun(ctx, db, postgres.RunRecord{}); err == nil {
		t.Error("a run without id was recorded")
	}
}
