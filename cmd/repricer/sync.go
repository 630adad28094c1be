package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/repricer/repricer/connectors/businesscentral"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
)

// Environment variables of the Business Central client secret. The secret
// is never taken from a flag (flags show up in ps and shell history).
const (
	envBCSecret     = "BC_CLIENT_SECRET"
	envBCSecretFile = "BC_CLIENT_SECRET_FILE"
	envDatabaseURL  = "DATABASE_URL"
)

// maxSecretFile bounds how much of BC_CLIENT_SECRET_FILE is read.
const maxSecretFile = 64 << 10

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "push contracts and rates to other systems",
		Subcommands: []*cli.Command{{
			Name:  "bc",
			Usage: "push every contract and its rates to Microsoft Dynamics 365 Business Central",
			Description: `Makes Business Central hold the contract schedule: creates new contracts with
their rates, updates changed headers and rates, deletes rates that left a
contract. The schedule is validated first; contracts validation rejects are
skipped (listed as "skipped"), and only the usable rates of the others are sent.
What was last written is kept in Postgres (--state), so an unchanged contract
costs no request and each change is written once. A contract renamed in the
schedule (same id, new number) is renamed in Business Central, rates included.

Contracts that left the schedule (synced before, no longer in it) are listed
as "removed" and left in Business Central; --prune deletes them there (rates
first, each with its ETag; one changed in Business Central since the last
sync is a conflict unless --force) and forgets their state.

Output: one line per contract that was (or, with --dry-run, would be) created,
updated, removed, deleted, or is in conflict, failed, skipped or not synced
(--dry-run lists unchanged ones too), then a summary on standard error.
--report FILE writes the full JSON report (--report - writes it to standard
output instead of the lines). Output and report are written on every run: a
sync that stopped (SIGTERM, token refused, Business Central unreachable)
says how far it got and why it stopped.

The client secret comes only from BC_CLIENT_SECRET or from the file named by
BC_CLIENT_SECRET_FILE, never from a flag.

Exit status: 0 every contract synced, unchanged or removed; 1 some contract
failed or is in conflict (changed in Business Central; --force overwrites), or
the run stopped; 2 a usage or configuration error (missing tenant, secret, state
database, unmigrated schema, ...).

Example:
  export BC_TENANT=contoso.onmicrosoft.com BC_ENVIRONMENT=production \
         BC_COMPANY_ID=... BC_CLIENT_ID=... BC_CLIENT_SECRET_FILE=/run/secrets/bc
  repricer sync bc --contracts postgres://repricer@db/contracts --dry-run`,
			OnUsageError: onUsageError,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "contracts", EnvVars: []string{envDatabaseURL}, Usage: "the schedule: contract bundle `DIR` or postgres:// URL (default: $DATABASE_URL)"},
				&cli.StringFlag{Name: "state", Usage: "postgres:// `URL` of the database holding the sync state (default: --contracts when it is a URL, else $DATABASE_URL)"},
				&cli.StringFlag{Name: "base-url", EnvVars: []string{"BC_BASE_URL"}, Value: "https://api.businesscentral.dynamics.com", Usage: "Business Central API `URL`"},
				&cli.StringFlag{Name: "tenant", EnvVars: []string{"BC_TENANT"}, Usage: "Entra tenant id or domain (required)"},
				&cli.StringFlag{Name: "environment", EnvVars: []string{"BC_ENVIRONMENT"}, Usage: "Business Central environment, e.g. production (required)"},
				&cli.StringFlag{Name: "company", EnvVars: []string{"BC_COMPANY_ID"}, Usage: "company `ID` (SystemId GUID, required)"},
				&cli.StringFlag{Name: "client-id", EnvVars: []string{"BC_CLIENT_ID"}, Usage: "Entra application (client) `ID` (required)"},
				&cli.StringFlag{Name: "publisher", EnvVars: []string{"BC_PUBLISHER"}, Value: "repricer", Usage: "APIPublisher of the custom API pages"},
				&cli.StringFlag{Name: "group", EnvVars: []string{"BC_GROUP"}, Value: "contracts", Usage: "APIGroup of the custom API pages"},
				&cli.StringFlag{Name: "api-version", EnvVars: []string{"BC_API_VERSION"}, Value: "v1.0", Usage: "APIVersion of the custom API pages"},
				&cli.StringFlag{Name: "token-url", EnvVars: []string{"BC_TOKEN_URL"}, Usage: "OAuth token endpoint `URL` (default: https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token)"},
				&cli.IntFlag{Name: "concurrency", EnvVars: []string{"BC_CONCURRENCY"}, Value: 5, Usage: "requests in flight at once (Business Central serves 5 per user)"},
				&cli.IntFlag{Name: "max-retries", EnvVars: []string{"BC_MAX_RETRIES"}, Value: 8, Usage: "retries of a throttled or failed request"},
				&cli.BoolFlag{Name: "dry-run", Usage: "read Business Central and print the plan; write nothing, save no state"},
				&cli.BoolFlag{Name: "force", Usage: "overwrite contracts and rates changed in Business Central since the last sync instead of reporting a conflict"},
				&cli.BoolFlag{Name: "prune", Usage: "delete from Business Central the contracts that left the schedule (without it they are listed and left alone)"},
				&cli.StringFlag{Name: "report", Usage: "write the JSON report to `FILE` (- for standard output)"},
				dbTimeoutFlag(),
			},
			Action: syncBC,
		}},
	}
}

