package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/repricer/repricer/connectors/businesscentral"
)

// Tables of the Business Central sync state (migrations 00003 and 00005).
const (
	TableBCSyncContracts = "bc_sync_contracts"
	TableBCSyncRates     = "bc_sync_rates"
)

// BCState keeps the Business Central sync state (businesscentral.StateStore)
// in the bc_sync_contracts and bc_sync_rates tables: one row per contract
// and one per rate of each contract. It is safe for concurrent use.
type BCState struct {
	db *sqlx.DB
}

var _ businesscentral.StateStore = (*BCState)(nil)

// NewBCState returns a state store on db. The database must be migrated
// (Migrate); BCState does not own db and never closes it.
func NewBCState(db *sqlx.DB) *BCState { return &BCState{db: db} }

// StateError is a failure reading or writing the Business Central sync
// state. On a failed Save the previous state of the contract remains.
type StateError struct {
	Op         string // "check", "load", "save" or "forget"
	ContractID string // the contract saved; "" for load
	Table      string // the table being read or written, when known
	Err        error  // the cause; a *ConstraintError when a constraint refused a row
}

func (e *StateError) Error() string {
	msg := "postgres: bc sync state: " + e.Op
	if e.ContractID != "" {
		msg += " " + e.ContractID
	}
	if e.Table != "" {
		msg += ": " + e.Table
	}
	return msg + ": " + e.Err.Error()
}

func (e *StateError) Unwrap() error { return e.Err }

var errNoContractID = errors.New("contract id is empty")

// ErrStateSchema means the database lacks the sync state tables or columns:
// it is not migrated to the current schema (run Migrate, or "repricer db
// migrate").
var ErrStateSchema = errors.New("the database schema is not current (run \"repricer db migrate\")")

// Check verifies that the database has the sync state tables with every
// column BCState uses. A database that needs migrating gives a *StateError
// wrapping ErrStateSchema.
func (s *BCState) Check(ctx context.Context) error {
	for _, q := range []struct{ table, sql string }{
		{TableBCSyncContracts, `SELECT contract_id, contract_number, bc_id, etag, header_hash, payload_hash,
			bc_modified_at, synced_at FROM bc_sync_contracts LIMIT 0`},
		{TableBCSyncRates, `SELECT contract_id, rate_id, bc_id, etag, payload_hash, bc_modified_at, synced_at
			FROM bc_sync_rates LIMIT 0`},
	} {
		rows, err := s.db.QueryContext(ctx, q.sql)
		if err == nil {
			err = rows.Close()
		}
		if err != nil {
			return &StateError{Op: "check", Table: q.table, Err: schemaError(err)}
		}
	}
	return nil
}

// schemaError marks err with ErrStateSchema when it is a missing table or
// column.
func schemaError(err error) error {
	if pqErr := pq.As(err); pqErr != nil &&
		(pqErr.Code == pqerror.UndefinedTable || pqErr.Code == pqerror.UndefinedColumn) {
		return fmt.Errorf("%w: %w", ErrStateSchema, err)
	}
	return err
}

// Load returns every saved contract state keyed by contract id, rates
// included (Rates is never nil). Both tables are read, one streamed query
// each, in one REPEATABLE READ READ ONLY transaction, so a Save committing
// meanwhile is seen whole or not at all. Rate rows whose contract has no
// state row are ignored.
func (s *BCState) Load(ctx context.Context) (out map[string]businesscentral.ContractState, err error) {
	fail := func(table string, cause error) error {
		return &StateError{Op: "load", Table: table, Err: schemaError(cause)}
	}
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fail("", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the load already failed; the rollback error adds nothing
			out = nil
			return
		}
		if cerr := tx.Commit(); cerr != nil {
			out, err = nil, fail("", cerr)
		}
	}()

	out = map[string]businesscentral.ContractState{}
	err = queryEach(ctx, tx, `SELECT contract_id, contract_number, bc_id, etag, header_hash, payload_hash,
		bc_modified_at, synced_at FROM bc_sync_contracts`, func(rows *sql.Rows) error {
		var st businesscentral.ContractState
		if err := rows.Scan(&st.ContractID, &st.Number, &st.BCID, &st.ETag, &st.HeaderHash, &st.Hash,
			&st.BCModifiedAt, &st.SyncedAt); err != nil {
			return err
		}
		st.Rates = map[string]businesscentral.RateState{}
		out[st.ContractID] = st
		return nil
	})
	if err != nil {
		return nil, fail(TableBCSyncContracts, err)
	}

	var contractID, rateID string
	err = queryEach(ctx, tx, `SELECT contract_id, rate_id, bc_id, etag, payload_hash, bc_modified_at
		FROM bc_sync_rates`, func(rows *sql.Rows) error {
		var r businesscentral.RateState
		if err := rows.Scan(&contractID, &rateID, &r.BCID, &r.ETag, &r.Hash, &r.BCModifiedAt); err != nil {
			return err
		}
		if st, ok := out[contractID]; ok {
			st.Rates[rateID] = r // Rates is a map: the copy in out shares it
		}
		return nil
	})
	if err != nil {
		return nil, fail(TableBCSyncRates, err)
	}
	return out, nil
}

