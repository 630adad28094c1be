// Package businesscentral pushes repricer's provider contracts and their
// rates to Microsoft Dynamics 365 Business Central through two custom API
// pages (providerContracts, contractRates).
//
// Client is the HTTP layer: OAuth2 client credentials with a cached token
// (renewed when a tenth of its lifetime, at most 10 s, is left, and once on
// a 401; a refusal by the token endpoint is final for the client, only
// network errors and 429/5xx are retried), at most Config.Concurrency requests in
// flight, a client-side request-rate limit, retries with exponential backoff
// and full jitter on 429/502/503/504 and network errors (honouring
// Retry-After), OData paging through @odata.nextLink and JSON $batch with
// snapshot isolation. Failures are typed: *APIError, *NetworkError,
// *BatchError, *RetriesExhaustedError and *AuthError, classified with
// errors.Is against ErrRetryable, ErrConflict and ErrFatal.
//
// Syncer is the sync: it hashes each contract's canonical payload (header
// and rates), compares it with the state kept in a StateStore, and sends
// only what changed, so every change reaches Business Central exactly once
// even when requests are throttled, fail or lose their answers. Enum
// values travel as Business Central's API names (EnumName, EnumValue: the
// blank value is "_x0020_"). A contract renamed in the source is renamed in
// Business Central; contracts that left the source are reported, or deleted
// with Options.Prune. Sync returns its Report on every run, saying why a
// run stopped early. See docs/businesscentral.md for the algorithm and its
// guarantees.
package businesscentral
