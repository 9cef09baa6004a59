package importer

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
)

// FetchFrom returns a fetch function for WithFetch that GETs one record through d. pathFormat holds one %s for
// the (path-escaped) external ID, e.g. "/products/%s"; recordPath is the gjson path of the
// record in the response body, e.g. "product", or "" when the body is the record.
func FetchFrom(d adapter.Doer, pathFormat, recordPath string) func(ctx context.Context, externalID string) (gjson.Result, error) {
	return func(ctx context.Context, externalID string) (gjson.Result, error) {
		resp, err := d.Do(ctx, &adapter.Request{Path: fmt.Sprintf(pathFormat, url.PathEscape(externalID)), Operation: "import", Record: externalID})
		if err != nil {
			return gjson.Result{}, err
		}
		rec := gjson.ParseBytes(resp.Body)
		if recordPath != "" {
			rec = gjson.GetBytes(resp.Body, recordPath)
		}
		if !rec.IsObject() {
			return gjson.Result{}, fmt.Errorf("%w: fetching %q: no JSON object at %q in the response", adapter.ErrBadResponse, externalID, recordPath)
		}
		return rec, nil
	}
}

// ListFrom returns a listing function for NewBatch that walks a paginated listing through d with
// adapter.Records. When since is not zero it is sent in the sinceParam query parameter
// (e.g. "updated_at_min") as RFC 3339; the listing must then be sorted by updated-at,
// oldest first, for the watermark to be exact.
func ListFrom(d adapter.Doer, req adapter.Request, p adapter.Paginator, sinceParam string, opts ...adapter.PageOption) func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error] {
	return func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error] {
		r := req
		if !since.IsZero() && strings.TrimSpace(sinceParam) != "" {
			q := url.Values{}
			for k, v := range req.Query {
				q[k] = v
			}
			q.Set(sinceParam, since.UTC().Format(time.RFC3339Nano))
			r.Query = q
		}
		return adapter.Records(ctx, d, r, p, opts...)
	}
}
