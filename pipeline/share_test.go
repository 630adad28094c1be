package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/rates"
)

// TestShareMergeMatchesRun tallies the sample's priced items in shares of
// several sizes, sends each share through JSON, merges them in reverse
// order and checks the result is Run's summary.
func TestShareMergeMatchesRun(t *testing.T) {
	eng := sampleEngine(t, rates.Options{})
	want, err := Run(context.Background(), Config{Engine: eng, Claims: []string{sampleClaims}, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	items := priceSample(t, eng)
	for _, size := range []int{1, 7, len(items)} {
		var shares []Share
		for i := 0; i < len(items); i += size {
			tl := NewTally()
			tl.Add(items[i:min(i+size, len(items))])
			b, err := json.Marshal(tl.Share())
			if err != nil {
				t.Fatal(err)
			}
			var s Share
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			shares = append(shares, s)
		}
		var total Share
		for i := len(shares) - 1; i >= 0; i-- {
			total.Merge(shares[i])
		}
		var got Summary
		if err := total.Fill(&got, want.Books.ReadLines, want.Books.ReadBilled); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !reflect.DeepEqual(got.Counts, want.Counts) || !reflect.DeepEqual(got.Totals, want.Totals) ||
			!reflect.DeepEqual(got.ByContract, want.ByContract) || !reflect.DeepEqual(got.ByCode, want.ByCode) ||
			got.Books != want.Books {
			t.Errorf("size %d: merged shares give\n%+v\nwant\n%+v", size, got, *want)
		}
	}

	// One line short: the books do not balance and say so.
	tl := NewTally()
	tl.Add(items[1:])
	var got Summary
	var be *BooksError
	if err := tl.Share().Fill(&got, want.Books.ReadLines, want.Books.ReadBilled); !errors.As(err, &be) || got.Books.Balanced {
		t.Errorf("a share missing a line: err %v, balanced %v; want a *BooksError, not balanced", err, got.Books.Balanced)
	}
}

// priceSample prices the sample claims claim by claim (they are grouped).
func priceSample(t *testing.T, eng *rates.Engine) []claims.Item {
	t.Helper()
	f, err := os.Open(sampleClaims)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := claimcsv.NewReader(f, sampleClaims, nil)
	if err != nil {
		t.Fatal(err)
	}
	var items []claims.Item
	for {
		var it claims.Item
		if err := rd.Read(&it.Line); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	p := eng.NewPricer()
	priceBatch(p, items, nil, func([]claims.Item) {})
	return items
}
