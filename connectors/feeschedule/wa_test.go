package feeschedule

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// waDir holds the copy of the Washington Medicaid physician fee schedules the
// tests read (see its README.md for source and licence).
const waDir = "../../testdata/feeschedules/wa-medicaid-physician"

// waFiles lists the WA files in effective-date order.
func waFiles() []string {
	return []string{
		"physician_010114.csv", "physician_070114.csv", "physician_010115.csv", "physician_040115.csv",
		"physician_070115.csv", "physician_100115.csv", "physician_010116.csv", "physician_040116.csv",
	}
}

func parseFile(t *testing.T, name string) *Schedule {
	t.Helper()
	f, err := os.Open(filepath.Join(waDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Parse(context.Background(), f, name)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return s
}

func parseAll(t *testing.T) []*Schedule {
	t.Helper()
	var out []*Schedule
	for _, n := range waFiles() {
		out = append(out, parseFile(t, n))
	}
	return out
}

func date(t *testing.T, s string) contracts.Date {
	t.Helper()
	d, err := contracts.ParseDate(s)
	if err != nil {
		t.Fatalf("date %q: %v", s, err)
	}
	return d
}

// TestWACounts pins what each WA file imports and skips.
//
// The numbers were cross-checked independently of this package with a
// Python script (csv module, cp1252 decoding): it found the header row by
// the "Max Allowable Fee NFS" cell, classified each fee cell as a
// `^\$[\d,]+\.\d\d$` dollar amount or by its upper-cased text with dots and
// spaces removed (BR, AC, BUNDLED, NC/CNC, DC, DP, ”/N/A, *BASE), skipped a
// row when neither fee was a dollar amount (reason of NFS, or of FS when NFS
// was blank), and skipped a repeated (code, modifier) among the remaining rows
// (all such repeats carry "0-20 years of age only"). Imported + skipped equals
// the records after the header in every file, and the rate counts are
// imported rows with equal fees + 2 x rows with different fees + rows with
// one fee. The "Base" counts also match `grep -c ' Base,'`.
func TestWACounts(t *testing.T) {
	tests := []struct {
		file       string
		effective  string
		updated    string
		headerLine int
		rows       int
		rates      int
		skipped    map[Reason]int
		fsMissing  map[Reason]int // rows kept with the NFS fee only
	}{
		{"physician_010114.csv", "2014-01-01", "2014-01-07", 9, 9915, 11699,
			map[Reason]int{AcquisitionCost: 46, AgeRestricted: 10, Bundled: 147, ByReport: 575, DeletedCode: 166, NotADollarAmount: 272, NotCovered: 653, OtherProgram: 19},
			map[Reason]int{Bundled: 1, NoFee: 3}},
		{"physician_070114.csv", "2014-07-01", "2014-10-01", 9, 9871, 11657,
			map[Reason]int{AcquisitionCost: 49, AgeRestricted: 10, Bundled: 147, ByReport: 583, DeletedCode: 163, NotADollarAmount: 272, NotCovered: 629, OtherProgram: 19},
			map[Reason]int{Bundled: 1}},
		{"physician_010115.csv", "2015-01-01", "", 9, 10042, 11870,
			map[Reason]int{AcquisitionCost: 49, AgeRestricted: 10, Bundled: 144, ByReport: 634, DeletedCode: 17, NotADollarAmount: 272, NotCovered: 836, OtherProgram: 23},
			map[Reason]int{Bundled: 1}},
		{"physician_040115.csv", "2015-04-01", "", 9, 9923, 11740,
			map[Reason]int{AcquisitionCost: 49, AgeRestricted: 10, Bundled: 144, ByReport: 625, NotADollarAmount: 269, NotCovered: 792, OtherProgram: 23},
			map[Reason]int{Bundled: 1}},
		{"physician_070115.csv", "2015-07-01", "2015-08-25", 10, 9920, 11727,
			map[Reason]int{AcquisitionCost: 49, AgeRestricted: 10, Bundled: 144, ByReport: 634, NotADollarAmount: 269, NotCovered: 788, OtherProgram: 23},
			map[Reason]int{Bundled: 1}},
		{"physician_100115.csv", "2015-10-01", "2015-10-22", 10, 9933, 11740,
			map[Reason]int{AcquisitionCost: 49, AgeRestricted: 10, Bundled: 145, ByReport: 635, NotADollarAmount: 269, NotCovered: 777, OtherProgram: 23},
			map[Reason]int{Bundled: 1}},
		{"physician_010116.csv", "2016-01-01", "2016-02-12", 10, 10047, 11888,
			map[Reason]int{AcquisitionCost: 49, AgeRestricted: 10, Bundled: 145, ByReport: 629, NotADollarAmount: 269, NotCovered: 786, OtherProgram: 23},
			map[Reason]int{Bundled: 1}},
		{"physician_040116.csv", "2016-04-01", "2016-04-26", 10, 9924, 11758,
			map[Reason]int{AcquisitionCost: 49, AgeRestricted: 10, Bundled: 145, ByReport: 615, NotADollarAmount: 269, NotCovered: 753, OtherProgram: 26},
			map[Reason]int{Bundled: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s := parseFile(t, tt.file)
			if got := s.Effective.String(); got != tt.effective || s.EffectiveFrom != FromPreamble {
				t.Errorf("effective = %s from %s, want %s from preamble", got, s.EffectiveFrom, tt.effective)
			}
			if got := s.Updated.String(); got != tt.updated {
				t.Errorf("updated = %q, want %q", got, tt.updated)
			}
			if len(s.Warnings) != 0 {
				t.Errorf("warnings: %q", s.Warnings)
			}
			if s.HeaderLine != tt.headerLine {
				t.Errorf("header line = %d, want %d", s.HeaderLine, tt.headerLine)
			}
			if len(s.Rows) != tt.rows {
				t.Errorf("rows = %d, want %d", len(s.Rows), tt.rows)
			}
			if got := s.SkippedByReason(); !maps.Equal(got, tt.skipped) {
				t.Errorf("skipped = %v, want %v", got, tt.skipped)
			}
			fsMissing := map[Reason]int{}
			for _, r := range s.Rows {
				if !r.HasNFS {
					t.Errorf("line %d: row without NFS fee (%s)", r.Line, r.NFSReason)
				}
				if !r.HasFS {
					fsMissing[r.FSReason]++
				}
			}
			if !maps.Equal(fsMissing, tt.fsMissing) {
				t.Errorf("rows without FS fee = %v, want %v", fsMissing, tt.fsMissing)
			}
			rates, err := ToRates(s, "WA-MCD", WithIDPrefix("WA"))
			if err != nil {
				t.Fatal(err)
			}
			if len(rates) != tt.rates {
				t.Errorf("rates = %d, want %d", len(rates), tt.rates)
			}
			ids := map[string]bool{}
			for _, r := range rates {
				if ids[r.ID] {
					t.Errorf("duplicate rate id %s", r.ID)
				}
				ids[r.ID] = true
			}
		})
	}
}

// TestWAFees checks fees read back through the chained rates of all eight
// files: each file's rates end the day before the next file's date. The
// expected values were read with grep from the CSV files.
func TestWAFees(t *testing.T) {
	h, err := NewHistory("WA-MCD", parseAll(t), WithIDPrefix("WA"))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		fee    string // dollars; "" when the error is expected
		err    error
		auth   bool
		rateID string // checked when set
	}
	tests := []struct {
		name     string
		code     string
		mod      string
		facility bool
		on       string
		want     want
	}{
		// 99213 office visit: NFS 38.39 -> 38.71 -> 39.13; FS 25.47 -> 26.64 -> 27.03.
		{"99213 NFS first day", "99213", "", false, "2014-01-01", want{fee: "38.39", rateID: "WA-20140101-99213-NFS"}},
		{"99213 NFS day before July 2014", "99213", "", false, "2014-06-30", want{fee: "38.39"}},
		{"99213 NFS July 2014", "99213", "", false, "2014-07-01", want{fee: "38.71", rateID: "WA-20140701-99213-NFS"}},
		{"99213 NFS Jan 2015", "99213", "", false, "2015-01-01", want{fee: "38.71"}},
		{"99213 NFS Apr 2015", "99213", "", false, "2015-06-30", want{fee: "38.71"}},
		{"99213 NFS Jul 2015", "99213", "", false, "2015-07-01", want{fee: "39.13"}},
		{"99213 NFS Oct 2015", "99213", "", false, "2015-12-31", want{fee: "39.13"}},
		{"99213 NFS 2016", "99213", "", false, "2016-02-29", want{fee: "39.13"}},
		{"99213 NFS open end", "99213", "", false, "2030-01-01", want{fee: "39.13", rateID: "WA-20160401-99213-NFS"}},
		{"99213 FS 2014", "99213", "", true, "2014-03-15", want{fee: "25.47", rateID: "WA-20140101-99213-FS"}},
		{"99213 FS late 2014", "99213", "", true, "2014-12-31", want{fee: "26.64"}},
		{"99213 FS 2016", "99213", "", true, "2016-04-01", want{fee: "27.03"}},
		{"before first schedule", "99213", "", false, "2013-12-31", want{err: ErrNoRate}},

		// 11719 trimming of nails: different NFS and FS fees.
		{"11719 NFS 2014", "11719", "", false, "2014-01-01", want{fee: "7.02"}},
		{"11719 FS 2014", "11719", "", true, "2014-01-01", want{fee: "4.41"}},
		{"11719 NFS 2015-07", "11719", "", false, "2015-07-01", want{fee: "8.35"}},
		{"11719 FS 2015-07", "11719", "", true, "2015-07-01", want{fee: "4.59"}},

		// 71010 chest x-ray: global, TC and 26 lines, NFS == FS (one rate).
		{"71010 global 2014", "71010", "", false, "2014-01-01", want{fee: "14.44", rateID: "WA-20140101-71010-ALL"}},
		{"71010 TC 2014", "71010", "TC", true, "2014-01-01", want{fee: "9.22", rateID: "WA-20140101-71010-TC-ALL"}},
		{"71010 26 2014", "71010", "26", false, "2014-01-01", want{fee: "5.21"}},
		{"71010 26 2014-07", "71010", "26", false, "2014-07-01", want{fee: "5.47"}},
		{"71010 26 2015-07", "71010", "26", true, "2015-07-01", want{fee: "5.43"}},
		{"71010 TC 2016", "71010", "TC", false, "2016-01-01", want{fee: "8.14"}},
		{"71010 unknown modifier", "71010", "59", false, "2016-01-01", want{err: ErrNoRate}},

		// Prior authorization: PA, CPA, EPA.
		{"19085 PA NFS", "19085", "", false, "2014-01-01", want{fee: "597.75", auth: true}},
		{"19085 PA FS", "19085", "", true, "2015-10-01", want{fee: "114.65", auth: true}},
		{"70450 CPA 26", "70450", "26", false, "2014-01-01", want{fee: "24.46", auth: true}},
		{"70450 CPA global 2014-07", "70450", "", false, "2014-07-01", want{fee: "76.14", auth: true}},
		{"22532 CPA age 21+ with thousands", "22532", "", false, "2014-07-01", want{fee: "1053.33", auth: true}},
		{"22532 2014 without comma", "22532", "", true, "2014-01-01", want{fee: "1066.16", auth: true}},

		// A4264: NFS fee, FS "Bundled" -> only the NFS rate exists.
		{"A4264 NFS", "A4264", "", false, "2014-01-01", want{fee: "550.52", auth: true}},
		{"A4264 FS bundled", "A4264", "", true, "2014-01-01", want{err: ErrNoRate}},
		{"A4264 NFS 2016", "A4264", "", false, "2016-04-01", want{fee: "563.14", auth: true}},

		// 87070: FS "N/A" in January 2014, both fees later.
		{"87070 NFS 2014-01", "87070", "", false, "2014-01-01", want{fee: "9.73"}},
		{"87070 FS N/A 2014-01", "87070", "", true, "2014-01-01", want{err: ErrNoRate}},
		{"87070 FS 2014-07", "87070", "", true, "2014-07-01", want{fee: "9.42"}},

		// 20604: covered from January 2015.
		{"20604 before coverage", "20604", "", false, "2014-12-31", want{err: ErrNoRate}},
		{"20604 covered 2015", "20604", "", false, "2015-01-01", want{fee: "43.33"}},
		{"20604 FS 2016", "20604", "", true, "2016-01-01", want{fee: "26.94"}},

		// 00100 anesthesia: "5 Base" is skipped, so no rate.
		{"00100 base units", "00100", "", false, "2015-01-01", want{err: ErrNoRate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			on := date(t, tt.on)
			got, err := h.Fee(tt.code, tt.mod, tt.facility, on)
			if tt.want.err != nil {
				if !errors.Is(err, tt.want.err) {
					t.Fatalf("Fee = %s, %v; want error %v", got, err, tt.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want.fee {
				t.Errorf("Fee = %s, want %s", got, tt.want.fee)
			}
			pos := "11"
			if tt.facility {
				pos = "21"
			}
			r, err := h.RateAt(tt.code, tt.mod, pos, on)
			if err != nil {
				t.Fatal(err)
			}
			if r.RequiresAuth != tt.want.auth {
				t.Errorf("RequiresAuth = %v, want %v", r.RequiresAuth, tt.want.auth)
			}
			if tt.want.rateID != "" && r.ID != tt.want.rateID {
				t.Errorf("rate ID = %s, want %s", r.ID, tt.want.rateID)
			}
		})
	}
}

// TestWARates checks the rate fields of a few rows of the first file.
func TestWARates(t *testing.T) {
	s := parseFile(t, "physician_010114.csv")
	rates, err := ToRates(s, "WA-MCD", WithIDPrefix("WA"))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]contracts.Rate{}
	for _, r := range rates {
		byID[r.ID] = r
	}
	d := date(t, "2014-01-01")
	tests := []struct {
		id   string
		want contracts.Rate
	}{
		{"WA-20140101-99213-NFS", contracts.Rate{CPTCode: "99213", Value: 38_390_000, PlaceOfService: NonFacilityPOS(), Source: contracts.Source{File: "physician_010114.csv", Row: 11108}}},
		{"WA-20140101-99213-FS", contracts.Rate{CPTCode: "99213", Value: 25_470_000, PlaceOfService: FacilityPOS(), Source: contracts.Source{File: "physician_010114.csv", Row: 11108}}},
		{"WA-20140101-71010-26-ALL", contracts.Rate{CPTCode: "71010", Modifier: "26", Value: 5_210_000, Source: contracts.Source{File: "physician_010114.csv", Row: 6496}}},
		{"WA-20140101-70450-TC-ALL", contracts.Rate{CPTCode: "70450", Modifier: "TC", Value: 78_400_000, RequiresAuth: true, Source: contracts.Source{File: "physician_010114.csv", Row: 6402}}},
		{"WA-20140101-A4264-NFS", contracts.Rate{CPTCode: "A4264", Value: 550_520_000, PlaceOfService: NonFacilityPOS(), RequiresAuth: true, Source: contracts.Source{File: "physician_010114.csv", Row: 11506}}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, ok := byID[tt.id]
			if !ok {
				t.Fatalf("no rate %s", tt.id)
			}
			want := tt.want
			want.ID, want.ContractID, want.Kind, want.Type = tt.id, "WA-MCD", contracts.KindCPT, contracts.Amount
			want.Effective, want.Active = d, true
			if got.ID != want.ID || got.ContractID != want.ContractID || got.Kind != want.Kind || got.Type != want.Type ||
				got.Value != want.Value || got.CPTCode != want.CPTCode || got.Modifier != want.Modifier ||
				!slices.Equal(got.PlaceOfService, want.PlaceOfService) || got.Effective != want.Effective ||
				!got.End.IsZero() || got.RequiresAuth != want.RequiresAuth || got.Active != want.Active || got.Source != want.Source {
				t.Errorf("rate\n got %+v\nwant %+v", got, want)
			}
		})
	}
	if _, ok := byID["WA-20140101-A4264-FS"]; ok {
		t.Error("A4264 has an FS rate although its FS fee is Bundled")
	}

	t.Run("SplitEqualFees", func(t *testing.T) {
		split, err := ToRates(s, "WA-MCD", WithIDPrefix("WA"), SplitEqualFees())
		if err != nil {
			t.Fatal(err)
		}
		// every row with two fees gives two rates; 4 rows have only the NFS fee.
		if want := 2*len(s.Rows) - 4; len(split) != want {
			t.Errorf("rates = %d, want %d", len(split), want)
		}
	})
	t.Run("default prefix is the contract", func(t *testing.T) {
		rs, err := ToRates(s, "C-7")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rs[0].ID, "C-7-20140101-") {
			t.Errorf("ID = %s", rs[0].ID)
		}
	})
}

// TestWAValidate runs the chained rates of all eight files through the
// reference-data validation: none may be rejected.
func TestWAValidate(t *testing.T) {
	rates, err := Chain("WA-MCD", parseAll(t), WithIDPrefix("WA"))
	if err != nil {
		t.Fatal(err)
	}
	sched := &contracts.Schedule{
		Contracts: []contracts.Contract{{
			ID: "WA-MCD", Number: "CON-2014-00001", VendorID: "V1", Status: contracts.Active,
			Effective: date(t, "2014-01-01"), Expiration: date(t, "2016-12-31"),
		}},
		Rates: rates,
	}
	v := contracts.Validate(sched)
	for _, is := range v.Issues {
		t.Errorf("issue: %s", is)
	}
	if len(v.Rates) != len(rates) {
		t.Errorf("accepted %d of %d rates", len(v.Rates), len(rates))
	}
	if want := 11699 + 11657 + 11870 + 11740 + 11727 + 11740 + 11888 + 11758; len(rates) != want {
		t.Errorf("chained rates = %d, want %d", len(rates), want)
	}
}

// TestWASkips checks individual skipped rows.
func TestWASkips(t *testing.T) {
	tests := []struct {
		file string
		line int
		want Skip
	}{
		{"physician_010114.csv", 10, Skip{Reason: NotADollarAmount, Code: "00100", Column: "Max Allowable Fee NFS", Value: "5 Base"}},
		{"physician_070115.csv", 11, Skip{Reason: NotADollarAmount, Code: "00100", Column: "Max Allowable Fee NFS", Value: "5 Base"}},
		{"physician_010114.csv", 11109, Skip{Reason: AgeRestricted, Code: "99213", Column: "Comments", Value: "0-20 years of age only"}},
		{"physician_010114.csv", 12106, Skip{Reason: NotCovered, Code: "V2799", Column: "Max Allowable Fee NFS", Value: "NC"}},
		{"physician_010114.csv", 12103, Skip{Reason: DeletedCode, Code: "V2785", Column: "Max Allowable Fee NFS", Value: "DC"}},
	}
	byFile := map[string]*Schedule{}
	for _, tt := range tests {
		t.Run(tt.file+":"+tt.want.Code, func(t *testing.T) {
			s := byFile[tt.file]
			if s == nil {
				s = parseFile(t, tt.file)
				byFile[tt.file] = s
			}
			i := slices.IndexFunc(s.Skipped, func(k Skip) bool { return k.Line == tt.line })
			if i < 0 {
				t.Fatalf("no skip at line %d", tt.line)
			}
			got := s.Skipped[i]
			if got.Reason != tt.want.Reason || got.Code != tt.want.Code || got.Column != tt.want.Column || got.Value != tt.want.Value {
				t.Errorf("skip = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestWAWindows1252 checks that byte 0x92 in the preamble reads as U+2019.
func TestWAWindows1252(t *testing.T) {
	for _, name := range waFiles() {
		t.Run(name, func(t *testing.T) {
			s := parseFile(t, name)
			i := slices.IndexFunc(s.Preamble, func(p string) bool { return strings.Contains(p, "trauma care services. The enhancement") })
			if i < 0 {
				t.Fatal("trauma paragraph not in preamble")
			}
			p := s.Preamble[i]
			if !strings.Contains(p, "the Agency\u2019s maximum allowable fee or the provider\u2019s billed amount") {
				t.Errorf("preamble not decoded: %q", p)
			}
		})
	}
}

func TestWAOutOfOrder(t *testing.T) {
	a := parseFile(t, "physician_070114.csv")
	b := parseFile(t, "physician_010114.csv")
	_, err := NewHistory("WA-MCD", []*Schedule{a, b})
	var fe *FileError
	if !errors.Is(err, ErrOutOfOrder) || !errors.As(err, &fe) || fe.File != "physician_010114.csv" {
		t.Fatalf("err = %v, want ErrOutOfOrder naming physician_010114.csv", err)
	}
}

func TestCentsOfDollarStrings(t *testing.T) {
	// a reminder that fees are exact: $1,053.33 is 105333 cents.
	c, reason, _ := parseFee("$1,053.33")
	if reason != "" || c != money.Cents(105333) {
		t.Fatalf("parseFee = %d %s", c, reason)
	}
}
