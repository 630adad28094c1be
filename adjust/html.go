package adjust

import (
	"cmp"
	"html/template"
	"io"
	"slices"

	"github.com/repricer/repricer/money"
)

// LargestChanges is how many lines the HTML report lists as the largest
// changes.
const LargestChanges = 20

// Bar colours of the HTML report's chart of the net payable delta by
// contract.
const (
	colourIncrease = "#2e8b57"
	colourDecrease = "#c0392b"
)

type htmlView struct {
	R          *Report
	Amounts    []amountRow
	Reasons    []reasonRow
	Contracts  []GroupTotals
	Chart      deltaChart
	Largest    []*Line
	Excepted   []*Line // priced before, an exception now
	Priced     []*Line // an exception before, priced now
	NotPriced  string
	TotalLabel string
}

type amountRow struct {
	Label           string
	Old, New, Delta money.Cents
}

type reasonRow struct {
	Reason Reason
	Lines  int64
}

type deltaChart struct {
	Height, Width, Mid int
	Bars               []deltaBar
}

type deltaBar struct {
	Label, Value, Colour string
	X, Y, W, TextY       int
}

// Chart geometry, in SVG user units.
const (
	chartWidth = 900
	chartLabel = 260
	chartRow   = 24
	chartBar   = 16
)

func (rep *Report) htmlView() *htmlView {
	t := &rep.Totals
	v := &htmlView{R: rep, Contracts: rep.ByContract, NotPriced: NotPricedLabel, TotalLabel: TotalLabel,
		Amounts: []amountRow{
			{"Allowed amount", t.OldAllowed, t.NewAllowed, t.DeltaAllowed},
			{"Admin fee", t.OldAdminFee, t.NewAdminFee, t.DeltaAdminFee},
			{"Net payable", t.OldNet, t.NewNet, t.DeltaNet},
		}}
	for _, r := range Reasons() {
		if n := rep.ByReason[r]; n > 0 {
			v.Reasons = append(v.Reasons, reasonRow{r, n})
		}
	}
	for i := range rep.Lines {
		l := &rep.Lines[i]
		switch l.Reason {
		case Unchanged:
			continue
		case NewlyExcepted:
			v.Excepted = append(v.Excepted, l)
		case NewlyPriced:
			v.Priced = append(v.Priced, l)
		}
		if _, _, dn := l.Delta(); dn != 0 {
			v.Largest = append(v.Largest, l)
		}
	}
	abs := func(c money.Cents) money.Cents { return max(c, -c) }
	slices.SortStableFunc(v.Largest, func(a, b *Line) int {
		_, _, da := a.Delta()
		_, _, db := b.Delta()
		return cmp.Compare(abs(db), abs(da))
	})
	v.Largest = v.Largest[:min(len(v.Largest), LargestChanges)]

	var most money.Cents
	for _, g := range rep.ByContract {
		most = max(most, abs(g.DeltaNet))
	}
	half := (chartWidth - chartLabel) / 2
	v.Chart = deltaChart{Width: chartWidth, Mid: chartLabel + half, Height: chartRow*len(rep.ByContract) + 8}
	for i, g := range rep.ByContract {
		label := g.Key
		if label == "" {
			label = NotPricedLabel
		} else if g.ContractNumber != "" {
			label += " " + g.ContractNumber
		}
		b := deltaBar{Label: label, Value: g.DeltaNet.String(), Y: 4 + i*chartRow, TextY: 4 + i*chartRow + chartBar - 3}
		if most > 0 {
			b.W = int(int64(half-60) * int64(abs(g.DeltaNet)) / int64(most))
		}
		b.X, b.Colour = v.Chart.Mid, colourIncrease
		if g.DeltaNet < 0 {
			b.X, b.Colour = v.Chart.Mid-b.W, colourDecrease
		}
		v.Chart.Bars = append(v.Chart.Bars, b)
	}
	return v
}

// WriteHTML writes the adjustment report as one self-contained HTML page
// (adjustment_report.html): totals before, after and the delta; the lines
// by reason; the delta by contract, as a chart and a table; the largest
// changes; and the lines that moved into or out of exceptions, each with
// the amendment behind it when known.
func (rep *Report) WriteHTML(w io.Writer) error {
	return htmlTemplate.Execute(w, rep.htmlView())
}

