-- A change counter for the pricing schedule (rate kinds, contracts and
-- rates): every statement that writes one of those tables bumps it, in the
-- writing transaction. A reader compares it with the counter a compiled
-- schedule image was built at, to reuse the image only while nothing
-- changed, without reading the schedule. The instance id tells databases
-- apart (a restored copy gets a counter of its own history); changed_at
-- tells a counter that was rolled back by a restore and climbed again.

-- +goose Up
CREATE TABLE schedule_version (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    instance   uuid        NOT NULL DEFAULT gen_random_uuid(),
    version    bigint      NOT NULL DEFAULT 1,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO schedule_version DEFAULT VALUES;

-- +goose StatementBegin
CREATE FUNCTION bump_schedule_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE schedule_version SET version = version + 1, changed_at = clock_timestamp();
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER rate_kinds_schedule_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rate_kinds
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_version();
CREATE TRIGGER contracts_schedule_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON contracts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_version();
CREATE TRIGGER rates_schedule_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rates
    FOR EACH STATEMENT EXECUTE FUNCTION bump_schedule_version();

-- +goose Down
DROP TRIGGER rates_schedule_version ON rates;
DROP TRIGGER contracts_schedule_version ON contracts;
DROP TRIGGER rate_kinds_schedule_version ON rate_kinds;
DROP FUNCTION bump_schedule_version();
DROP TABLE schedule_version;