// syncBC is the action of "repricer sync bc": flags → configuration →
// businesscentral.Syncer.
func syncBC(c *cli.Context) (err error) {
	ctx := c.Context
	if c.NArg() > 0 {
		return usagef("unexpected arguments %q", c.Args().Slice())
	}
	cfg, err := bcConfig(c)
	if err != nil {
		return err
	}
	client, err := businesscentral.New(cfg)
	if err != nil {
		return &usageError{err}
	}
	src := c.String("contracts")
	if src == "" {
		return usagef("--contracts (a bundle folder or a postgres:// URL, or DATABASE_URL) is required")
	}
	stateURL, err := stateDatabase(c.String("state"), src)
	if err != nil {
		return err
	}

	// A schedule of its own is read first: a bad folder fails before any
	// connection is made.
	var v *contracts.Validated
	if src != stateURL {
		if v, _, err = loadSchedule(ctx, src, c.Duration("db-timeout")); err != nil {
			return err
		}
	}
	db, err := postgres.Open(ctx, stateURL, dbOptions(c))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the state database: %w", cerr)
		}
	}()
	store := postgres.NewBCState(db)
	if err := store.Check(ctx); err != nil {
		if errors.Is(err, postgres.ErrStateSchema) {
			return usagef("state database %s: %w", postgres.Redact(stateURL), err)
		}
		return err
	}
	if v == nil { // the schedule lives in the state database
		s, err := postgres.Load(ctx, db)
		if err != nil {
			return err
		}
		v = contracts.Validate(s)
	}
	cs, rs, skipped := syncable(v)

	retained := make([]string, len(skipped))
	for i, s := range skipped {
		retained[i] = s.ContractID
	}
	syncer := businesscentral.NewSyncer(client, store, businesscentral.Options{
		DryRun: c.Bool("dry-run"), Force: c.Bool("force"), Prune: c.Bool("prune"), Retained: retained,
	})
	rep, err := syncer.Sync(ctx, cs, rs)
	// The output and report are written even when the run stopped: they
	// say how far it got and why it stopped.
	if werr := writeSyncOutput(c, &syncReport{Report: rep, Skipped: skipped}); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	return syncOutcome(rep)
}

// bcConfig builds the client configuration from flags and environment,
// reporting what is missing as usage errors.
func bcConfig(c *cli.Context) (businesscentral.Config, error) {
	cfg := businesscentral.Config{
		BaseURL: c.String("base-url"), Tenant: c.String("tenant"), Environment: c.String("environment"),
		Publisher: c.String("publisher"), Group: c.String("group"), APIVersion: c.String("api-version"),
		CompanyID: c.String("company"), ClientID: c.String("client-id"), TokenURL: c.String("token-url"),
		Concurrency: c.Int("concurrency"), MaxRetries: c.Int("max-retries"),
	}
	for _, req := range []struct{ flag, env, v string }{
		{"tenant", "BC_TENANT", cfg.Tenant},
		{"environment", "BC_ENVIRONMENT", cfg.Environment},
		{"company", "BC_COMPANY_ID", cfg.CompanyID},
		{"client-id", "BC_CLIENT_ID", cfg.ClientID},
		{"publisher", "BC_PUBLISHER", cfg.Publisher},
		{"group", "BC_GROUP", cfg.Group},
		{"base-url", "BC_BASE_URL", cfg.BaseURL},
	} {
		if strings.TrimSpace(req.v) == "" {
			return cfg, usagef("--%s (or %s) is required", req.flag, req.env)
		}
	}
	if cfg.Concurrency <= 0 {
		return cfg, usagef("--concurrency must be positive")
	}
	if cfg.MaxRetries <= 0 {
		return cfg, usagef("--max-retries must be positive")
	}
	secret, err := bcSecret()
	if err != nil {
		return cfg, err
	}
	cfg.ClientSecret = secret
	return cfg, nil
}

