package apisync_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

const partnersIn = `
name: partners-in
direction: in
model: res.partner
path: /api/partners
methods: [GET, POST, PUT, DELETE]
auth: {type: bearer, token: "${PARTNER_TOKEN}"}
page_size: 2
params:
  - {key: email}
  - {key: min_rank, field: customer_rank, operator: ">="}
  - {key: names, field: name, operator: in}
  - {key: q, field: name, operator: like}
  - {key: active, operator: "="}
lines:
  - {field: id, key: id, identifier: true}
  - {field: name, key: full_name, required: true}
  - {field: email, key: email_address}
  - {field: customer_rank, key: rank}
  - {field: active, key: active}
`

var bearer = map[string]string{"Authorization": "Bearer s3cret-partner-token"}
var tokenEnv = map[string]string{"PARTNER_TOKEN": "s3cret-partner-token"}

func countRecords(t *testing.T, s *apisync.Sync, model string) int {
	t.Helper()
	st, err := s.Records(model)
	require.NoError(t, err)
	n := 0
	for _, err := range st.All(context.Background()) {
		require.NoError(t, err)
		n++
	}
	return n
}

// The inbound pipeline end to end: create, list with filters and pages, update by the
// identifier, delete; each answer JSON; each exchange in the audit log.
func TestInboundCRUD(t *testing.T) { forEachDB(t, inboundCRUD) }

func inboundCRUD(t *testing.T, db *sqlstore.DB) {
	s := openSync(t, db, parseAll(t, tokenEnv, partnersIn))
	h := s.Handler()

	code, out, _ := call(t, h, "POST", "/api/partners", `[{"full_name":"Ada","email_address":"ada@x.io","rank":3,"active":true},
		{"full_name":"Bob","email_address":"bob@x.io","rank":0,"active":false},
		{"full_name":"Cyd","email_address":"cyd@x.io","rank":5,"active":true}]`, bearer)
	require.Equal(t, http.StatusCreated, code, out)
	data := out["data"].([]any)
	require.Len(t, data, 3)
	assert.Equal(t, "Ada", data[0].(map[string]any)["full_name"])
	assert.Equal(t, "1", data[0].(map[string]any)["id"])

	// pagination: page_size 2
	code, out, _ = call(t, h, "GET", "/api/partners", "", bearer)
	require.Equal(t, 200, code, out)
	assert.Len(t, out["data"], 2)
	assert.Equal(t, true, out["has_more"])
	code, out, _ = call(t, h, "GET", "/api/partners?page=2", "", bearer)
	require.Equal(t, 200, code, out)
	assert.Len(t, out["data"], 1)
	assert.Equal(t, false, out["has_more"])
	assert.Equal(t, "Cyd", out["data"].([]any)[0].(map[string]any)["full_name"])

	names := func(target string) []string {
		code, out, _ := call(t, h, "GET", target, "", bearer)
		require.Equal(t, 200, code, "%s: %v", target, out)
		var ns []string
		for _, d := range out["data"].([]any) {
			ns = append(ns, d.(map[string]any)["full_name"].(string))
		}
		return ns
	}
	assert.Equal(t, []string{"Bob"}, names("/api/partners?email=bob@x.io"))
	assert.Equal(t, []string{"Ada", "Cyd"}, names("/api/partners?min_rank=3"))
	assert.Equal(t, []string{"Cyd"}, names("/api/partners?min_rank=4"))
	assert.Equal(t, []string{"Ada", "Cyd"}, names("/api/partners?names=Ada,Cyd,Zed"))
	assert.Equal(t, []string{"Cyd"}, names("/api/partners?q=y"))
	assert.Equal(t, []string{"Bob"}, names("/api/partners?active=false"))
	assert.Empty(t, names("/api/partners?email=nobody"))

	code, out, _ = call(t, h, "GET", "/api/partners?colour=red", "", bearer)
	assert.Equal(t, 400, code)
	assert.Contains(t, out["error"].(map[string]any)["message"], "colour")

	// PUT updates the record matched by the identifier line
	code, out, _ = call(t, h, "PUT", "/api/partners", `{"id":"2","full_name":"Bobby"}`, bearer)
	require.Equal(t, 200, code, out)
	assert.Equal(t, "Bobby", out["data"].(map[string]any)["full_name"])
	assert.Equal(t, "bob@x.io", out["data"].(map[string]any)["email_address"], "fields not sent are kept")
	code, out, _ = call(t, h, "PUT", "/api/partners", `{"id":"2","rank":7}`, bearer)
	require.Equal(t, 200, code, "a required line may be absent from an update: %v", out)
	assert.Equal(t, "Bobby", out["data"].(map[string]any)["full_name"])
	assert.EqualValues(t, 7, out["data"].(map[string]any)["rank"])
	code, out, _ = call(t, h, "PUT", "/api/partners", `{"id":"99","full_name":"Nobody"}`, bearer)
	assert.Equal(t, 404, code, out)
	code, _, _ = call(t, h, "PUT", "/api/partners", `{"full_name":"No id"}`, bearer)
	assert.Equal(t, 400, code)

	code, out, _ = call(t, h, "DELETE", "/api/partners?id=2", "", bearer)
	require.Equal(t, 200, code, out)
	assert.Equal(t, 2, countRecords(t, s, "res.partner"))
	code, _, _ = call(t, h, "DELETE", "/api/partners?id=2", "", bearer)
	assert.Equal(t, 404, code)

	entries := auditEntries(t, db, synclog.Filter{Direction: synclog.Inbound})
	require.NotEmpty(t, entries)
	assert.Equal(t, "DELETE", entries[1].Method, "newest first: the 404 delete, then the delete")
	assert.Equal(t, "2", entries[1].Record, "the audit entry names the record written")
	assert.Equal(t, "1,2,3", entries[len(entries)-1].Record)
	for _, e := range entries {
		assert.Equal(t, "partners-in", e.Operation)
		assert.Equal(t, "res.partner", e.Model)
		assert.NotContains(t, fmt.Sprint(e), "s3cret-partner-token", "the token never reaches the log")
	}
}

