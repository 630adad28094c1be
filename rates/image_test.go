package rates

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/feeschedule"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/synth"
)

// imageOf writes e as an image and opens it again.
func imageOf(t testing.TB, e *Engine, opts Options) (*Engine, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := e.WriteImage(&buf, []byte("extra")); err != nil {
		t.Fatal(err)
	}
	img, extra, err := OpenImage(buf.Bytes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if string(extra) != "extra" {
		t.Fatalf("extra = %q", extra)
	}
	return img, buf.Bytes()
}

// resultText is r with its contract as the contract's fields, so that
// results of two engines (whose contracts are distinct copies) compare.
func resultText(r *claims.Result) string {
	c := *r
	c.Contract = nil
	s := fmt.Sprintf("%+v", c)
	if r.Contract != nil {
		s += fmt.Sprintf(" contract=%+v", *r.Contract)
	}
	return s
}

// checkSamePrices prices every claim with both engines, and explains a
// share of the lines with both, and fails on any difference.
func checkSamePrices(t *testing.T, want, got *Engine, groups [][]claims.Item, explainEvery int) int {
	t.Helper()
	pw, pg := want.NewPricer(), got.NewPricer()
	n := 0
	for _, g := range groups {
		a, b := append([]claims.Item(nil), g...), append([]claims.Item(nil), g...)
		pw.PriceClaim(a)
		pg.PriceClaim(b)
		for i := range a {
			if ra, rb := resultText(&a[i].Result), resultText(&b[i].Result); ra != rb {
				t.Fatalf("claim %s line %d:\nsource %s\n image %s", g[i].Line.ClaimID, g[i].Line.LineNumber, ra, rb)
			}
			if explainEvery > 0 && n%explainEvery == 0 {
				if xa, xb := want.Explain(g, i).String(), got.Explain(g, i).String(); xa != xb {
					t.Fatalf("claim %s line %d explained differently:\nsource\n%s\nimage\n%s", g[i].Line.ClaimID, g[i].Line.LineNumber, xa, xb)
				}
			}
			n++
		}
	}
	if !reflect.DeepEqual(want.Schedule().Issues, got.Schedule().Issues) || want.Schedule().Fingerprint != got.Schedule().Fingerprint ||
		want.NumRates() != got.NumRates() {
		t.Error("the image's schedule (issues, fingerprint or rate count) differs from the source's")
	}
	return n
}

func TestImagePricesAsItsSource(t *testing.T) {
	sys, err := ParseDefaultRate("Amount:12.50")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("sample", func(t *testing.T) {
		v := sampleSchedule(t)
		groups := sampleClaimGroups(t)
		for _, opts := range []Options{{}, {SystemDefault: &sys}} {
			src := New(v, Options{SystemDefault: opts.SystemDefault, Explain: true})
			opts.Explain = true
			img, _ := imageOf(t, src, opts)
			checkSamePrices(t, src, img, groups, 1)
			checkExplainMatches(t, img, groups)
			// A compiled engine (the streaming loader's) writes the same prices.
			compiled, _ := imageOf(t, New(v, Options{SystemDefault: opts.SystemDefault, Compile: true}), opts)
			checkSamePrices(t, src, compiled, groups, 1)
		}
	})
	t.Run("generated", func(t *testing.T) {
		if testing.Short() {
			t.Skip("60k generated lines (slow under -race); the full suite runs them")
		}
		s := synth.Schedule(synth.ScheduleOptions{Seed: 3, Contracts: 300, Rates: 60_000, BadRateShare: 0.02})
		v := contracts.Validate(s)
		if len(v.Issues) == 0 {
			t.Fatal("the generated schedule has no issue to carry over")
		}
		src := New(v, Options{Explain: true})
		img, _ := imageOf(t, New(v, Options{Compile: true}), Options{Explain: true})
		var groups [][]claims.Item
		g := synth.Claims(synth.ClaimOptions{Schedule: s, Seed: 3, Lines: 60_000})
		var row synth.Row
		for g.Next(&row) {
			var it claims.Item
			row.Record(&it.Line.Raw)
			it.Line.Parse()
			if n := len(groups); n == 0 || groups[n-1][0].Line.Raw[claims.ClaimID] != it.Line.Raw[claims.ClaimID] {
				groups = append(groups, nil)
			}
			groups[len(groups)-1] = append(groups[len(groups)-1], it)
		}
		if n := checkSamePrices(t, src, img, groups, 997); n < 60_000 {
			t.Errorf("compared %d lines", n)
		}
	})
	t.Run("WA fee schedules", func(t *testing.T) {
		if testing.Short() {
			t.Skip("94k rates (slow under -race); the full suite runs them")
		}
		v, groups := waSchedule(t)
		src := New(v, Options{Explain: true})
		img, _ := imageOf(t, New(v, Options{Compile: true}), Options{Explain: true})
		if n := checkSamePrices(t, src, img, groups, 4001); n < 15_000 {
			t.Errorf("compared %d lines", n)
		}
	})
}

// waSchedule chains the eight Washington Medicaid physician fee schedules
// in testdata into one contract, with a line for every sixth rate on a
// date in its term, at its place of service and with its modifier.
func waSchedule(t *testing.T) (*contracts.Validated, [][]claims.Item) {
	t.Helper()
	dir := "../testdata/feeschedules/wa-medicaid-physician"
	files, err := filepath.Glob(filepath.Join(dir, "physician_*.csv"))
	if err != nil || len(files) != 8 {
		t.Fatalf("fee schedules: %v, %v", files, err)
	}
	var scheds []*feeschedule.Schedule
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := feeschedule.Parse(context.Background(), r, filepath.Base(f))
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		scheds = append(scheds, s)
	}
	slices.SortFunc(scheds, func(a, b *feeschedule.Schedule) int { return cmp.Compare(a.Effective, b.Effective) })
	rs, err := feeschedule.Chain("WA-MCD", scheds, feeschedule.WithIDPrefix("WA"))
	if err != nil {
		t.Fatal(err)
	}
	eff, _ := contracts.ParseDate("2014-01-01")
	exp, _ := contracts.ParseDate("2016-12-31")
	v := contracts.Validate(&contracts.Schedule{
		Contracts: []contracts.Contract{{ID: "WA-MCD", Number: "CON-2014-00001", VendorID: "V1", Status: contracts.Active,
			Effective: eff, Expiration: exp, LesserOfBilled: true, StopLoss: 500_000, AdminFeePct: 2_500_000}},
		Rates: rs,
	})
	rng := rand.New(rand.NewPCG(5, 8))
	var groups [][]claims.Item
	for k := 0; k < len(rs); k += 6 {
		r := &rs[k]
		var it claims.Item
		l := &it.Line
		l.Raw[claims.ClaimID] = "CL" + strconv.Itoa(k/18)
		l.Raw[claims.LineNumber] = strconv.Itoa(k%18/6 + 1)
		l.Raw[claims.VendorID] = "V1"
		l.Raw[claims.CPTCode] = r.CPTCode
		l.Raw[claims.Modifiers] = r.Modifier
		if len(r.PlaceOfService) > 0 {
			l.Raw[claims.PlaceOfService] = r.PlaceOfService[rng.IntN(len(r.PlaceOfService))]
		}
		l.Raw[claims.ServiceDate] = (r.Effective + contracts.Date(rng.IntN(400))).String()
		l.Raw[claims.Units] = strconv.Itoa(1 + rng.IntN(3))
		l.Raw[claims.BilledAmount] = strconv.Itoa(5+rng.IntN(3000)) + ".25"
		l.Parse()
		if k%18 == 0 {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], it)
	}
	return v, groups
}

