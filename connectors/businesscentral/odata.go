package businesscentral

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Collection is one page of an OData collection.
type Collection struct {
	Context  string            `json:"@odata.context"`
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

// List reads every entity of the collection at collURL (absolute, e.g.
// EntityURL("providerContracts")) matching filter ("" for all), following
// @odata.nextLink from page to page, and calls fn for each entity in order.
// It never builds $skip queries.
func (c *Client) List(ctx context.Context, collURL, filter string, fn func(json.RawMessage) error) error {
	u := collURL
	if filter != "" {
		u += "?" + (url.Values{"$filter": {filter}}).Encode()
	}
	h := http.Header{}
	if c.cfg.PageSize > 0 {
		h.Set("Prefer", "odata.maxpagesize="+strconv.Itoa(c.cfg.PageSize))
	}
	for u != "" {
		resp, err := c.Do(ctx, Request{Method: http.MethodGet, URL: u, Header: h})
		if err != nil {
			return err
		}
		var page Collection
		if err := json.Unmarshal(resp.Body, &page); err != nil {
			return fmt.Errorf("businesscentral: decoding page of %s: %w", redact(u), err)
		}
		for _, v := range page.Value {
			if err := fn(v); err != nil {
				return err
			}
		}
		u = page.NextLink
	}
	return nil
}

// QuoteString returns s as an OData string literal.
func QuoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Get reads one entity into out.
func (c *Client) Get(ctx context.Context, entityURL string, out any) error {
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, URL: entityURL})
	if err != nil {
		return err
	}
	return decode(resp, entityURL, out)
}

// Create POSTs body to the collection and decodes the created entity.
func (c *Client) Create(ctx context.Context, collURL string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("businesscentral: encoding: %w", err)
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, URL: collURL, Body: b})
	if err != nil {
		return err
	}
	return decode(resp, collURL, out)
}

// Update PATCHes the entity with If-Match: etag and decodes the result.
func (c *Client) Update(ctx context.Context, entityURL, etag string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("businesscentral: encoding: %w", err)
	}
	resp, err := c.Do(ctx, Request{Method: http.MethodPatch, URL: entityURL, Body: b, Header: http.Header{"If-Match": {etag}}})
	if err != nil {
		return err
	}
	return decode(resp, entityURL, out)
}

// Delete deletes the entity with If-Match: etag.
func (c *Client) Delete(ctx context.Context, entityURL, etag string) error {
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, URL: entityURL, Header: http.Header{"If-Match": {etag}}})
	return err
}

func decode(resp *Response, u string, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("businesscentral: decoding response of %s: %w", redact(u), err)
	}
	return nil
}

// BatchOp is one operation of a $batch. URL is relative to the API root
// of the custom pages (e.g. "companies(…)/contractRates") or absolute.
type BatchOp struct {
	Method  string
	URL     string
	IfMatch string // sent as If-Match when set
	Body    any    // JSON-encoded when non-nil
}

// BatchResult is the response to one operation.
type BatchResult struct {
	Status int
	Body   json.RawMessage
}

type batchReq struct {
	Method  string            `json:"method"`
	ID      string            `json:"id"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

type batchResp struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// Batch sends ops (at most MaxBatchOperations) as one JSON $batch with
// Isolation: snapshot, so Business Central applies all of them or none.
// When an operation fails the error is a *BatchError and nothing was
// applied; otherwise results are in the order of ops.
//
// The batch is retried as a whole on retryable failures. When a retried
// batch had in fact been committed, its operations fail on the second run
// (duplicate key, stale ETag); callers re-read and reconcile.
func (c *Client) Batch(ctx context.Context, ops []BatchOp) ([]BatchResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	if len(ops) > MaxBatchOperations {
		return nil, fmt.Errorf("businesscentral: %d operations in one $batch, at most %d: %w", len(ops), MaxBatchOperations, ErrFatal)
	}
	reqs := make([]batchReq, len(ops))
	for i, op := range ops {
		r := batchReq{Method: op.Method, ID: strconv.Itoa(i + 1), URL: op.URL, Body: op.Body}
		r.Headers = map[string]string{}
		if op.Body != nil {
			r.Headers["Content-Type"] = "application/json; IEEE754Compatible=true"
		}
		if op.IfMatch != "" {
			r.Headers["If-Match"] = op.IfMatch
		}
		reqs[i] = r
	}
	b, err := json.Marshal(map[string]any{"requests": reqs})
	if err != nil {
		return nil, fmt.Errorf("businesscentral: encoding batch: %w", err)
	}
	u := c.apiRoot + "$batch"
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, URL: u, Body: b, Header: http.Header{"Isolation": {"snapshot"}}})
	if err != nil {
		return nil, err
	}
	var out struct {
		Responses []batchResp `json:"responses"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return nil, fmt.Errorf("businesscentral: decoding batch response: %w", err)
	}
	res := make([]BatchResult, len(ops))
	got := 0
	for _, r := range out.Responses {
		i, err := strconv.Atoi(r.ID)
		if err != nil || i < 1 || i > len(ops) {
			return nil, fmt.Errorf("businesscentral: batch response with unknown id %q: %w", r.ID, ErrFatal)
		}
		if r.Status < 200 || r.Status >= 300 {
			ae := &APIError{Method: ops[i-1].Method, URL: redact(ops[i-1].URL), Status: r.Status, Retryable: retryableStatus(r.Status)}
			var eb struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if json.Unmarshal(r.Body, &eb) == nil {
				ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
			}
			return nil, &BatchError{Index: i - 1, Err: ae}
		}
		res[i-1] = BatchResult{Status: r.Status, Body: r.Body}
		got++
	}
	if got != len(ops) {
		return nil, fmt.Errorf("businesscentral: batch answered %d of %d operations: %w", got, len(ops), ErrFatal)
	}
	return res, nil
}

// Relative returns the batch-relative URL of an entity set of the company.
func (c *Client) Relative(set string) string { return c.company + "/" + set }
