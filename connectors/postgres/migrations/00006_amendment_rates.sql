-- What each amendment did to each rate: the rates it end-dated or
-- deactivated (with the end date they had before) and the rates it added.
-- Together with amendments and the never-deleted rates rows this is the
-- full history of a contract's rates.

-- +goose Up
CREATE TABLE amendment_rates (
    amendment_id      text COLLATE "C" NOT NULL
                      CONSTRAINT amendment_rates_amendment_id_fkey REFERENCES amendments (amendment_id),
    rate_id           text COLLATE "C" NOT NULL,
    action            text NOT NULL
                      CONSTRAINT amendment_rates_action_check CHECK (action IN ('end_dated', 'deactivated', 'already_ended', 'added')),
    previous_end_date date,
    new_end_date      date,
    PRIMARY KEY (amendment_id, rate_id)
);
CREATE INDEX amendment_rates_rate_id_idx ON amendment_rates (rate_id);

-- +goose Down
DROP TABLE amendment_rates;