var htmlTemplate = template.Must(template.New("adjust").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Adjustment report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #1a202c; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #cbd5e0; padding: 3px 8px; text-align: left; font-size: 13px; }
th { background: #edf2f7; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; }
.up { color: ` + colourIncrease + `; } .down { color: ` + colourDecrease + `; }
.muted { color: #4a5568; }
svg text { font-size: 13px; font-family: system-ui, sans-serif; }
</style>
</head>
<body>
<h1>Adjustment report</h1>
<p class="muted">Prior run {{.R.Prior}} · current run {{.R.Current}} · {{.R.Totals.Lines}} lines compared, {{.R.Totals.ChangedLines}} changed</p>

<h2>Totals</h2>
<table>
<tr><th></th><th>Before</th><th>After</th><th>Delta</th></tr>
{{range .Amounts}}<tr><td>{{.Label}}</td><td class="n">{{.Old}}</td><td class="n">{{.New}}</td><td class="n">{{.Delta}}</td></tr>
{{end}}</table>

<h2>Lines by reason</h2>
<table>
<tr><th>Reason</th><th>Lines</th></tr>
{{range .Reasons}}<tr><td>{{.Reason}}</td><td class="n">{{.Lines}}</td></tr>
{{end}}<tr class="total"><td>{{.TotalLabel}}</td><td class="n">{{.R.Totals.Lines}}</td></tr>
</table>

{{with .R.Amendments}}<h2>Amendments</h2>
<table>
<tr><th>Amendment</th><th>Contract</th><th>Effective</th><th>Reason</th></tr>
{{range .}}<tr><td>{{.ID}}</td><td>{{.ContractID}}</td><td>{{.EffectiveDate}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{end}}

<h2>By contract</h2>
<p class="muted">Each line counts once, under the contract that prices it now (else the one that priced it before).</p>
<svg width="{{.Chart.Width}}" height="{{.Chart.Height}}" viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}" role="img" aria-label="Net payable delta by contract">
<line x1="{{.Chart.Mid}}" y1="0" x2="{{.Chart.Mid}}" y2="{{.Chart.Height}}" stroke="#4a5568"/>
{{range .Chart.Bars}}<text x="0" y="{{.TextY}}">{{.Label}}</text><rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="16" fill="{{.Colour}}"/><text x="{{$.Chart.Width}}" y="{{.TextY}}" text-anchor="end">{{.Value}}</text>
{{end}}</svg>
<table>
<tr><th>Contract</th><th>Number</th><th>Vendor</th><th>Lines</th><th>Changed</th><th>Allowed before</th><th>Allowed after</th><th>Net payable before</th><th>Net payable after</th><th>Net payable delta</th></tr>
{{range .Contracts}}<tr><td>{{if .Key}}{{.Key}}{{else}}{{$.NotPriced}}{{end}}</td><td>{{.ContractNumber}}</td><td>{{.VendorID}}</td><td class="n">{{.Lines}}</td><td class="n">{{.ChangedLines}}</td><td class="n">{{.OldAllowed}}</td><td class="n">{{.NewAllowed}}</td><td class="n">{{.OldNet}}</td><td class="n">{{.NewNet}}</td><td class="n">{{.DeltaNet}}</td></tr>
{{end}}{{with .R.Totals}}<tr class="total"><td>{{$.TotalLabel}}</td><td></td><td></td><td class="n">{{.Lines}}</td><td class="n">{{.ChangedLines}}</td><td class="n">{{.OldAllowed}}</td><td class="n">{{.NewAllowed}}</td><td class="n">{{.OldNet}}</td><td class="n">{{.NewNet}}</td><td class="n">{{.DeltaNet}}</td></tr>{{end}}
</table>

<h2>Largest changes</h2>
{{if .Largest}}{{template "lines" .Largest}}{{else}}<p class="muted">No line changed its net payable.</p>{{end}}

<h2>Moved into exceptions</h2>
{{if .Excepted}}{{template "lines" .Excepted}}{{else}}<p class="muted">None.</p>{{end}}

<h2>Moved out of exceptions</h2>
{{if .Priced}}{{template "lines" .Priced}}{{else}}<p class="muted">None.</p>{{end}}
</body>
</html>
{{define "lines"}}<table>
<tr><th>Claim</th><th>Line</th><th>Code</th><th>Service date</th><th>Billed</th><th>Reason</th><th>Before</th><th>After</th><th>Net payable before</th><th>Net payable after</th><th>Amendment</th></tr>
{{range .}}<tr><td>{{.ClaimID}}</td><td>{{.LineNumber}}</td><td>{{.CPTCode}}</td><td>{{.ServiceDate}}</td><td class="n">{{.BilledAmount}}</td><td>{{.Reason}}</td><td>{{.Old.Status}} {{.Old.ContractID}} {{.Old.RateID}}</td><td>{{.New.Status}} {{.New.ContractID}} {{.New.RateID}}</td><td class="n">{{.Old.NetPayable}}</td><td class="n">{{.New.NetPayable}}</td><td>{{with .Amendment}}{{.ID}}: {{.Reason}}{{end}}</td></tr>
{{end}}</table>{{end}}
`))
