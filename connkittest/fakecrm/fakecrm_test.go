package fakecrm_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/connkittest/fakecrm"
)

// call sends one request with the server's token (or tok when not "") and returns the
// status and the body.
func call(t *testing.T, s *fakecrm.Server, method, path, body string, tok ...string) (int, gjson.Result, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, rd)
	require.NoError(t, err)
	token := s.Token()
	if len(tok) > 0 {
		token = tok[0]
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if len(data) > 0 {
		require.True(t, gjson.ValidBytes(data), "%s %s answered invalid JSON: %s", method, path, data)
	}
	return resp.StatusCode, gjson.ParseBytes(data), resp.Header
}

func TestAuth(t *testing.T) {
	s := fakecrm.New(fakecrm.WithSeedData(3, 1, 1))
	defer s.Close()
	for _, tok := range []string{"", "wrong", strings.ToUpper(s.Token())} {
		status, body, _ := call(t, s, "GET", "/crm/v3/objects/contacts", "", tok)
		assert.Equal(t, http.StatusUnauthorized, status, "token %q", tok)
		assert.Equal(t, "INVALID_AUTHENTICATION", body.Get("category").String())
		assert.Equal(t, "error", body.Get("status").String())
		assert.NotContains(t, body.Raw, s.Token(), "the error never echoes the accepted token")
	}
	status, _, _ := call(t, s, "GET", "/crm/v3/objects/contacts", "")
	assert.Equal(t, http.StatusOK, status)
	st := s.Stats()
	assert.Equal(t, 3, st.Unauthorized)
	assert.Equal(t, 4, st.Requests)
	assert.Equal(t, 1, st.Lists)
}

// Walking the listing by paging.next.after yields every record once, in ID order, and
// the last page has no paging.
func TestCursorPagination(t *testing.T) {
	s := fakecrm.New(fakecrm.WithSeedData(25, 4, 7))
	defer s.Close()
	var ids []string
	after, pages := "", 0
	for {
		path := "/crm/v3/objects/contacts?limit=10"
		if after != "" {
			path += "&after=" + after
		}
		status, body, _ := call(t, s, "GET", path, "")
		require.Equal(t, http.StatusOK, status, body.Raw)
		pages++
		for _, r := range body.Get("results").Array() {
			ids = append(ids, r.Get("id").String())
		}
		next := body.Get("paging.next.after")
		if !next.Exists() {
			assert.False(t, body.Get("paging").Exists())
			break
		}
		assert.Contains(t, body.Get("paging.next.link").String(), "after="+next.String())
		after = next.String()
	}
	assert.Equal(t, 3, pages)
	require.Len(t, ids, 25)
	want := s.List(fakecrm.Contacts)
	for i, o := range want {
		assert.Equal(t, o.ID, ids[i])
	}

	// Default limit is 10; limits outside 1..100 and bad cursors are refused.
	_, body, _ := call(t, s, "GET", "/crm/v3/objects/contacts", "")
	assert.Len(t, body.Get("results").Array(), 10)
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "after=abc", "after=-1"} {
		status, body, _ := call(t, s, "GET", "/crm/v3/objects/contacts?"+q, "")
		assert.Equal(t, http.StatusBadRequest, status, q)
		assert.Equal(t, "VALIDATION_ERROR", body.Get("category").String(), q)
	}
}

