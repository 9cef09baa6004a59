package apisync_test

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/connkit/connkit/apisync"
)

// FuzzParse: any file either parses into a valid config or fails with a *ConfigError;
// it never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(partnersIn))
	f.Add([]byte(crmConfig("https://crm.example.com", "triggers: {on_create: true, schedule: '@every 1h'}\n")))
	f.Add([]byte(`{"name":"b","direction":"out","model":"m","url":"https://x.io/b","methods":["POST"],"lines":[{"field":"x","key":"x"}],"filter":[["a","in",[1,2]]]}`))
	f.Add([]byte("name: &a x\nmodel: *a\n"))
	f.Add([]byte("lines: [[[[[[[[[[]]]]]]]]]]\n"))
	f.Add([]byte("name: a\nheaders: {X: 1.5}\nfilter: [[a, like, '%x_']]\n"))
	pull := "name: p\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [GET]\nlines: [{field: a, key: a}]\n"
	for _, p := range []string{
		"records_path: data\npagination: {style: link_header, max_pages: 10}\n",
		"records_path: data\npagination: {style: next_url, next_path: links.next, allow_other_hosts: true}\n",
		"records_path: data\npagination: {style: cursor, cursor_path: meta.next, param: cursor, has_more_path: meta.has_more}\n",
		"pagination: {style: cursor, cursor_path: id, cursor_from_last_record: true, param: starting_after}\n",
		"pagination: {style: page, param: page, size_param: per_page, size: 100, zero_based: true, total_path: meta.total}\n",
		"pagination: {style: offset, param: offset, size_param: limit, size: 1000, max_pages: 1000000}\n",
		"pagination: {style: offset, param: offset, size: 0, has_more_path: x}\n",
		"pagination: {style: pages}\nrecords_path: [1]\n",
	} {
		f.Add([]byte(pull + p))
	}
	f.Add([]byte(`{"name":"p","direction":"out","model":"m","url":"https://x.io/a","methods":["GET"],"lines":[{"field":"a","key":"a"}],"records_path":"items","pagination":{"style":"page","param":"p","size":-1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := apisync.Parse(data, "fuzz.yaml", func(string) (string, bool) { return "v", true })
		if err != nil {
			var ce *apisync.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("not a *ConfigError: %T %v", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a parsed config does not validate: %v", err)
		}
	})
}

// FuzzInboundBody: any body gets a JSON answer with a 2xx or 4xx status, never a 500
// or a panic.
func FuzzInboundBody(f *testing.F) {
	for _, s := range []string{`{"name":"a","n":1}`, `[{"name":"a"},{"name":"b"}]`, `{"n":1e999}`, "{\"name\":\"\xff\"}",
		`{"doc":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`, `{"name":"a","name":"a"}`, ``, `null`, `{"n":-0.0e-0}`} {
		f.Add([]byte(s))
	}
	s, err := apisync.Open(f.Context(), openDBF(f), parseAllF(f, openEndpoint))
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/things", bytes.NewReader(body)))
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("not JSON: %s", w.Body)
		}
	})
}
