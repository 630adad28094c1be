-- The amendment log and the run ledger.

-- +goose Up
CREATE TABLE amendments (
    amendment_id   text COLLATE "C" PRIMARY KEY CONSTRAINT amendments_amendment_id_check CHECK (amendment_id <> ''),
    contract_id    text COLLATE "C" NOT NULL,
    reason         text NOT NULL,
    amendment_date date NOT NULL,
    effective_date date NOT NULL,
    retroactive    boolean NOT NULL DEFAULT false,
    applied_at     timestamptz
);
CREATE INDEX amendments_contract_id_idx ON amendments (contract_id, effective_date);

CREATE TABLE runs (
    run_id                text COLLATE "C" PRIMARY KEY CONSTRAINT runs_run_id_check CHECK (run_id <> ''),
    started_at            timestamptz NOT NULL DEFAULT now(),
    finished_at           timestamptz,
    inputs                jsonb NOT NULL DEFAULT '{}',
    reference_fingerprint text,
    counts                jsonb,
    totals                jsonb,
    output_location       text,
    CONSTRAINT runs_finished_check CHECK (finished_at >= started_at)
);

-- +goose Down
DROP TABLE runs;
DROP TABLE amendments;
