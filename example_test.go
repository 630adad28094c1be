package repricer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/repricer/repricer"
	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// sample loads the bundled sample schedule and builds an engine.
func sample() *repricer.Engine {
	sched, err := repricer.LoadBundle(context.Background(), "testdata/sample/contracts")
	if err != nil {
		log.Fatal(err)
	}
	return repricer.NewEngine(sched, repricer.Options{})
}

func mustLine(values map[string]string) claims.Line {
	l, err := repricer.ParseLine(values)
	if err != nil {
		log.Fatal(err)
	}
	return l
}

func ExampleLoadBundle() {
	sched, err := repricer.LoadBundle(context.Background(), "testdata/sample/contracts")
	if err != nil {
		log.Fatal(err)
	}
	v := sched.Validated()
	fmt.Printf("%d contracts (%d rejected), %d usable rates, %d issues\n",
		len(v.Contracts), len(v.Rejected), len(v.Rates), len(sched.Issues()))
	fmt.Println(sched.Issues()[0].Entity, sched.Issues()[0].ID, sched.Issues()[0].Message)
	// Output:
	// 15 contracts (3 rejected), 48 usable rates, 12 issues
	// contract C013 a TPA agreement needs a tpa_name
}

func ExampleNewSchedule() {
	day := func(s string) contracts.Date {
		d, err := contracts.ParseDate(s)
		if err != nil {
			log.Fatal(err)
		}
		return d
	}
	sched := repricer.NewSchedule(
		[]contracts.Contract{{
			ID: "C1", Number: "CON-2024-00001", VendorID: "V1", Status: contracts.Active,
			Effective: day("2024-01-01"), Expiration: day("2024-12-31"),
			AdminFeePct: 2 * money.FixedScale, // 2%
		}},
		[]contracts.Rate{{
			ID: "1", ContractID: "C1", Kind: contracts.KindCPT, Type: contracts.Amount,
			Value: 92 * money.FixedScale, CPTCode: "99213", Effective: day("2024-01-01"), Active: true,
		}},
		nil, // the standard rate kinds
	)
	eng := repricer.NewEngine(sched, repricer.Options{})
	res := eng.PriceLine(mustLine(map[string]string{
		"claim_id": "A1", "line_number": "1", "vendor_id": "V1", "cpt_code": "99213",
		"service_date": "2024-03-04", "billed_amount": "150.00",
	}))
	fmt.Println(res.RateID, res.Allowed, res.AdminFee, res.NetPayable)
	// Output:
	// 1 92.00 1.84 90.16
}

func ExampleEngine_PriceLine() {
	eng := sample()
	res := eng.PriceLine(mustLine(map[string]string{
		"claim_id": "CLM001001", "line_number": "1", "vendor_id": "V001", "cpt_code": "27447",
		"modifiers": "80", "specialty": "ORTHOPEDIC SURGERY", "place_of_service": "11",
		"service_date": "2024-05-15", "billed_amount": "1400.00",
	}))
	fmt.Println(res.Contract.Number, res.RateID, res.RateKind, res.MatchPriority)
	fmt.Println("allowed", res.Allowed, "admin fee", res.AdminFee, "net", res.NetPayable)
	// Output:
	// CON-2024-00001 1004 CPT_MODIFIER_SPECIALTY 1
	// allowed 1150.00 admin fee 40.25 net 1109.75
}

func ExampleEngine_PriceClaim() {
	eng := sample()
	var lines []claims.Line
	for i, l := range []struct{ code, billed, auth string }{
		{"64483", "1200.00", "PA-55120"}, {"64493", "800.00", ""}, {"62323", "700.00", ""}, {"01400", "300.00", ""},
	} {
		lines = append(lines, mustLine(map[string]string{
			"claim_id": "CLM001047", "line_number": fmt.Sprint(i + 1), "vendor_id": "V010", "cpt_code": l.code,
			"service_date": "2024-05-15", "billed_amount": l.billed, "prior_auth_number": l.auth,
		}))
	}
	var total money.Cents
	for i, res := range eng.PriceClaim(lines) {
		fmt.Printf("line %d: before %s allowed %s flags %s\n", i+1, res.AllowedBeforeStopLoss, res.Allowed, res.Flags)
		total += res.Allowed
	}
	fmt.Println("case total", total)
	// Output:
	// line 1: before 612.00 allowed 545.78 flags STOP_LOSS_APPLIED
	// line 2: before 455.00 allowed 405.77 flags REVIEW_REQUIRED;STOP_LOSS_APPLIED
	// line 3: before 389.99 allowed 347.79 flags STOP_LOSS_APPLIED
	// line 4: before 225.00 allowed 200.66 flags STOP_LOSS_APPLIED
	// case total 1500.00
}

