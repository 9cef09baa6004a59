package apisync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/apisync"
)

// Relational lines resolve through the related model's records both ways; expression
// lines in evaluate and execute modes see record and request.
func TestLinesRelationalAndExpressions(t *testing.T) {
	ctx := context.Background()
	in := `
name: contacts-in
direction: in
model: contact
path: /contacts
methods: [GET, POST]
lines:
  - {field: id, key: id, identifier: true}
  - {field: name, key: name}
  - {field: company_id.name, key: company, kind: relational, through: [company]}
  - {field: company_id.country_id.code, key: country, kind: relational, through: [company, country]}
  - {field: source, kind: expression, expression: 'request.method + " " + request.path'}
  - {kind: expression, mode: execute, expression: '{"name_upper": upper(record.name), "tags": split(record.tags ?? "", ",")}'}
`
	rc := newReceiver(t, func(int, received) (int, string) { return 200, `{"id":"r1"}` })
	out := fmt.Sprintf(`
name: contacts-out
direction: out
model: contact
url: %s/c/{id}
methods: [PUT]
lines:
  - {field: id, key: ref, identifier: true}
  - {field: company_id.country_id.code, key: address.country, kind: relational, through: [company, country]}
  - {field: company_id.name, key: display, kind: expression, through: [company], expression: 'record.name + " (" + value + ", " + field("company_id.name") + ")"'}
  - {kind: expression, mode: execute, expression: '{"b64": b64encode(record.name)}'}
`, rc.URL)
	s := openSync(t, nil, parseAll(t, nil, in, out))
	ua := mustCreate(t, s, "country", apisync.Record{"code": "UA"})
	mustCreate(t, s, "company", apisync.Record{"name": "Acme", "country_id": ua})
	h := s.Handler()

	code, body, _ := call(t, h, "POST", "/contacts", `{"name":"Ada","company":"Acme","tags":"a,b"}`, nil)
	require.Equal(t, 201, code, body)
	d := body["data"].(map[string]any)
	assert.Equal(t, "Acme", d["company"])
	assert.Equal(t, "UA", d["country"], "two hops on the way out")
	st, _ := s.Records("contact")
	v, err := st.Get(ctx, d["id"].(string))
	require.NoError(t, err)
	assert.Equal(t, "1", v["company_id"], "the related record's local ID is stored")
	assert.Equal(t, "POST /contacts", v["source"])
	assert.Equal(t, "ADA", v["name_upper"])
	assert.Equal(t, []any{"a", "b"}, v["tags"])

	code, body, _ = call(t, h, "POST", "/contacts", `{"name":"Bob","company":"Nowhere Ltd"}`, nil)
	assert.Equal(t, 400, code)
	assert.Contains(t, body["error"].(map[string]any)["message"], `no company record has name = "Nowhere Ltd"`)

	counts, err := s.Push(ctx, "contacts-out")
	require.NoError(t, err)
	assert.Equal(t, 1, counts.Created)
	reqs := rc.requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/c/"+d["id"].(string), reqs[0].Path)
	var sent map[string]any
	require.NoError(t, json.Unmarshal([]byte(reqs[0].Body), &sent))
	assert.Equal(t, map[string]any{"ref": d["id"], "address": map[string]any{"country": "UA"}, "display": "Ada (Acme, Acme)", "b64": "QWRh"}, sent)
}