func TestPropertiesAndAssociations(t *testing.T) {
	s := fakecrm.New(fakecrm.WithSeedData(5, 2, 3))
	defer s.Close()
	_, body, _ := call(t, s, "GET", "/crm/v3/objects/contacts?limit=1", "")
	rec := body.Get("results.0")
	assert.True(t, rec.Get("properties.email").Exists())
	assert.False(t, rec.Get("properties.phone").Exists(), "phone is not a default property")
	assert.False(t, rec.Get("associations").Exists(), "associations only when asked for")
	assert.Equal(t, rec.Get("id").String(), rec.Get("properties.hs_object_id").String())
	assert.Equal(t, rec.Get("updatedAt").String(), rec.Get("properties.lastmodifieddate").String())
	_, err := time.Parse(time.RFC3339Nano, rec.Get("updatedAt").String())
	assert.NoError(t, err)
	assert.False(t, rec.Get("archived").Bool())

	_, body, _ = call(t, s, "GET", "/crm/v3/objects/contacts?limit=1&properties=phone,jobtitle&associations=companies", "")
	rec = body.Get("results.0")
	assert.True(t, rec.Get("properties.phone").Exists())
	assert.Equal(t, gjson.Null, rec.Get("properties.jobtitle").Type, "an asked-for property without a value is null")
	assert.False(t, rec.Get("properties.email").Exists(), "only the asked-for properties (and the system ones)")
	o, ok := s.Get(fakecrm.Contacts, rec.Get("id").String())
	require.True(t, ok)
	require.NotEmpty(t, o.Associated, "the first seeded contact has a company")
	assert.Equal(t, o.Associated[0], rec.Get("associations.companies.results.0.id").String())
	assert.Equal(t, "contact_to_company", rec.Get("associations.companies.results.0.type").String())

	// And from the company's side.
	status, body, _ := call(t, s, "GET", "/crm/v3/objects/companies/"+o.Associated[0]+"?associations=contacts", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body.Get("associations.contacts.results.#.id").String(), o.ID)
}

func TestCreateUpdateConflicts(t *testing.T) {
	s := fakecrm.New(fakecrm.WithSeedData(2, 1, 1))
	defer s.Close()
	company := s.List(fakecrm.Companies)[0].ID
	status, body, _ := call(t, s, "POST", "/crm/v3/objects/contacts", `{"properties":{"email":"new@example.com","firstname":"New","phone":5550100},
		"associations":[{"to":{"id":"`+company+`"},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":279}]}]}`)
	require.Equal(t, http.StatusCreated, status, body.Raw)
	id := body.Get("id").String()
	assert.Equal(t, "5550100", body.Get("properties.phone").String(), "numbers are stored as strings")
	assert.Equal(t, body.Get("createdAt").String(), body.Get("updatedAt").String())
	o, ok := s.Get(fakecrm.Contacts, id)
	require.True(t, ok)
	assert.Equal(t, []string{company}, o.Associated)

	// The same email again (any case) is a 409 naming the existing ID, as HubSpot does.
	status, body, _ = call(t, s, "POST", "/crm/v3/objects/contacts", `{"properties":{"email":"NEW@example.com"}}`)
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "CONFLICT", body.Get("category").String())
	assert.Equal(t, "Contact already exists. Existing ID: "+id, body.Get("message").String())

	// PATCH merges properties and moves updatedAt forward.
	status, body, _ = call(t, s, "PATCH", "/crm/v3/objects/contacts/"+id, `{"properties":{"lastname":"Person","phone":null}}`)
	require.Equal(t, http.StatusOK, status, body.Raw)
	assert.Equal(t, "Person", body.Get("properties.lastname").String())
	assert.False(t, body.Get("properties.phone").Exists(), "null clears a property")
	updated, _ := time.Parse(time.RFC3339Nano, body.Get("updatedAt").String())
	assert.True(t, updated.After(o.UpdatedAt))
	// Reading it back shows the same updatedAt.
	_, got, _ := call(t, s, "GET", "/crm/v3/objects/contacts/"+id, "")
	assert.Equal(t, body.Get("updatedAt").String(), got.Get("updatedAt").String())
	_, got, _ = call(t, s, "GET", "/crm/v3/objects/contacts/new@example.com?idProperty=email", "")
	assert.Equal(t, id, got.Get("id").String())

	// Taking another contact's email is a conflict too.
	other := s.List(fakecrm.Contacts)[0]
	status, body, _ = call(t, s, "PATCH", "/crm/v3/objects/contacts/"+id, `{"properties":{"email":"`+other.Properties["email"]+`"}}`)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, body.Get("message").String(), "Existing ID: "+other.ID)

	for path, want := range map[string]int{"/crm/v3/objects/contacts/999": 404, "/crm/v3/objects/contacts/01001": 404,
		"/crm/v3/objects/tickets/1": 404, "/crm/v3/objects/companies/" + id: 404} {
		status, body, _ = call(t, s, "PATCH", path, `{"properties":{"firstname":"X"}}`)
		assert.Equal(t, want, status, path)
		assert.Equal(t, "OBJECT_NOT_FOUND", body.Get("category").String(), path)
	}
	status, _, h := call(t, s, "PUT", "/crm/v3/objects/contacts/"+id, `{"properties":{"firstname":"X"}}`)
	assert.Equal(t, http.StatusMethodNotAllowed, status, "records are updated with PATCH only")
	assert.Equal(t, "GET, PATCH, DELETE", h.Get("Allow"))
	st := s.Stats()
	assert.Equal(t, 1, st.Creates)
	assert.Equal(t, 1, st.Updates)
	assert.Equal(t, 2, st.Conflicts)
}

