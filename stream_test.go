package repricer_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/repricer/repricer"
	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/pipeline"
)

// TestPriceCSVMatchesGolden streams the sample claims through PriceCSV, in
// memory, and gets byte for byte the priced file of the golden file run.
func TestPriceCSVMatchesGolden(t *testing.T) {
	in, err := os.ReadFile("testdata/sample/claims.csv")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/golden/sample/priced.csv")
	if err != nil {
		t.Fatal(err)
	}
	var priced, exceptions bytes.Buffer
	sum, err := sample().PriceCSV(context.Background(), bytes.NewReader(in), &priced, &exceptions, repricer.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(priced.Bytes(), want) {
		t.Error("streamed priced rows differ from testdata/golden/sample/priced.csv")
	}
	if !sum.Books.Balanced || sum.Counts.InputLines != 401 {
		t.Errorf("summary %+v", sum.Counts)
	}
}

// TestPriceCSVScatteredClaims: scattered claims fail without Buffered and
// price exactly like the grouped input with it.
func TestPriceCSVScatteredClaims(t *testing.T) {
	in, err := os.ReadFile("testdata/sample/claims.csv")
	if err != nil {
		t.Fatal(err)
	}
	// Every line keeps its "\n"; the last element is "". The claim with a
	// repeated line number is left out: which of its lines is the duplicate
	// depends on input order, so it prices differently once shuffled.
	var lines []string
	for _, l := range strings.SplitAfter(string(in), "\n") {
		if !strings.HasPrefix(l, "CLM001053,") {
			lines = append(lines, l)
		}
	}
	in = []byte(strings.Join(lines, ""))
	body := lines[1 : len(lines)-1]
	rand.New(rand.NewPCG(3, 3)).Shuffle(len(body), func(i, j int) { body[i], body[j] = body[j], body[i] })
	shuffled := lines[0] + strings.Join(body, "")
	eng := sample()
	var priced, exceptions bytes.Buffer
	_, err = eng.PriceCSV(context.Background(), strings.NewReader(shuffled), &priced, &exceptions, repricer.StreamOptions{})
	if !errors.Is(err, pipeline.ErrUngrouped) {
		t.Fatalf("err = %v, want ErrUngrouped", err)
	}
	priced.Reset()
	exceptions.Reset()
	sum, err := eng.PriceCSV(context.Background(), strings.NewReader(shuffled), &priced, &exceptions, repricer.StreamOptions{Buffered: true})
	if err != nil {
		t.Fatal(err)
	}
	var grouped, gexc bytes.Buffer
	want, err := eng.PriceCSV(context.Background(), bytes.NewReader(in), &grouped, &gexc, repricer.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Totals != want.Totals || sum.Counts != want.Counts {
		t.Errorf("scattered totals %+v, grouped %+v", sum.Totals, want.Totals)
	}
}

// TestUnknownMapping: a mapping whose canonical name is not one fails the
// call instead of leaving the column blank.
func TestUnknownMapping(t *testing.T) {
	in := "claim_id,line_number,vendor_id,cpt_code,service_date,charge\nA1,1,V001,27450,2024-05-15,1000.00\n"
	var priced, exceptions bytes.Buffer
	_, err := sample().PriceCSV(context.Background(), strings.NewReader(in), &priced, &exceptions,
		repricer.StreamOptions{Mapping: map[string]string{"billed": "charge"}})
	var me *claims.MappingError
	if !errors.As(err, &me) || me.Name != "billed" {
		t.Errorf("error %v, want a *claims.MappingError for billed", err)
	}
}
