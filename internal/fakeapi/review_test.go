package fakeapi_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/internal/fakeapi"
)

// Integers beyond 2^53 survive a create, a PUT and a PATCH digit for digit: a fake that
// rounds them would hide precision bugs in the mappers and exporters tested against it.
func TestLargeIntegersKeepTheirDigits(t *testing.T) {
	s := fakeapi.New()
	defer s.Close()
	const big = "9007199254740993" // 2^53 + 1: float64 rounds it to ...992
	st, rec := send(t, "POST", s.URL+"/things", "", `{"n":`+big+`,"f":0.1}`)
	require.Equal(t, http.StatusCreated, st)
	assert.Equal(t, big, rec.Get("n").Raw)
	id := rec.Get("id").Int()
	_, _, got := get(t, fmt.Sprintf("%s/things/%d", s.URL, id))
	assert.Equal(t, big, got.Get("n").Raw, "stored")

	st, rec = send(t, "PATCH", fmt.Sprintf("%s/things/%d", s.URL, id), "", `{"color":"red"}`)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, big, rec.Get("n").Raw, "a PATCH of another field keeps the digits")
	assert.Equal(t, "0.1", rec.Get("f").Raw)

	st, rec = send(t, "PUT", fmt.Sprintf("%s/things/%d", s.URL, id), "", `{"m":-`+big+`}`)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "-"+big, rec.Get("m").Raw)

	st, _ = send(t, "POST", s.URL+"/things", "", `{"n":1} {"n":2}`)
	assert.Equal(t, http.StatusBadRequest, st, "one object, nothing after it")

	s.Touch("things", id, map[string]any{"x": 1})
	r, ok := s.Record("things", id)
	require.True(t, ok)
	assert.Equal(t, "-"+big, r.Get("m").Raw, "Touch merges without rounding")
}

// Offsets and page numbers too large to add up are an empty page, not a panic (which the
// client would see as a dropped connection).
func TestHugeOffsetAndPage(t *testing.T) {
	s := fakeapi.New()
	defer s.Close()
	seed(s, 3)
	for _, q := range []string{
		"offset=" + strconv.FormatInt(1<<63-1, 10),
		"offset=" + strconv.FormatInt(1<<62, 10) + "&updated_at_min=2000-01-01T00:00:00Z",
		"page=" + strconv.FormatInt(1<<62, 10) + "&per_page=10",
		"page=" + strconv.FormatInt(1<<63-1, 10),
	} {
		st, _, body := get(t, s.URL+"/items?"+q)
		require.Equal(t, http.StatusOK, st, q)
		assert.Equal(t, "[]", body.Get("items").Raw, q)
		assert.Equal(t, int64(3), body.Get("total").Int(), q)
	}
}

// The repeated-record fault repeats a record at the start of a page that has records of
// its own; past the end the page stays empty, or a client that pages until an empty page
// would never stop.
func TestRepeatRecordPastTheEnd(t *testing.T) {
	s := fakeapi.New()
	defer s.Close()
	seed(s, 4)
	s.Inject(fakeapi.Fault{Kind: fakeapi.FaultRepeatRecord, Every: 1})
	_, _, body := get(t, s.URL+"/items?limit=2&offset=2")
	assert.Equal(t, "[2,3,4]", body.Get("items.#.id").Raw)
	_, _, body = get(t, s.URL+"/items?limit=2&offset=4")
	assert.Equal(t, "[]", body.Get("items").Raw)
	_, _, body = get(t, s.URL+"/items?limit=2&page=3")
	assert.Equal(t, "[]", body.Get("items").Raw)
}

// A replayed create answers what the first one answered, even when the record was changed
// or deleted since, as APIs that store idempotent responses do: a client that reuses a key
// for what it means as a new record gets the old one back, and a test can see it.
func TestIdempotentReplayIsTheFirstResponse(t *testing.T) {
	s := fakeapi.New()
	defer s.Close()
	st, first := send(t, "POST", s.URL+"/things", "k", `{"name":"a"}`)
	require.Equal(t, http.StatusCreated, st)
	id := first.Get("id").Int()
	send(t, "PATCH", fmt.Sprintf("%s/things/%d", s.URL, id), "", `{"name":"b"}`)
	_, again := send(t, "POST", s.URL+"/things", "k", `{"name":"a"}`)
	assert.Equal(t, first.Raw, again.Raw, "the stored response, not the record as it is now")

	st, _ = send(t, "DELETE", fmt.Sprintf("%s/things/%d", s.URL, id), "", "")
	require.Equal(t, http.StatusNoContent, st)
	st, again = send(t, "POST", s.URL+"/things", "k", `{"name":"a"}`)
	assert.Equal(t, http.StatusCreated, st)
	assert.Equal(t, id, again.Get("id").Int(), "a deleted record's key still replays")
	assert.Equal(t, 0, s.Count("things"), "nothing created")
	assert.Equal(t, 1, s.Stats().Creates)
	assert.Equal(t, 2, s.Stats().Replays)
}
