// Package webhooktest is the conformance suite every webhook.Store passes, in the spirit
// of binding/bindingtest: a store package calls Run from its own tests with a constructor
// of fresh, empty stores.
//
//	func TestWebhookStore(t *testing.T) {
//		webhooktest.Run(t, func(t *testing.T) webhook.Store { return newTestStore(t) })
//	}
//
// The suite pins the contract documented on webhook.Store, including what its comments
// leave to prose: ErrInvalid on bad input (empty endpoint or ID, unknown status, negative
// Limit or Attempts), ErrNotFound, atomic inserts of one key under concurrency, bodies
// stored byte for byte, UTC times with at least millisecond precision, List's order and
// paging while the caller writes, and Purge's bounds.
//
// Signing deliveries for tests needs no helper from here: every verifier of package
// webhook signs with its Sign method.
package webhooktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/webhook"
)

// Run runs the conformance suite. newStore must return a new, empty store on every call;
// each subtest gets its own. Register cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) webhook.Store) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.fn(t, &env{store: s, ctx: t.Context()})
		})
	}
}

type env struct {
	store webhook.Store
	ctx   context.Context
}

type testCase struct {
	name string
	fn   func(t *testing.T, e *env)
}

const (
	epA = "shopify"
	epB = "github"
)

// base is a fixed, whole-millisecond time every case counts from.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

func delivery(endpoint, id string, received time.Time) webhook.Delivery {
	return webhook.Delivery{
		Endpoint:   endpoint,
		ID:         id,
		Event:      "orders/create",
		Header:     http.Header{"Content-Type": {"application/json"}, "X-Shopify-Topic": {"orders/create"}},
		Body:       []byte(`{"id":` + fmt.Sprintf("%q", id) + `}`),
		ReceivedAt: received,
	}
}

func (e *env) insert(t *testing.T, d webhook.Delivery) webhook.Delivery {
	t.Helper()
	got, inserted, err := e.store.Insert(e.ctx, d)
	if err != nil {
		t.Fatalf("Insert(%s/%s): %v", d.Endpoint, d.ID, err)
	}
	if !inserted {
		t.Fatalf("Insert(%s/%s): inserted = false for a new delivery", d.Endpoint, d.ID)
	}
	return got
}

func (e *env) get(t *testing.T, endpoint, id string) webhook.Delivery {
	t.Helper()
	got, err := e.store.Get(e.ctx, endpoint, id)
	if err != nil {
		t.Fatalf("Get(%s/%s): %v", endpoint, id, err)
	}
	return got
}

func (e *env) list(t *testing.T, f webhook.Filter) []webhook.Delivery {
	t.Helper()
	var out []webhook.Delivery
	for d, err := range e.store.List(e.ctx, f) {
		if err != nil {
			t.Fatalf("List(%+v): %v", f, err)
		}
		out = append(out, d)
	}
	return out
}

func keys(ds []webhook.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Endpoint + "/" + d.ID
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %v", what, err, target)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// sameTime checks that got is want within a millisecond, in UTC.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Fatalf("%s = %v: not in UTC", what, got)
	}
	if d := got.Sub(want); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("%s = %v, want %v (within 1ms)", what, got, want)
	}
}

// sameDelivery checks every field of got against want.
func sameDelivery(t *testing.T, what string, got, want webhook.Delivery) {
	t.Helper()
	eq(t, what+".Endpoint", got.Endpoint, want.Endpoint)
	eq(t, what+".ID", got.ID, want.ID)
	eq(t, what+".Event", got.Event, want.Event)
	if !sameHeader(got.Header, want.Header) {
		t.Fatalf("%s.Header = %v, want %v", what, got.Header, want.Header)
	}
	if !bytes.Equal(got.Body, want.Body) {
		t.Fatalf("%s.Body = %q, want %q", what, got.Body, want.Body)
	}
	if got.Body == nil {
		t.Fatalf("%s.Body is nil; an empty body is []byte{}", what)
	}
	sameTime(t, what+".ReceivedAt", got.ReceivedAt, want.ReceivedAt)
	eq(t, what+".Status", got.Status, want.Status)
	eq(t, what+".Attempts", got.Attempts, want.Attempts)
	eq(t, what+".LastError", got.LastError, want.LastError)
	sameTime(t, what+".UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	eq(t, what+".Generation", got.Generation, want.Generation)
}

// sameHeader compares headers, an empty one equal to nil.
func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}

