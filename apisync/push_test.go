package apisync_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

func crmConfig(url, extra string) string {
	return `
name: partners-to-crm
direction: out
model: res.partner
url: ` + url + `/api/customers
methods: [POST]
auth: {type: bearer, token: "${CRM_TOKEN}"}
headers: {X-API-Version: 2.0, X-Client-Id: connkit}
filter: [[customer_rank, ">", 0], [active, "=", true]]
retry: {max_attempts: 3, min_wait: 1ms, max_wait: 5ms}
lines:
  - {field: name, key: full_name}
  - {field: email, key: email_address}
  - {field: id, key: external_id, identifier: true}
  - {field: partner_id.name, key: company_name, kind: relational, through: [res.partner]}
  - {key: phone, kind: expression, expression: 'hasPrefix(record.phone ?? "", "+") ? record.phone : "+1" + replace(record.phone ?? "", "-", "")'}
  - {key: signature, kind: expression, expression: 'b64encode(record.name + ":" + request.config)'}
` + extra
}

var crmEnv = map[string]string{"CRM_TOKEN": "crm-token-123456"}

func mustCreate(t *testing.T, s *apisync.Sync, model string, v apisync.Record) string {
	t.Helper()
	id, err := s.Create(context.Background(), model, v)
	require.NoError(t, err)
	return id
}

// A POST config through the hub: the body and headers the receiver sees, the filter,
// the external ID kept in the binding, unchanged records skipped, an update sent as PUT.
func TestPushPostThroughHub(t *testing.T) { forEachDB(t, pushPostThroughHub) }

func pushPostThroughHub(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	n := 0
	rc := newReceiver(t, func(_ int, r received) (int, string) {
		if r.Method == "POST" {
			n++
			return 201, fmt.Sprintf(`{"id":"crm-%d"}`, n)
		}
		return 200, `{"id":"` + strings.TrimPrefix(r.Path, "/api/customers/") + `"}`
	})
	s := openSync(t, db, parseAll(t, crmEnv, crmConfig(rc.URL, "")))
	acme := mustCreate(t, s, "res.partner", apisync.Record{"name": "Acme", "customer_rank": 0, "active": true})
	ada := mustCreate(t, s, "res.partner", apisync.Record{"name": "Ada", "email": "ada@x.io", "phone": "555-1234",
		"customer_rank": 2, "active": true, "partner_id": acme})
	mustCreate(t, s, "res.partner", apisync.Record{"name": "Old", "customer_rank": 5, "active": false})

	counts, err := s.Push(ctx, "partners-to-crm")
	require.NoError(t, err)
	assert.Equal(t, 1, counts.Created, "%+v", counts)
	reqs := rc.requests()
	require.Len(t, reqs, 1, "the filter selects Ada only")
	r := reqs[0]
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "/api/customers", r.Path)
	assert.Equal(t, "Bearer crm-token-123456", r.Header.Get("Authorization"))
	assert.Equal(t, "2", r.Header.Get("X-API-Version"), "YAML read 2.0 as a number; the header carries its text")
	assert.Equal(t, "connkit", r.Header.Get("X-Client-Id"))
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Body), &body))
	assert.Equal(t, map[string]any{
		"full_name": "Ada", "email_address": "ada@x.io", "external_id": ada, "company_name": "Acme",
		"phone": "+15551234", "signature": base64.StdEncoding.EncodeToString([]byte("Ada:partners-to-crm")),
	}, body)

	b, err := db.Bindings().GetByLocal(ctx, "partners-to-crm", "res.partner", ada)
	require.NoError(t, err)
	assert.Equal(t, "crm-1", b.ExternalID)
	assert.Equal(t, binding.StatusSuccess, b.Status)

	counts, err = s.Push(ctx, "partners-to-crm")
	require.NoError(t, err)
	assert.Equal(t, 1, counts.Skipped, "unchanged: %+v", counts)
	assert.Len(t, rc.requests(), 1)

	require.NoError(t, s.Update(ctx, "res.partner", ada, apisync.Record{"name": "Ada L.", "customer_rank": 2, "active": true}))
	counts, err = s.Push(ctx, "partners-to-crm", ada)
	require.NoError(t, err)
	assert.Equal(t, 1, counts.Updated, "%+v", counts)
	reqs = rc.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "PUT", reqs[1].Method)
	assert.Equal(t, "/api/customers/crm-1", reqs[1].Path)

	out := auditEntries(t, db, synclog.Filter{Direction: synclog.Outbound, Backend: "partners-to-crm"})
	require.Len(t, out, 2)
	for _, e := range out {
		assert.NotContains(t, fmt.Sprint(e), "crm-token-123456")
	}
}