func ExampleEngine_Explain() {
	eng := sample()
	line := mustLine(map[string]string{
		"claim_id": "X1", "line_number": "1", "vendor_id": "V001", "cpt_code": "27450",
		"service_date": "2024-05-15", "billed_amount": "1000.00",
	})
	x, err := eng.Explain([]claims.Line{line}, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("contract:", x.Contract.ChosenID, "-", x.Contract.Rule)
	fmt.Println("winner:", x.Rate.WinnerID)
	for _, tb := range x.Rate.TieBreaks {
		fmt.Printf("  %s beats %s on %s\n", tb.Winner, tb.Loser, tb.Criterion)
	}
	for _, s := range x.Steps {
		fmt.Printf("  %s: %s -> %s\n", s.Name, s.Detail, s.Result)
	}
	// Output:
	// contract: C001 - step 1a: exactly one contract is in force on 2024-05-15
	// winner: 1007
	//   1007 beats 1006 on range_start
	//   1007 beats 1005 on range_start
	//   rate: rate 1007 (CPT), priority 3 -> Percentage 95.00
	//   units: 1 units, no unit limits -> priced_units = 1
	//   percentage: 1000.00 × 95.00% -> 950.00
	//   lesser of billed: min(950.00, billed 1000.00) -> 950.00
	//   round: half away from zero to cents: 950.00 -> allowed_before_stop_loss = 950.00
	//   prior auth: no prior_auth_number; neither the rate nor the contract requires one -> ok
	//   stop loss: case T = 950.00 <= S = 5000.00 -> allowed_amount = 950.00
	//   admin fee: 950.00 × 3.50% = 33.25, rounded half away from zero -> admin_fee = 33.25
	//   net payable: 950.00 − 33.25 -> net_payable = 916.75
}

func ExampleEngine_Run() {
	eng := sample()
	out, err := os.MkdirTemp("", "repricer-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	sum, err := eng.Run(context.Background(), repricer.RunConfig{
		Claims: []string{"testdata/sample/claims.csv"},
		OutDir: filepath.Join(out, "run"),
	})
	if err != nil {
		log.Fatal(err)
	}
	c := sum.Counts
	fmt.Printf("%d lines: %d priced, %d error exceptions, %d review exceptions\n",
		c.InputLines, c.PricedLines, c.ErrorExceptions, c.ReviewExceptions)
	entries, err := os.ReadDir(filepath.Join(out, "run"))
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// 401 lines: 365 priced, 36 error exceptions, 69 review exceptions
	// exceptions.csv
	// priced.csv
	// schedule_issues.csv
	// summary.json
}

func ExampleEngine_Run_reader() {
	eng := sample()
	out, err := os.MkdirTemp("", "repricer-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(out)
	csv := "claim_id,line_number,vendor_id,cpt_code,service_date,billed_amount\n" +
		"A1,1,V001,27450,2024-05-15,1000.00\n" +
		"A1,2,V999,27450,2024-05-15,50.00\n"
	sum, err := eng.Run(context.Background(), repricer.RunConfig{
		Input:  strings.NewReader(csv),
		OutDir: filepath.Join(out, "run"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum.Counts.PricedLines, "priced,", sum.Counts.ErrorExceptions, "error exception")
	// Output:
	// 1 priced, 1 error exception
}

func ExampleParseLine() {
	_, err := repricer.ParseLine(map[string]string{
		"claim_id": "A1", "line_number": "1", "vendor_id": "V1", "cpt_code": "99213",
		"service_date": "2024-02-30", "billed_amount": "10.00",
	})
	var le *repricer.LineError
	if errors.As(err, &le) {
		fmt.Println("bad field:", le.Field)
	}
	_, err = repricer.ParseLine(map[string]string{"charge": "10"})
	fmt.Println(err != nil)
	// Output:
	// bad field: service_date
	// true
}

func ExampleSchedule_Calendar() {
	sched, err := repricer.LoadBundle(context.Background(), "testdata/sample/contracts")
	if err != nil {
		log.Fatal(err)
	}
	today, _ := contracts.ParseDate("2025-05-01")
	for _, e := range sched.Calendar(today, 90) {
		fmt.Println(e.Day, e.Event, e.ContractID)
	}
	// Output:
	// 2025-05-31 renewal_notice_deadline C005
	// 2025-06-30 auto_renewal C004
	// 2025-06-30 expiration C005
}

func ExampleEngine_PriceCSV() {
	eng := sample()
	in := "claim_id,line_number,vendor_id,cpt_code,service_date,billed_amount\n" +
		"A1,1,V001,27450,2024-05-15,1000.00\n" +
		"A1,2,V999,27450,2024-05-15,50.00\n"
	var priced, exceptions strings.Builder
	sum, err := eng.PriceCSV(context.Background(), strings.NewReader(in), &priced, &exceptions, repricer.StreamOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum.Counts.PricedLines, "priced,", sum.Counts.ErrorExceptions, "error exception, books balanced:", sum.Books.Balanced)
	fmt.Print(strings.SplitAfter(priced.String(), "\n")[1])
	// Output:
	// 1 priced, 1 error exception, books balanced: true
	// A1,1,V001,,,27450,,,,,2024-05-15,1,1000.00,,C001,CON-2024-00001,1007,CPT,3,Percentage,95.00,1,950.00,0.00,950.00,33.25,916.75,
}

func ExampleEngine_PriceRecords() {
	eng := sample()
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "claim_id", Type: arrow.BinaryTypes.String},
		{Name: "line_number", Type: arrow.PrimitiveTypes.Int64},
		{Name: "vendor_id", Type: arrow.BinaryTypes.String},
		{Name: "cpt_code", Type: arrow.BinaryTypes.String},
		{Name: "service_date", Type: arrow.FixedWidthTypes.Date32},
		{Name: "billed_amount", Type: &arrow.Decimal128Type{Precision: 18, Scale: 2}},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"A1", "A1"}, nil)
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"V001", "V001"}, nil)
	b.Field(3).(*array.StringBuilder).AppendValues([]string{"27450", "73560"}, nil)
	day := arrow.Date32FromTime(time.Date(2024, 5, 15, 0, 0, 0, 0, time.UTC))
	b.Field(4).(*array.Date32Builder).AppendValues([]arrow.Date32{day, day}, nil)
	b.Field(5).(*array.Decimal128Builder).AppendValues([]decimal128.Num{decimal128.FromI64(100000), decimal128.FromI64(21000)}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	if err != nil {
		log.Fatal(err)
	}
	defer rr.Release()

	var allowed []string
	collect := func(r arrow.RecordBatch) error {
		col := r.Column(int(r.Schema().FieldIndices("allowed_amount")[0])).(*array.Decimal128)
		for i := 0; i < col.Len(); i++ {
			allowed = append(allowed, money.Cents(col.Value(i).LowBits()).String())
		}
		return nil
	}
	sum, err := eng.PriceRecords(context.Background(), rr, collect, func(arrow.RecordBatch) error { return nil }, repricer.StreamOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum.Counts.PricedLines, "priced; allowed:", strings.Join(allowed, ", "))
	// Output:
	// 2 priced; allowed: 950.00, 145.50
}

