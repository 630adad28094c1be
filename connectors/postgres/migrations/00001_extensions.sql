-- btree_gist lets an exclusion constraint combine equality on a text column
-- (the vendor) with overlap on a date range (the contract term). It is a
-- trusted extension, so a database owner can create it without superuser.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- +goose Down
-- The extension may be shared with other schemas; leave it installed.
SELECT 1;