// queryEach runs q and calls f for each row, then checks the rows' error
// and closes them.
func queryEach(ctx context.Context, tx *sqlx.Tx, q string, f func(*sql.Rows) error) (err error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer closeInto(&err, rows)
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Save replaces the state of st.ContractID, its rates included, in one
// transaction: after it returns nil, Load returns st (SyncedAt truncated
// to microseconds; a zero SyncedAt is stored as the time of the save);
// after it fails, the previous state remains. Rates not in st.Rates
// are removed. Save does not modify st.
func (s *BCState) Save(ctx context.Context, st businesscentral.ContractState) (err error) {
	fail := func(table string, cause error) error {
		return &StateError{Op: "save", ContractID: st.ContractID, Table: table, Err: schemaError(asConstraintError(cause))}
	}
	if st.ContractID == "" {
		return fail("", errNoContractID)
	}
	var syncedAt sql.NullTime
	if !st.SyncedAt.IsZero() {
		syncedAt = sql.NullTime{Time: st.SyncedAt.Truncate(time.Microsecond), Valid: true}
	}
	n := len(st.Rates)
	ids := make([]string, 0, n)
	for id := range st.Rates {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	bcIDs, etags, hashes, modified := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, id := range ids {
		r := st.Rates[id]
		bcIDs[i], etags[i], hashes[i], modified[i] = r.BCID, r.ETag, r.Hash, r.BCModifiedAt
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fail("", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the save already failed; the rollback error adds nothing
			return
		}
		if cerr := tx.Commit(); cerr != nil {
			err = fail("", cerr)
		}
	}()

	if _, err := tx.ExecContext(ctx, `INSERT INTO bc_sync_contracts
		(contract_id, contract_number, bc_id, etag, header_hash, payload_hash, bc_modified_at, synced_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8::timestamptz, now()))
		ON CONFLICT (contract_id) DO UPDATE SET
			contract_number = EXCLUDED.contract_number, bc_id = EXCLUDED.bc_id, etag = EXCLUDED.etag,
			header_hash = EXCLUDED.header_hash, payload_hash = EXCLUDED.payload_hash,
			bc_modified_at = EXCLUDED.bc_modified_at, synced_at = EXCLUDED.synced_at`,
		st.ContractID, st.Number, st.BCID, st.ETag, st.HeaderHash, st.Hash, st.BCModifiedAt, syncedAt); err != nil {
		return fail(TableBCSyncContracts, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM bc_sync_rates WHERE contract_id = $1`, st.ContractID); err != nil {
		return fail(TableBCSyncRates, err)
	}
	if n == 0 {
		return nil
	}
	// One statement for all rates: the arrays travel as parameters.
	if _, err := tx.ExecContext(ctx, `INSERT INTO bc_sync_rates
		(contract_id, rate_id, bc_id, etag, payload_hash, bc_modified_at, synced_at)
		SELECT $1, r.rate_id, r.bc_id, r.etag, r.payload_hash, r.bc_modified_at, c.synced_at
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
			AS r(rate_id, bc_id, etag, payload_hash, bc_modified_at),
			bc_sync_contracts c
		WHERE c.contract_id = $1`,
		st.ContractID, pq.Array(ids), pq.Array(bcIDs), pq.Array(etags), pq.Array(hashes), pq.Array(modified)); err != nil {
		return fail(TableBCSyncRates, err)
	}
	return nil
}

// Forget removes the sync state of the given contracts, rates included,
// in one transaction, and returns how many contract states it removed. The
// next sync looks such contracts up in Business Central by number again
// (adopting them if they exist, creating them if not) — the remedy for a
// contract deleted in Business Central.
func (s *BCState) Forget(ctx context.Context, contractIDs ...string) (n int, err error) {
	fail := func(table string, cause error) error {
		return &StateError{Op: "forget", Table: table, Err: cause}
	}
	if len(contractIDs) == 0 {
		return 0, nil
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fail("", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // already failed; the rollback error adds nothing
			n = 0
			return
		}
		if cerr := tx.Commit(); cerr != nil {
			n, err = 0, fail("", cerr)
		}
	}()
	if _, err := tx.ExecContext(ctx, `DELETE FROM bc_sync_rates WHERE contract_id = ANY($1::text[])`, pq.Array(contractIDs)); err != nil {
		return 0, fail(TableBCSyncRates, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM bc_sync_contracts WHERE contract_id = ANY($1::text[])`, pq.Array(contractIDs))
	if err != nil {
		return 0, fail(TableBCSyncContracts, err)
	}
	removed, err := res.RowsAffected()
	if err != nil {
		return 0, fail(TableBCSyncContracts, err)
	}
	return int(removed), nil
}