// Each outbound auth kind as the receiver sees it; wrong credentials fail the record with
// adapter.ErrUnauthorized.
func TestPushAuthKinds(t *testing.T) {
	cases := []struct {
		name, auth string
		check      func(t *testing.T, r received)
	}{
		{"none", `{type: none}`, func(t *testing.T, r received) { assert.Empty(t, r.Header.Get("Authorization")) }},
		{"basic", `{type: basic, username: api_user, password: "${PW}"}`, func(t *testing.T, r received) {
			assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("api_user:pw-secret-1")), r.Header.Get("Authorization"))
		}},
		{"bearer", `{type: bearer, token: "${PW}"}`, func(t *testing.T, r received) {
			assert.Equal(t, "Bearer pw-secret-1", r.Header.Get("Authorization"))
		}},
		{"api key header", `{type: api_key, api_key: "${PW}", name: X-Token}`, func(t *testing.T, r received) {
			assert.Equal(t, "pw-secret-1", r.Header.Get("X-Token"))
		}},
		{"api key query", `{type: api_key, api_key: "${PW}", in: query}`, func(t *testing.T, r received) {
			assert.Equal(t, "api_key=pw-secret-1", r.Query)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, right := range []bool{true, false} {
				rc := newReceiver(t, func(_ int, r received) (int, string) {
					if !right {
						return 401, `{"error":"bad credentials"}`
					}
					return 201, `{"id":"x1"}`
				})
				cfg := fmt.Sprintf("name: p\ndirection: out\nmodel: m\nurl: %s/in\nmethods: [PUT]\nauth: %s\nlines: [{field: name, key: name}]\n", rc.URL, tc.auth)
				db := openDB(t)
				s := openSync(t, db, parseAll(t, map[string]string{"PW": "pw-secret-1"}, cfg))
				mustCreate(t, s, "m", apisync.Record{"name": "n"})
				counts, err := s.Push(context.Background(), "p")
				reqs := rc.requests()
				require.Len(t, reqs, 1)
				tc.check(t, reqs[0])
				if right {
					require.NoError(t, err)
					assert.Equal(t, 1, counts.Created)
				} else {
					require.ErrorIs(t, err, adapter.ErrUnauthorized)
					assert.Equal(t, 1, counts.Failed)
					var re *report.RecordError
					require.ErrorAs(t, err, &re)
					assert.Equal(t, "1", re.LocalID)
					assert.NotContains(t, err.Error(), "pw-secret-1")
				}
			}
		})
	}
}

