package adapter

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An empty page in the middle of a cursor walk whose body says has_more: true does not end
// the walk (APIs filtering server-side serve such pages); without that flag an empty page
// still ends it.
func TestCursorEmptyPageWithHasMore(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("cursor") {
		case "":
			fmt.Fprintf(w, `{"data":%s,"next":"c1","has_more":true}`, pgItems(1, 3))
		case "c1":
			fmt.Fprint(w, `{"data":[],"next":"c2","has_more":true}`)
		case "c2":
			fmt.Fprintf(w, `{"data":%s,"next":null,"has_more":false}`, pgItems(3, 5))
		}
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Cursor("next", "cursor", HasMorePath("has_more")), WithRecordsPath("data")))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3, 4}, ids)

	ids, err = collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Cursor("next", "cursor"), WithRecordsPath("data")))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, ids, "no has_more: the empty page ends the walk, as before")
}

// An API that caps its pages below the limit asked for: with a total of records, an
// offset walk goes on (its offset counts what was received, so nothing is skipped); a
// page-number walk would skip the rest of each page, so it fails instead of stopping
// silently. Without a total, a short page ends both walks, as before.
func TestShortPagesWithTotal(t *testing.T) {
	const total, capped = 120, 50
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		from, _ := strconv.Atoi(q.Get("offset"))
		if p := q.Get("page"); p != "" {
			n, _ := strconv.Atoi(p)
			from = (n - 1) * capped
		}
		fmt.Fprintf(w, `{"data":%s,"total":%d}`, pgItems(from+1, min(from+capped, total)+1), total)
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"},
		Offset("limit", "offset", 100, TotalRecords("total", "")), WithRecordsPath("data")))
	require.NoError(t, err)
	assert.Len(t, ids, total)

	ids, err = collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"},
		PageNumber("page", 1, "per_page", 100, TotalRecords("total", "")), WithRecordsPath("data")))
	require.ErrorIs(t, err, ErrBadPage)
	assert.ErrorContains(t, err, "caps its page size")
	assert.Len(t, ids, capped)

	ids, err = collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "offset", 100), WithRecordsPath("data")))
	require.NoError(t, err)
	assert.Len(t, ids, capped, "no total: the short page ends the walk")
}
