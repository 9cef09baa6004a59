package fakeapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/internal/fakeapi"
)

func get(t *testing.T, url string) (int, http.Header, gjson.Result) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, gjson.ParseBytes(b)
}

func send(t *testing.T, method, url, key, body string) (int, gjson.Result) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, gjson.ParseBytes(b)
}

func clock() func() time.Time {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

func seed(s *fakeapi.Server, n int) {
	s.Seed("items", n, func(i int) map[string]any { return map[string]any{"n": i} })
}

func TestPaginationStyles(t *testing.T) {
	s := fakeapi.New(fakeapi.WithClock(clock()))
	defer s.Close()
	seed(s, 7)

	// offset
	var ids []int64
	for off := 0; ; off += 3 {
		_, _, body := get(t, fmt.Sprintf("%s/items?limit=3&offset=%d", s.URL, off))
		assert.Equal(t, int64(7), body.Get("total").Int())
		if len(body.Get("items").Array()) == 0 {
			break
		}
		for _, r := range body.Get("items").Array() {
			ids = append(ids, r.Get("id").Int())
		}
	}
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, ids)

	// page number
	_, _, body := get(t, s.URL+"/items?per_page=3&page=3")
	assert.Equal(t, "[7]", body.Get("items.#.id").Raw)

	// cursor, next URL and Link header
	ids = nil
	url := s.URL + "/items?limit=3"
	for url != "" {
		_, h, body := get(t, url)
		for _, r := range body.Get("items").Array() {
			ids = append(ids, r.Get("id").Int())
		}
		next := body.Get("next").String()
		if c := body.Get("next_cursor").String(); c != "" {
			assert.Contains(t, next, "cursor="+c)
			assert.Contains(t, h.Get("Link"), `rel="next"`)
		} else {
			assert.Empty(t, next)
			assert.Empty(t, h.Get("Link"))
		}
		url = next
	}
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, ids)

	st, _, body := get(t, s.URL+"/items?cursor=bogus")
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Contains(t, body.Get("error").String(), "cursor")
	st, _, _ = get(t, s.URL+"/items?limit=x")
	assert.Equal(t, http.StatusBadRequest, st)
}

func TestOnlyStyleMetadata(t *testing.T) {
	s := fakeapi.New(fakeapi.WithPagination(fakeapi.StyleLinkHeader))
	defer s.Close()
	seed(s, 3)
	_, h, body := get(t, s.URL+"/items?limit=2")
	assert.False(t, body.Get("next_cursor").Exists())
	assert.False(t, body.Get("total").Exists())
	assert.Contains(t, h.Get("Link"), "cursor=")
}

func TestUpdatedAtMinAndTouch(t *testing.T) {
	s := fakeapi.New(fakeapi.WithClock(clock()))
	defer s.Close()
	seed(s, 5) // updated 00:00:01 .. 00:00:05
	_, _, body := get(t, s.URL+"/items?updated_at_min=2024-01-01T00:00:04Z")
	assert.Equal(t, "[4,5]", body.Get("items.#.id").Raw)
	require.True(t, s.Touch("items", 2, map[string]any{"n": 99}))
	_, _, body = get(t, s.URL+"/items?updated_at_min=2024-01-01T00:00:04Z")
	assert.Equal(t, "[4,5,2]", body.Get("items.#.id").Raw, "a touched record moves to the end")
	st, _, _ := get(t, s.URL+"/items?updated_at_min=yesterday")
	assert.Equal(t, http.StatusBadRequest, st)
}