// Every malformed or invalid write is a 400 that writes nothing.
func TestValidation(t *testing.T) {
	s := fakecrm.New()
	defer s.Close()
	cases := map[string]string{
		"not json":         `{"properties":`,
		"unknown property": `{"properties":{"favourite_colour":"blue"}}`,
		"read-only":        `{"properties":{"hs_object_id":"5"}}`,
		"bad email":        `{"properties":{"email":"not an email"}}`,
		"bad stage":        `{"properties":{"lifecyclestage":"prospect"}}`,
		"object value":     `{"properties":{"firstname":{"a":1}}}`,
		"bad association":  `{"properties":{"firstname":"A"},"associations":[{"to":{"id":"42"}}]}`,
		"properties array": `{"properties":["x"]}`,
	}
	for name, body := range cases {
		status, resp, _ := call(t, s, "POST", "/crm/v3/objects/contacts", body)
		assert.Equal(t, http.StatusBadRequest, status, name)
		assert.Equal(t, "VALIDATION_ERROR", resp.Get("category").String(), name)
	}
	_, resp, _ := call(t, s, "POST", "/crm/v3/objects/contacts", `{"properties":{"favourite_colour":"blue","createdate":"x"}}`)
	assert.Equal(t, []string{"READ_ONLY_VALUE", "PROPERTY_DOESNT_EXIST"}, []string{
		resp.Get("errors.0.code").String(), resp.Get("errors.1.code").String()}, resp.Raw)
	status, _, _ := call(t, s, "POST", "/crm/v3/objects/contacts", `{"properties":{"x":"`+strings.Repeat("a", 2<<20)+`"}}`)
	assert.Equal(t, http.StatusBadRequest, status, "oversized body")
	assert.Empty(t, s.List(fakecrm.Contacts))
	assert.Zero(t, s.Stats().Creates)
}

func TestArchiveAndAssociate(t *testing.T) {
	s := fakecrm.New()
	defer s.Close()
	c := s.Add(fakecrm.Contacts, map[string]string{"email": "a@example.com"})
	co := s.Add(fakecrm.Companies, map[string]string{"name": "Acme"})
	status, body, _ := call(t, s, "PUT", "/crm/v4/objects/contact/"+c+"/associations/default/company/"+co, "")
	require.Equal(t, http.StatusOK, status, body.Raw)
	assert.Equal(t, int64(279), body.Get("results.0.associationTypes.0.typeId").Int())
	o, _ := s.Get(fakecrm.Contacts, c)
	assert.Equal(t, []string{co}, o.Associated)
	status, _, _ = call(t, s, "PUT", "/crm/v4/objects/contact/"+c+"/associations/default/contacts/"+c, "")
	assert.Equal(t, http.StatusBadRequest, status)

	status, _, _ = call(t, s, "DELETE", "/crm/v3/objects/contacts/"+c, "")
	assert.Equal(t, http.StatusNoContent, status)
	status, _, _ = call(t, s, "GET", "/crm/v3/objects/contacts/"+c, "")
	assert.Equal(t, http.StatusNotFound, status)
	_, body, _ = call(t, s, "GET", "/crm/v3/objects/contacts?archived=true", "")
	assert.Equal(t, c, body.Get("results.0.id").String())
	_, body, _ = call(t, s, "GET", "/crm/v3/objects/contacts", "")
	assert.Empty(t, body.Get("results").Array())
	// An archived contact's email is free again.
	status, _, _ = call(t, s, "POST", "/crm/v3/objects/contacts", `{"properties":{"email":"a@example.com"}}`)
	assert.Equal(t, http.StatusCreated, status)
}