// Each status code of the pipeline, in its order.
func TestInboundStatusCodes(t *testing.T) {
	db := openDB(t)
	slow := strings.Replace(partnersIn, "name: partners-in", "name: slow\ntimeout: 1ns", 1)
	slow = strings.Replace(slow, "/api/partners", "/api/slow", 1)
	boom := `
name: boom
direction: in
model: res.partner
path: /api/boom
methods: [POST]
lines:
  - {field: name, key: name}
  - {field: code, kind: expression, expression: 'int(record.name)'}
`
	small := `
name: small
direction: in
model: res.partner
path: /api/small
methods: [POST]
max_body: 64
lines: [{field: name, key: name}]
`
	s := openSync(t, db, parseAll(t, tokenEnv, partnersIn, slow, boom, small))
	h := s.Handler()

	cases := []struct {
		name, method, target, body string
		hdr                        map[string]string
		want                       int
	}{
		{"unknown path", "GET", "/api/nothing", "", bearer, 404},
		{"no credentials", "GET", "/api/partners", "", nil, 401},
		{"wrong token", "GET", "/api/partners", "", map[string]string{"Authorization": "Bearer wrong"}, 401},
		{"method", "PATCH", "/api/partners", "{}", bearer, 405},
		{"bad JSON", "POST", "/api/partners", `{"full_name":`, bearer, 400},
		{"mapping: required line missing", "POST", "/api/partners", `{"email_address":"x@y"}`, bearer, 400},
		{"time limit", "POST", "/api/slow", `{"full_name":"Late"}`, bearer, 408},
		{"failing expression", "POST", "/api/boom", `{"name":"not a number"}`, nil, 500},
		{"too large", "POST", "/api/small", `{"name":"` + strings.Repeat("x", 100) + `"}`, nil, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, hdr := call(t, h, tc.method, tc.target, tc.body, tc.hdr)
			require.Equal(t, tc.want, code, out)
			e := out["error"].(map[string]any)
			assert.EqualValues(t, tc.want, e["status"])
			assert.NotEmpty(t, e["message"])
			logged := auditEntries(t, db, synclog.Filter{Status: tc.want, Direction: synclog.Inbound})
			require.NotEmpty(t, logged, "every answer is in the audit log")
			assert.Equal(t, tc.method, logged[0].Method)
			assert.Contains(t, logged[0].ResponseBody, fmt.Sprintf(`"status":%d`, tc.want))
			if strings.HasPrefix(tc.name, "mapping: required") {
				assert.Equal(t, `lines[1] (key "full_name"): required value is missing`, e["message"])
			}
			switch tc.want {
			case 401:
				assert.Equal(t, `Bearer realm="apisync"`, hdr.Get("WWW-Authenticate"))
			case 405:
				assert.Equal(t, "DELETE, GET, POST, PUT", hdr.Get("Allow"))
			case 500:
				id, _ := e["error_id"].(string)
				require.NotEmpty(t, id)
				logged := auditEntries(t, db, synclog.Filter{Status: 500})
				require.NotEmpty(t, logged)
				assert.Contains(t, logged[0].Error, id, "the error ID is in the audit log")
				assert.NotContains(t, e["message"], "int(", "the cause stays in the log")
			}
		})
	}
	assert.Zero(t, countRecords(t, s, "res.partner"), "no failed request stored anything")
}
