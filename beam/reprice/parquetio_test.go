package reprice

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xitongsys/parquet-go-source/buffer"
	"github.com/xitongsys/parquet-go/reader"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/bundle"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/synth"
)

// BenchmarkParquetRead compares, on one typed claim file, the project's
// Parquet reader (what readFn runs inside its DoFn) with the
// xitongsys/parquet-go read that Beam's parquetio.Read does for each file:
// the whole file decoded at once into structs. The xitongsys side stops at
// its own structs (read with the file's schema); turning them into claim
// lines, with file and row, would come on top.
//
//	go test -run '^$' -bench ParquetRead -benchtime 3x ./reprice/
func BenchmarkParquetRead(b *testing.B) {
	const lines = 200_000
	ctx := context.Background()
	dir := b.TempDir()
	s := synth.Schedule(synth.ScheduleOptions{Seed: 19, Contracts: 40, Rates: 6000})
	if err := bundle.Write(ctx, filepath.Join(dir, "contracts"), s); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := synth.WriteParquet(ctx, &buf, synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 19, Lines: lines})); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	if err := os.WriteFile(filepath.Join(dir, "claims.parquet"), data, 0o644); err != nil {
		b.Fatal(err)
	}

	b.Run("claimparquet", func(b *testing.B) {
		for b.Loop() {
			rd, err := claimparquet.NewReader(ctx, bytes.NewReader(data), "claims.parquet", nil)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			var l claims.Line
			for {
				l = claims.Line{}
				if err := rd.Read(&l); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					b.Fatal(err)
				}
				n++
			}
			rd.Close()
			if n != lines {
				b.Fatalf("%d lines", n)
			}
		}
		b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("xitongsys", func(b *testing.B) {
		for b.Loop() {
			pr, err := reader.NewParquetReader(buffer.NewBufferFileFromBytes(data), nil, 4)
			if err != nil {
				b.Fatal(err)
			}
			rows, err := pr.ReadByNumber(int(pr.GetNumRows()))
			if err != nil {
				b.Fatal(err)
			}
			pr.ReadStop()
			if len(rows) != lines {
				b.Fatalf("%d rows", len(rows))
			}
		}
		b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
