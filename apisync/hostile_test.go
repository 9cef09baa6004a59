package apisync_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/apisync"
)

const openEndpoint = `
name: open
direction: in
model: thing
path: /things
methods: [POST]
lines: [{field: name, key: name}, {field: n, key: n}, {field: doc, key: doc}]
`

// Hostile bodies get a clear 4xx and store nothing.
func TestInboundHostileBodies(t *testing.T) {
	s := openSync(t, nil, parseAll(t, nil, openEndpoint))
	h := s.Handler()
	deep := strings.Repeat(`{"doc":`, 40) + `1` + strings.Repeat(`}`, 40)
	huge := bytes.Repeat([]byte("a"), 10<<20)
	cases := []struct {
		name string
		body []byte
		want int
		msg  string
	}{
		{"deep nesting", []byte(deep), 400, "nested deeper than 32"},
		{"deep arrays", []byte(`{"doc":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), 400, "nested deeper"},
		{"huge number", []byte(`{"n": 1e999}`), 400, "out of range"},
		{"long number", []byte(`{"n": ` + strings.Repeat("9", 200) + `}`), 400, "at most 64"},
		{"invalid UTF-8", []byte("{\"name\": \"\xff\xfe\"}"), 400, "UTF-8"},
		{"10 MB", append(append([]byte(`{"name":"`), huge...), '"', '}'), 413, "larger than"},
		{"duplicate keys", []byte(`{"name":"a","name":"b"}`), 400, "twice"},
		{"trailing data", []byte(`{"name":"a"} {"name":"b"}`), 400, "after the JSON value"},
		{"not an object", []byte(`"hello"`), 400, "JSON object"},
		{"array of scalars", []byte(`[1,2]`), 400, "not a JSON object"},
		{"empty", nil, 400, "empty body"},
		{"NUL in a string", []byte(`{"name":"a\u0000b"}`), 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := countRecords(t, s, "thing")
			req := httptest.NewRequest("POST", "/things", bytes.NewReader(tc.body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			require.Equal(t, tc.want, w.Code, "%.300s", w.Body.String())
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			assert.Contains(t, w.Body.String(), tc.msg)
			assert.Less(t, w.Body.Len(), 2048, "the answer does not echo the body")
			if tc.want >= 400 {
				assert.Equal(t, before, countRecords(t, s, "thing"), "nothing stored")
			}
		})
	}
	// An exact big integer is kept as sent.
	req := httptest.NewRequest("POST", "/things", strings.NewReader(`{"name":"big","n":123456789012345678901234567890}`))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, 201, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), `"n":123456789012345678901234567890`)
}

// Each inbound auth kind with right and wrong credentials.
func TestInboundAuthKinds(t *testing.T) {
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	cases := []struct {
		name, auth   string
		right, wrong func(r *http.Request)
		wrongTarget  string
		rightTarget  string
	}{
		{"none", `{type: none}`, func(*http.Request) {}, nil, "", ""},
		{"basic", `{type: basic, username: svc, password: "${SECRET}"}`,
			func(r *http.Request) { r.Header.Set("Authorization", basic("svc", "the-secret-1")) },
			func(r *http.Request) { r.Header.Set("Authorization", basic("svc", "the-secret-2")) }, "", ""},
		{"basic wrong user", `{type: basic, username: svc, password: "${SECRET}"}`,
			func(r *http.Request) { r.Header.Set("Authorization", basic("svc", "the-secret-1")) },
			func(r *http.Request) { r.Header.Set("Authorization", basic("other", "the-secret-1")) }, "", ""},
		{"bearer", `{type: bearer, token: "${SECRET}"}`,
			func(r *http.Request) { r.Header.Set("Authorization", "bearer the-secret-1") },
			func(r *http.Request) { r.Header.Set("Authorization", "Basic the-secret-1") }, "", ""},
		{"api key header", `{type: api_key, api_key: "${SECRET}", name: X-Key}`,
			func(r *http.Request) { r.Header.Set("X-Key", "the-secret-1") },
			func(r *http.Request) { r.Header.Set("X-API-Key", "the-secret-1") }, "", ""},
		{"api key query", `{type: api_key, api_key: "${SECRET}", in: query}`,
			func(*http.Request) {}, func(*http.Request) {}, "/x?api_key=nope", "/x?api_key=the-secret-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			cfg := fmt.Sprintf("name: x\ndirection: in\nmodel: m\npath: /x\nmethods: [GET]\nauth: %s\nlines: [{field: a, key: a}]\n", tc.auth)
			s := openSync(t, db, parseAll(t, map[string]string{"SECRET": "the-secret-1"}, cfg))
			do := func(target string, set func(*http.Request)) int {
				if target == "" {
					target = "/x"
				}
				req := httptest.NewRequest("GET", target, nil)
				set(req)
				w := httptest.NewRecorder()
				s.Handler().ServeHTTP(w, req)
				return w.Code
			}
			assert.Equal(t, 200, do(tc.rightTarget, tc.right))
			if tc.wrong != nil {
				assert.Equal(t, 401, do(tc.wrongTarget, tc.wrong))
				assert.Equal(t, 401, do(tc.wrongTarget, func(*http.Request) {}), "no credentials")
			}
			for _, e := range auditEntries(t, db, apisyncInbound()) {
				assert.NotContains(t, fmt.Sprint(e), "the-secret-1", "secrets stay out of the log")
			}
		})
	}
}

// Two in configs can share a path with different methods and credentials.
func TestInboundSharedPath(t *testing.T) {
	reader := "name: reader\ndirection: in\nmodel: m\npath: /x\nmethods: [GET]\nauth: {type: bearer, token: read-token-1}\nlines: [{field: a, key: a}]\n"
	writer := "name: writer\ndirection: in\nmodel: m\npath: /x\nmethods: [POST]\nauth: {type: bearer, token: write-token-1}\nlines: [{field: a, key: a}]\n"
	s := openSync(t, nil, parseAll(t, nil, reader, writer))
	h := s.Handler()
	code, _, _ := call(t, h, "GET", "/x", "", map[string]string{"Authorization": "Bearer read-token-1"})
	assert.Equal(t, 200, code)
	code, _, hdr := call(t, h, "POST", "/x", `{"a":1}`, map[string]string{"Authorization": "Bearer read-token-1"})
	assert.Equal(t, 405, code)
	assert.Equal(t, "GET", hdr.Get("Allow"))
	code, _, _ = call(t, h, "POST", "/x", `{"a":1}`, map[string]string{"Authorization": "Bearer write-token-1"})
	assert.Equal(t, 201, code)
	_, err := apisync.Open(t.Context(), openDB(t), parseAll(t, nil, reader, strings.Replace(reader, "name: reader", "name: reader2", 1)))
	assert.ErrorIs(t, err, apisync.ErrInvalidConfig, "one method on one path is served by one config")
}
