package nightly

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/repricer/repricer/connectors/businesscentral"
	"github.com/repricer/repricer/connectors/postgres"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/report"
)

// SyncSummary is the Business Central sync in the manifest and the logs:
// counts only, no contract content.
type SyncSummary struct {
	Contracts int `json:"contracts"`
	Skipped   int `json:"skipped"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Conflicts int `json:"conflicts"`
	Failed    int `json:"failed"`
	// Removed: contracts that left the schedule, left in Business Central
	// (the job never prunes; "repricer sync bc --prune" does).
	Removed      int   `json:"removed"`
	NotSynced    int   `json:"not_synced"` // not done when the sync stopped
	RatesCreated int   `json:"rates_created"`
	RatesUpdated int   `json:"rates_updated"`
	RatesDeleted int   `json:"rates_deleted"`
	Requests     int64 `json:"requests"`
	Retries      int64 `json:"retries"`
	// Stopped says why the sync stopped before every contract was done
	// (token refused, Business Central unreachable, cancelled).
	Stopped string `json:"stopped,omitempty"`
}

// SyncError is a Business Central sync that failed, as a whole or for some
// contracts (exit status 1; no manifest is written). Summary says how far
// it got; when it stopped, Summary.Stopped says why.
type SyncError struct {
	Summary *SyncSummary
	Err     error
}

func (e *SyncError) Error() string {
	msg := "bc sync: " + e.Err.Error()
	if s := e.Summary; s != nil && s.Stopped != "" { // how far it got
		msg += fmt.Sprintf(" (stopped after %d created, %d updated, %d unchanged, %d conflicts, %d failed; %d not synced)",
			s.Created, s.Updated, s.Unchanged, s.Conflicts, s.Failed, s.NotSynced)
	}
	return msg
}
func (e *SyncError) Unwrap() error { return e.Err }

// StateStore is where the sync keeps what it last wrote;
// postgres.NewBCState in production.
type StateStore = businesscentral.StateStore

// newStateStore opens the sync state on db and checks its schema.
func newStateStore(ctx context.Context, db *sqlx.DB) (StateStore, error) {
	st := postgres.NewBCState(db)
	if err := st.Check(ctx); err != nil {
		if errors.Is(err, postgres.ErrStateSchema) {
			return nil, &ConfigError{Err: err}
		}
		return nil, err
	}
	return st, nil
}

// bcClient builds the Business Central client from the configuration.
func bcClient(c *BCConfig, secret string, httpClient *http.Client) (*businesscentral.Client, error) {
	cfg := businesscentral.Config{
		BaseURL: c.BaseURL, Tenant: c.Tenant, Environment: c.Environment, CompanyID: c.CompanyID,
		ClientID: c.ClientID, ClientSecret: secret, Publisher: c.Publisher, Group: c.Group,
		APIVersion: c.APIVersion, TokenURL: c.TokenURL, Concurrency: c.Concurrency, MaxRetries: c.MaxRetries,
		HTTPClient: httpClient,
	}
	if cfg.Publisher == "" {
		cfg.Publisher = "repricer"
	}
	if cfg.Group == "" {
		cfg.Group = "contracts"
	}
	cl, err := businesscentral.New(cfg)
	if err != nil {
		return nil, &ConfigError{Err: fmt.Errorf(`"bc": %w`, err)}
	}
	return cl, nil
}

// syncBC pushes the usable contracts of v and their rates. Contracts the
// validation rejected are skipped (counted), as "repricer sync bc" does.
func syncBC(ctx context.Context, cl *businesscentral.Client, store StateStore, force bool, v *contracts.Validated) (*SyncSummary, error) {
	cs := make([]contracts.Contract, 0, len(v.Contracts))
	retained := make([]string, 0, len(v.Rejected)) // in the schedule: not removed
	for _, c := range v.Contracts {
		if _, rejected := v.Rejected[c.ID]; !rejected {
			cs = append(cs, c)
		} else {
			retained = append(retained, c.ID)
		}
	}
	rs := make([]contracts.Rate, 0, len(v.Rates))
	for _, r := range v.Rates {
		if _, rejected := v.Rejected[r.ContractID]; !rejected {
			rs = append(rs, r)
		}
	}
	rep, err := businesscentral.NewSyncer(cl, store, businesscentral.Options{Force: force, Retained: retained}).Sync(ctx, cs, rs)
	sum := &SyncSummary{
		Contracts: rep.Contracts, Skipped: len(v.Rejected), Created: rep.Created, Updated: rep.Updated,
		Unchanged: rep.Unchanged, Conflicts: rep.Conflicts, Failed: rep.Failed, Removed: rep.Removed,
		NotSynced: rep.NotSynced, RatesCreated: rep.RatesCreated, RatesUpdated: rep.RatesUpdated,
		RatesDeleted: rep.RatesDeleted, Requests: rep.Requests, Retries: rep.Retries, Stopped: rep.Stopped,
	}
	if err != nil {
		return sum, &SyncError{Summary: sum, Err: err}
	}
	if sum.Failed+sum.Conflicts > 0 {
		var names []string
		for _, r := range rep.Results {
			if r.Action == businesscentral.ActionFailed || r.Action == businesscentral.ActionConflict {
				names = append(names, string(r.Action)+" "+r.ContractID)
			}
		}
		if len(names) > 10 {
			names = append(names[:10], fmt.Sprintf("and %d more", len(names)-10))
		}
		return sum, &SyncError{Summary: sum, Err: fmt.Errorf("%d contract(s) failed, %d in conflict (changed in Business Central; \"bc.force\" overwrites): %s",
			sum.Failed, sum.Conflicts, strings.Join(names, ", "))}
	}
	return sum, nil
}

// syncSection is the sync's table in report.html: none when the sync did
// not run.
func syncSection(s *SyncSummary) []report.Section {
	if s == nil {
		return nil
	}
	n := strconv.Itoa
	rows := [][2]string{
		{"Contracts", n(s.Contracts)}, {"Created", n(s.Created)}, {"Updated", n(s.Updated)},
		{"Unchanged", n(s.Unchanged)}, {"Skipped (rejected by validation)", n(s.Skipped)},
		{"Conflicts", n(s.Conflicts)}, {"Failed", n(s.Failed)},
		{"Removed from the schedule (left in Business Central)", n(s.Removed)}, {"Not synced", n(s.NotSynced)},
		{"Rates created", n(s.RatesCreated)}, {"Rates updated", n(s.RatesUpdated)}, {"Rates deleted", n(s.RatesDeleted)},
		{"Requests (retries)", strconv.FormatInt(s.Requests, 10) + " (" + strconv.FormatInt(s.Retries, 10) + ")"},
	}
	note := ""
	if s.Stopped != "" {
		note = "The sync stopped before every contract was done: " + s.Stopped
	}
	return []report.Section{{Title: "Business Central sync", Rows: rows, Note: note}}
}
