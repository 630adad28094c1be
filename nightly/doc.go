// Package nightly is the unattended nightly job behind "repricer run": one
// command a scheduler (cron, Airflow, a Kubernetes CronJob) starts every
// night, that either finishes correctly or fails loudly and never leaves
// half a result.
//
// A run reads its Config (a JSON file; secrets only from the environment),
// resolves it for the run date ({{date}} in the output folder and claim
// globs), takes a lock so that two runs over the same output folder cannot
// overlap (a Postgres advisory lock, or without a database a lock file with
// the owner's pid and stale detection), withdraws the previous manifest,
// then syncs contract changes to Business Central and reprices the night's
// claim files concurrently. The pipeline publishes its outputs atomically;
// the run then writes report.html and, last, the manifest _SUCCESS.json
// listing every published file with its size and SHA-256, the books check,
// the run id and the inputs' checksums. A folder without a manifest holds
// no complete run: a run killed at any point leaves none, and the rerun
// writes byte-identical files.
//
// See docs/nightly.md for the configuration keys, exit statuses and how to
// schedule it.
package nightly
