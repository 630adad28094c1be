package claimparquet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimparquet"
)

// FuzzReader feeds arbitrary bytes to the reader: it must return lines or
// an error, never panic.
func FuzzReader(f *testing.F) {
	rows := [][claims.NumFields]string{
		{"C1", "1", "V001", "M1", "1234567890", "99213", "26", "", "", "11", "2024-05-15", "1", "100.00", ""},
		{"C1", "2", "V001", "", "", "99214", "", "", "", "", "", "", "", "PA"},
	}
	valid := buildParquet(f, canonicalCols(f, rows), 1)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:len(valid)-9])
	f.Add(buildParquet(f, textCols(rows), 0))
	f.Add([]byte("PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := readLines(t, data, "fuzz.parquet", nil)
		if err == nil {
			for i := range lines {
				if lines[i].Source.Row != int64(i+1) {
					t.Fatalf("line %d has row %d", i, lines[i].Source.Row)
				}
			}
		}
		// The record-reader path, which NewReader no longer takes for
		// these files, must not panic either, and where both paths read
		// the file they must agree.
		ref, refErr := readArrowLines(data)
		if err == nil && refErr == nil && !reflect.DeepEqual(lines, ref) {
			t.Fatalf("the fast path read %d lines, the record reader %d, not the same", len(lines), len(ref))
		}
		// ReadArena, as the pipeline reads, must read what Read reads.
		arena, arenaErr := readArenaLines(data)
		if (arenaErr == nil) != (err == nil) || err == nil && !reflect.DeepEqual(lines, arena) {
			t.Fatalf("ReadArena read %d lines (error %v), Read %d (error %v)", len(arena), arenaErr, len(lines), err)
		}
	})
}

// readArenaLines reads every line of a Parquet file with ReadArena, a new
// arena for each line so that every line can be kept.
func readArenaLines(data []byte) ([]claims.Line, error) {
	rd, err := claimparquet.NewReader(context.Background(), bytes.NewReader(data), "fuzz.parquet", nil)
	if err != nil {
		return nil, err
	}
	var out []claims.Line
	for {
		var l claims.Line
		if _, err := rd.ReadArena(&l, nil); errors.Is(err, io.EOF) {
			return out, rd.Close()
		} else if err != nil {
			rd.Close()
			return out, err
		}
		out = append(out, l)
	}
}

// readArrowLines reads every line of a Parquet file with the record-reader
// path.
func readArrowLines(data []byte) ([]claims.Line, error) {
	rd, err := claimparquet.NewArrowReader(context.Background(), bytes.NewReader(data), "fuzz.parquet", nil)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var out []claims.Line
	for {
		var l claims.Line
		if err := rd.Read(&l); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, l)
	}
}
