package adjust

import (
	"bytes"
	"context"
	"image"
	"path/filepath"
	"strings"
	"testing"

	"github.com/repricer/repricer/internal/chromiumtest"
)

// reportWithChanges is a comparison with every kind of change, increases
// and decreases by contract, and hostile text in the claim ids.
func reportWithChanges(t *testing.T) *Report {
	t.Helper()
	prior := writeRun(t,
		"<b>A</b>,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"+
			"B,1,99213,2024-01-01,C1,R1,Amount,80.00,80.00,4.00,76.00\n"+
			"C,1,99213,2024-01-01,C2,R9,Amount,80.00,80.00,0.00,80.00\n",
		"F,1,NO_RATE,error,99215,2024-01-01\n")
	current := writeRun(t,
		"<b>A</b>,1,99213,2024-01-01,C1,R2,Amount,95.00,95.00,4.75,90.25\n"+
			"C,1,99213,2024-01-01,C2,R9,Amount,80.00,60.00,0.00,60.00\n"+
			"F,1,99215,2024-01-01,C1,R3,Amount,150.00,150.00,7.50,142.50\n",
		"B,1,NO_RATE,error,99213,2024-01-01\n")
	rep, err := Compare(context.Background(), prior, current)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestWriteHTML(t *testing.T) {
	rep := reportWithChanges(t)
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	section := func(title string) string {
		i := strings.Index(page, "<h2>"+title+"</h2>")
		if i < 0 {
			t.Fatalf("no section %q", title)
		}
		rest := page[i+len(title)+9:]
		if j := strings.Index(rest, "<h2>"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	tests := []struct {
		section string
		want    []string
	}{
		{"Totals", []string{"<td>Net payable</td><td class=\"n\">232.00</td><td class=\"n\">292.75</td><td class=\"n\">60.75</td>"}},
		{"Lines by reason", []string{"<td>RATE_AMENDED</td><td class=\"n\">1</td>", "<td>AMOUNT_CHANGED</td><td class=\"n\">1</td>", "<td>(total)</td><td class=\"n\">4</td>"}},
		{"By contract", []string{"<svg", "fill=\"#2e8b57\"", "fill=\"#c0392b\"", "<td>C1</td>", "<td>(total)</td>"}},
		{"Largest changes", []string{"<td>F</td>", "<td>B</td>", "&lt;b&gt;A&lt;/b&gt;", "<td>C</td>"}},
		{"Moved into exceptions", []string{"<td>B</td>", "NO_RATE"}},
		{"Moved out of exceptions", []string{"<td>F</td>", "R3"}},
	}
	for _, tt := range tests {
		t.Run(tt.section, func(t *testing.T) {
			s := section(tt.section)
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("section %q lacks %q:\n%s", tt.section, w, s)
				}
			}
		})
	}
	// Largest first: F +142.50, B -76.00, A +14.25, C -20.00.
	s := section("Largest changes")
	if i, j, k := strings.Index(s, "<td>F</td>"), strings.Index(s, "<td>B</td>"), strings.Index(s, "<td>C</td>"); !(i < j && j < k) {
		t.Errorf("largest changes not by size: F %d B %d C %d", i, j, k)
	}
	if strings.Contains(page, "<b>A</b>") {
		t.Error("claim id not escaped")
	}
}

// TestHTMLRendersInChromium screenshots the adjustment report in headless
// Chromium and checks that the page is drawn: text, tables and the
// increase and decrease bars of the by-contract chart.
func TestHTMLRendersInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	dir := t.TempDir()
	if err := reportWithChanges(t).Write(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	img := chromiumtest.Screenshot(t, filepath.Join(dir, HTMLFile))
	nonWhite, green, red := pixels(img)
	t.Logf("%dx%d: %.1f%% non-white, green %d, red %d", img.Bounds().Dx(), img.Bounds().Dy(), 100*nonWhite, green, red)
	if nonWhite < 0.02 {
		t.Errorf("the page is blank: %.2f%% non-white pixels", 100*nonWhite)
	}
	if green < 500 || red < 500 {
		t.Errorf("chart bars: %d increase and %d decrease pixels, want 500 or more of each", green, red)
	}
}

// pixels returns the share of non-white pixels and the number of pixels
// in the increase (green) and decrease (red) bar colours.
func pixels(img image.Image) (nonWhite float64, green, red int) {
	b := img.Bounds()
	near := func(r, g, bl uint8, want [3]uint8) bool {
		d := func(a, b uint8) int { return max(int(a), int(b)) - min(int(a), int(b)) }
		return d(r, want[0]) < 12 && d(g, want[1]) < 12 && d(bl, want[2]) < 12
	}
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r16, g16, b16, _ := img.At(x, y).RGBA()
			r, g, bl := uint8(r16>>8), uint8(g16>>8), uint8(b16>>8)
			if r < 245 || g < 245 || bl < 245 {
				n++
			}
			switch {
			case near(r, g, bl, [3]uint8{0x2e, 0x8b, 0x57}):
				green++
			case near(r, g, bl, [3]uint8{0xc0, 0x39, 0x2b}):
				red++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy()), green, red
}
