package sqlstore_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

func queryAll(t *testing.T, r synclog.Querier, f synclog.Filter) []synclog.Entry {
	t.Helper()
	var out []synclog.Entry
	for e, err := range r.Query(context.Background(), f) {
		if err != nil {
			t.Fatalf("Query(%+v): %v", f, err)
		}
		out = append(out, e)
	}
	return out
}

func TestLogRecorder(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := newClock()
			// A tiny page size makes every query cross page boundaries, including ties.
			db := e.open(t, sqlstore.WithClock(clk.Now), sqlstore.WithPageSize(3))
			rec := db.Log()

			t0 := clk.Now()
			var all []synclog.Entry
			for i := range 24 {
				en := synclog.Entry{
					// Every third entry shares its time with the previous one: ties.
					Time:      t0.Add(time.Duration(i-i%3/2) * time.Second),
					Backend:   []string{"shop-eu", "shop-us"}[i%2],
					Operation: []string{"import product", "export order", "webhook"}[i%3],
					Direction: []synclog.Direction{synclog.Outbound, synclog.Inbound}[i%3/2],
					Method:    "POST",
					URL:       fmt.Sprintf("https://api.example.com/items/%d", i),
					Status:    []int{200, 201, 404, 500, 0, 429}[i%6],
					Model:     []string{"product", "order"}[i%2],
					Record:    fmt.Sprintf("R%d", i%4),
					Attempts:  1 + i%3,
					Duration:  time.Duration(i) * time.Millisecond,
				}
				if en.Status == 0 {
					en.Error = "dial tcp: connection refused"
				}
				if err := rec.Record(ctx, en); err != nil {
					t.Fatalf("Record %d: %v", i, err)
				}
				en.ID = int64(i + 1) // the store numbers a fresh log's entries from 1
				all = append(all, en)
			}
			// Reference: the entries an in-memory Ring holding the same entries selects
			// (its IDs also count from 1), newest first by time; among equal times, later
			// inserts first.
			ring := synclog.NewRing(len(all))
			for _, en := range all {
				if err := ring.Record(ctx, en); err != nil {
					t.Fatal(err)
				}
			}
			want := func(f synclog.Filter) []string {
				g := f
				g.Limit = 0
				matched := map[string]bool{}
				for en, err := range ring.Query(ctx, g) {
					if err != nil {
						t.Fatal(err)
					}
					matched[en.URL] = true
				}
				var idx []int
				for i := range all {
					if matched[all[i].URL] {
						idx = append(idx, i)
					}
				}
				slices.SortStableFunc(idx, func(a, b int) int {
					if c := all[b].Time.Compare(all[a].Time); c != 0 {
						return c
					}
					return b - a
				})
				if f.Limit > 0 && len(idx) > f.Limit {
					idx = idx[:f.Limit]
				}
				urls := []string{}
				for _, i := range idx {
					urls = append(urls, all[i].URL)
				}
				return urls
			}
			filters := []synclog.Filter{
				{},
				{ID: 3},
				{ID: 3, Backend: "nope"},
				{ID: 99999},
				{Limit: 5},
				{Backend: "shop-eu"},
				{Backend: "shop-us", Limit: 4},
				{Operation: "webhook"},
				{Direction: synclog.Inbound},
				{Status: 404},
				{StatusMin: 400},
				{StatusMin: 200, StatusMax: 299},
				{FailedOnly: true},
				{Since: t0.Add(5 * time.Second)},
				{Until: t0.Add(5 * time.Second)},
				{Since: t0.Add(3 * time.Second), Until: t0.Add(10 * time.Second), Backend: "shop-eu"},
				{Model: "order", Record: "R1"},
				{Record: "R2", Limit: 1},
				{Backend: "nobody"},
			}
			for _, f := range filters {
				var got []string
				for _, en := range queryAll(t, rec, f) {
					got = append(got, en.URL)
				}
				if got == nil {
					got = []string{}
				}
				if diff := cmp.Diff(want(f), got); diff != "" {
					t.Errorf("Query(%+v) (-want +got):\n%s", f, diff)
				}
			}

			// Stored fields come back as recorded.
			got := queryAll(t, rec, synclog.Filter{Record: "R3", Model: "product", Limit: 1})
			if len(got) != 0 {
				t.Fatalf("R3 is an order record; got %d product entries", len(got))
			}
			got = queryAll(t, rec, synclog.Filter{Limit: 1})
			w := all[23] // with its ID: 24
			w.Time = w.Time.UTC()
			if diff := cmp.Diff(w, got[0]); diff != "" {
				t.Errorf("newest entry (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogRecorderContent(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := newClock()
			db := e.open(t, sqlstore.WithClock(clk.Now))
			rec := db.Log(synclog.WithBodyLimit(8))

			en := synclog.Entry{
				Backend:        "shop",
				Method:         "POST",
				URL:            "https://api.example.com/x",
				RequestHeader:  http.Header{"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}},
				ResponseHeader: http.Header{},
				RequestBody:    "1234567é",     // the é straddles the limit: cut before it
				ResponseBody:   "\x00\xff\xfe", // binary, not UTF-8
				Status:         201,
			}
			if err := rec.Record(ctx, en); err != nil {
				t.Fatalf("Record: %v", err)
			}
			if err := db.Log().Record(ctx, synclog.Entry{Backend: "other", Time: clk.Now().Add(-48 * time.Hour)}); err != nil {
				t.Fatalf("Record: %v", err)
			}
			got := queryAll(t, rec, synclog.Filter{Backend: "shop"})
			if len(got) != 1 {
				t.Fatalf("got %d entries, want 1", len(got))
			}
			g := got[0]
			if !g.Time.Equal(clk.Now()) || g.Time.Location() != time.UTC {
				t.Errorf("Time = %v, want the clock's %v in UTC", g.Time, clk.Now())
			}
			if g.RequestBody != "1234567" || !g.Truncated {
				t.Errorf("RequestBody = %q (Truncated %v), want %q cut", g.RequestBody, g.Truncated, "1234567")
			}
			if g.ResponseBody != "\x00\xff\xfe" {
				t.Errorf("ResponseBody = %q, want the binary body intact", g.ResponseBody)
			}
			if diff := cmp.Diff(en.RequestHeader, g.RequestHeader); diff != "" {
				t.Errorf("RequestHeader (-want +got):\n%s", diff)
			}
			if g.ResponseHeader == nil || len(g.ResponseHeader) != 0 {
				t.Errorf("ResponseHeader = %#v, want empty non-nil", g.ResponseHeader)
			}
			other := queryAll(t, rec, synclog.Filter{Backend: "other"})
			if len(other) != 1 || other[0].RequestHeader != nil || other[0].Truncated {
				t.Errorf("entry without headers = %+v", other)
			}

			// Free text with NUL or invalid UTF-8 is stored (cleaned on Postgres), not lost.
			if err := rec.Record(ctx, synclog.Entry{Backend: "odd", URL: "https://x/\xff", Error: "eof\x00"}); err != nil {
				t.Fatalf("Record with binary text: %v", err)
			}
			if odd := queryAll(t, rec, synclog.Filter{Backend: "odd"}); len(odd) != 1 {
				t.Fatalf("entry with binary text: got %d entries", len(odd))
			}

			// Prune keeps entries at or after the cutoff.
			n, err := rec.Prune(ctx, clk.Now().Add(-24*time.Hour))
			if err != nil || n != 1 {
				t.Fatalf("Prune = %d, %v; want 1 entry deleted", n, err)
			}
			if left := queryAll(t, rec, synclog.Filter{Backend: "shop"}); len(left) != 1 {
				t.Fatalf("after Prune: %+v", left)
			}

			// Bad input: a negative limit is an error, not "everything".
			var queryErr error
			for _, err := range rec.Query(ctx, synclog.Filter{Limit: -1}) {
				if err == nil {
					t.Fatalf("Query with Limit -1 yielded an entry, want an error")
				}
				queryErr = err
				break
			}
			if queryErr == nil {
				t.Fatalf("Query with Limit -1 yielded nothing, want an error")
			}
		})
	}
}

