-- Amounts (a rate's or a contract default's Amount value) may have up to
-- six decimal places, as the numeric(18,6) columns hold: per-unit prices
-- such as 0.107 a unit are ordinary in fee schedules, and the pricing
-- multiplies by the units before it rounds once to cents. The contract
-- folder always accepted them; the store now does too.

-- +goose Up
ALTER TABLE rates DROP CONSTRAINT rates_rate_value_check;
ALTER TABLE rates ADD CONSTRAINT rates_rate_value_check CHECK (
    (rate_type = 'Percentage' AND rate_value BETWEEN 0 AND 200)
    OR (rate_type = 'Amount' AND rate_value > 0));
ALTER TABLE contracts DROP CONSTRAINT contracts_default_rate_value_check;
ALTER TABLE contracts ADD CONSTRAINT contracts_default_rate_value_check CHECK (
    default_rate_value IS NULL
    OR coalesce((default_rate_type = 'Percentage' AND default_rate_value BETWEEN 0 AND 200)
                OR (default_rate_type = 'Amount' AND default_rate_value > 0), false));

-- +goose Down
ALTER TABLE rates DROP CONSTRAINT rates_rate_value_check;
ALTER TABLE rates ADD CONSTRAINT rates_rate_value_check CHECK (
    (rate_type = 'Percentage' AND rate_value BETWEEN 0 AND 200)
    OR (rate_type = 'Amount' AND rate_value > 0 AND rate_value = round(rate_value, 2)));
ALTER TABLE contracts DROP CONSTRAINT contracts_default_rate_value_check;
ALTER TABLE contracts ADD CONSTRAINT contracts_default_rate_value_check CHECK (
    default_rate_value IS NULL
    OR coalesce((default_rate_type = 'Percentage' AND default_rate_value BETWEEN 0 AND 200)
                OR (default_rate_type = 'Amount' AND default_rate_value > 0 AND default_rate_value = round(default_rate_value, 2)), false));