func TestImageRefusesDamage(t *testing.T) {
	v := sampleSchedule(t)
	src := New(v, Options{Explain: true})
	_, data := imageOf(t, New(v, Options{Compile: true}), Options{})
	var h imageHeader
	copy(headerBytes(&h), data)
	ratesAt := int(h.Sections[secRates].Off)
	groups := sampleClaimGroups(t)
	check := func(t *testing.T, name string, b []byte, opts Options) {
		t.Helper()
		_, _, err := OpenImage(b, opts)
		if !errors.Is(err, ErrImageCorrupt) && !errors.Is(err, ErrImageIncompatible) {
			t.Fatalf("%s: OpenImage = %v, want ErrImageCorrupt or ErrImageIncompatible", name, err)
		}
	}
	for at := 0; at < len(data); at++ {
		b := bytes.Clone(data)
		b[at] ^= 0x10
		name := "byte " + strconv.Itoa(at) + " flipped"
		check(t, name, b, Options{Explain: true})
		if at < ratesAt {
			check(t, name, b, Options{})
		} else if at%101 == 0 {
			// Pricing does not read the rates Explain reads: an engine that
			// cannot Explain opens and prices as the source does.
			e, _, err := OpenImage(b, Options{})
			if err != nil {
				t.Fatalf("%s, in the rates: %v", name, err)
			}
			checkSamePrices(t, src, e, groups, 0)
		}
	}
	for _, n := range []int{0, 1, headerSize - 1, headerSize, len(data) / 2, len(data) - 1} {
		check(t, "truncated to "+strconv.Itoa(n), data[:n], Options{})
	}
	check(t, "one byte appended", append(bytes.Clone(data), 0), Options{})

	h.Layout++
	b := bytes.Clone(data)
	copy(b, headerBytes(&h))
	if _, _, err := OpenImage(b, Options{}); !errors.Is(err, ErrImageIncompatible) {
		t.Errorf("another layout: %v, want ErrImageIncompatible", err)
	}
}