// PUT to url/{id}, DELETE, and batches of page_size in one request.
func TestPushMethodsAndBatches(t *testing.T) {
	ctx := context.Background()
	t.Run("put with {id} from the identifier", func(t *testing.T) {
		rc := newReceiver(t, func(_ int, r received) (int, string) { return 200, `{}` })
		cfg := fmt.Sprintf("name: inv\ndirection: out\nmodel: product\nurl: %s/api/products/{id}\nmethods: [PUT]\nfilter: [[type, '=', product]]\nlines: [{field: sku, key: sku, identifier: true}, {field: qty, key: qty}]\n", rc.URL)
		s := openSync(t, nil, parseAll(t, nil, cfg))
		mustCreate(t, s, "product", apisync.Record{"sku": "A-1", "qty": 5, "type": "product"})
		mustCreate(t, s, "product", apisync.Record{"sku": "S-1", "qty": 1, "type": "service"})
		counts, err := s.Push(ctx, "inv")
		require.NoError(t, err)
		assert.Equal(t, 1, counts.Created)
		reqs := rc.requests()
		require.Len(t, reqs, 1)
		assert.Equal(t, "PUT", reqs[0].Method)
		assert.Equal(t, "/api/products/A-1", reqs[0].Path)
		assert.JSONEq(t, `{"sku":"A-1","qty":5}`, reqs[0].Body)
	})
	t.Run("delete", func(t *testing.T) {
		rc := newReceiver(t, func(_ int, r received) (int, string) { return 204, `` })
		cfg := fmt.Sprintf("name: rm\ndirection: out\nmodel: sale.order\nurl: %s/remove\nmethods: [DELETE]\nfilter: [[state, '=', cancel]]\nlines: [{field: id, key: order_id, identifier: true}]\n", rc.URL)
		s := openSync(t, nil, parseAll(t, nil, cfg))
		mustCreate(t, s, "sale.order", apisync.Record{"state": "sale"})
		id := mustCreate(t, s, "sale.order", apisync.Record{"state": "cancel"})
		counts, err := s.Push(ctx, "rm")
		require.NoError(t, err)
		assert.Equal(t, 1, counts.Updated)
		reqs := rc.requests()
		require.Len(t, reqs, 1)
		assert.Equal(t, "DELETE", reqs[0].Method)
		assert.JSONEq(t, `{"order_id":"`+id+`"}`, reqs[0].Body)
	})
	t.Run("batches of page_size", func(t *testing.T) {
		rc := newReceiver(t, func(n int, r received) (int, string) {
			var items []map[string]any
			_ = json.Unmarshal([]byte(r.Body), &items)
			var out []string
			for i := range items {
				out = append(out, fmt.Sprintf(`{"id":"b%d-%d"}`, n, i))
			}
			return 200, "[" + strings.Join(out, ",") + "]"
		})
		cfg := fmt.Sprintf("name: bulk\ndirection: out\nmodel: res.partner\nurl: %s/bulk\nmethods: [POST]\npaginated: true\npage_size: 2\nlines: [{field: name, key: name}]\n", rc.URL)
		db := openDB(t)
		s := openSync(t, db, parseAll(t, nil, cfg))
		for _, n := range []string{"a", "b", "c"} {
			mustCreate(t, s, "res.partner", apisync.Record{"name": n})
		}
		counts, err := s.Push(ctx, "bulk")
		require.NoError(t, err)
		assert.Equal(t, 3, counts.Created)
		reqs := rc.requests()
		require.Len(t, reqs, 2, "3 records in pages of 2")
		assert.JSONEq(t, `[{"name":"a"},{"name":"b"}]`, reqs[0].Body)
		assert.JSONEq(t, `[{"name":"c"}]`, reqs[1].Body)
		assert.NotEmpty(t, reqs[0].Header.Get("Idempotency-Key"), "a batch POST can be retried safely")
		b, err := db.Bindings().GetByLocal(ctx, "bulk", "res.partner", "2")
		require.NoError(t, err)
		assert.Equal(t, "b1-1", b.ExternalID)
		b, err = db.Bindings().GetByLocal(ctx, "bulk", "res.partner", "3")
		require.NoError(t, err)
		assert.Equal(t, "b2-0", b.ExternalID)
	})
}

