package report_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/repricer/repricer/internal/chromiumtest"
	"github.com/repricer/repricer/money"
	"github.com/repricer/repricer/pipeline"
	"github.com/repricer/repricer/report"
)

// sampleSummary is a run with several contracts (more than the chart names)
// and exceptions of both severities, with hostile text in every string.
func sampleSummary() *pipeline.Summary {
	s := &pipeline.Summary{
		Inputs:    []pipeline.InputSummary{{File: "claims/<night>.csv", SHA256: "ab12", Bytes: 1234, Lines: 1000}},
		Reference: pipeline.ReferenceSummary{Source: "bundle:testdata/sample/contracts", Fingerprint: "f00d", Contracts: 20, Rates: 80},
		Settings:  pipeline.Settings{Format: "csv", Mode: "streaming"},
		Counts:    pipeline.Counts{InputLines: 1000, PricedLines: 900, ErrorExceptions: 100, ReviewExceptions: 40},
		Totals: pipeline.Totals{BilledInput: 1_000_000_00, BilledPriced: 900_000_00, BilledErrors: 100_000_00,
			Amounts: pipeline.Amounts{AllowedBeforeStopLoss: 600_000_00, StopLossReduction: 10_000_00, Allowed: 590_000_00, AdminFee: 5_000_00, NetPayable: 585_000_00}},
		ByCode: []pipeline.CodeTotals{
			{Code: "INVALID_ROW", Severity: "error", Lines: 30, Billed: 3_000_00},
			{Code: "NO_CONTRACT", Severity: "error", Lines: 70, Billed: 97_000_00},
			{Code: "RATE_CONFLICT", Severity: "review", Lines: 40, Billed: 4_000_00},
		},
		Books:   pipeline.Books{Balanced: true, ReadLines: 1000, ReadBilled: 1_000_000_00},
		Timings: pipeline.Timings{TotalSeconds: 1.5},
	}
	for i := range 20 {
		s.ByContract = append(s.ByContract, pipeline.ContractTotals{
			ContractID: fmt.Sprintf("C%03d", i), ContractNumber: fmt.Sprintf("PC-%03d<b>", i),
			Lines: int64(10 + i), Billed: money.Cents(1000_00 * (i + 1)), Amounts: pipeline.Amounts{Allowed: money.Cents(500_00 * (i + 1))},
		})
	}
	return s
}

func sampleExamples() []report.ExceptionExample {
	return []report.ExceptionExample{
		{ClaimID: `<script>alert("x")</script>`, LineNumber: "1", SourceFile: "claims.csv", SourceRow: 2, Code: "INVALID_ROW", Severity: "error", Message: "billed_amount: not a number"},
		{ClaimID: "CLM2", LineNumber: "3", SourceFile: "claims.csv", SourceRow: 9, Code: "RATE_CONFLICT", Severity: "review", Message: "rates tie"},
	}
}

