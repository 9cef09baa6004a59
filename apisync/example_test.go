package apisync_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/sqlstore"
)

// Two config files, no Go mapping code: an inbound partner endpoint and a push of
// customers to a CRM. A partner posted to the endpoint is stored; Push sends the
// customers the filter selects to the CRM, mapped by the config's lines.
func Example() {
	ctx := context.Background()
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("CRM got %s %s %s\n", r.Method, r.URL.Path, body)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"crm-1"}`)
	}))
	defer crm.Close()

	dir, _ := os.MkdirTemp("", "apisync-example")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "partners-in.yaml"), []byte(`
name: partners-in
direction: in
model: res.partner
path: /api/partners
methods: [GET, POST]
auth: {type: api_key, api_key: "${PARTNER_KEY:-demo-key-123}"}
lines:
  - {field: name, key: full_name, required: true}
  - {field: customer_rank, key: rank}
`), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "partners-to-crm.yaml"), []byte(`
name: partners-to-crm
direction: out
model: res.partner
url: `+crm.URL+`/api/customers
methods: [POST]
filter: [[customer_rank, ">", 0]]
lines:
  - {field: name, key: customer.name}
  - {key: customer.tag, kind: expression, expression: 'upper(record.name[:3])'}
`), 0o600)

	cfgs, err := apisync.Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	s, err := apisync.Open(ctx, db, cfgs)
	if err != nil {
		fmt.Println(err)
		return
	}

	for _, body := range []string{`{"full_name":"Ada Lovelace","rank":2}`, `{"full_name":"Prospect","rank":0}`} {
		req := httptest.NewRequest("POST", "/api/partners", strings.NewReader(body))
		req.Header.Set("X-API-Key", "demo-key-123")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	counts, err := s.Push(ctx, "partners-to-crm")
	fmt.Printf("created %d, error %v\n", counts.Created, err)
	// Output:
	// 201 {"data":{"full_name":"Ada Lovelace","rank":2}}
	// 201 {"data":{"full_name":"Prospect","rank":0}}
	// CRM got POST /api/customers {"customer":{"name":"Ada Lovelace","tag":"ADA"}}
	// created 1, error <nil>
}