// An outbound GET sends the params with their operators and writes what comes back.
func TestPushGetParams(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t, func(_ int, r received) (int, string) {
		return 200, `[{"id":7,"name":"Ada","mail":"ada@x.io"},{"id":8,"name":"Bob","mail":"bob@x.io"}]`
	})
	cfg := fmt.Sprintf(`
name: pull
direction: out
model: res.partner
url: %s/api/partners?source=crm
methods: [GET]
params:
  - {key: active, value: true}
  - {key: rank, operator: ">", value: 0}
  - {key: since, operator: ">=", value: "2024-01-01"}
  - {key: country, operator: in, value: [UA, PL]}
  - {key: name, operator: like, value: "A%%"}
  - {key: state, operator: "!=", value: draft}
  - {key: big, value: 12345678901234567890123}
lines: [{field: email, key: mail, identifier: true}, {field: name, key: name}]
`, rc.URL)
	s := openSync(t, nil, parseAll(t, nil, cfg))
	existing := mustCreate(t, s, "res.partner", apisync.Record{"name": "Old Ada", "email": "ada@x.io"})
	counts, err := s.Push(ctx, "pull")
	require.NoError(t, err)
	assert.Equal(t, report.Counts{Created: 1, Updated: 1}, counts)
	reqs := rc.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "GET", reqs[0].Method)
	assert.Equal(t, "source=crm&active=true&big=12345678901234567890123&country%5Bin%5D=UA%2CPL&name%5Blike%5D=A%25&rank%5Bgt%5D=0&since%5Bgte%5D=2024-01-01&state%5Bne%5D=draft", reqs[0].Query)
	st, _ := s.Records("res.partner")
	v, err := st.Get(ctx, existing)
	require.NoError(t, err)
	assert.Equal(t, "Ada", v["name"], "matched by the identifier line and updated")
	assert.Equal(t, 2, countRecords(t, s, "res.partner"))
}

// 5xx answers are retried with backoff until the policy's attempts; the audit entry
// counts the attempts.
func TestPushRetriesServerErrors(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t, func(n int, _ received) (int, string) {
		if n < 3 {
			return 503, `{"error":"busy"}`
		}
		return 201, `{"id":"r1"}`
	})
	db := openDB(t)
	s := openSync(t, db, parseAll(t, crmEnv, crmConfig(rc.URL, "")))
	mustCreate(t, s, "res.partner", apisync.Record{"name": "Ada", "customer_rank": 1, "active": true})
	counts, err := s.Push(ctx, "partners-to-crm")
	require.NoError(t, err)
	assert.Equal(t, 1, counts.Created)
	assert.Len(t, rc.requests(), 3)
	out := auditEntries(t, db, synclog.Filter{Direction: synclog.Outbound})
	require.Len(t, out, 1)
	assert.Equal(t, 3, out[0].Attempts)
	assert.Equal(t, 201, out[0].Status)
	bk, err := s.Backend("partners-to-crm")
	require.NoError(t, err)
	stats := bk.Client().Stats()
	assert.EqualValues(t, 2, stats.Retries)
	assert.Positive(t, stats.BackoffWait, "the retries waited (exponential backoff)")

	// Past the policy's attempts the record fails and the binding says why.
	rc2 := newReceiver(t, func(int, received) (int, string) { return 500, `{"error":"down"}` })
	db2 := openDB(t)
	s2 := openSync(t, db2, parseAll(t, crmEnv, crmConfig(rc2.URL, "")))
	id := mustCreate(t, s2, "res.partner", apisync.Record{"name": "Ada", "customer_rank": 1, "active": true})
	counts, err = s2.Push(ctx, "partners-to-crm")
	require.ErrorIs(t, err, adapter.ErrServer)
	assert.Equal(t, 1, counts.Failed)
	assert.Len(t, rc2.requests(), 3)
	b, err := db2.Bindings().GetByLocal(ctx, "partners-to-crm", "res.partner", id)
	require.NoError(t, err)
	assert.Equal(t, binding.StatusFailed, b.Status)
	assert.Contains(t, b.LastError, "500")
}

