package fakecrm_test

import (
	"net/http"
	"testing"

	"github.com/connkit/connkit/connkittest/fakecrm"
)

// Any body sent to create or update a contact gets a HubSpot answer — 201/200 with the
// record, or a 400/409 error body — never a 5xx, and a refused write stores nothing.
func FuzzWrite(f *testing.F) {
	for _, seed := range []string{
		`{"properties":{"email":"a@example.com","firstname":"A"}}`,
		`{"properties":{"email":"A@EXAMPLE.COM"}}`,
		`{"properties":{"phone":5550100,"lifecyclestage":"lead"}}`,
		`{"properties":{"firstname":null}}`,
		`{"properties":{"hs_object_id":"1"}}`,
		`{"properties":{"email":"not an email"}}`,
		`{"properties":{"x":{"y":1}}}`,
		`{"properties":[1]}`,
		`{"properties":{"firstname":"A"},"associations":[{"to":{"id":"900001"}}]}`,
		`{"associations":[{"to":{"id":{"a":1}}}]}`,
		`{"properties":`,
		`null`,
		"\xff",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	s := fakecrm.New(fakecrm.WithSeedData(2, 1, 1))
	defer s.Close()
	id := s.List(fakecrm.Contacts)[0].ID
	f.Fuzz(func(t *testing.T, body string, patch bool) {
		before := s.Stats()
		method, path, ok := "POST", "/crm/v3/objects/contacts", http.StatusCreated
		if patch {
			method, path, ok = "PATCH", "/crm/v3/objects/contacts/"+id, http.StatusOK
		}
		status, resp, _ := call(t, s, method, path, body)
		after := s.Stats()
		switch status {
		case ok:
			if resp.Get("id").String() == "" || !resp.Get("updatedAt").Exists() {
				t.Fatalf("%d without a record: %s", status, resp.Raw)
			}
		case http.StatusBadRequest, http.StatusConflict:
			if resp.Get("status").String() != "error" || resp.Get("category").String() == "" {
				t.Fatalf("%d without a HubSpot error body: %s", status, resp.Raw)
			}
			if after.Creates != before.Creates || after.Updates != before.Updates {
				t.Fatalf("a refused write (%d) was stored", status)
			}
		default:
			t.Fatalf("%s %q: status %d: %s", method, body, status, resp.Raw)
		}
	})
}