// The SQL log takes synclog's shared recorder options: a redactor and the body-limit rule
// (0 keeps no body, a negative limit keeps bodies whole).
func TestLogRecorderOptions(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.open(t)
			long := strings.Repeat("b", 70<<10)
			for _, tc := range []struct {
				backend  string
				opts     []synclog.Option
				wantBody string
				wantCut  bool
				wantURL  string
			}{
				{"whole", []synclog.Option{synclog.WithBodyLimit(-1)}, long, false, "https://x/p?token=abc"},
				{"none", []synclog.Option{synclog.WithBodyLimit(0)}, "", true, "https://x/p?token=abc"},
				{"redacted", []synclog.Option{synclog.WithRedactor(synclog.NewRedactor())}, long[:64<<10], true, "https://x/p?token=[REDACTED]"},
			} {
				rec := db.Log(tc.opts...)
				if err := rec.Record(ctx, synclog.Entry{Backend: tc.backend, URL: "https://x/p?token=abc", RequestBody: long}); err != nil {
					t.Fatalf("%s: Record: %v", tc.backend, err)
				}
				got := queryAll(t, rec, synclog.Filter{Backend: tc.backend})
				if len(got) != 1 {
					t.Fatalf("%s: got %d entries, want 1", tc.backend, len(got))
				}
				if g := got[0]; g.RequestBody != tc.wantBody || g.Truncated != tc.wantCut || g.URL != tc.wantURL {
					t.Errorf("%s: body of %d bytes (Truncated %v), URL %q; want %d bytes (%v), %q",
						tc.backend, len(g.RequestBody), g.Truncated, g.URL, len(tc.wantBody), tc.wantCut, tc.wantURL)
				}
			}
		})
	}
}
