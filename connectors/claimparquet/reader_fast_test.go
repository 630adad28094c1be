package claimparquet

import (
	"context"
	"math/big"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
)

// NewArrowReader is NewReader reading the file with pqarrow's record
// reader whatever its types: the path of the files the fast path does not
// take, and the reference the fast path must match.
func NewArrowReader(ctx context.Context, f parquet.ReaderAtSeeker, name string, mapping map[string]string) (*Reader, error) {
	return newReader(ctx, f, name, mapping, true)
}

// FastPath reports whether rd reads its file on the fast path.
func (rd *Reader) FastPath() bool { return rd.chunks != nil }

func TestSpreadNulls(t *testing.T) {
	tests := []struct {
		name string
		off  []int32 // the batch so far, then the ends of the run's values
		defs []int16
		want []int32
	}{
		{"no nulls", []int32{0, 2, 5}, []int16{1, 1}, []int32{0, 2, 5}},
		{"all null", []int32{0}, []int16{0, 0, 0}, []int32{0, 0, 0, 0}},
		{"all null after values", []int32{0, 4}, []int16{0, 0}, []int32{0, 4, 4, 4}},
		{"leading nulls", []int32{0, 3, 7}, []int16{0, 0, 1, 1}, []int32{0, 0, 0, 3, 7}},
		{"trailing nulls", []int32{0, 3, 7}, []int16{1, 1, 0, 0}, []int32{0, 3, 7, 7, 7}},
		{"alternating", []int32{0, 1, 2, 3}, []int16{0, 1, 0, 1, 0, 1, 0}, []int32{0, 0, 1, 1, 2, 2, 3, 3}},
		{"after an earlier run", []int32{0, 5, 6, 9}, []int16{1, 0, 1}, []int32{0, 5, 6, 6, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nv := 0
			for _, d := range tt.defs {
				if d == 1 {
					nv++
				}
			}
			start := len(tt.off) - nv
			got, err := spreadNulls(append([]int32(nil), tt.off...), start, tt.defs, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := spreadNulls([]int32{0, 1}, 1, []int16{1, 1}, 1); err == nil {
		t.Error("1 value for 2 non-null levels: no error")
	}
}

// TestAppendBigEndianDecimal checks the int64 shortcut against big.Int
// arithmetic for every length a FIXED_LEN_BYTE_ARRAY decimal may have.
func TestAppendBigEndianDecimal(t *testing.T) {
	patterns := [][]byte{
		{0x00}, {0x01}, {0x7f}, {0x80}, {0xff}, {0xfe},
		{0x00, 0x80}, {0xff, 0x7f}, {0x80, 0x00}, {0x7f, 0xff},
		{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11},
	}
	for n := 1; n <= 16; n++ {
		var cases [][]byte
		for _, p := range patterns {
			// p at the end, sign-extended or zero-filled in front.
			for _, fill := range []byte{0x00, 0xff} {
				b := make([]byte, n)
				for i := range b {
					b[i] = fill
				}
				copy(b[max(n-len(p), 0):], p[max(len(p)-n, 0):])
				cases = append(cases, b)
			}
		}
		for _, b := range cases {
			want := new(big.Int).SetBytes(b)
			if b[0]&0x80 != 0 {
				want.Sub(want, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
			}
			for _, scale := range []int32{0, 2, 4} {
				got := string(appendBigEndianDecimal(nil, b, scale))
				if w := string(appendBigDecimal(nil, new(big.Int).Set(want), scale)); got != w {
					t.Errorf("% x scale %d: %s, want %s", b, scale, got, w)
				}
			}
		}
	}
}
