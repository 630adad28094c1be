package businesscentral

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/repricer/repricer/contracts"
)

// Options controls a Sync.
type Options struct {
	// DryRun computes the plan (reads Business Central, writes nothing,
	// saves no state).
	DryRun bool
	// Force overwrites entities changed in Business Central since the last
	// sync instead of reporting a conflict.
	Force bool
	// Prune deletes from Business Central the contracts that left the
	// schedule: contracts with sync state that are neither in the input
	// nor Retained. Their rates and then the contract are deleted with
	// If-Match, and their state is forgotten. Without Prune they are
	// reported (ActionRemoved) and left alone.
	Prune bool
	// Retained are ids of contracts still in the schedule that this run
	// does not sync (e.g. rejected by validation): they are not removed.
	Retained []string
	// Concurrency is how many contracts are synced at once; default twice
	// the client's concurrency (the client bounds requests in flight).
	Concurrency int
	// ListThreshold: when more contracts than this have no sync state, the
	// contracts are looked up with one paged listing instead of one
	// $filter query each; default 20.
	ListThreshold int
	// MaxRounds bounds the re-read-and-retry rounds per contract; default 4.
	MaxRounds int
	// Now returns the time recorded in the state; default time.Now.
	Now func() time.Time
}

// Action is what a sync did (or would do, in a dry run) to a contract.
type Action string

// Actions.
const (
	ActionCreate    Action = "create"
	ActionUpdate    Action = "update"
	ActionUnchanged Action = "unchanged"
	ActionConflict  Action = "conflict"
	ActionFailed    Action = "failed"
	// ActionRemoved: the contract left the schedule (it has sync state
	// but is not in the input); it is left in Business Central as it is.
	ActionRemoved Action = "removed"
	// ActionDeleted: the contract left the schedule and was (in a dry
	// run: would be) deleted from Business Central with its rates (Prune).
	ActionDeleted Action = "deleted"
	// ActionNotSynced: the sync stopped (Report.Stopped) before the
	// contract was done; what was confirmed of it is in the state.
	ActionNotSynced Action = "not-synced"
)

// ContractResult is the outcome for one contract.
type ContractResult struct {
	ContractID    string `json:"contractId"`
	Number        string `json:"contractNumber"`
	Action        Action `json:"action"`
	HeaderWritten bool   `json:"headerWritten,omitempty"`
	RatesCreated  int    `json:"ratesCreated,omitempty"`
	RatesUpdated  int    `json:"ratesUpdated,omitempty"`
	RatesDeleted  int    `json:"ratesDeleted,omitempty"`
	Requests      int64  `json:"requests"`
	Retries       int64  `json:"retries"`
	Detail        string `json:"detail,omitempty"`
}

