// Package report renders the HTML run report (report.html) of a repricing
// run from its pipeline.Summary: line counts and money totals, the books
// check, allowed amounts by contract and exceptions by code and severity as
// inline SVG bar charts, example exception rows, the inputs' checksums and
// links to the output files.
//
// The page is self-contained: no script, no style sheet, font or image from
// the network, so it renders the same offline, in a mail attachment or in a
// locked-down browser. Output is deterministic: the same summary and
// examples give the same bytes. Timings are left out on purpose, so reruns
// over identical inputs produce identical reports.
package report

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/repricer/repricer/money"
	"github.com/repricer/repricer/pipeline"
)

// File is the name of the report next to the outputs.
const File = "report.html"

// MaxContractBars is how many contracts the allowed-by-contract chart shows
// by name; the rest are one "other" bar.
const MaxContractBars = 15

// ExceptionExample is one row of the exceptions file shown in the report.
// It carries the line's key and source, not its member or provider ids.
type ExceptionExample struct {
	ClaimID    string
	LineNumber string
	SourceFile string
	SourceRow  int64
	Code       string
	Severity   string
	Message    string
}

// Error is a report that could not be written.
type Error struct{ Err error }

func (e *Error) Error() string { return "report: " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Section is a table of its own in the report, for what ran beside the
// repricing: the nightly job's Business Central sync, for example.
type Section struct {
	Title string
	Rows  [][2]string // label, value
	Note  string      // shown under the table, e.g. why a step stopped
}

// Write renders the report of s, with the example exception rows and any
// extra sections, to w.
func Write(w io.Writer, s *pipeline.Summary, examples []ExceptionExample, sections ...Section) error {
	if s == nil {
		return &Error{Err: fmt.Errorf("no summary")}
	}
	v := build(s, examples)
	v.Sections = sections
	if err := page.Execute(w, v); err != nil {
		return &Error{Err: err}
	}
	return nil
}

// Chart geometry, in SVG user units.
const (
	chartWidth  = 1000
	labelWidth  = 300
	valueWidth  = 170
	rowHeight   = 24
	barHeight   = 16
	chartMargin = 8
)

// Bar colours.
const (
	colourContract = "#2b6cb0"
	colourOther    = "#8a94a6"
	colourError    = "#c0392b"
	colourReview   = "#d68910"
	colourPriced   = "#2e8b57"
)

type view struct {
	S          *pipeline.Summary
	Balanced   bool
	Files      []link
	Counts     []row
	Money      []row
	Lines      chart
	Contracts  chart
	Codes      chart
	CodeRows   []codeRow
	Examples   []ExceptionExample
	NContracts int
	Sections   []Section
}

type link struct{ Name, Description string }

type row struct{ Label, Value string }

type codeRow struct {
	Code, Severity, Lines, Billed string
}

type chart struct {
	Title  string
	Height int
	Width  int
	Bars   []bar
}

type bar struct {
	Label, Value, Colour string
	Y, TextY, W          int
	LabelX, BarX, ValueX int
}

func build(s *pipeline.Summary, examples []ExceptionExample) *view {
	ext := s.Settings.Format
	if ext == "" {
		ext = "csv"
	}
	v := &view{
		S:        s,
		Balanced: s.Books.Balanced,
		Files: []link{
			{"priced." + ext, "priced lines"},
			{"exceptions." + ext, "error and review exceptions"},
			{pipeline.ScheduleIssuesFile, "contracts and rates the schedule validation rejected or flagged"},
			{pipeline.SummaryFile, "machine-readable summary"},
		},
		Examples:   examples,
		NContracts: len(s.ByContract),
	}
	c, t := s.Counts, s.Totals
	v.Counts = []row{
		{"Input lines", count(c.InputLines)},
		{"Priced lines", count(c.PricedLines)},
		{"Error exceptions (not priced)", count(c.ErrorExceptions)},
		{"Review exceptions (priced, to review)", count(c.ReviewExceptions)},
		{"Lines read (books check)", count(s.Books.ReadLines)},
	}
	v.Money = []row{
		{"Billed, all input", amount(t.BilledInput)},
		{"Billed, priced lines", amount(t.BilledPriced)},
		{"Billed, error exceptions", amount(t.BilledErrors)},
		{"Allowed before stop loss", amount(t.AllowedBeforeStopLoss)},
		{"Stop-loss reduction", amount(t.StopLossReduction)},
		{"Allowed amount", amount(t.Allowed)},
		{"Administrative fee", amount(t.AdminFee)},
		{"Net payable", amount(t.NetPayable)},
		{"Billed read (books check)", amount(s.Books.ReadBilled)},
	}
	v.Lines = newChart("Lines by outcome", []barData{
		{"priced", c.PricedLines, count(c.PricedLines), colourPriced},
		{"error exceptions", c.ErrorExceptions, count(c.ErrorExceptions), colourError},
		{"review exceptions", c.ReviewExceptions, count(c.ReviewExceptions), colourReview},
	})
	v.Contracts = newChart("Allowed amount by contract", contractBars(s.ByContract))
	var codes []barData
	for _, ct := range s.ByCode {
		colour := colourError
		if ct.Severity == "review" {
			colour = colourReview
		}
		codes = append(codes, barData{ct.Code + " (" + ct.Severity + ")", ct.Lines, count(ct.Lines), colour})
		v.CodeRows = append(v.CodeRows, codeRow{ct.Code, ct.Severity, count(ct.Lines), amount(ct.Billed)})
	}
	v.Codes = newChart("Exception lines by code and severity", codes)
	return v
}

type barData struct {
	label  string
	value  int64
	text   string
	colour string
}

// contractBars is the largest contracts by allowed amount (ties by id),
// the rest summed into one bar.
func contractBars(cts []pipeline.ContractTotals) []barData {
	sorted := slices.Clone(cts)
	slices.SortFunc(sorted, func(a, b pipeline.ContractTotals) int {
		if c := cmp.Compare(b.Allowed, a.Allowed); c != 0 {
			return c
		}
		return cmp.Compare(a.ContractID, b.ContractID)
	})
	var out []barData
	var other money.Cents
	for i, ct := range sorted {
		if i >= MaxContractBars {
			other += ct.Allowed
			continue
		}
		label := ct.ContractNumber
		if label == "" {
			label = ct.ContractID
		}
		out = append(out, barData{label, int64(ct.Allowed), amount(ct.Allowed), colourContract})
	}
	if n := len(sorted) - MaxContractBars; n > 0 {
		out = append(out, barData{fmt.Sprintf("%d other contracts", n), int64(other), amount(other), colourOther})
	}
	return out
}

func newChart(title string, data []barData) chart {
	ch := chart{Title: title, Width: chartWidth, Height: 2*chartMargin + rowHeight*max(len(data), 1)}
	var top int64
	for _, d := range data {
		top = max(top, d.value)
	}
	span := chartWidth - labelWidth - valueWidth
	for i, d := range data {
		w := 0
		if top > 0 && d.value > 0 {
			w = max(1, int(d.value*int64(span)/top))
		}
		y := chartMargin + i*rowHeight
		ch.Bars = append(ch.Bars, bar{
			Label: d.label, Value: d.text, Colour: d.colour,
			Y: y + (rowHeight-barHeight)/2, TextY: y + rowHeight/2 + 5, W: w,
			LabelX: labelWidth - 8, BarX: labelWidth, ValueX: labelWidth + w + 6,
		})
	}
	return ch
}

// count formats n with thousands separators.
func count(n int64) string { return group(strconv.FormatInt(n, 10)) }

// amount formats c as dollars with thousands separators.
func amount(c money.Cents) string {
	s := c.String()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	out := "$" + group(whole) + "." + frac
	if neg {
		return "−" + out
	}
	return out
}

func group(digits string) string {
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

var page = template.Must(template.New("report").Parse(pageTemplate))

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Repricing run report</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1a202c; background: #ffffff; }
h1 { font-size: 26px; margin: 0 0 4px 0; }
h2 { font-size: 19px; margin: 28px 0 8px 0; border-bottom: 2px solid #e2e8f0; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #cbd5e0; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #edf2f7; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { background: #2e8b57; color: #fff; padding: 3px 10px; border-radius: 4px; font-weight: bold; }
.bad { background: #c0392b; color: #fff; padding: 3px 10px; border-radius: 4px; font-weight: bold; }
.muted { color: #4a5568; }
.grid { display: flex; gap: 32px; flex-wrap: wrap; align-items: flex-start; }
code { font-size: 12px; }
svg text { font-size: 13px; font-family: system-ui, sans-serif; }
</style>
</head>
<body>
<h1>Repricing run report</h1>
<p class="muted">Reference {{.S.Reference.Source}} · fingerprint <code>{{.S.Reference.Fingerprint}}</code> · {{.S.Reference.Contracts}} contracts ({{.S.Reference.RejectedContracts}} rejected), {{.S.Reference.Rates}} rates, {{.S.Reference.Issues}} schedule issues · format {{.S.Settings.Format}}, {{.S.Settings.Mode}}{{with .S.Settings.SystemDefaultRate}} · system default rate {{.}}{{end}}</p>
<p>Books: {{if .Balanced}}<span class="ok">balanced</span>{{else}}<span class="bad">NOT balanced</span>{{end}}</p>

<h2>Totals</h2>
<div class="grid">
<table>
<tr><th>Lines</th><th>Count</th></tr>
{{range .Counts}}<tr><td>{{.Label}}</td><td class="n">{{.Value}}</td></tr>
{{end}}</table>
<table>
<tr><th>Money</th><th>Amount</th></tr>
{{range .Money}}<tr><td>{{.Label}}</td><td class="n">{{.Value}}</td></tr>
{{end}}</table>
</div>
{{template "chart" .Lines}}

{{range .Sections}}<h2>{{.Title}}</h2>
<table>
{{range .Rows}}<tr><td>{{index . 0}}</td><td class="n">{{index . 1}}</td></tr>
{{end}}</table>
{{with .Note}}<p class="muted">{{.}}</p>{{end}}
{{end}}
<h2>Exceptions by code and severity</h2>
{{if .CodeRows}}{{template "chart" .Codes}}
<table>
<tr><th>Code</th><th>Severity</th><th>Lines</th><th>Billed</th></tr>
{{range .CodeRows}}<tr><td>{{.Code}}</td><td>{{.Severity}}</td><td class="n">{{.Lines}}</td><td class="n">{{.Billed}}</td></tr>
{{end}}</table>{{else}}<p>No exceptions.</p>{{end}}

<h2>Allowed by contract</h2>
<p class="muted">{{.NContracts}} contracts priced lines.</p>
{{template "chart" .Contracts}}
{{if .S.ByContract}}<table>
<tr><th>Contract</th><th>Number</th><th>Lines</th><th>Billed</th><th>Allowed</th><th>Net payable</th></tr>
{{range .S.ByContract}}<tr><td>{{.ContractID}}</td><td>{{.ContractNumber}}</td><td class="n">{{.Lines}}</td><td class="n">{{.Billed}}</td><td class="n">{{.Allowed}}</td><td class="n">{{.NetPayable}}</td></tr>
{{end}}</table>{{end}}

<h2>Exception examples</h2>
{{if .Examples}}<table>
<tr><th>Code</th><th>Severity</th><th>Claim</th><th>Line</th><th>Source</th><th>Message</th></tr>
{{range .Examples}}<tr><td>{{.Code}}</td><td>{{.Severity}}</td><td>{{.ClaimID}}</td><td>{{.LineNumber}}</td><td>{{.SourceFile}}:{{.SourceRow}}</td><td>{{.Message}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No examples.</p>{{end}}

<h2>Inputs</h2>
<table>
<tr><th>File</th><th>Lines</th><th>Bytes</th><th>SHA-256</th></tr>
{{range .S.Inputs}}<tr><td>{{.File}}</td><td class="n">{{.Lines}}</td><td class="n">{{.Bytes}}</td><td><code>{{.SHA256}}</code></td></tr>
{{end}}</table>

<h2>Files</h2>
<ul>
{{range .Files}}<li><a href="{{.Name}}">{{.Name}}</a> — {{.Description}}</li>
{{end}}</ul>
</body>
</html>
{{define "chart"}}<figure>
<figcaption><strong>{{.Title}}</strong></figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img">
<title>{{.Title}}</title>
{{range .Bars}}<text x="{{.LabelX}}" y="{{.TextY}}" text-anchor="end" fill="#1a202c">{{.Label}}</text>
<rect x="{{.BarX}}" y="{{.Y}}" width="{{.W}}" height="16" fill="{{.Colour}}"></rect>
<text x="{{.ValueX}}" y="{{.TextY}}" fill="#1a202c">{{.Value}}</text>
{{end}}</svg>
</figure>
{{end}}`
