-- Business Central sync state. Keyed by the repricer ids only (no foreign
-- keys), so that the sync can track contracts whatever their source.

-- +goose Up
CREATE TABLE bc_sync_contracts (
    contract_id  text COLLATE "C" PRIMARY KEY,
    bc_id        text NOT NULL CONSTRAINT bc_sync_contracts_bc_id_key UNIQUE,
    etag         text NOT NULL DEFAULT '',
    payload_hash text NOT NULL,
    synced_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE bc_sync_rates (
    rate_id      text COLLATE "C" PRIMARY KEY,
    contract_id  text COLLATE "C" NOT NULL,
    bc_id        text NOT NULL CONSTRAINT bc_sync_rates_bc_id_key UNIQUE,
    payload_hash text NOT NULL,
    synced_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bc_sync_rates_contract_id_idx ON bc_sync_rates (contract_id);

-- +goose Down
DROP TABLE bc_sync_rates;
DROP TABLE bc_sync_contracts;
