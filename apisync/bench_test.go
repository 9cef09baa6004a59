package apisync_test

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

const benchEndpoint = `
name: bench
direction: in
model: contact
path: /contacts
methods: [POST]
auth: {type: bearer, token: bench-token-123}
lines:
  - {field: name, key: full_name, required: true}
  - {field: email, key: email_address}
  - {field: rank, key: rank}
`

// handWritten is the inbound handler a user would write without apisync for the same
// endpoint: bearer check, bounded body, JSON with exact numbers, three fields mapped,
// one record stored, a JSON answer and an audit entry in the same database.
func handWritten(st *sqlstore.RecordStore[map[string]any], log synclog.Recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer bench-token-123")) != 1 {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, `{"error":"too large"}`, http.StatusRequestEntityTooLarge)
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var in map[string]any
		if err := dec.Decode(&in); err != nil || in["full_name"] == nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		rec := map[string]any{"name": in["full_name"], "email": in["email_address"], "rank": in["rank"]}
		id, err := st.Create(r.Context(), rec)
		if err != nil {
			http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
			return
		}
		out, _ := json.Marshal(map[string]any{"data": map[string]any{"id": id, "full_name": rec["name"], "email_address": rec["email"], "rank": rec["rank"]}})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(out)
		_ = log.Record(r.Context(), synclog.Entry{Time: start, Backend: "hand", Direction: synclog.Inbound, Method: r.Method,
			URL: r.URL.String(), RequestBody: string(body), ResponseBody: string(out), Status: http.StatusCreated, Duration: time.Since(start)})
	})
}

// BenchmarkInboundPost compares one inbound POST through the apisync pipeline with the
// hand-written handler above, on the same SQLite file; x-baseline is apisync's time over
// the hand-written one.
func BenchmarkInboundPost(b *testing.B) {
	ctx := context.Background()
	db := openDBF(b)
	s, err := apisync.Open(ctx, db, parseAllF(b, benchEndpoint))
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlstore.Records[map[string]any](ctx, db, "contact_hand")
	if err != nil {
		b.Fatal(err)
	}
	ours, theirs := s.Handler(), handWritten(st, db.Log())
	send := func(h http.Handler, i int) {
		req := httptest.NewRequest("POST", "/contacts", bytes.NewReader(fmt.Appendf(nil, `{"full_name":"Contact %d","email_address":"c%d@example.com","rank":%d}`, i, i, i%5)))
		req.Header.Set("Authorization", "Bearer bench-token-123")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	var opT, baseT time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		send(ours, i)
		opT += time.Since(start)
		b.StopTimer()
		start = time.Now()
		send(theirs, i)
		baseT += time.Since(start)
		b.StartTimer()
		i++
	}
	b.ReportMetric(float64(i)/opT.Seconds(), "requests/s")
	b.ReportMetric(float64(i)/baseT.Seconds(), "baseline-requests/s")
	b.ReportMetric(opT.Seconds()/baseT.Seconds(), "x-baseline")
}
