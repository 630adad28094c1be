package claimparquet_test

import (
	"testing"

	"github.com/repricer/repricer/claims"
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
	})
}
