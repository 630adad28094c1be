package main

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
)

// calendarCommand is `repricer contracts calendar`.
func calendarCommand() *cli.Command {
	return &cli.Command{
		Name:  "calendar",
		Usage: "list contract expirations, renewal notice deadlines and auto-renewals coming up",
		Description: `Lists, from --today through --within days later:
  expiration               a contract without auto-renewal reaches its expiration date
  renewal_notice_deadline  the end of the current term minus renewal_notice_days (30 when not set)
  auto_renewal             an auto-renewing contract's current term ends and it rolls on
sorted by date, then contract. With --runs, also lists the contracts whose
claims were priced after their expiry (EXPIRED_CONTRACT_HONORED) in those run
output folders: contracts that want renewing.

Example:
  repricer contracts calendar --contracts testdata/sample/contracts --within 90d --today 2025-05-01`,
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			contractsFlag(),
			&cli.StringFlag{Name: "within", Value: "90d", Usage: "window length: `N`d days or Nw weeks"},
			&cli.StringFlag{Name: "today", Usage: "first `DAY` of the window (YYYY-MM-DD)", DefaultText: "today"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table, csv or json"},
			&cli.StringSliceFlag{Name: "runs", Usage: "prior run output `DIR` (with priced.csv); repeat for several"},
			dbTimeoutFlag(),
		},
		Action: calendar,
	}
}

// honored counts one contract's lines priced after its expiry.
type honored struct {
	ContractID     string   `json:"contract_id"`
	ContractNumber string   `json:"contract_number"`
	VendorID       string   `json:"vendor_id,omitempty"`
	Expiration     string   `json:"expiration_date,omitempty"`
	Lines          int      `json:"lines"`
	Runs           []string `json:"runs"`
}

type calendarReport struct {
	Today        string                    `json:"today"`
	WithinDays   int                       `json:"within_days"`
	Entries      []contracts.CalendarEntry `json:"entries"`
	HonoredAfter []honored                 `json:"honored_after_expiry,omitempty"`
}

func calendar(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("unexpected arguments %q", c.Args().Slice())
	}
	if c.String("contracts") == "" {
		return usagef("--contracts (a bundle folder or a postgres:// URL, or DATABASE_URL) is required")
	}
	within, err := parseWithin(c.String("within"))
	if err != nil {
		return err
	}
	today := contracts.DateFromTime(time.Now())
	if s := c.String("today"); s != "" {
		if today, err = contracts.ParseDate(s); err != nil {
			return usagef("--today %q: %w", s, err)
		}
	}
	format := strings.ToLower(c.String("format"))
	if format != "table" && format != "csv" && format != "json" {
		return usagef("--format %q: use table, csv or json", c.String("format"))
	}
	v, _, err := loadSchedule(c.Context, c.String("contracts"), c.Duration("db-timeout"))
	if err != nil {
		return err
	}
	rep := calendarReport{Today: today.String(), WithinDays: within, Entries: contracts.Calendar(v, today, within)}
	if rep.Entries == nil {
		rep.Entries = []contracts.CalendarEntry{}
	}
	if runs := c.StringSlice("runs"); len(runs) > 0 {
		if rep.HonoredAfter, err = honoredAfterExpiry(v, runs); err != nil {
			return err
		}
	}
	w := c.App.Writer
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(&rep)
	case "csv":
		err = writeCalendarCSV(w, &rep)
	default:
		err = writeCalendarTable(w, &rep)
	}
	if err != nil {
		return fmt.Errorf("write calendar: %w", err)
	}
	return nil
}

