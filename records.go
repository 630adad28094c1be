package repricer

import (
	"context"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/repricer/repricer/connectors/claimparquet"
)

// RecordStream is the priced rows of a pricing in progress as an
// array.RecordReader of claimparquet.PricedSchema: hand it to the next
// Arrow consumer (an IPC writer, a Flight stream, a DuckDB or DataFusion
// scan). See Engine.PricedRecords.
type RecordStream struct {
	refs    atomic.Int64
	schema  *arrow.Schema
	batches chan arrow.RecordBatch // closed when pricing ends
	cancel  context.CancelFunc
	cur     arrow.RecordBatch
	ended   bool
	// Set before batches is closed, read after.
	sum *Summary
	err error
}

var _ array.RecordReader = (*RecordStream)(nil)

// PricedRecords prices the claim lines read from in (as PriceRecords does)
// in a goroutine of its own and returns the priced rows as a record
// reader, one batch at a time as they are priced, so memory stays bounded
// (each batch holds up to claimparquet.RowGroupRows rows). Exception rows
// go to exceptions (required: every line is accounted for), which is
// called from the pricing goroutine and must not wait on the returned
// reader; each batch is released when it returns.
//
// Pricing stops when ctx is done or the reader is released. Once Next
// returns false, Err reports why pricing failed (for example the books do
// not balance: the consumer must then discard what it received) and
// Summary holds the run's account.
func (e *Engine) PricedRecords(ctx context.Context, in array.RecordReader, exceptions func(arrow.RecordBatch) error, opts StreamOptions) *RecordStream {
	ctx, cancel := context.WithCancel(ctx)
	s := &RecordStream{schema: claimparquet.PricedSchema(), batches: make(chan arrow.RecordBatch, 1), cancel: cancel}
	s.refs.Store(1)
	go func() {
		sum, err := e.PriceRecords(ctx, in, func(b arrow.RecordBatch) error {
			b.Retain()
			select {
			case s.batches <- b:
				return nil
			case <-ctx.Done():
				b.Release()
				return ctx.Err()
			}
		}, exceptions, opts)
		s.sum, s.err = sum, err
		close(s.batches)
	}()
	return s
}

// Schema is claimparquet.PricedSchema.
func (s *RecordStream) Schema() *arrow.Schema { return s.schema }

// Next waits for the next batch of priced rows; it returns false when
// pricing has ended (see Err).
func (s *RecordStream) Next() bool {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.ended {
		return false
	}
	b, ok := <-s.batches
	if !ok {
		s.ended = true
		return false
	}
	s.cur = b
	return true
}

// RecordBatch is the current batch, valid until the next call to Next or
// Release; Retain it to keep it longer.
func (s *RecordStream) RecordBatch() arrow.RecordBatch { return s.cur }

// Record is RecordBatch.
//
// Deprecated: use RecordBatch (as array.RecordReader says).
func (s *RecordStream) Record() arrow.RecordBatch { return s.cur }

// Err is nil until Next has returned false, then the error pricing ended
// with, if any.
func (s *RecordStream) Err() error {
	if !s.ended {
		return nil
	}
	return s.err
}

// Summary is nil until Next has returned false, then the run's account
// (nil if pricing failed).
func (s *RecordStream) Summary() *Summary {
	if !s.ended {
		return nil
	}
	return s.sum
}

// Retain adds a reference.
func (s *RecordStream) Retain() { s.refs.Add(1) }

// Release drops a reference; at the last one it stops pricing if it is
// still going, waits for it, and releases the batches it holds.
func (s *RecordStream) Release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	s.cancel()
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	for b := range s.batches {
		b.Release()
	}
	s.ended = true
}
