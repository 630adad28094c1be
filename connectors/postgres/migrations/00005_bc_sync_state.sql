-- Business Central sync state, complete: everything
-- businesscentral.ContractState and RateState hold (connectors/postgres/
-- bcstate.go reads and writes it).
--
-- * bc_sync_contracts gains the contract number, the header hash and BC's
--   lastModifiedDateTime; payload_hash is the contract hash (header and
--   rates), '' while a sync of the contract is incomplete.
-- * bc_sync_rates gains the ETag and BC's lastModifiedDateTime, and is keyed
--   by (contract_id, rate_id): the state of a rate belongs to its contract,
--   and contracts are saved concurrently, so a rate moving from one contract
--   to another must not collide with its old contract's state.
-- * The bc_id uniqueness constraints go: the state records what Business
--   Central confirmed, and a contract adopting the BC entity of a contract
--   that left the input (whose state is kept) must not fail.
-- lastModifiedDateTime is kept as text, exactly as Business Central sent it.

-- +goose Up
ALTER TABLE bc_sync_contracts
    DROP CONSTRAINT bc_sync_contracts_bc_id_key,
    ADD COLUMN contract_number text NOT NULL DEFAULT '',
    ADD COLUMN header_hash     text NOT NULL DEFAULT '',
    ADD COLUMN bc_modified_at  text NOT NULL DEFAULT '';

ALTER TABLE bc_sync_rates
    DROP CONSTRAINT bc_sync_rates_bc_id_key,
    DROP CONSTRAINT bc_sync_rates_pkey,
    ADD COLUMN etag           text NOT NULL DEFAULT '',
    ADD COLUMN bc_modified_at text NOT NULL DEFAULT '',
    ADD CONSTRAINT bc_sync_rates_pkey PRIMARY KEY (contract_id, rate_id);
-- The primary key's index serves look-ups by contract.
DROP INDEX bc_sync_rates_contract_id_idx;

-- +goose Down
-- Fails if two contracts' states hold the same rate id or BC id.
CREATE INDEX bc_sync_rates_contract_id_idx ON bc_sync_rates (contract_id);
ALTER TABLE bc_sync_rates
    DROP CONSTRAINT bc_sync_rates_pkey,
    DROP COLUMN bc_modified_at,
    DROP COLUMN etag,
    ADD CONSTRAINT bc_sync_rates_pkey PRIMARY KEY (rate_id),
    ADD CONSTRAINT bc_sync_rates_bc_id_key UNIQUE (bc_id);

ALTER TABLE bc_sync_contracts
    DROP COLUMN bc_modified_at,
    DROP COLUMN header_hash,
    DROP COLUMN contract_number,
    ADD CONSTRAINT bc_sync_contracts_bc_id_key UNIQUE (bc_id);