// parseWithin reads "90d", "12w" or a bare number of days.
func parseWithin(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	switch {
	case strings.HasSuffix(t, "d"):
		t = t[:len(t)-1]
	case strings.HasSuffix(t, "w"):
		t, mult = t[:len(t)-1], 7
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 36500 {
		return 0, usagef("--within %q: want a number of days like 90d (or weeks like 12w)", s)
	}
	return n * mult, nil
}

// honoredAfterExpiry counts, per contract, the priced lines flagged
// EXPIRED_CONTRACT_HONORED in each run folder's priced.csv.
func honoredAfterExpiry(v *contracts.Validated, runs []string) ([]honored, error) {
	byID := map[string]*honored{}
	for _, dir := range runs {
		path := filepath.Join(dir, "priced.csv")
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("--runs %s: %w", dir, err)
		}
		err = countHonored(f, dir, byID)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	out := make([]honored, 0, len(byID))
	for _, h := range byID {
		for i := range v.Contracts {
			if ct := &v.Contracts[i]; ct.ID == h.ContractID {
				h.VendorID, h.Expiration = ct.VendorID, ct.Expiration.String()
				if h.ContractNumber == "" {
					h.ContractNumber = ct.Number
				}
			}
		}
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b honored) int {
		if c := cmp.Compare(b.Lines, a.Lines); c != 0 {
			return c
		}
		return cmp.Compare(a.ContractID, b.ContractID)
	})
	return out, nil
}

func countHonored(r io.Reader, run string, byID map[string]*honored) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return err
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"contract_id", "flags"} {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("no %s column: not a priced.csv", need)
		}
	}
	number, hasNumber := col["contract_number"]
	flag := claims.ExpiredContractHonored.String()
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !slices.Contains(strings.Split(rec[col["flags"]], ";"), flag) {
			continue
		}
		id := rec[col["contract_id"]]
		h := byID[id]
		if h == nil {
			h = &honored{ContractID: id}
			if hasNumber {
				h.ContractNumber = rec[number]
			}
			byID[id] = h
		}
		h.Lines++
		if !slices.Contains(h.Runs, run) {
			h.Runs = append(h.Runs, run)
		}
	}
}

var calendarColumns = []string{"date", "days_left", "event", "contract_id", "contract_number", "vendor_id", "status", "detail"}

func writeCalendarCSV(w io.Writer, rep *calendarReport) error {
	cw := csv.NewWriter(w)
	cw.Write(calendarColumns)
	for _, e := range rep.Entries {
		cw.Write([]string{e.Day, strconv.Itoa(e.DaysLeft), e.Event, e.ContractID, e.ContractNumber, e.VendorID, string(e.Status), e.Detail})
	}
	for _, h := range rep.HonoredAfter {
		cw.Write([]string{h.Expiration, "", "honored_after_expiry", h.ContractID, h.ContractNumber, h.VendorID, "",
			fmt.Sprintf("%d lines priced after expiry in %s", h.Lines, strings.Join(h.Runs, " "))})
	}
	cw.Flush()
	return cw.Error()
}

func writeCalendarTable(w io.Writer, rep *calendarReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Contract calendar %s .. %s (%d days)\n\n", rep.Today, addDays(rep.Today, rep.WithinDays), rep.WithinDays)
	if len(rep.Entries) == 0 {
		fmt.Fprintln(tw, "nothing falls in the window")
	} else {
		fmt.Fprintln(tw, "DATE\tIN\tEVENT\tCONTRACT\tNUMBER\tVENDOR\tSTATUS\tDETAIL")
		for _, e := range rep.Entries {
			fmt.Fprintf(tw, "%s\t%dd\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Day, e.DaysLeft, e.Event, e.ContractID, e.ContractNumber, e.VendorID, e.Status, e.Detail)
		}
	}
	if rep.HonoredAfter != nil {
		fmt.Fprintln(tw, "\nContracts whose claims were honored after expiry in recent runs")
		if len(rep.HonoredAfter) == 0 {
			fmt.Fprintln(tw, "none")
		} else {
			fmt.Fprintln(tw, "CONTRACT\tNUMBER\tVENDOR\tEXPIRED\tLINES\tRUNS")
			for _, h := range rep.HonoredAfter {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", h.ContractID, h.ContractNumber, h.VendorID, h.Expiration, h.Lines, strings.Join(h.Runs, " "))
			}
		}
	}
	return tw.Flush()
}

func addDays(day string, n int) string {
	d, err := contracts.ParseDate(day)
	if err != nil {
		return day
	}
	return (d + contracts.Date(n)).String()
}
