package claimcsv

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
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

// TestScannerRecordsStayIntact keeps every record the scanner returns and
// checks them all at the end against encoding/csv: reading later records
// (over many arena blocks, with records larger than a block, quoted ones
// and blank lines) must not change the text of earlier ones.
func TestScannerRecordsStayIntact(t *testing.T) {
	var b bytes.Buffer
	for i := 0; i < 20000; i++ {
		switch {
		case i%997 == 0:
			fmt.Fprintf(&b, "%d,%s,x\n", i, strings.Repeat("long", arenaSize/3))
		case i%13 == 0:
			fmt.Fprintf(&b, "%d,\"quoted, \"\"%d\"\"\",y\n\n", i, i)
		default:
			fmt.Fprintf(&b, "%d,plain%d,z\r\n", i, i*7)
		}
	}
	want, err := csv.NewReader(bytes.NewReader(b.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sc := newScanner(bytes.NewReader(b.Bytes()))
	var got [][]string
	for {
		rec, err := sc.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, slices.Clone(rec)) // the strings, not copies of their bytes
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("record %d changed: %.60q, want %.60q", i, got[i], want[i])
		}
	}
}
