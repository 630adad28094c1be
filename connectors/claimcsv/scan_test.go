package claimcsv

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"testing"
)

// FuzzScannerMatchesEncodingCSV checks the fast scanner against
// encoding/csv: up to the first record encoding/csv rejects, both must read
// the same records; at that record the scanner must report an error too.
func FuzzScannerMatchesEncodingCSV(f *testing.F) {
	for _, seed := range []string{
		"a,b,c\n1,2,3\n",
		"a,\"b,c\",d\r\n\"x\"\"y\",,\n",
		"a,\"multi\nline\",b\n\n\nlast",
		"a,b\"c,d\n",
		"\"a\"x,b\n",
		"\"open,\n",
		"a,b\r\nc,d\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ref := csv.NewReader(bytes.NewReader(data))
		ref.FieldsPerRecord = -1
		sc := newScanner(bytes.NewReader(data))
		for n := 1; ; n++ {
			want, refErr := ref.Read()
			got, err := sc.read()
			if errors.Is(refErr, io.EOF) {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("record %d: encoding/csv ended, scanner read %q (%v)", n, got, err)
				}
				return
			}
			if refErr != nil {
				if err == nil {
					t.Fatalf("record %d: encoding/csv says %v, scanner read %q", n, refErr, got)
				}
				return // positions after a malformed record may differ
			}
			if err != nil {
				t.Fatalf("record %d: scanner says %v, encoding/csv read %q", n, err, want)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("record %d: scanner %q, encoding/csv %q", n, got, want)
			}
		}
	})
}