// bcSecret reads the client secret from BC_CLIENT_SECRET or the file named
// by BC_CLIENT_SECRET_FILE (surrounding white space removed). Messages name
// the variables and the file, never the secret.
func bcSecret() (string, error) {
	val, hasVal := os.LookupEnv(envBCSecret)
	file, hasFile := os.LookupEnv(envBCSecretFile)
	switch {
	case hasVal && val != "" && hasFile && file != "":
		return "", usagef("both %s and %s are set; set only one", envBCSecret, envBCSecretFile)
	case hasFile && file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", usagef("%s: %w", envBCSecretFile, err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", usagef("%s: reading %s: %w", envBCSecretFile, file, err)
		}
		if len(b) > maxSecretFile {
			return "", usagef("%s: %s is larger than %d bytes; it should hold only the client secret", envBCSecretFile, file, maxSecretFile)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", usagef("%s: %s is empty", envBCSecretFile, file)
		}
		return s, nil
	case strings.TrimSpace(val) != "":
		return strings.TrimSpace(val), nil
	}
	return "", usagef("the Business Central client secret is required: set %s, or %s to a file holding it (it is never taken from a flag)",
		envBCSecret, envBCSecretFile)
}

// stateDatabase picks the database of the sync state: --state, else the
// schedule's database when --contracts is a URL, else DATABASE_URL.
func stateDatabase(flag, contractsSrc string) (string, error) {
	u := flag
	if u == "" && postgres.IsURL(contractsSrc) {
		u = contractsSrc
	}
	if u == "" {
		u = os.Getenv(envDatabaseURL)
	}
	switch {
	case u == "":
		return "", usagef("the sync state lives in Postgres: give --state postgres://..., set DATABASE_URL, " +
			"or read the contracts from Postgres (--contracts postgres://...)")
	case !postgres.IsURL(u):
		return "", usagef("--state must be a postgres:// URL, not %q", postgres.Redact(u))
	}
	return u, nil
}

// skippedContract is a contract validation rejected: not synced. The
// reason is left out (it may quote amounts); "repricer contracts validate"
// prints it.
type skippedContract struct {
	ContractID string `json:"contractId"`
	Number     string `json:"contractNumber,omitempty"`
}

// syncable returns the contracts validation accepted with their usable
// rates, and the rejected contracts. Rates are filtered here too: a
// contract can be rejected after its rates were accepted (term overlaps).
func syncable(v *contracts.Validated) ([]contracts.Contract, []contracts.Rate, []skippedContract) {
	cs := make([]contracts.Contract, 0, len(v.Contracts))
	numbers := make(map[string]string, len(v.Rejected))
	for _, c := range v.Contracts {
		if _, rejected := v.Rejected[c.ID]; rejected {
			numbers[c.ID] = c.Number
			continue
		}
		cs = append(cs, c)
	}
	rs := make([]contracts.Rate, 0, len(v.Rates))
	for _, r := range v.Rates {
		if _, rejected := v.Rejected[r.ContractID]; !rejected {
			rs = append(rs, r)
		}
	}
	skipped := make([]skippedContract, 0, len(v.Rejected))
	for id := range v.Rejected {
		skipped = append(skipped, skippedContract{ContractID: id, Number: numbers[id]})
	}
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].ContractID < skipped[j].ContractID })
	return cs, rs, skipped
}

