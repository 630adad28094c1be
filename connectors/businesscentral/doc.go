// Package businesscentral pushes repricer's provider contracts and their
// rates to Microsoft Dynamics 365 Business Central through two custom API
// pages (providerContracts, contractRates).
//
// Client is the HTTP layer: OAuth2 client credentials with a cached token
// that is refreshed once on a 401, at most Config.Concurrency requests in
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
// even when requests are throttled, fail or lose their answers. See
// docs/businesscentral.md for the algorithm and its guarantees.
package businesscentral