func ExampleLoadEngine() {
	// Streamed in bounded memory, as repricer reprice loads it; the same
	// prices as LoadBundle and NewEngine.
	eng, err := repricer.LoadEngine(context.Background(), "testdata/sample/contracts", repricer.Options{})
	if err != nil {
		log.Fatal(err)
	}
	res := eng.PriceLine(mustLine(map[string]string{
		"claim_id": "CLM001001", "line_number": "1", "vendor_id": "V001", "cpt_code": "27447",
		"modifiers": "80", "specialty": "ORTHOPEDIC SURGERY", "place_of_service": "11",
		"service_date": "2024-05-15", "billed_amount": "1400.00",
	}))
	fmt.Println(res.RateID, "allowed", res.Allowed)
	_, err = eng.Explain([]claims.Line{{}}, 0)
	fmt.Println(errors.Is(err, repricer.ErrNoExplain))
	// Output:
	// 1004 allowed 1150.00
	// true
}

func ExampleEngine_PricedRecords() {
	eng := sample()
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "claim_id", Type: arrow.BinaryTypes.String},
		{Name: "line_number", Type: arrow.PrimitiveTypes.Int64},
		{Name: "vendor_id", Type: arrow.BinaryTypes.String},
		{Name: "cpt_code", Type: arrow.BinaryTypes.String},
		{Name: "service_date", Type: arrow.BinaryTypes.String},
		{Name: "billed_amount", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"A1", "A1", "A2"}, nil)
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{1, 2, 1}, nil)
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"V001", "V001", "V999"}, nil)
	b.Field(3).(*array.StringBuilder).AppendValues([]string{"27450", "73560", "27450"}, nil)
	b.Field(4).(*array.StringBuilder).AppendValues([]string{"2024-05-15", "2024-05-15", "2024-05-15"}, nil)
	b.Field(5).(*array.StringBuilder).AppendValues([]string{"1000.00", "210.00", "50.00"}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	in, err := array.NewRecordReader(schema, []arrow.RecordBatch{rec})
	if err != nil {
		log.Fatal(err)
	}
	defer in.Release()

	exceptions := 0
	priced := eng.PricedRecords(context.Background(), in, func(b arrow.RecordBatch) error {
		exceptions += int(b.NumRows())
		return nil
	}, repricer.StreamOptions{})
	defer priced.Release()
	// priced is an array.RecordReader: hand it on, e.g. to ipc.NewWriter
	// or a Flight stream. Here its rows are read back.
	for priced.Next() {
		b := priced.RecordBatch()
		lines := b.Column(b.Schema().FieldIndices("line_number")[0]).(*array.Int64)
		allowed := b.Column(b.Schema().FieldIndices("allowed_amount")[0]).(*array.Decimal128)
		for i := 0; i < int(b.NumRows()); i++ {
			fmt.Println("line", lines.Value(i), "allowed", money.Cents(allowed.Value(i).LowBits()))
		}
	}
	if err := priced.Err(); err != nil {
		log.Fatal(err) // discard what was read: the run did not balance
	}
	fmt.Println(priced.Summary().Counts.PricedLines, "priced,", exceptions, "exception row")
	// Output:
	// line 1 allowed 950.00
	// line 2 allowed 145.50
	// 2 priced, 1 exception row
}