// The read timeout bounds a slow answer; the failure matches adapter.ErrTimeout.
func TestPushReadTimeout(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(int, received) (int, string) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return 200, `{}`
	})
	defer close(release)
	cfg := fmt.Sprintf("name: slow\ndirection: out\nmodel: m\nurl: %s/x\nmethods: [PUT]\nread_timeout: 100ms\nconnect_timeout: 1s\nretry: {max_attempts: 1}\nlines: [{field: name, key: name}]\n", rc.URL)
	s := openSync(t, nil, parseAll(t, nil, cfg))
	mustCreate(t, s, "m", apisync.Record{"name": "n"})
	start := time.Now()
	counts, err := s.Push(context.Background(), "slow")
	require.ErrorIs(t, err, adapter.ErrTimeout)
	assert.Equal(t, 1, counts.Failed)
	assert.Less(t, time.Since(start), 4*time.Second, "the timeout cut the wait")
}

func TestPushUnknownAndWrongDirection(t *testing.T) {
	s := openSync(t, nil, parseAll(t, tokenEnv, partnersIn))
	_, err := s.Push(context.Background(), "nope")
	assert.ErrorIs(t, err, apisync.ErrUnknownConfig)
	_, err = s.Push(context.Background(), "partners-in")
	assert.ErrorIs(t, err, apisync.ErrWrongDirection)
	assert.True(t, errors.Is(err, apisync.ErrWrongDirection))
}

// A record another sender holds is not sent twice: the push fails it with
// binding.ErrLocked, and sends it once the lease is released.
func TestPushRespectsLeases(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t, func(int, received) (int, string) { return 200, `{"id":"x"}` })
	db := openDB(t)
	cfg := fmt.Sprintf("name: inv\ndirection: out\nmodel: product\nurl: %s/p/{id}\nmethods: [PUT]\nlines: [{field: sku, key: sku, identifier: true}]\n", rc.URL)
	s := openSync(t, db, parseAll(t, nil, cfg))
	id := mustCreate(t, s, "product", apisync.Record{"sku": "A-1"})
	b, _, err := db.Bindings().Ensure(ctx, binding.Binding{Backend: "inv", Model: "product", LocalID: id})
	require.NoError(t, err)
	_, err = db.Bindings().Claim(ctx, b.ID, "another-worker", time.Minute)
	require.NoError(t, err)
	counts, err := s.Push(ctx, "inv")
	require.ErrorIs(t, err, binding.ErrLocked)
	assert.Equal(t, 1, counts.Failed)
	assert.Empty(t, rc.requests())
	require.NoError(t, db.Bindings().Release(ctx, b.ID, "another-worker"))
	counts, err = s.Push(ctx, "inv")
	require.NoError(t, err)
	assert.Equal(t, 1, counts.Created)
	assert.Len(t, rc.requests(), 1)
	got, err := db.Bindings().Get(ctx, b.ID)
	require.NoError(t, err)
	assert.Empty(t, got.LeaseOwner, "the push released its lease")
	assert.Equal(t, binding.StatusSuccess, got.Status)
}

// update_method: PATCH makes a POST config's updates PATCH url/{id} (HubSpot's way); the
// create is still a POST.
func TestPushUpdateMethodPatch(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t, func(_ int, r received) (int, string) {
		if r.Method == "POST" {
			return 201, `{"id":"crm-1"}`
		}
		return 200, `{"id":"crm-1"}`
	})
	s := openSync(t, nil, parseAll(t, mergeEnv(crmEnv, tokenEnv),
		crmConfig(rc.URL, "update_method: PATCH\ntriggers: {on_create: true, on_update: true}\n"), partnersIn))
	require.NoError(t, s.Start(ctx))
	id := mustCreate(t, s, "res.partner", apisync.Record{"name": "Ada", "customer_rank": 1, "active": true})
	waitFor(t, 15*time.Second, "the create push", func() bool { return len(rc.requests()) == 1 })
	require.NoError(t, s.Update(ctx, "res.partner", id, apisync.Record{"name": "Ada L.", "customer_rank": 1, "active": true}))
	waitFor(t, 15*time.Second, "the update push", func() bool { return len(rc.requests()) == 2 })
	assert.Equal(t, []string{"POST /api/customers", "PATCH /api/customers/crm-1"}, methodsSeen(rc))
}
