package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer"
	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/connectors/claimcsv"
	"github.com/repricer/repricer/connectors/claimparquet"
	"github.com/repricer/repricer/rates"
)

// explainCommand is `repricer explain`: the step-by-step trace of how one
// claim line is priced.
func explainCommand() *cli.Command {
	return &cli.Command{
		Name:  "explain",
		Usage: "show step by step how a claim line is priced",
		Description: `Traces the pricing of one claim line: every contract of the vendor and why it
was or was not chosen, every rate of the chosen contract that could apply with
the criterion that accepted or rejected it, the tie-breaks between the accepted
rates and whether RATE_CONFLICT applies, then each step of the arithmetic
(units, percentage or amount, pro-rating, lesser-of, rounding, the stop loss of
the line's case, admin fee, net payable). The result is the one reprice gives.

Give the line inline, as comma-separated column=value pairs (modifiers inside
separated by spaces; claim_id and line_number default to EXPLAIN and 1):
  repricer explain --contracts testdata/sample/contracts \
      --line 'vendor_id=V001,cpt_code=27450,service_date=2024-05-15,billed_amount=1000.00'

or name a line of a claim file; the claim's other lines are priced with it so
that duplicates and stop loss come out as in a run (without --line-number every
line of the claim is explained):
  repricer explain --contracts testdata/sample/contracts \
      --claims testdata/sample/claims.csv --claim-id CLM001013 --line-number 3`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			contractsFlag(),
			&cli.StringFlag{Name: "line", Usage: "the line as `COLUMN=VALUE,...` pairs, e.g. vendor_id=V001,cpt_code=27450,service_date=2024-05-15,billed_amount=1000,modifiers=26 TC"},
			&cli.StringFlag{Name: "claims", Usage: "claim `FILE` (.csv, .parquet or .pq) holding the claim"},
			&cli.StringFlag{Name: "claim-id", Usage: "the claim (`ID`) to explain, with --claims"},
			&cli.Int64Flag{Name: "line-number", Usage: "the line `N` of the claim to explain", DefaultText: "every line"},
			mapFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print JSON (an object for one line, an array for a whole claim)", DisableDefaultText: true},
			systemDefaultRateFlag(),
			dbTimeoutFlag(),
			scheduleCacheFlag(),
		},
		Action: func(c *cli.Context) error {
			return explain(c.Context, c, c.App.Writer)
		},
	}
}

func explain(ctx context.Context, c *cli.Context, stdout io.Writer) error {
	if c.NArg() > 0 {
		return usagef("unexpected arguments %q", c.Args().Slice())
	}
	inline, file := c.String("line"), c.String("claims")
	switch {
	case c.String("contracts") == "":
		return usagef("--contracts (a bundle folder or a postgres:// URL, or DATABASE_URL) is required")
	case inline == "" && file == "":
		return usagef("give the line with --line, or --claims FILE --claim-id ID")
	case inline != "" && file != "":
		return usagef("--line and --claims exclude each other")
	case file != "" && c.String("claim-id") == "":
		return usagef("--claims needs --claim-id")
	case file == "" && (c.IsSet("claim-id") || c.IsSet("line-number")):
		return usagef("--claim-id and --line-number go with --claims")
	}
	opts, err := pricingOptions(c)
	if err != nil {
		return err
	}

	var items []claims.Item
	var targets []int
	if inline != "" {
		l, err := parseLineFlag(inline)
		if err != nil {
			return err
		}
		items, targets = []claims.Item{{Line: l}}, []int{0}
	} else {
		mapping, err := parseMapping(c.StringSlice("map"))
		if err != nil {
			return err
		}
		items, err = readClaim(ctx, file, c.String("claim-id"), mapping)
		if err != nil {
			return err
		}
		for i := range items {
			if !c.IsSet("line-number") || items[i].Line.LineNumber == c.Int64("line-number") {
				targets = append(targets, i)
			}
		}
		if len(targets) == 0 {
			return usagef("claim %s in %s has no line %d", c.String("claim-id"), file, c.Int64("line-number"))
		}
	}

	opts.Explain = true
	eng, _, err := loadEngine(ctx, c.String("contracts"), c.Duration("db-timeout"), opts, scheduleCache(c, warnLogger(c.App.ErrWriter)))
	if err != nil {
		return err
	}
	xs := make([]*rates.Explanation, len(targets))
	for k, i := range targets {
		xs[k] = eng.Explain(items, i)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		var val any = xs
		if len(xs) == 1 && (inline != "" || c.IsSet("line-number")) {
			val = xs[0]
		}
		if err := enc.Encode(val); err != nil {
			return fmt.Errorf("write explanation: %w", err)
		}
		return nil
	}
	for k, x := range xs {
		if k > 0 {
			fmt.Fprintln(stdout, strings.Repeat("─", 72))
		}
		if _, err := io.WriteString(stdout, x.String()); err != nil {
			return fmt.Errorf("write explanation: %w", err)
		}
	}
	return nil
}

// parseLineFlag reads --line: comma-separated column=value pairs.
func parseLineFlag(s string) (claims.Line, error) {
	values := map[string]string{"claim_id": "EXPLAIN", "line_number": "1"}
	for _, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return claims.Line{}, usagef("--line: %q is not COLUMN=VALUE", pair)
		}
		values[k] = strings.TrimSpace(v)
	}
	l, err := repricer.ParseLine(values)
	if err != nil {
		return claims.Line{}, usagef("--line: %w", err)
	}
	return l, nil
}

// readClaim reads the lines of one claim from a claim file, in file order.
// Rows that failed to parse but carry the claim_id come along as
// INVALID_ROW lines, as in a run.
func readClaim(ctx context.Context, path, claimID string, mapping map[string]string) (items []claims.Item, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--claims: %w", err)
	}
	defer f.Close()
	var rd interface{ Read(*claims.Line) error }
	switch strings.ToLower(path[strings.LastIndexByte(path, '.')+1:]) {
	case "parquet", "pq":
		pr, err := claimparquet.NewReader(ctx, f, path, mapping)
		if err != nil {
			return nil, err
		}
		defer func() {
			if cerr := pr.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("read %s: %w", path, cerr)
			}
		}()
		rd = pr
	default:
		cr, err := claimcsv.NewReader(f, path, mapping)
		if err != nil {
			return nil, err
		}
		rd = cr
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var it claims.Item
		if err := rd.Read(&it.Line); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if strings.TrimSpace(it.Line.Raw[claims.ClaimID]) == claimID {
			items = append(items, it)
		}
	}
	if len(items) == 0 {
		return nil, usagef("claim %s is not in %s", claimID, path)
	}
	return items, nil
}
