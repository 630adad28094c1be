-- Reference data: vendors, contract kinds, rate kinds, contracts and rates.
-- Column names follow the contract bundle (connectors/bundle) so that a
-- bundle maps one to one onto these tables. Identifiers and codes use the
-- "C" collation so that ordering and range comparisons are bytewise, the
-- same as Go string comparison.

-- +goose Up

-- +goose StatementBegin
-- codes_ok reports whether every element of a code list is a non-empty,
-- trimmed code without a comma (the bundle separates list items with commas).
CREATE FUNCTION repricer_codes_ok(codes text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(bool_and(c <> '' AND c = btrim(c) AND strpos(c, ',') = 0), true)
    FROM unnest(codes) AS c
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- code_ranges_ok reports whether every element of an excluded-services list
-- is a code "A" or an ascending code range "A-B".
CREATE FUNCTION repricer_code_ranges_ok(ranges text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(bool_and(
        r ~ '^[^,-]+(-[^,-]+)?$'
        AND (strpos(r, '-') = 0
             OR split_part(r, '-', 1) COLLATE "C" <= split_part(r, '-', 2) COLLATE "C")), true)
    FROM unnest(ranges) AS r
$$;
-- +goose StatementEnd

CREATE TABLE vendors (
    vendor_id   text COLLATE "C" PRIMARY KEY CONSTRAINT vendors_vendor_id_check CHECK (vendor_id <> ''),
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- contract_kinds classifies agreements. A contract's kind is derived from
-- its tpa_agreement flag (see contracts.contract_kind).
CREATE TABLE contract_kinds (
    kind        text COLLATE "C" PRIMARY KEY,
    description text NOT NULL
);
INSERT INTO contract_kinds (kind, description) VALUES
    ('DIRECT', 'agreement directly with the provider'),
    ('TPA', 'agreement administered by a third-party administrator');

-- rate_kinds holds the rate kinds with their priority (1 = highest). The
-- kinds are the ones the engine knows; the priorities may be changed.
CREATE TABLE rate_kinds (
    kind        text COLLATE "C" PRIMARY KEY
                CONSTRAINT rate_kinds_kind_check CHECK (kind IN (
                    'CPT_MODIFIER_SPECIALTY', 'CPT_SPECIALTY', 'CPT',
                    'SPECIALTY_VISIT_KIND', 'SPECIALTY', 'VISIT_KIND')),
    priority    integer NOT NULL CONSTRAINT rate_kinds_priority_check CHECK (priority BETWEEN 1 AND 99),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rate_kinds (kind, priority) VALUES
    ('CPT_MODIFIER_SPECIALTY', 1), ('CPT_SPECIALTY', 2), ('CPT', 3),
    ('SPECIALTY_VISIT_KIND', 4), ('SPECIALTY', 5), ('VISIT_KIND', 6);

CREATE TABLE contracts (
    contract_id             text COLLATE "C" PRIMARY KEY
                            CONSTRAINT contracts_contract_id_check CHECK (contract_id <> ''),
    contract_number         text COLLATE "C"
                            CONSTRAINT contracts_contract_number_check CHECK (contract_number <> ''),
    vendor_id               text COLLATE "C" NOT NULL
                            CONSTRAINT contracts_vendor_id_fkey REFERENCES vendors (vendor_id),
    contract_kind           text COLLATE "C" NOT NULL
                            GENERATED ALWAYS AS (CASE WHEN tpa_agreement THEN 'TPA' ELSE 'DIRECT' END) STORED
                            CONSTRAINT contracts_contract_kind_fkey REFERENCES contract_kinds (kind),
    status                  text NOT NULL
                            CONSTRAINT contracts_status_check CHECK (status IN ('Draft', 'Pending', 'Active', 'Expired', 'Terminated')),
    status_reason           text NOT NULL DEFAULT '',
    effective_date          date NOT NULL,
    expiration_date         date NOT NULL,
    auto_renewal            boolean NOT NULL DEFAULT false,
    renewal_term_months     integer CONSTRAINT contracts_renewal_term_months_check CHECK (renewal_term_months > 0),
    renewal_notice_days     integer CONSTRAINT contracts_renewal_notice_days_check CHECK (renewal_notice_days > 0),
    tpa_agreement           boolean NOT NULL DEFAULT false,
    tpa_name                text NOT NULL DEFAULT '',
    tpa_medical_necessity   boolean NOT NULL DEFAULT false,
    tpa_prior_auth_required boolean NOT NULL DEFAULT false,
    default_rate_type       text CONSTRAINT contracts_default_rate_type_check CHECK (default_rate_type IN ('Percentage', 'Amount')),
    default_rate_value      numeric(18,6),
    stop_loss_amount        numeric(18,2) CONSTRAINT contracts_stop_loss_amount_check CHECK (stop_loss_amount > 0),
    admin_fee_pct           numeric(18,6) NOT NULL DEFAULT 0
                            CONSTRAINT contracts_admin_fee_pct_check CHECK (admin_fee_pct BETWEEN 0 AND 100),
    excluded_services       text[] COLLATE "C" NOT NULL DEFAULT '{}'
                            CONSTRAINT contracts_excluded_services_check CHECK (repricer_code_ranges_ok(excluded_services)),
    lesser_of_billed        boolean NOT NULL DEFAULT false,
    -- source_updated_at is the source system's "updated_at" field, kept verbatim.
    source_updated_at       text NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT contracts_term_check CHECK (expiration_date > effective_date),
    CONSTRAINT contracts_default_rate_value_check CHECK (
        default_rate_value IS NULL
        OR coalesce((default_rate_type = 'Percentage' AND default_rate_value BETWEEN 0 AND 200)
                    OR (default_rate_type = 'Amount' AND default_rate_value > 0 AND default_rate_value = round(default_rate_value, 2)), false)),
    -- Contract numbers are unique; deferred so that a re-import may swap them.
    CONSTRAINT contracts_contract_number_key UNIQUE (contract_number) DEFERRABLE INITIALLY DEFERRED,
    -- In-force contracts (the statuses contract selection uses) of one vendor
    -- may not overlap; both term ends are inclusive.
    CONSTRAINT contracts_vendor_term_excl EXCLUDE USING gist (
        vendor_id WITH =,
        daterange(effective_date, expiration_date, '[]') WITH &&
    ) WHERE (status IN ('Active', 'Expired', 'Terminated')) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX contracts_vendor_id_idx ON contracts (vendor_id);

-- rates holds contracted rates. Rows are never deleted by an import: a rate
-- that disappears from its contract's bundle is retired (retired_at set) and
-- kept as history; end-dated rates stay as they are.
CREATE TABLE rates (
    rate_id          text COLLATE "C" PRIMARY KEY CONSTRAINT rates_rate_id_check CHECK (rate_id <> ''),
    contract_id      text COLLATE "C" NOT NULL
                     CONSTRAINT rates_contract_id_fkey REFERENCES contracts (contract_id),
    rate_kind        text COLLATE "C" NOT NULL
                     CONSTRAINT rates_rate_kind_fkey REFERENCES rate_kinds (kind),
    rate_type        text NOT NULL CONSTRAINT rates_rate_type_check CHECK (rate_type IN ('Percentage', 'Amount')),
    rate_value       numeric(18,6) NOT NULL,
    specialty        text COLLATE "C" NOT NULL DEFAULT '',
    visit_kind       text COLLATE "C" NOT NULL DEFAULT '',
    cpt_code         text COLLATE "C" NOT NULL DEFAULT '',
    cpt_range_start  text COLLATE "C" NOT NULL DEFAULT '',
    cpt_range_end    text COLLATE "C" NOT NULL DEFAULT '',
    modifier         text COLLATE "C" NOT NULL DEFAULT '',
    place_of_service text[] COLLATE "C" NOT NULL DEFAULT '{}'
                     CONSTRAINT rates_place_of_service_check CHECK (repricer_codes_ok(place_of_service)),
    effective_date   date NOT NULL,
    end_date         date,
    min_units        integer CONSTRAINT rates_min_units_check CHECK (min_units > 0),
    max_units        integer CONSTRAINT rates_max_units_check CHECK (max_units > 0),
    requires_auth    boolean NOT NULL DEFAULT false,
    requires_review  boolean NOT NULL DEFAULT false,
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    retired_at       timestamptz,

    CONSTRAINT rates_rate_value_check CHECK (
        (rate_type = 'Percentage' AND rate_value BETWEEN 0 AND 200)
        OR (rate_type = 'Amount' AND rate_value > 0 AND rate_value = round(rate_value, 2))),
    CONSTRAINT rates_end_date_check CHECK (end_date >= effective_date),
    CONSTRAINT rates_units_check CHECK (max_units >= min_units),
    CONSTRAINT rates_cpt_check CHECK (
        (cpt_code = '' OR (cpt_range_start = '' AND cpt_range_end = ''))
        AND (cpt_range_start = '') = (cpt_range_end = '')
        AND cpt_range_end >= cpt_range_start)
);
CREATE INDEX rates_contract_id_idx ON rates (contract_id, rate_id);
CREATE INDEX rates_current_idx ON rates (rate_id) WHERE retired_at IS NULL;

-- +goose Down
DROP TABLE rates;
DROP TABLE contracts;
DROP TABLE rate_kinds;
DROP TABLE contract_kinds;
DROP TABLE vendors;
DROP FUNCTION repricer_code_ranges_ok(text[]);
DROP FUNCTION repricer_codes_ok(text[]);
