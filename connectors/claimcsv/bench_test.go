package claimcsv

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/repricer/repricer/claims"
)

func benchInput(n int) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "CLM%07d,%d,V%04d,M%07d,1234567890,%05d,26,ORTHOPEDIC SURGERY,OFFICE,11,2024-05-%02d,1,%d.%02d,\n",
			i/3, i%3+1, i%2000, i*7%9999999, 10000+i%5000, i%28+1, 100+i%900, i%100)
	}
	return b.Bytes()
}

// BenchmarkRead reads and parses claim lines with the reader's scanner (with
// Read, and with ReadArena into a buffer reused every 4096 lines, as the
// pipeline does) and, as the baseline, with encoding/csv plus the same parsing.
func BenchmarkRead(b *testing.B) {
	const n = 100_000
	data := benchInput(n)
	for _, arena := range []bool{false, true} {
		name := "scanner"
		if arena {
			name = "scanner-arena"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for range b.N {
				r, err := NewReader(bytes.NewReader(data), "bench.csv", nil)
				if err != nil {
					b.Fatal(err)
				}
				var l claims.Line
				var buf []byte
				for i := 0; ; i++ {
					if !arena {
						err = r.Read(&l)
					} else {
						if i%4096 == 0 {
							buf = buf[:0]
						}
						buf, err = r.ReadArena(&l, buf)
					}
					if errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
	b.Run("encoding-csv-baseline", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for range b.N {
			cr := csv.NewReader(bytes.NewReader(data))
			cr.ReuseRecord = true
			if _, err := cr.Read(); err != nil {
				b.Fatal(err)
			}
			var l claims.Line
			for {
				rec, err := cr.Read()
				if errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					b.Fatal(err)
				}
				for f := range l.Raw {
					l.Raw[f] = string([]byte(rec[f]))
				}
				l.Parse()
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}
