package businesscentral

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// remove handles a contract that left the schedule (w.d is nil, w.st its
// state). Without Prune it is only reported. With Prune its rates and then
// the contract itself are deleted from Business Central, each with the
// ETag the state records, in snapshot batches; an entity changed in
// Business Central since the last sync is a conflict (left alone) unless
// Force. The state is forgotten once Business Central confirmed the
// deletion of the contract, and shrinks with every confirmed batch before.
func (w *worker) remove(ctx context.Context) (Action, error) {
	if !w.s.opt.Prune {
		return ActionRemoved, nil
	}
	st := w.st
	if d := w.drift; d != nil && !w.s.opt.Force {
		if d.header != nil && d.header.hash() != st.HeaderHash {
			return ActionConflict, &conflictError{what: "contract was changed in Business Central since the last sync"}
		}
		for id, r := range d.rates {
			if last, ok := st.Rates[id]; !ok || r.hash() != last.Hash {
				return ActionConflict, &conflictError{what: "rate " + id + " was changed in Business Central since the last sync"}
			}
		}
	}
	known := st.Rates
	if d := w.drift; d != nil { // with Force: what BC holds now
		for id, r := range d.rates {
			known[id] = RateState{BCID: r.ID, ETag: r.ETag, Hash: r.hash(), BCModifiedAt: r.LastModified}
		}
	}
	w.res.HeaderWritten = true
	if w.s.opt.DryRun {
		w.res.RatesDeleted = len(known)
		return ActionDeleted, nil
	}
	for round := 0; len(known) > 0; round++ {
		if round == w.s.opt.MaxRounds {
			return ActionFailed, fmt.Errorf("businesscentral: rates did not converge after %d rounds: %w", w.s.opt.MaxRounds, ErrRetryable)
		}
		failed, err := w.deleteRates(ctx, known)
		if err != nil {
			return ActionFailed, err
		}
		if !failed {
			break
		}
		if known, err = w.readRemovedRates(ctx); err != nil {
			return ActionFailed, err
		}
	}
	if err := w.deleteHeader(ctx); err != nil {
		return ActionFailed, err
	}
	if _, err := w.s.store.Forget(ctx, st.ContractID); err != nil {
		return ActionFailed, fmt.Errorf("businesscentral: forgetting sync state: %w", err)
	}
	return ActionDeleted, nil
}

// deleteRates deletes the known rates in snapshot batches, saving the
// state after each. failed: a batch was refused (stale ETag, already
// gone) and the rates must be read again.
func (w *worker) deleteRates(ctx context.Context, known map[string]RateState) (failed bool, err error) {
	ids := sortedKeys(known)
	for start := 0; start < len(ids); start += MaxBatchOperations {
		chunk := ids[start:min(start+MaxBatchOperations, len(ids))]
		ops := make([]BatchOp, len(chunk))
		for i, id := range chunk {
			ops[i] = BatchOp{Method: http.MethodDelete, URL: w.s.c.Relative(RatesSet) + "(" + known[id].BCID + ")", IfMatch: known[id].ETag}
		}
		_, err := w.s.c.Batch(ctx, ops)
		var be *BatchError
		if errors.As(err, &be) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		for _, id := range chunk {
			delete(w.st.Rates, id)
			delete(known, id)
			w.res.RatesDeleted++
		}
		if err := w.s.store.Save(ctx, *w.st); err != nil {
			return false, fmt.Errorf("businesscentral: saving sync state: %w", err)
		}
	}
	return false, nil
}

// readRemovedRates reads the rates Business Central holds for the removed
// contract. One changed since the last sync (or unknown to the state) is
// a conflict unless Force.
func (w *worker) readRemovedRates(ctx context.Context) (map[string]RateState, error) {
	known := map[string]RateState{}
	err := w.s.c.List(ctx, w.s.c.EntityURL(RatesSet), "contractNumber eq "+QuoteString(w.st.Number),
		func(raw json.RawMessage) error {
			var r remoteRate
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("businesscentral: decoding rate: %w", err)
			}
			h := r.hash()
			if last, ok := w.st.Rates[r.RateID]; !w.s.opt.Force && (!ok || h != last.Hash) {
				return &conflictError{what: "rate " + r.RateID + " was changed in Business Central since the last sync"}
			}
			known[r.RateID] = RateState{BCID: r.ID, ETag: r.ETag, Hash: h, BCModifiedAt: r.LastModified}
			return nil
		})
	return known, err
}

// deleteHeader deletes the contract with If-Match. A stale ETag leads to a
// re-read: unchanged (or Force) → deleted with the new ETag, else a
// conflict. A contract already gone counts as deleted.
func (w *worker) deleteHeader(ctx context.Context) error {
	u := w.s.c.EntityURL(ContractsSet) + "(" + w.st.BCID + ")"
	etag := w.st.ETag
	for round := 0; round < w.s.opt.MaxRounds; round++ {
		err := w.s.c.Delete(ctx, u, etag)
		if err == nil || errors.Is(err, ErrNotFound) {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
		var cur remoteContract
		if err := w.s.c.Get(ctx, u, &cur); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}
		if cur.hash() != w.st.HeaderHash && !w.s.opt.Force {
			return &conflictError{what: "contract was changed in Business Central since the last sync"}
		}
		etag = cur.ETag
	}
	return fmt.Errorf("businesscentral: contract kept changing; gave up after %d rounds: %w", w.s.opt.MaxRounds, ErrRetryable)
}