// syncReport is the JSON report: the library's report plus the contracts
// validation kept out of the sync.
type syncReport struct {
	*businesscentral.Report
	Skipped []skippedContract `json:"skipped"`
}

// writeSyncOutput prints the per-contract lines (or the JSON report for
// --report -) to standard output, writes the --report file, and prints the
// summary to standard error.
func writeSyncOutput(c *cli.Context, out *syncReport) error {
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	path := c.String("report")
	if path == "-" {
		if err := writeJSON(stdout, out); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	} else {
		if err := printSyncLines(stdout, out); err != nil {
			return fmt.Errorf("writing the results: %w", err)
		}
		if path != "" {
			if err := writeReportFile(path, out); err != nil {
				return err
			}
		}
	}
	printSyncSummary(stderr, out)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeReportFile(path string, out *syncReport) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("--report: %w", cerr)
		}
	}()
	if err := writeJSON(f, out); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}

// printSyncLines prints one tab-aligned line per contract: action, contract
// number, id, what was (would be) written, detail. Unchanged contracts are
// listed only in a dry run.
func printSyncLines(w io.Writer, out *syncReport) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	for _, r := range out.Results {
		if r.Action == businesscentral.ActionUnchanged && !out.DryRun {
			continue
		}
		detail := r.Detail
		if r.Action == businesscentral.ActionConflict && !out.Force {
			detail += " (--force overwrites it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Action, r.Number, r.ContractID, changes(r), detail)
	}
	for _, s := range out.Skipped {
		fmt.Fprintf(tw, "skipped\t%s\t%s\t\trejected by validation (see repricer contracts validate)\n", s.Number, s.ContractID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) { // no padding after the last column
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// changes describes the writes of one contract, e.g. "header, rates +3 ~1 -0".
func changes(r businesscentral.ContractResult) string {
	var parts []string
	if r.HeaderWritten {
		parts = append(parts, "header")
	}
	if r.RatesCreated+r.RatesUpdated+r.RatesDeleted > 0 {
		parts = append(parts, fmt.Sprintf("rates +%d ~%d -%d", r.RatesCreated, r.RatesUpdated, r.RatesDeleted))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func printSyncSummary(w io.Writer, out *syncReport) {
	r := out.Report
	mode := ""
	if r.DryRun {
		mode = " (dry run: nothing written)"
	}
	fmt.Fprintf(w, "repricer: bc sync%s: %d contracts: %d create, %d update, %d unchanged, %d conflict, %d failed, %d skipped, "+
		"%d not synced; left the schedule: %d removed, %d deleted; rates: %d create, %d update, %d delete; %d requests (%d retries) in %s\n",
		mode, r.Contracts+len(out.Skipped), r.Created, r.Updated, r.Unchanged, r.Conflicts, r.Failed, len(out.Skipped), r.NotSynced,
		r.Removed, r.Deleted, r.RatesCreated, r.RatesUpdated, r.RatesDeleted, r.Requests, r.Retries,
		(time.Duration(r.WallMillis) * time.Millisecond).String())
}

// maxNamed caps how many contract numbers an exit message lists.
const maxNamed = 10

// syncOutcome is nil when every contract is synced or unchanged, else an
// exit status 1 naming the failed and conflicting contracts.
func syncOutcome(rep *businesscentral.Report) error {
	var failed, conflicts []string
	for _, r := range rep.Results {
		name := r.Number
		if name == "" {
			name = r.ContractID
		}
		switch r.Action {
		case businesscentral.ActionFailed:
			failed = append(failed, name)
		case businesscentral.ActionConflict:
			conflicts = append(conflicts, name)
		}
	}
	if len(failed)+len(conflicts) == 0 {
		return nil
	}
	var parts []string
	if len(failed) > 0 {
		parts = append(parts, fmt.Sprintf("%d contract(s) failed: %s", len(failed), listNames(failed)))
	}
	if len(conflicts) > 0 {
		parts = append(parts, fmt.Sprintf("%d contract(s) in conflict (changed in Business Central; --force overwrites): %s",
			len(conflicts), listNames(conflicts)))
	}
	return &exitStatus{code: 1, err: fmt.Errorf("bc sync: %s", strings.Join(parts, "; "))}
}

func listNames(names []string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxNamed], ", ") + fmt.Sprintf(" and %d more", len(names)-maxNamed)
}