func render(t *testing.T, s *pipeline.Summary, ex []report.ExceptionExample, sections ...report.Section) string {
	t.Helper()
	var buf bytes.Buffer
	if err := report.Write(&buf, s, ex, sections...); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestWrite(t *testing.T) {
	full := render(t, sampleSummary(), sampleExamples())
	empty := render(t, &pipeline.Summary{Settings: pipeline.Settings{Format: "parquet"}}, nil)
	unbalanced := sampleSummary()
	unbalanced.Books.Balanced = false
	tests := []struct {
		name       string
		html       string
		want, dont []string
	}{
		{"totals and charts", full,
			[]string{"<svg", "Net payable", "$585,000.00", "1,000", "balanced", "INVALID_ROW (error)", "RATE_CONFLICT (review)", "5 other contracts", "#d68910", "#c0392b"},
			[]string{"<script", "PC-001<b>", "NOT balanced"}},
		{"hostile text is escaped", full,
			[]string{"&lt;script&gt;", "PC-001&lt;b&gt;", "claims/&lt;night&gt;.csv"},
			[]string{`<script>alert`}},
		{"links to the outputs", full,
			[]string{`href="priced.csv"`, `href="exceptions.csv"`, `href="summary.json"`, `href="schedule_issues.csv"`},
			nil},
		{"self-contained", full, nil, []string{"http://", "https://", "<script", "<link", "<img", "@import"}},
		{"no timings (reruns give the same bytes)", full, nil, []string{"1.5"}},
		{"empty run", empty, []string{"No exceptions.", "No examples.", `href="priced.parquet"`}, nil},
		{"books not balanced", render(t, unbalanced, nil), []string{"NOT balanced"}, nil},
		{"a section of its own (the Business Central sync)", render(t, sampleSummary(), nil,
			report.Section{Title: "Business Central sync", Rows: [][2]string{{"Created", "12"}, {"Removed <x>", "1"}}, Note: "stopped: SIGTERM received"}),
			[]string{"<h2>Business Central sync</h2>", "<td>Created</td><td class=\"n\">12</td>", "Removed &lt;x&gt;", "stopped: SIGTERM received"}, nil},
		{"no section unless given", full, nil, []string{"Business Central"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := strings.ReplaceAll(tt.html, `xmlns="http://www.w3.org/2000/svg"`, "")
			for _, w := range tt.want {
				if !strings.Contains(html, w) {
					t.Errorf("report lacks %q", w)
				}
			}
			for _, d := range tt.dont {
				if strings.Contains(html, d) {
					t.Errorf("report holds %q", d)
				}
			}
		})
	}
	if again := render(t, sampleSummary(), sampleExamples()); again != full {
		t.Error("two renderings of the same summary differ")
	}
	var rerun = sampleSummary()
	rerun.Timings = pipeline.Timings{TotalSeconds: 99, Workers: 7}
	if render(t, rerun, sampleExamples()) != full {
		t.Error("the report depends on timings")
	}
	var re *report.Error
	if err := report.Write(&bytes.Buffer{}, nil, nil); !errors.As(err, &re) {
		t.Errorf("nil summary: %v, want *report.Error", err)
	}
}

// TestRendersInChromium screenshots the report in headless Chromium and
// checks the picture is a page with charts, not a blank or an error page.
func TestRendersInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, report.File)
	if err := os.WriteFile(page, []byte(render(t, sampleSummary(), sampleExamples())), 0o644); err != nil {
		t.Fatal(err)
	}
	img := chromiumtest.Screenshot(t, page)
	st := pixelStats(img)
	t.Logf("%dx%d, %.1f%% non-white, %d colours, red %d, amber %d, blue %d",
		img.Bounds().Dx(), img.Bounds().Dy(), 100*st.nonWhiteShare, st.colours, st.red, st.amber, st.blue)
	if st.nonWhiteShare < 0.02 {
		t.Errorf("the page is blank: %.2f%% non-white pixels", 100*st.nonWhiteShare)
	}
	if st.colours < 8 {
		t.Errorf("only %d distinct colours", st.colours)
	}
	// The bars are drawn: each chart colour covers a visible area.
	for _, c := range []struct {
		name string
		n    int
	}{{"error red", st.red}, {"review amber", st.amber}, {"contract blue", st.blue}} {
		if c.n < 500 {
			t.Errorf("%s bars: %d pixels", c.name, c.n)
		}
	}
}

type stats struct {
	nonWhiteShare    float64
	colours          int
	red, amber, blue int
}

func pixelStats(img image.Image) stats {
	b := img.Bounds()
	seen := map[[3]uint8]bool{}
	var st stats
	nonWhite := 0
	near := func(r, g, bl uint8, want [3]uint8) bool {
		d := func(a, b uint8) int { return max(int(a), int(b)) - min(int(a), int(b)) }
		return d(r, want[0]) < 12 && d(g, want[1]) < 12 && d(bl, want[2]) < 12
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r16, g16, b16, _ := img.At(x, y).RGBA()
			r, g, bl := uint8(r16>>8), uint8(g16>>8), uint8(b16>>8)
			seen[[3]uint8{r, g, bl}] = true
			if r < 245 || g < 245 || bl < 245 {
				nonWhite++
			}
			switch {
			case near(r, g, bl, [3]uint8{0xc0, 0x39, 0x2b}):
				st.red++
			case near(r, g, bl, [3]uint8{0xd6, 0x89, 0x10}):
				st.amber++
			case near(r, g, bl, [3]uint8{0x2b, 0x6c, 0xb0}):
				st.blue++
			}
		}
	}
	st.nonWhiteShare = float64(nonWhite) / float64(b.Dx()*b.Dy())
	st.colours = len(seen)
	return st
}