func TestImageAtAnyAlignment(t *testing.T) {
	src := New(sampleSchedule(t), Options{Explain: true})
	_, data := imageOf(t, src, Options{})
	buf := make([]byte, len(data)+1)
	copy(buf[1:], data) // data[1:] of a 64-byte aligned allocation is not aligned
	img, _, err := OpenImage(buf[1:], Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkSamePrices(t, src, img, sampleClaimGroups(t), 0)
}

func TestWriteImageNeedsRates(t *testing.T) {
	if err := New(sampleSchedule(t), Options{}).WriteImage(&bytes.Buffer{}, nil); !errors.Is(err, ErrNoRates) {
		t.Fatalf("WriteImage without rates = %v, want ErrNoRates", err)
	}
}

func TestRateEncodingRoundTrip(t *testing.T) {
	v := sampleSchedule(t)
	rs := append([]contracts.Rate(nil), v.Rates...)
	rs = append(rs, contracts.Rate{ID: "X", PlaceOfService: []string{"11", "22"}, End: -3, MinUnits: 2, MaxUnits: 9,
		RequiresReview: true, LoadError: &contracts.FieldError{Field: "f", Value: "v", Reason: "r"}})
	var b []byte
	var files fileTable
	for i := range rs {
		b = appendRate(b, &rs[i], &files)
	}
	got, err := decodeRates(b, files.names)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rs) {
		t.Fatal("decoded rates differ from the encoded ones")
	}
	if len(files.names) != 2 {
		t.Errorf("source files %q, want the sample's rates.csv and the extra rate's none", files.names)
	}
	if _, err := decodeRates(b, files.names[:1]); err == nil {
		t.Error("a rate whose file is not in the table decoded")
	}
	// A cut anywhere but between two rates is an error; one between them
	// decodes the rates before it.
	ends := map[int]int{0: 0}
	var end []byte
	for i := range rs {
		end = appendRate(end, &rs[i], &files)
		ends[len(end)] = i + 1
	}
	for n := range b {
		got, err := decodeRates(b[:n], files.names)
		if k, boundary := ends[n]; boundary != (err == nil) || (boundary && len(got) != k) {
			t.Fatalf("cut at %d: %d rates, error %v", n, len(got), err)
		}
	}
}

// TestImageDamageBehindChecksums opens images damaged at random whose
// checksums were made to match, so that the damage reaches the decoding
// behind them: OpenImage must refuse or open them, never panic. (The
// checksums stop accidental damage; this is about a deliberate one.)
func TestImageDamageBehindChecksums(t *testing.T) {
	// A small schedule with every kind of table: a range, a long code,
	// places of service, a specialty, a second vendor.
	long := func(r *contracts.Rate) { r.CPTCode = "ABCDEFGHIJ" }
	rng := func(r *contracts.Rate) { r.CPTCode, r.RangeStart, r.RangeEnd = "", "10000", "19999" }
	pos := func(r *contracts.Rate) { r.PlaceOfService = []string{"11", "22"} }
	spec := func(r *contracts.Rate) { r.Kind, r.CPTCode, r.Specialty = contracts.KindSpecialty, "", "CARDIOLOGY" }
	e := engine(t, []contracts.Contract{contract("C1"), contract("C2", func(c *contracts.Contract) { c.VendorID = "V2" })},
		[]contracts.Rate{rate("1", "10"), rate("2", "20", long), rate("3", "30", rng), rate("4", "40", pos), rate("5", "50", spec)},
		Options{Compile: true})
	var buf bytes.Buffer
	if err := e.WriteImage(&buf, nil); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 20_000; i++ {
		data := bytes.Clone(buf.Bytes())
		for range 1 + r.IntN(4) {
			data[r.IntN(len(data))] = byte(r.IntN(256))
		}
		var h imageHeader
		copy(headerBytes(&h), data)
		if off := h.Sections[secRates].Off; off <= uint64(len(data)) && off >= uint64(crcFrom) {
			h.RatesCRC = uint64(crc32.Checksum(data[off:], castagnoli))
			copy(data, headerBytes(&h))
			h.CRC = uint64(crc32.Checksum(data[crcFrom:off], castagnoli))
			copy(data, headerBytes(&h))
		}
		_, _, _ = OpenImage(data, Options{Explain: true})
	}
}

// FuzzDecodeRates decodes arbitrary bytes as encoded rates: an error or
// rates, never a panic.
func FuzzDecodeRates(f *testing.F) {
	var b []byte
	var files fileTable
	v := sampleSchedule(f)
	for i := range v.Rates[:3] {
		b = appendRate(b, &v.Rates[i], &files)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeRates(b, files.names)
	})
}