func TestCRUDAndIdempotency(t *testing.T) {
	s := fakeapi.New()
	defer s.Close()
	st, rec := send(t, "POST", s.URL+"/things", "k1", `{"name":"a"}`)
	require.Equal(t, http.StatusCreated, st)
	id := rec.Get("id").Int()
	st, again := send(t, "POST", s.URL+"/things", "k1", `{"name":"a"}`)
	assert.Equal(t, http.StatusCreated, st)
	assert.Equal(t, id, again.Get("id").Int(), "same key, same record")
	send(t, "POST", s.URL+"/things", "k2", `{"name":"b"}`)
	assert.Equal(t, 2, s.Count("things"))
	assert.Equal(t, map[string]int{"k1": 2, "k2": 1}, s.CreateRequestsByKey())
	stats := s.Stats()
	assert.Equal(t, 2, stats.Creates)
	assert.Equal(t, 1, stats.Replays)

	st, upd := send(t, "PATCH", fmt.Sprintf("%s/things/%d", s.URL, id), "", `{"color":"red"}`)
	assert.Equal(t, http.StatusOK, st)
	assert.Equal(t, "a", upd.Get("name").String(), "PATCH merges")
	st, upd = send(t, "PUT", fmt.Sprintf("%s/things/%d", s.URL, id), "", `{"size":1}`)
	assert.Equal(t, http.StatusOK, st)
	assert.False(t, upd.Get("name").Exists(), "PUT replaces")
	st, _ = send(t, "DELETE", fmt.Sprintf("%s/things/%d", s.URL, id), "", "")
	assert.Equal(t, http.StatusNoContent, st)
	st, _ = send(t, "DELETE", fmt.Sprintf("%s/things/%d", s.URL, id), "", "")
	assert.Equal(t, http.StatusNotFound, st)
	st, _ = send(t, "PUT", s.URL+"/things/999", "", `{}`)
	assert.Equal(t, http.StatusNotFound, st)
	st, body := send(t, "POST", s.URL+"/things", "", `not json`)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Contains(t, body.Get("error").String(), "JSON object")
	st, _ = send(t, "GET", s.URL+"/things/abc", "", "")
	assert.Equal(t, http.StatusNotFound, st)

	s.RejectWrites(func(_ string, b gjson.Result) string {
		if b.Get("bad").Bool() {
			return "bad record"
		}
		return ""
	})
	st, _ = send(t, "POST", s.URL+"/things", "", `{"bad":true}`)
	assert.Equal(t, http.StatusUnprocessableEntity, st)
}

func TestWithoutIdempotency(t *testing.T) {
	s := fakeapi.New(fakeapi.WithoutIdempotency())
	defer s.Close()
	send(t, "POST", s.URL+"/things", "k", `{}`)
	send(t, "POST", s.URL+"/things", "k", `{}`)
	assert.Equal(t, 2, s.Count("things"))
}

func TestFaults(t *testing.T) {
	s := fakeapi.New()
	defer s.Close()
	seed(s, 4)
	s.Inject(fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: 502, After: 1, Burst: 2})
	var got []int
	for range 5 {
		st, _, _ := get(t, s.URL+"/items/1")
		got = append(got, st)
	}
	assert.Equal(t, []int{200, 502, 502, 200, 200}, got)

	s.ClearFaults()
	s.Inject(fakeapi.Fault{Kind: fakeapi.FaultRateLimit, Every: 2, Times: 2})
	got = nil
	for range 6 {
		st, h, _ := get(t, s.URL+"/items/1")
		got = append(got, st)
		if st == 429 {
			assert.Equal(t, "0", h.Get("Retry-After"))
		}
	}
	assert.Equal(t, []int{429, 200, 429, 200, 200, 200}, got)

	s.ClearFaults()
	s.Inject(fakeapi.Fault{Kind: fakeapi.FaultReset, Resource: "items"})
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, err := fresh.Get(s.URL + "/items/1")
	require.Error(t, err, "connection reset")

	s.ClearFaults()
	s.Inject(fakeapi.Fault{Kind: fakeapi.FaultRepeatRecord, Every: 1})
	_, _, body := get(t, s.URL+"/items?limit=2&offset=2")
	assert.Equal(t, "[2,3,4]", body.Get("items.#.id").Raw)

	s.ClearFaults()
	s.Inject(fakeapi.Fault{Kind: fakeapi.FaultResetAfterWrite, Method: "POST"})
	req, _ := http.NewRequest("POST", s.URL+"/things", bytes.NewBufferString(`{}`))
	_, err = fresh.Do(req)
	require.Error(t, err)
	assert.Equal(t, 1, s.Count("things"), "the write happened")

	s.ClearFaults()
	s.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: time.Millisecond})
	st, _, _ := get(t, s.URL+"/items/1")
	assert.Equal(t, 200, st)
	assert.Equal(t, 8, s.Stats().Faults)
}

func TestSynthetic(t *testing.T) {
	s := fakeapi.New()
	defer s.Close()
	s.Synthetic("products", 1000)
	_, _, body := get(t, s.URL+"/products?limit=2&updated_at_min=2024-01-01T00:16:40Z")
	assert.Equal(t, "[1000]", body.Get("items.#.id").Raw)
	assert.Equal(t, int64(1), body.Get("total").Int())
	st, _, rec := get(t, s.URL+"/products/5")
	assert.Equal(t, 200, st)
	assert.Equal(t, "SKU-5", rec.Get("sku").String())
	st, _ = send(t, "POST", s.URL+"/products", "", `{}`)
	assert.Equal(t, http.StatusMethodNotAllowed, st)
	assert.Equal(t, 1000, s.Count("products"))
}
