package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/connkit/connkit/synclog"
)

// TestProgressLines: without a terminal, one plain line per `every` records (a batch
// request counts its records), inbound entries ignored, nothing with every = 0.
func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "cfg", 2)
	ctx := t.Context()
	p.Record(ctx, synclog.Entry{Direction: synclog.Outbound, Record: "1", Status: 201})
	p.Record(ctx, synclog.Entry{Direction: synclog.Inbound, Record: "9", Status: 200})
	p.Record(ctx, synclog.Entry{Direction: synclog.Outbound, Record: "2", Status: 500})
	p.Record(ctx, synclog.Entry{Direction: synclog.Outbound, Record: "3,4,5", Status: 201}) // a batch of 3
	p.finish()
	want := "connkit: push cfg: 2 record(s) sent, 1 failed\nconnkit: push cfg: 5 record(s) sent, 1 failed\n"
	if buf.String() != want {
		t.Fatalf("progress:\n%q\nwant\n%q", buf.String(), want)
	}
	buf.Reset()
	p = newProgress(&buf, "cfg", 0)
	p.Record(ctx, synclog.Entry{Direction: synclog.Outbound, Record: "1"})
	p.finish()
	if buf.Len() != 0 {
		t.Fatalf("--progress 0 printed %q", buf.String())
	}
}

// TestProgressTerminal: on a terminal one line is redrawn, and finish ends it.
func TestProgressTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "cfg", 100)
	p.tty = true
	p.Record(t.Context(), synclog.Entry{Direction: synclog.Outbound, Record: "1", Status: 201})
	p.Record(t.Context(), synclog.Entry{Direction: synclog.Outbound, Record: "2", Status: 201}) // within 100 ms: not drawn
	p.finish()
	want := "\r\x1b[Kconnkit: push cfg: 1 record(s) sent, 0 failed\r\x1b[Kconnkit: push cfg: 2 record(s) sent, 0 failed\n"
	if buf.String() != want {
		t.Fatalf("progress:\n%q\nwant\n%q", buf.String(), want)
	}
}

// TestStandIn: the dry run's stand-in API answers a record with an external ID at the
// config's id_path, a batch with one per item, a GET with an empty list.
func TestStandIn(t *testing.T) {
	for _, tc := range []struct {
		idPath, method, body, want string
	}{
		{"", "POST", `{"name":"a"}`, `{"id":"dry-run-1"}`},
		{"data.uid", "PUT", `{"name":"a"}`, `{"data":{"uid":"dry-run-1"}}`},
		{"", "POST", `[{"a":1},{"a":2}]`, `[{"id":"dry-run-1"},{"id":"dry-run-2"}]`},
		{"", "GET", ``, `[]`},
	} {
		s := &standIn{idPath: tc.idPath}
		req, _ := http.NewRequest(tc.method, "https://api.example.com/x", strings.NewReader(tc.body))
		resp, err := s.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != tc.want || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s with id_path %q: %d %s", tc.method, tc.body, tc.idPath, resp.StatusCode, b)
		}
	}
}