// Report is the outcome of a Sync. It serializes to JSON.
type Report struct {
	DryRun     bool      `json:"dryRun"`
	Force      bool      `json:"force"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	WallMillis int64     `json:"wallMillis"`
	Contracts  int       `json:"contracts"`
	Created    int       `json:"created"`
	Updated    int       `json:"updated"`
	Unchanged  int       `json:"unchanged"`
	Conflicts  int       `json:"conflicts"`
	Failed     int       `json:"failed"`
	Removed    int       `json:"removed"`   // left the schedule, left in BC
	Deleted    int       `json:"deleted"`   // left the schedule, deleted from BC
	NotSynced  int       `json:"notSynced"` // not done when the sync stopped
	// Stopped says why the sync stopped before every contract was done
	// (cancelled, token refused, Business Central unreachable, state
	// store failure); "" when it ran to the end.
	Stopped      string           `json:"stopped,omitempty"`
	RatesCreated int              `json:"ratesCreated"`
	RatesUpdated int              `json:"ratesUpdated"`
	RatesDeleted int              `json:"ratesDeleted"`
	OrphanRates  int              `json:"orphanRates"`
	Requests     int64            `json:"requests"` // all requests, shared reads included
	Retries      int64            `json:"retries"`
	Results      []ContractResult `json:"results"`
}

// Syncer pushes contracts and their rates to Business Central.
type Syncer struct {
	c     *Client
	store StateStore
	opt   Options
}

// NewSyncer returns a Syncer writing through c and keeping state in store.
func NewSyncer(c *Client, store StateStore, opt Options) *Syncer {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 2 * c.cfg.Concurrency
	}
	if opt.ListThreshold <= 0 {
		opt.ListThreshold = 20
	}
	if opt.MaxRounds <= 0 {
		opt.MaxRounds = 4
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Syncer{c: c, store: store, opt: opt}
}

// Sync makes Business Central hold cs and rs (rates are matched to
// contracts by ContractID), and lists (or, with Prune, deletes) the
// contracts that left the schedule. Per-contract failures and conflicts
// are in the report; the error is for failures that stop the whole run
// (state store, shared reads, a refused token, Business Central
// unreachable, cancellation). The report is returned in every case: when
// the run stopped, it says why (Stopped) and how far it got.
func (s *Syncer) Sync(ctx context.Context, cs []contracts.Contract, rs []contracts.Rate) (rep *Report, err error) {
	rep = &Report{DryRun: s.opt.DryRun, Force: s.opt.Force, StartedAt: time.Now(), Contracts: len(cs)}
	before := s.c.Stats()
	defer func() {
		if err != nil {
			rep.stop(ctx, err)
		}
		rep.tally()
		rep.FinishedAt = time.Now()
		rep.WallMillis = rep.FinishedAt.Sub(rep.StartedAt).Milliseconds()
		after := s.c.Stats()
		rep.Requests, rep.Retries = after.Requests-before.Requests, after.Retries-before.Retries
	}()
	rep.Results = make([]ContractResult, len(cs))
	for i := range cs {
		rep.Results[i] = ContractResult{ContractID: cs[i].ID, Number: cs[i].Number}
	}

	states, err := s.store.Load(ctx)
	if err != nil {
		return rep, fmt.Errorf("businesscentral: loading sync state: %w", err)
	}
	byContract := map[string][]*contracts.Rate{}
	for i := range rs {
		byContract[rs[i].ContractID] = append(byContract[rs[i].ContractID], &rs[i])
	}
	work := make([]*desired, len(cs))
	seenID, seenNum := map[string]bool{}, map[string]bool{}
	missing := 0
	for i := range cs {
		c := &cs[i]
		switch {
		case c.ID == "" || c.Number == "":
			rep.Results[i].Action, rep.Results[i].Detail = ActionFailed, "contract id and number are required"
			continue
		case seenID[c.ID] || seenNum[c.Number]:
			rep.Results[i].Action, rep.Results[i].Detail = ActionFailed, "duplicate contract id or number in input"
			continue
		}
		seenID[c.ID], seenNum[c.Number] = true, true
		work[i] = newDesired(c, byContract[c.ID])
		delete(byContract, c.ID)
		if st, ok := states[c.ID]; !ok || st.BCID == "" {
			missing++
		}
	}
	for _, orphans := range byContract {
		rep.OrphanRates += len(orphans)
	}
	// Contracts that left the schedule: state, but neither in the input
	// (even refused there) nor retained. Listed after the input's
	// contracts, by id.
	present := make(map[string]bool, len(cs)+len(s.opt.Retained))
	numberOf := make(map[string]string, len(cs)) // contract number -> id in the input
	for i := range cs {
		present[cs[i].ID] = true
		numberOf[cs[i].Number] = cs[i].ID
	}
	for _, id := range s.opt.Retained {
		present[id] = true
	}
	var gone []string
	for id := range states {
		if !present[id] {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		rep.Results = append(rep.Results, ContractResult{ContractID: id, Number: states[id].Number})
	}

	var listed, listedByID map[string]*remoteContract
	if missing > s.opt.ListThreshold {
		listed, listedByID = map[string]*remoteContract{}, map[string]*remoteContract{}
		err := s.c.List(ctx, s.c.EntityURL(ContractsSet), "", func(raw json.RawMessage) error {
			var r remoteContract
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("businesscentral: decoding contract: %w", err)
			}
			listed[r.ContractNumber] = &r
			if r.SourceID != "" {
				listedByID[r.SourceID] = &r
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("businesscentral: listing contracts: %w", err)
		}
	}
	drift, err := s.readDrift(ctx, states)
	if err != nil {
		return rep, err
	}

	if !s.opt.DryRun {
		var inherited []string
		for _, id := range gone {
			if numberOf[states[id].Number] != "" {
				inherited = append(inherited, id)
			}
		}
		if _, err := s.store.Forget(ctx, inherited...); err != nil {
			return rep, fmt.Errorf("businesscentral: forgetting sync state: %w", err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opt.Concurrency)
	start := func(i int, w *worker) {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err() // stopped before its turn: not synced
			}
			res, stop := w.run(gctx)
			rep.Results[i] = res
			return stop
		})
	}
	for i, d := range work {
		if gctx.Err() != nil {
			break
		}
		if d == nil {
			continue
		}
		var st *ContractState
		if v, ok := states[d.contract.ID]; ok {
			v = v.Clone()
			st = &v
		}
		w := &worker{s: s, d: d, st: st, drift: drift[d.contract.Number], listed: listed != nil}
		if listed != nil {
			if w.remote = listed[d.contract.Number]; w.remote == nil {
				w.remote = listedByID[d.contract.ID] // renamed in the store
			}
		}
		start(i, w)
	}
	for j, id := range gone {
		if gctx.Err() != nil {
			break
		}
		st := states[id]
		if heir := numberOf[st.Number]; heir != "" {
			// Its number, and so its BC card, is now another contract's,
			// which adopts the card: nothing to delete. Its state went
			// before the workers started (the card's id is unique there).
			rep.Results[len(cs)+j].Action = ActionRemoved
			rep.Results[len(cs)+j].Detail = "no longer in the schedule; its number and Business Central card are now contract " + heir + "'s"
			continue
		}
		start(len(cs)+j, &worker{s: s, st: &st, drift: drift[st.Number]})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx) // e.g. the signal, not "context canceled"
		}
		return rep, fmt.Errorf("businesscentral: sync stopped: %w", err)
	}
	return rep, nil
}

// notSyncedDetail is the detail of a contract not synced; why the run
// stopped is said once, in Report.Stopped.
const notSyncedDetail = "the sync stopped before this contract was done"

// stop records why the run stopped: contracts not done are not synced.
func (rep *Report) stop(ctx context.Context, err error) {
	rep.Stopped = err.Error()
	if ctx.Err() != nil {
		rep.Stopped = "stopped: " + context.Cause(ctx).Error()
	}
	for i := range rep.Results {
		if rep.Results[i].Action == "" {
			rep.Results[i].Action, rep.Results[i].Detail = ActionNotSynced, notSyncedDetail
		}
	}
}

// tally adds up the results.
func (rep *Report) tally() {
	for _, r := range rep.Results {
		switch r.Action {
		case ActionCreate:
			rep.Created++
		case ActionUpdate:
			rep.Updated++
		case ActionUnchanged:
			rep.Unchanged++
		case ActionConflict:
			rep.Conflicts++
		case ActionFailed:
			rep.Failed++
		case ActionRemoved:
			rep.Removed++
		case ActionDeleted:
			rep.Deleted++
		case ActionNotSynced:
			rep.NotSynced++
		}
		rep.RatesCreated += r.RatesCreated
		rep.RatesUpdated += r.RatesUpdated
		rep.RatesDeleted += r.RatesDeleted
	}
}

// stopsRun reports whether err ends the whole run rather than one
// contract's sync: no token can be had, Business Central stayed
// unreachable through every retry, or the run was cancelled.
func stopsRun(ctx context.Context, err error) bool {
	var auth *AuthError
	var ex *RetriesExhaustedError
	var ne *NetworkError
	return ctx.Err() != nil || errors.As(err, &auth) || (errors.As(err, &ex) && errors.As(ex.Last, &ne))
}

// drifted holds entities of one contract changed in Business Central after
// the last write the state records.
type drifted struct {
	header *remoteContract
	rates  map[string]*remoteRate
}

// readDrift reads contracts and rates modified in Business Central after
// the newest modification the state records (delta reads).
func (s *Syncer) readDrift(ctx context.Context, states map[string]ContractState) (map[string]*drifted, error) {
	var mark time.Time
	for _, st := range states {
		if t, err := time.Parse(time.RFC3339Nano, st.BCModifiedAt); err == nil && t.After(mark) {
			mark = t
		}
		for _, r := range st.Rates {
			if t, err := time.Parse(time.RFC3339Nano, r.BCModifiedAt); err == nil && t.After(mark) {
				mark = t
			}
		}
	}
	if mark.IsZero() {
		return nil, nil
	}
	// A second of slack for clock granularity; our own writes in it match
	// the state's hashes and are ignored.
	filter := "lastModifiedDateTime gt " + mark.Add(-time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
	out := map[string]*drifted{}
	get := func(n string) *drifted {
		if out[n] == nil {
			out[n] = &drifted{rates: map[string]*remoteRate{}}
		}
		return out[n]
	}
	err := s.c.List(ctx, s.c.EntityURL(ContractsSet), filter, func(raw json.RawMessage) error {
		var r remoteContract
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("businesscentral: decoding contract: %w", err)
		}
		get(r.ContractNumber).header = &r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("businesscentral: delta read of contracts: %w", err)
	}
	err = s.c.List(ctx, s.c.EntityURL(RatesSet), filter, func(raw json.RawMessage) error {
		var r remoteRate
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("businesscentral: decoding rate: %w", err)
		}
		get(r.ContractNumber).rates[r.RateID] = &r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("businesscentral: delta read of rates: %w", err)
	}
	return out, nil
}

// worker syncs one contract.
type worker struct {
	s      *Syncer
	d      *desired       // nil: the contract left the schedule
	st     *ContractState // nil: never synced
	drift  *drifted
	listed bool            // remote is the result of the shared listing
	remote *remoteContract // from the shared listing
	res    ContractResult
	wrote  bool
}

// conflictError stops a contract's sync on a conflict.
type conflictError struct{ what string }

func (e *conflictError) Error() string { return e.what }

// run syncs (or removes) the contract. The error is non-nil when the
// failure stops the whole run (stopsRun); the contract is then not synced.
func (w *worker) run(ctx context.Context) (ContractResult, error) {
	ctr := &counters{}
	ctx = withCounters(ctx, ctr)
	var action Action
	var err error
	if w.d == nil {
		w.res = ContractResult{ContractID: w.st.ContractID, Number: w.st.Number}
		action, err = w.remove(ctx)
	} else {
		w.res = ContractResult{ContractID: w.d.contract.ID, Number: w.d.contract.Number}
		action, err = w.sync(ctx)
	}
	w.res.Action = action
	var ce *conflictError
	var stop error
	switch {
	case errors.As(err, &ce):
		w.res.Action, w.res.Detail = ActionConflict, ce.what
	case err != nil && stopsRun(ctx, err):
		w.res.Action, w.res.Detail, stop = ActionNotSynced, notSyncedDetail, err
		if ctx.Err() != nil {
			stop = context.Cause(ctx)
		}
	case err != nil:
		w.res.Action, w.res.Detail = ActionFailed, err.Error()
	case action == ActionRemoved && w.res.Detail == "":
		w.res.Detail = "no longer in the schedule; left in Business Central (prune deletes it)"
	}
	w.res.Requests, w.res.Retries = ctr.requests.Load(), ctr.retries.Load()
	return w.res, stop
}

func (w *worker) hasDrift() bool {
	if w.drift == nil || w.st == nil {
		return false
	}
	if w.drift.header != nil && w.drift.header.hash() != w.st.HeaderHash {
		return true
	}
	for id, r := range w.drift.rates {
		if r.hash() != w.st.Rates[id].Hash {
			return true
		}
	}
	return false
}

func (w *worker) sync(ctx context.Context) (Action, error) {
	if w.st != nil && w.st.BCID != "" {
		if w.st.Hash == w.d.hash && w.st.Number == w.d.contract.Number && !w.hasDrift() {
			return ActionUnchanged, nil
		}
		return w.update(ctx, false)
	}
	remote := w.remote
	if !w.listed {
		var err error
		if remote, err = w.lookup(ctx); err != nil {
			return ActionFailed, err
		}
	}
	if remote == nil {
		return w.create(ctx)
	}
	w.adopt(remote)
	return w.update(ctx, true)
}

// adopt takes r, found in Business Central by number or (renamed in the
// store) by source id, as the contract's copy.
func (w *worker) adopt(r *remoteContract) {
	w.st = &ContractState{
		ContractID: w.d.contract.ID, Number: r.ContractNumber, BCID: r.ID, ETag: r.ETag,
		BCModifiedAt: r.LastModified, Rates: map[string]RateState{},
	}
	w.drift = &drifted{header: r}
}

// lookup finds the contract in Business Central by number or, failing
// that, by source id: a contract renamed in the store (same id, new
// number) is then renamed in BC, not created a second time.
func (w *worker) lookup(ctx context.Context) (*remoteContract, error) {
	var found *remoteContract
	find := func(filter string) error {
		return w.s.c.List(ctx, w.s.c.EntityURL(ContractsSet), filter, func(raw json.RawMessage) error {
			var r remoteContract
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("businesscentral: decoding contract: %w", err)
			}
			found = &r
			return nil
		})
	}
	if err := find("contractNumber eq " + QuoteString(w.d.contract.Number)); err != nil || found != nil {
		return found, err
	}
	return found, find("sourceId eq " + QuoteString(w.d.contract.ID))
}

func (w *worker) save(ctx context.Context, complete bool) error {
	if w.s.opt.DryRun {
		return nil
	}
	w.st.Hash = ""
	if complete {
		w.st.Hash = w.d.hash
	}
	w.st.Number = w.d.contract.Number
	w.st.SyncedAt = w.s.opt.Now()
	if err := w.s.store.Save(ctx, *w.st); err != nil {
		return fmt.Errorf("businesscentral: saving sync state: %w", err)
	}
	return nil
}

func (w *worker) create(ctx context.Context) (Action, error) {
	ids := sortedKeys(w.d.rates)
	if w.s.opt.DryRun {
		w.res.HeaderWritten, w.res.RatesCreated = true, len(ids)
		return ActionCreate, nil
	}
	first := min(len(ids), MaxBatchOperations-1)
	ops := make([]BatchOp, 0, first+1)
	ops = append(ops, BatchOp{Method: http.MethodPost, URL: w.s.c.Relative(ContractsSet), Body: w.d.header})
	for _, id := range ids[:first] {
		ops = append(ops, BatchOp{Method: http.MethodPost, URL: w.s.c.Relative(RatesSet), Body: w.d.rates[id]})
	}
	res, err := w.s.c.Batch(ctx, ops)
	var be *BatchError
	if errors.As(err, &be) {
		// Typically a retry of a batch that was committed but whose answer
		// was lost: the header exists now. Re-read and reconcile.
		remote, lerr := w.lookup(ctx)
		if lerr != nil {
			return ActionFailed, lerr
		}
		if remote == nil {
			return ActionFailed, err
		}
		w.adopt(remote)
		if _, err := w.update(ctx, true); err != nil {
			return ActionFailed, err
		}
		return ActionCreate, nil
	}
	if err != nil {
		return ActionFailed, err
	}
	var h remoteContract
	if err := json.Unmarshal(res[0].Body, &h); err != nil {
		return ActionFailed, fmt.Errorf("businesscentral: decoding created contract: %w", err)
	}
	w.st = &ContractState{
		ContractID: w.d.contract.ID, Number: w.d.contract.Number, BCID: h.ID, ETag: h.ETag,
		HeaderHash: w.d.headerHash, BCModifiedAt: h.LastModified, Rates: map[string]RateState{},
	}
	w.res.HeaderWritten, w.wrote = true, true
	if err := w.applyRateResults(ids[:first], ops[1:], res[1:]); err != nil {
		return ActionFailed, err
	}
	if err := w.save(ctx, first == len(ids)); err != nil {
		return ActionFailed, err
	}
	if first < len(ids) {
		if err := w.reconcileRates(ctx, maps.Clone(w.st.Rates)); err != nil {
			return ActionFailed, err
		}
		if err := w.save(ctx, true); err != nil {
			return ActionFailed, err
		}
	}
	return ActionCreate, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// update brings an existing contract up to date. adopted: the state was
// just built from Business Central's copy (nothing recorded before), so
// differences are ours to overwrite, not conflicts.
func (w *worker) update(ctx context.Context, adopted bool) (Action, error) {
	if err := w.updateHeader(ctx, adopted); err != nil {
		return ActionFailed, err
	}
	// Rates known to be in Business Central, with the hash of their copy.
	var known map[string]RateState
	if adopted {
		var err error
		if known, err = w.readRates(ctx, adopted); err != nil {
			return ActionFailed, err
		}
	} else {
		known = maps.Clone(w.st.Rates)
		if w.drift != nil {
			for id, r := range w.drift.rates {
				h := r.hash()
				last, had := w.st.Rates[id]
				want, wanted := w.d.rateHash[id]
				switch {
				case had && h == last.Hash:
					known[id] = RateState{BCID: r.ID, ETag: r.ETag, Hash: h, BCModifiedAt: r.LastModified}
				case wanted && h == want:
					known[id] = RateState{BCID: r.ID, ETag: r.ETag, Hash: h, BCModifiedAt: r.LastModified}
					w.st.Rates[id] = known[id]
				case !w.s.opt.Force:
					return ActionConflict, &conflictError{what: "rate " + id + " was changed in Business Central since the last sync"}
				default:
					known[id] = RateState{BCID: r.ID, ETag: r.ETag, Hash: h, BCModifiedAt: r.LastModified}
				}
			}
		}
	}
	if err := w.reconcileRates(ctx, known); err != nil {
		return ActionFailed, err
	}
	if err := w.save(ctx, true); err != nil {
		return ActionFailed, err
	}
	if w.wrote || (w.s.opt.DryRun && (w.res.HeaderWritten || w.res.RatesCreated+w.res.RatesUpdated+w.res.RatesDeleted > 0)) {
		return ActionUpdate, nil
	}
	return ActionUnchanged, nil
}

func (w *worker) updateHeader(ctx context.Context, adopted bool) error {
	need := w.d.headerHash != w.st.HeaderHash || w.st.Number != w.d.contract.Number
	if w.drift != nil && w.drift.header != nil {
		r := w.drift.header
		h := r.hash()
		switch {
		case h == w.d.headerHash:
			need = false
			w.st.ETag, w.st.HeaderHash, w.st.BCModifiedAt = r.ETag, h, r.LastModified
		case adopted || h == w.st.HeaderHash || w.s.opt.Force:
			need = true
			w.st.ETag = r.ETag
		default:
			return &conflictError{what: "contract was changed in Business Central since the last sync"}
		}
	}
	if !need {
		return nil
	}
	w.res.HeaderWritten = true
	if w.s.opt.DryRun {
		return nil
	}
	u := w.s.c.EntityURL(ContractsSet) + "(" + w.st.BCID + ")"
	for round := 0; round < w.s.opt.MaxRounds; round++ {
		var out remoteContract
		err := w.s.c.Update(ctx, u, w.st.ETag, w.d.header, &out)
		if err == nil {
			w.wrote = true
			w.st.ETag, w.st.HeaderHash, w.st.BCModifiedAt = out.ETag, w.d.headerHash, out.LastModified
			return w.save(ctx, false)
		}
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("contract was deleted in Business Central (remove its sync state to re-create it): %w", err)
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
		// The ETag is stale: re-read and decide.
		var cur remoteContract
		if err := w.s.c.Get(ctx, u, &cur); err != nil {
			return err
		}
		h := cur.hash()
		switch {
		case h == w.d.headerHash: // our write landed; its answer was lost
			w.wrote = true
			w.st.ETag, w.st.HeaderHash, w.st.BCModifiedAt = cur.ETag, h, cur.LastModified
			return w.save(ctx, false)
		case adopted || h == w.st.HeaderHash || w.s.opt.Force:
			w.st.ETag = cur.ETag
		default:
			return &conflictError{what: "contract was changed in Business Central since the last sync"}
		}
	}
	return fmt.Errorf("businesscentral: contract header kept changing; gave up after %d rounds: %w", w.s.opt.MaxRounds, ErrRetryable)
}

// readRates reads the contract's rates from Business Central. Unless
// trusting (adopted, or Force), a rate whose copy differs both from what
// was last written and from what is wanted is a conflict.
func (w *worker) readRates(ctx context.Context, trusting bool) (map[string]RateState, error) {
	known := map[string]RateState{}
	err := w.s.c.List(ctx, w.s.c.EntityURL(RatesSet), "contractNumber eq "+QuoteString(w.st.Number),
		func(raw json.RawMessage) error {
			var r remoteRate
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("businesscentral: decoding rate: %w", err)
			}
			h := r.hash()
			last, had := w.st.Rates[r.RateID]
			if !trusting && !w.s.opt.Force && had && h != last.Hash && h != w.d.rateHash[r.RateID] {
				return &conflictError{what: "rate " + r.RateID + " was changed in Business Central since the last sync"}
			}
			rs := RateState{BCID: r.ID, ETag: r.ETag, Hash: h, BCModifiedAt: r.LastModified}
			known[r.RateID] = rs
			if h == w.d.rateHash[r.RateID] {
				w.st.Rates[r.RateID] = rs // confirmed
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	for id := range w.st.Rates {
		if _, ok := known[id]; !ok {
			delete(w.st.Rates, id) // not in Business Central
		}
	}
	return known, nil
}

type rateOp struct {
	id string
	op BatchOp
}

// planRates returns the operations turning known into the wanted rates.
func (w *worker) planRates(known map[string]RateState) []rateOp {
	var ops []rateOp
	for _, id := range sortedKeys(w.d.rates) {
		k, ok := known[id]
		switch {
		case !ok:
			ops = append(ops, rateOp{id, BatchOp{Method: http.MethodPost, URL: w.s.c.Relative(RatesSet), Body: w.d.rates[id]}})
		case k.Hash != w.d.rateHash[id]:
			ops = append(ops, rateOp{id, BatchOp{Method: http.MethodPatch, URL: w.s.c.Relative(RatesSet) + "(" + k.BCID + ")",
				IfMatch: k.ETag, Body: w.d.rates[id]}})
		}
	}
	for _, id := range sortedKeys(known) {
		if _, ok := w.d.rates[id]; !ok {
			ops = append(ops, rateOp{id, BatchOp{Method: http.MethodDelete, URL: w.s.c.Relative(RatesSet) + "(" + known[id].BCID + ")",
				IfMatch: known[id].ETag}})
		}
	}
	return ops
}

// reconcileRates sends the rate changes in snapshot batches. When a batch
// fails (stale ETag, duplicate key, missing entity: usually a retried batch
// that had been committed) it re-reads the contract's rates from Business
// Central and plans again.
func (w *worker) reconcileRates(ctx context.Context, known map[string]RateState) error {
	for round := 0; round < w.s.opt.MaxRounds; round++ {
		plan := w.planRates(known)
		if len(plan) == 0 {
			return nil
		}
		if w.s.opt.DryRun {
			for _, p := range plan {
				w.count(p.op.Method)
			}
			return nil
		}
		failed := false
		for start := 0; start < len(plan); start += MaxBatchOperations {
			chunk := plan[start:min(start+MaxBatchOperations, len(plan))]
			ops := make([]BatchOp, len(chunk))
			ids := make([]string, len(chunk))
			for i, p := range chunk {
				ops[i], ids[i] = p.op, p.id
			}
			res, err := w.s.c.Batch(ctx, ops)
			var be *BatchError
			if errors.As(err, &be) {
				failed = true
				break
			}
			if err != nil {
				return err
			}
			if err := w.applyRateResults(ids, ops, res); err != nil {
				return err
			}
			for _, p := range chunk {
				if rs, ok := w.st.Rates[p.id]; ok {
					known[p.id] = rs
				} else {
					delete(known, p.id)
				}
			}
			if err := w.save(ctx, false); err != nil {
				return err
			}
		}
		if !failed {
			return nil
		}
		var err error
		if known, err = w.readRates(ctx, false); err != nil {
			return err
		}
	}
	return fmt.Errorf("businesscentral: rates did not converge after %d rounds: %w", w.s.opt.MaxRounds, ErrRetryable)
}

func (w *worker) count(method string) {
	switch method {
	case http.MethodPost:
		w.res.RatesCreated++
	case http.MethodPatch:
		w.res.RatesUpdated++
	case http.MethodDelete:
		w.res.RatesDeleted++
	}
}

// applyRateResults records confirmed rate operations in the state.
func (w *worker) applyRateResults(ids []string, ops []BatchOp, res []BatchResult) error {
	for i, op := range ops {
		w.wrote = true
		w.count(op.Method)
		if op.Method == http.MethodDelete {
			delete(w.st.Rates, ids[i])
			continue
		}
		var r remoteRate
		if err := json.Unmarshal(res[i].Body, &r); err != nil {
			return fmt.Errorf("businesscentral: decoding rate: %w", err)
		}
		w.st.Rates[r.RateID] = RateState{BCID: r.ID, ETag: r.ETag, Hash: w.d.rateHash[r.RateID], BCModifiedAt: r.LastModified}
	}
	return nil
}