var cases = []testCase{
	{"InsertGet", func(t *testing.T, e *env) {
		d := delivery(epA, "d1", at(0).Add(123456*time.Microsecond))
		d.Header.Add("X-Multi", "one")
		d.Header.Add("X-Multi", "two")
		d.Body = []byte("{\"a\":\"\x00\xff\xfe binary\"}") // not valid UTF-8: stored byte for byte
		got := e.insert(t, d)
		want := d
		want.Status, want.UpdatedAt = webhook.StatusPending, d.ReceivedAt
		sameDelivery(t, "Insert result", got, want)
		sameDelivery(t, "Get", e.get(t, epA, "d1"), want)
	}},

	{"InsertKeepsGivenState", func(t *testing.T, e *env) {
		d := delivery(epA, "d1", at(0))
		d.Status, d.Attempts, d.LastError, d.UpdatedAt = webhook.StatusFailed, 2, "boom", at(5)
		e.insert(t, d)
		sameDelivery(t, "Get", e.get(t, epA, "d1"), d)
	}},

	{"InsertEmptyBodyAndHeader", func(t *testing.T, e *env) {
		d := webhook.Delivery{Endpoint: epA, ID: "empty", ReceivedAt: at(0)}
		e.insert(t, d)
		got := e.get(t, epA, "empty")
		if got.Body == nil || len(got.Body) != 0 {
			t.Fatalf("Body = %#v, want []byte{}", got.Body)
		}
		if len(got.Header) != 0 {
			t.Fatalf("Header = %v, want empty", got.Header)
		}
		eq(t, "Event", got.Event, "")
	}},

	{"InsertLargeBody", func(t *testing.T, e *env) {
		body := make([]byte, 1<<20)
		for i := range body {
			body[i] = byte(i*7 + i>>8)
		}
		d := delivery(epA, "big", at(0))
		d.Body = body
		e.insert(t, d)
		if got := e.get(t, epA, "big"); !bytes.Equal(got.Body, body) {
			t.Fatalf("1 MiB body differs after a round trip (len %d)", len(got.Body))
		}
	}},

	{"InsertZeroTimes", func(t *testing.T, e *env) {
		before := time.Now()
		got := e.insert(t, webhook.Delivery{Endpoint: epA, ID: "now"})
		if got.ReceivedAt.IsZero() || got.ReceivedAt.Before(before.Add(-time.Second)) || got.ReceivedAt.After(time.Now().Add(time.Second)) {
			t.Fatalf("ReceivedAt = %v for a zero ReceivedAt, want about now", got.ReceivedAt)
		}
		sameTime(t, "UpdatedAt", got.UpdatedAt, got.ReceivedAt)
		sameTime(t, "Get.ReceivedAt", e.get(t, epA, "now").ReceivedAt, got.ReceivedAt)
	}},

	{"InsertDuplicate", func(t *testing.T, e *env) {
		first := e.insert(t, delivery(epA, "d1", at(0)))
		_, err := e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Status: webhook.StatusProcessed, At: at(1)})
		noErr(t, "Finish", err)
		again := delivery(epA, "d1", at(9))
		again.Body = []byte(`{"other":true}`)
		again.Event = "orders/updated"
		stored, inserted, err := e.store.Insert(e.ctx, again)
		noErr(t, "Insert duplicate", err)
		eq(t, "inserted", inserted, false)
		want := first
		want.Status, want.Attempts, want.UpdatedAt = webhook.StatusProcessed, 1, at(1)
		sameDelivery(t, "duplicate's stored", stored, want)
		sameDelivery(t, "Get after duplicate", e.get(t, epA, "d1"), want)
		eq(t, "deliveries", len(e.list(t, webhook.Filter{})), 1)
	}},

	{"KeyIsEndpointAndID", func(t *testing.T, e *env) {
		a := delivery(epA, "same", at(0))
		b := delivery(epB, "same", at(1))
		b.Body = []byte(`{"b":1}`)
		e.insert(t, a)
		e.insert(t, b)
		if got := e.get(t, epB, "same"); !bytes.Equal(got.Body, b.Body) {
			t.Fatalf("Get(%s/same).Body = %s, want %s", epB, got.Body, b.Body)
		}
		_, err := e.store.Finish(e.ctx, epA, "same", webhook.Outcome{Status: webhook.StatusFailed, Error: "x", At: at(2)})
		noErr(t, "Finish", err)
		eq(t, epB+" status after finishing "+epA, e.get(t, epB, "same").Status, webhook.StatusPending)
	}},

	{"InsertConcurrentSameKey", func(t *testing.T, e *env) {
		const n = 16
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			winners  []int
			returned [][]byte
			errs     []error
		)
		for i := range n {
			wg.Go(func() {
				d := delivery(epA, "race", at(i))
				d.Body = []byte(fmt.Sprintf(`{"n":%d}`, i))
				stored, inserted, err := e.store.Insert(e.ctx, d)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if inserted {
					winners = append(winners, i)
				}
				returned = append(returned, stored.Body)
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("concurrent Insert errors: %v", errs)
		}
		if len(winners) != 1 {
			t.Fatalf("%d concurrent inserts of one key reported inserted = true, want exactly 1", len(winners))
		}
		want := []byte(fmt.Sprintf(`{"n":%d}`, winners[0]))
		for _, b := range returned {
			if !bytes.Equal(b, want) {
				t.Fatalf("an Insert returned body %s, want the winner's %s", b, want)
			}
		}
		if got := e.get(t, epA, "race"); !bytes.Equal(got.Body, want) {
			t.Fatalf("stored body %s, want the winner's %s", got.Body, want)
		}
	}},

	{"InsertInvalid", func(t *testing.T, e *env) {
		for name, d := range map[string]webhook.Delivery{
			"empty endpoint":      {ID: "x", ReceivedAt: at(0)},
			"empty ID":            {Endpoint: epA, ReceivedAt: at(0)},
			"unknown status":      {Endpoint: epA, ID: "x", Status: "done", ReceivedAt: at(0)},
			"negative attempts":   {Endpoint: epA, ID: "x", Attempts: -1, ReceivedAt: at(0)},
			"negative generation": {Endpoint: epA, ID: "x", Generation: -1, ReceivedAt: at(0)},
		} {
			_, inserted, err := e.store.Insert(e.ctx, d)
			wantErr(t, "Insert with "+name, err, webhook.ErrInvalid)
			eq(t, "inserted with "+name, inserted, false)
		}
		eq(t, "deliveries stored", len(e.list(t, webhook.Filter{})), 0)
	}},

	{"NotFound", func(t *testing.T, e *env) {
		e.insert(t, delivery(epA, "exists", at(0)))
		_, err := e.store.Get(e.ctx, epA, "missing")
		wantErr(t, "Get missing", err, webhook.ErrNotFound)
		_, err = e.store.Get(e.ctx, epB, "exists")
		wantErr(t, "Get under another endpoint", err, webhook.ErrNotFound)
		_, err = e.store.Finish(e.ctx, epA, "missing", webhook.Outcome{Status: webhook.StatusProcessed, At: at(1)})
		wantErr(t, "Finish missing", err, webhook.ErrNotFound)
		_, err = e.store.Reset(e.ctx, epA, "missing", at(1))
		wantErr(t, "Reset missing", err, webhook.ErrNotFound)
		if errors.Is(err, webhook.ErrInvalid) {
			t.Fatal("ErrNotFound also matches ErrInvalid")
		}
	}},

	{"KeyInvalid", func(t *testing.T, e *env) {
		_, err := e.store.Get(e.ctx, "", "x")
		wantErr(t, "Get with empty endpoint", err, webhook.ErrInvalid)
		_, err = e.store.Get(e.ctx, epA, "")
		wantErr(t, "Get with empty ID", err, webhook.ErrInvalid)
		_, err = e.store.Finish(e.ctx, epA, "", webhook.Outcome{Status: webhook.StatusProcessed, At: at(0)})
		wantErr(t, "Finish with empty ID", err, webhook.ErrInvalid)
		_, err = e.store.Reset(e.ctx, "", "x", at(0))
		wantErr(t, "Reset with empty endpoint", err, webhook.ErrInvalid)
	}},

	{"Finish", func(t *testing.T, e *env) {
		d := e.insert(t, delivery(epA, "d1", at(0)))
		got, err := e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Status: webhook.StatusFailed, Error: "handler: timeout", At: at(10)})
		noErr(t, "Finish failed", err)
		want := d
		want.Status, want.Attempts, want.LastError, want.UpdatedAt = webhook.StatusFailed, 1, "handler: timeout", at(10)
		sameDelivery(t, "Finish result", got, want)
		sameDelivery(t, "Get after Finish", e.get(t, epA, "d1"), want)

		got, err = e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Status: webhook.StatusProcessed, At: at(20)})
		noErr(t, "Finish processed", err)
		want.Status, want.Attempts, want.LastError, want.UpdatedAt = webhook.StatusProcessed, 2, "", at(20)
		sameDelivery(t, "second Finish (clears LastError)", got, want)

		got, err = e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Status: webhook.StatusIgnored, At: at(30)})
		noErr(t, "Finish ignored", err)
		eq(t, "Status", got.Status, webhook.StatusIgnored)
		eq(t, "Attempts", got.Attempts, 3)
		// What a delivery was received as never changes.
		eq(t, "Event", got.Event, d.Event)
		if !bytes.Equal(got.Body, d.Body) {
			t.Fatalf("Body changed by Finish: %s", got.Body)
		}
		sameTime(t, "ReceivedAt", got.ReceivedAt, d.ReceivedAt)

		_, err = e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Status: "done", At: at(40)})
		wantErr(t, "Finish with an unknown status", err, webhook.ErrInvalid)
		eq(t, "Status after a refused Finish", e.get(t, epA, "d1").Status, webhook.StatusIgnored)
	}},

	{"FinishConcurrentCountsEveryAttempt", func(t *testing.T, e *env) {
		e.insert(t, delivery(epA, "d1", at(0)))
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				if _, err := e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Status: webhook.StatusFailed, Error: fmt.Sprint(i), At: at(i + 1)}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Finish: %v", err)
		}
		eq(t, "Attempts after concurrent Finishes", e.get(t, epA, "d1").Attempts, n)
	}},

	{"Reset", func(t *testing.T, e *env) {
		e.insert(t, delivery(epA, "d1", at(0)))
		_, err := e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Status: webhook.StatusFailed, Error: "boom", At: at(10)})
		noErr(t, "Finish", err)
		got, err := e.store.Reset(e.ctx, epA, "d1", at(20))
		noErr(t, "Reset", err)
		eq(t, "Status", got.Status, webhook.StatusPending)
		eq(t, "Attempts (kept)", got.Attempts, 1)
		eq(t, "LastError (kept)", got.LastError, "boom")
		eq(t, "Generation", got.Generation, 1)
		sameTime(t, "UpdatedAt", got.UpdatedAt, at(20))
		sameDelivery(t, "Get after Reset", e.get(t, epA, "d1"), got)

		// Replay of a processed delivery.
		_, err = e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Generation: 1, Status: webhook.StatusProcessed, At: at(30)})
		noErr(t, "Finish", err)
		got, err = e.store.Reset(e.ctx, epA, "d1", at(40))
		noErr(t, "Reset processed", err)
		eq(t, "Status after replay", got.Status, webhook.StatusPending)
		eq(t, "Attempts after replay", got.Attempts, 2)
		eq(t, "Generation after replay", got.Generation, 2)
	}},

	// An attempt that read the delivery before a Reset (a replay asked for while it ran)
	// must not overwrite the replay with its outcome.
	{"FinishAfterResetIsStale", func(t *testing.T, e *env) {
		e.insert(t, delivery(epA, "d1", at(0)))
		read := e.get(t, epA, "d1") // the attempt reads generation 0
		reset, err := e.store.Reset(e.ctx, epA, "d1", at(10))
		noErr(t, "Reset", err)
		_, err = e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Generation: read.Generation, Status: webhook.StatusProcessed, At: at(20)})
		if !errors.Is(err, webhook.ErrStale) {
			t.Fatalf("Finish of an attempt that read generation %d after a Reset: %v, want ErrStale", read.Generation, err)
		}
		sameDelivery(t, "delivery after the stale Finish", e.get(t, epA, "d1"), reset)
		got, err := e.store.Finish(e.ctx, epA, "d1", webhook.Outcome{Generation: reset.Generation, Status: webhook.StatusProcessed, At: at(30)})
		noErr(t, "Finish of the replay's attempt", err)
		eq(t, "Status", got.Status, webhook.StatusProcessed)
		eq(t, "Attempts", got.Attempts, 1)
		_, err = e.store.Finish(e.ctx, epA, "missing", webhook.Outcome{Generation: 5, Status: webhook.StatusProcessed})
		if !errors.Is(err, webhook.ErrNotFound) {
			t.Fatalf("Finish of a missing delivery with a generation: %v, want ErrNotFound", err)
		}
	}},

	{"ReturnedCopies", func(t *testing.T, e *env) {
		d := delivery(epA, "d1", at(0))
		got := e.insert(t, d)
		// The caller's values and the returned ones are the caller's to change.
		d.Body[0] = 'X'
		d.Header.Set("Content-Type", "text/plain")
		got.Body[0] = 'Y'
		got.Header.Set("X-Shopify-Topic", "changed")
		g := e.get(t, epA, "d1")
		g.Body[1] = 'Z'
		g.Header.Del("Content-Type")
		again := e.get(t, epA, "d1")
		eq(t, "stored body", string(again.Body), `{"id":"d1"}`)
		eq(t, "stored Content-Type", again.Header.Get("Content-Type"), "application/json")
		eq(t, "stored topic", again.Header.Get("X-Shopify-Topic"), "orders/create")
	}},

	{"ListOrderAndFilters", func(t *testing.T, e *env) {
		// Inserted out of order; c and b share a time (ties by ID).
		mk := func(ep, id string, sec int, st webhook.Status) {
			e.insert(t, delivery(ep, id, at(sec)))
			if st != webhook.StatusPending {
				_, err := e.store.Finish(e.ctx, ep, id, webhook.Outcome{Status: st, At: at(100)})
				noErr(t, "Finish", err)
			}
		}
		mk(epA, "e", 50, webhook.StatusPending)
		mk(epA, "c", 20, webhook.StatusFailed)
		mk(epA, "a", 10, webhook.StatusProcessed)
		mk(epB, "b", 20, webhook.StatusPending)
		mk(epB, "d", 30, webhook.StatusIgnored)
		all := []string{epA + "/a", epB + "/b", epA + "/c", epB + "/d", epA + "/e"}
		for _, tc := range []struct {
			name string
			f    webhook.Filter
			want []string
		}{
			{"zero filter", webhook.Filter{}, all},
			{"endpoint", webhook.Filter{Endpoint: epA}, []string{epA + "/a", epA + "/c", epA + "/e"}},
			{"unknown endpoint", webhook.Filter{Endpoint: "nope"}, nil},
			{"status pending", webhook.Filter{Status: webhook.StatusPending}, []string{epB + "/b", epA + "/e"}},
			{"status failed", webhook.Filter{Status: webhook.StatusFailed}, []string{epA + "/c"}},
			{"endpoint and status", webhook.Filter{Endpoint: epB, Status: webhook.StatusIgnored}, []string{epB + "/d"}},
			{"received before (strict)", webhook.Filter{ReceivedBefore: at(20)}, []string{epA + "/a"}},
			{"received before a later time", webhook.Filter{ReceivedBefore: at(21)}, []string{epA + "/a", epB + "/b", epA + "/c"}},
			{"received before the first", webhook.Filter{ReceivedBefore: at(10)}, nil},
			{"limit", webhook.Filter{Limit: 2}, all[:2]},
			{"limit above count", webhook.Filter{Limit: 99}, all},
			{"limit with status", webhook.Filter{Status: webhook.StatusPending, Limit: 1}, []string{epB + "/b"}},
			{"all together", webhook.Filter{Endpoint: epA, Status: webhook.StatusFailed, ReceivedBefore: at(60), Limit: 5}, []string{epA + "/c"}},
		} {
			if got := keys(e.list(t, tc.f)); !slices.Equal(got, tc.want) {
				t.Errorf("List(%s) = %v, want %v", tc.name, got, tc.want)
			}
		}
		got := e.list(t, webhook.Filter{Endpoint: epA, Status: webhook.StatusFailed})
		want := e.get(t, epA, "c")
		sameDelivery(t, "listed delivery", got[0], want)
	}},

	{"ListInvalid", func(t *testing.T, e *env) {
		e.insert(t, delivery(epA, "a", at(0)))
		for name, f := range map[string]webhook.Filter{
			"negative limit": {Limit: -1},
			"unknown status": {Status: "done"},
		} {
			n := 0
			var last error
			for _, err := range e.store.List(e.ctx, f) {
				n++
				last = err
			}
			eq(t, "values yielded for "+name, n, 1)
			wantErr(t, "List with "+name, last, webhook.ErrInvalid)
		}
	}},

	{"ListManyPages", func(t *testing.T, e *env) {
		// 1,000 deliveries, every 10 sharing one time, so page boundaries fall inside ties.
		const n = 1000
		for i := range n {
			e.insert(t, webhook.Delivery{Endpoint: epA, ID: fmt.Sprintf("d%04d", n-1-i), ReceivedAt: at((n - 1 - i) / 10), Body: []byte(`{}`)})
		}
		got := keys(e.list(t, webhook.Filter{}))
		eq(t, "listed", len(got), n)
		for i, k := range got {
			if want := fmt.Sprintf("%s/d%04d", epA, i); k != want {
				t.Fatalf("List()[%d] = %s, want %s (order, duplicates or gaps across pages)", i, k, want)
			}
		}
		eq(t, "listed with Limit 333", len(e.list(t, webhook.Filter{Limit: 333})), 333)
		eq(t, "listed before at(50)", len(e.list(t, webhook.Filter{ReceivedBefore: at(50)})), 500)

		// Sparse matches spread over every page.
		for i := 0; i < n; i += 97 {
			_, err := e.store.Finish(e.ctx, epA, fmt.Sprintf("d%04d", i), webhook.Outcome{Status: webhook.StatusFailed, Error: "x", At: at(2000)})
			noErr(t, "Finish", err)
		}
		eq(t, "failed listed", len(e.list(t, webhook.Filter{Status: webhook.StatusFailed})), (n+96)/97)

		seen := 0
		for _, err := range e.store.List(e.ctx, webhook.Filter{}) {
			noErr(t, "List", err)
			if seen++; seen == 10 {
				break
			}
		}
		eq(t, "seen before break", seen, 10)
	}},

	{"ListWhileWriting", func(t *testing.T, e *env) {
		// The loop body writes to the store: a store that holds a lock or its only
		// connection while yielding deadlocks here.
		const n = 250
		for i := range n {
			e.insert(t, webhook.Delivery{Endpoint: epA, ID: fmt.Sprintf("d%04d", i), ReceivedAt: at(i), Body: []byte(`{}`)})
		}
		seen := 0
		ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
		defer cancel()
		for d, err := range e.store.List(ctx, webhook.Filter{Endpoint: epA, Status: webhook.StatusPending}) {
			noErr(t, "List", err)
			seen++
			_, err = e.store.Finish(ctx, d.Endpoint, d.ID, webhook.Outcome{Status: webhook.StatusProcessed, At: at(n + seen)})
			noErr(t, "Finish inside List", err)
			_, _, err = e.store.Insert(ctx, webhook.Delivery{Endpoint: epB, ID: d.ID, ReceivedAt: at(n + seen)})
			noErr(t, "Insert inside List", err)
		}
		eq(t, "pending deliveries seen while finishing them", seen, n)
		eq(t, "processed", len(e.list(t, webhook.Filter{Status: webhook.StatusProcessed})), n)
		eq(t, "inserted while listing", len(e.list(t, webhook.Filter{Endpoint: epB})), n)
	}},

	{"Purge", func(t *testing.T, e *env) {
		for i, st := range []webhook.Status{webhook.StatusProcessed, webhook.StatusFailed, webhook.StatusIgnored, webhook.StatusPending, webhook.StatusProcessed} {
			id := fmt.Sprintf("d%d", i)
			e.insert(t, delivery(epA, id, at(i*10)))
			if st != webhook.StatusPending {
				_, err := e.store.Finish(e.ctx, epA, id, webhook.Outcome{Status: st, At: at(100)})
				noErr(t, "Finish", err)
			}
		}
		// d0 processed @0, d1 failed @10, d2 ignored @20, d3 pending @30, d4 processed @40.
		n, err := e.store.Purge(e.ctx, at(40), webhook.StatusProcessed, webhook.StatusIgnored)
		noErr(t, "Purge processed+ignored before @40", err)
		eq(t, "purged", n, 2) // d0, d2; d4 is not strictly before
		eq(t, "left", fmt.Sprint(keys(e.list(t, webhook.Filter{}))), fmt.Sprint([]string{epA + "/d1", epA + "/d3", epA + "/d4"}))
		_, err = e.store.Get(e.ctx, epA, "d0")
		wantErr(t, "Get purged", err, webhook.ErrNotFound)

		n, err = e.store.Purge(e.ctx, time.Time{})
		noErr(t, "Purge before the zero time", err)
		eq(t, "purged before the zero time", n, 0)

		_, err = e.store.Purge(e.ctx, at(100), webhook.StatusFailed, "done")
		wantErr(t, "Purge with an unknown status", err, webhook.ErrInvalid)
		eq(t, "left after a refused Purge", len(e.list(t, webhook.Filter{})), 3)

		n, err = e.store.Purge(e.ctx, at(35))
		noErr(t, "Purge all statuses before @35", err)
		eq(t, "purged (all statuses)", n, 2)
		eq(t, "left", fmt.Sprint(keys(e.list(t, webhook.Filter{}))), fmt.Sprint([]string{epA + "/d4"}))

		// A purged key can be received again.
		e.insert(t, delivery(epA, "d0", at(50)))
	}},

	{"CancelledContext", func(t *testing.T, e *env) {
		e.insert(t, delivery(epA, "d1", at(0)))
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		if _, _, err := e.store.Insert(ctx, delivery(epA, "d2", at(1))); err == nil {
			t.Fatal("Insert with a cancelled context succeeded")
		}
		if _, err := e.store.Get(ctx, epA, "d1"); err == nil {
			t.Fatal("Get with a cancelled context succeeded")
		}
		_, err := e.store.Get(e.ctx, epA, "d2")
		wantErr(t, "Get of an insert made with a cancelled context", err, webhook.ErrNotFound)
	}},
	{"InsertBatch", func(t *testing.T, e *env) {
		bi, ok := e.store.(webhook.BatchInserter)
		if !ok {
			t.Skip("the store does not implement webhook.BatchInserter")
		}
		stored := e.insert(t, delivery(epA, "d1", at(0)))
		// 300 deliveries: more than one statement of the SQL store; with a duplicate of a
		// stored delivery, a key given twice, and the same ID at another endpoint.
		var ds []webhook.Delivery
		for i := range 300 {
			ds = append(ds, delivery(epA, fmt.Sprintf("b%03d", i), at(10+i)))
		}
		dup := delivery(epA, "d1", at(5))
		dup.Body = []byte(`{"changed":true}`)
		ds = append(ds, dup, delivery(epA, "b007", at(400)), delivery(epB, "b007", at(401)))
		inserted, err := bi.InsertBatch(e.ctx, ds)
		noErr(t, "InsertBatch", err)
		eq(t, "results", len(inserted), len(ds))
		for i, d := range ds {
			want := i < 300 || i == len(ds)-1
			if inserted[i] != want {
				t.Fatalf("inserted[%d] (%s/%s) = %v, want %v", i, d.Endpoint, d.ID, inserted[i], want)
			}
		}
		sameDelivery(t, "the duplicate of a stored delivery", e.get(t, epA, "d1"), stored)
		sameDelivery(t, "a key given twice keeps its first", e.get(t, epA, "b007"), withDefaults(ds[7]))
		sameDelivery(t, "the other endpoint's", e.get(t, epB, "b007"), withDefaults(ds[len(ds)-1]))
		eq(t, "stored", len(e.list(t, webhook.Filter{})), 302)

		// A delivery the store cannot take fails the whole batch: nothing of it is stored.
		inserted, err = bi.InsertBatch(e.ctx, []webhook.Delivery{delivery(epA, "c1", at(500)), delivery(epA, "", at(501))})
		wantErr(t, "InsertBatch with an empty ID", err, webhook.ErrInvalid)
		if inserted != nil {
			t.Fatalf("InsertBatch failed but returned %v", inserted)
		}
		_, err = e.store.Get(e.ctx, epA, "c1")
		wantErr(t, "Get of a delivery of a refused batch", err, webhook.ErrNotFound)

		inserted, err = bi.InsertBatch(e.ctx, nil)
		noErr(t, "InsertBatch of nothing", err)
		eq(t, "results of nothing", len(inserted), 0)
	}},
}

// withDefaults is d as Insert stores it when it leaves fields to the store: pending, and
// updated when received.
func withDefaults(d webhook.Delivery) webhook.Delivery {
	if d.Status == "" {
		d.Status = webhook.StatusPending
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.ReceivedAt
	}
	return d
}