func TestRateLimit(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := fakecrm.New(fakecrm.WithRateLimit(3, 10*time.Second), fakecrm.WithClock(clock))
	defer s.Close()
	for i := range 3 {
		status, _, h := call(t, s, "GET", "/crm/v3/objects/contacts", "")
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "3", h.Get("X-HubSpot-RateLimit-Max"))
		assert.Equal(t, "10000", h.Get("X-HubSpot-RateLimit-Interval-Milliseconds"))
		assert.Equal(t, string(rune('2'-i)), h.Get("X-HubSpot-RateLimit-Remaining"))
		now = now.Add(time.Second)
	}
	status, body, h := call(t, s, "GET", "/crm/v3/objects/contacts", "")
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "RATE_LIMITS", body.Get("category").String())
	assert.Equal(t, "0", h.Get("X-HubSpot-RateLimit-Remaining"))
	assert.Equal(t, "7", h.Get("Retry-After"), "the oldest request leaves the window in 7 s")
	now = now.Add(7 * time.Second)
	status, _, _ = call(t, s, "GET", "/crm/v3/objects/contacts", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, 1, s.Stats().RateLimited)
}

// Faults hit about the asked fraction of requests, the same ones for the same seed, and
// a faulted write writes nothing.
func TestFaults(t *testing.T) {
	run := func() ([]int, *fakecrm.Server) {
		s := fakecrm.New(fakecrm.WithFaults(0.3, 42))
		t.Cleanup(s.Close)
		var statuses []int
		for range 200 {
			status, body, _ := call(t, s, "POST", "/crm/v3/objects/contacts", `{"properties":{"firstname":"A"}}`)
			statuses = append(statuses, status)
			if status != http.StatusCreated {
				assert.Contains(t, []int{429, 500, 502, 503, 504}, status)
				assert.Equal(t, "error", body.Get("status").String())
			}
		}
		return statuses, s
	}
	a, s := run()
	b, _ := run()
	assert.Equal(t, a, b, "same seed, same faults")
	st := s.Stats()
	assert.InDelta(t, 60, st.Faults, 25)
	assert.Equal(t, 200-st.Faults, st.Creates)
	assert.Len(t, s.List(fakecrm.Contacts), st.Creates)
	assert.Positive(t, st.RateLimited)

	s.SetFaultRate(0)
	status, _, _ := call(t, s, "GET", "/crm/v3/objects/contacts", "")
	assert.Equal(t, http.StatusOK, status)
}

func TestLatency(t *testing.T) {
	s := fakecrm.New(fakecrm.WithLatency(30 * time.Millisecond))
	defer s.Close()
	start := time.Now()
	call(t, s, "GET", "/crm/v3/objects/contacts", "")
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	s.SetLatency(0)
}

func TestSeedDeterministic(t *testing.T) {
	a := fakecrm.New(fakecrm.WithSeedData(20, 3, 9))
	defer a.Close()
	b := fakecrm.New(fakecrm.WithSeedData(20, 3, 9))
	defer b.Close()
	c := fakecrm.New(fakecrm.WithSeedData(20, 3, 10))
	defer c.Close()
	assert.Equal(t, a.List(fakecrm.Contacts), b.List(fakecrm.Contacts))
	assert.Equal(t, a.List(fakecrm.Companies), b.List(fakecrm.Companies))
	assert.NotEqual(t, a.List(fakecrm.Contacts), c.List(fakecrm.Contacts))
	linked := 0
	for _, o := range a.List(fakecrm.Contacts) {
		if len(o.Associated) > 0 {
			linked++
		}
	}
	assert.Equal(t, 16, linked, "four contacts in five have a company")
}

func TestUpdateFromTheCRM(t *testing.T) {
	s := fakecrm.New(fakecrm.WithSeedData(1, 0, 1))
	defer s.Close()
	o := s.List(fakecrm.Contacts)[0]
	require.True(t, s.Update(fakecrm.Contacts, o.ID, map[string]string{"phone": "+1 555 0000"}))
	n, _ := s.Get(fakecrm.Contacts, o.ID)
	assert.Equal(t, "+1 555 0000", n.Properties["phone"])
	assert.True(t, n.UpdatedAt.After(o.UpdatedAt))
	assert.False(t, s.Update(fakecrm.Contacts, "1", nil))
	assert.Panics(t, func() { s.List("tickets") })
}
