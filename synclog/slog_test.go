package synclog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestSlogRecorderLevelsAndAttrs(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		err       string
		wantLevel string
	}{
		{"success", 200, "", "INFO"},
		{"redirect", 304, "", "INFO"},
		{"client error", 404, "", "WARN"},
		{"rate limited", 429, "", "WARN"},
		{"server error", 503, "", "ERROR"},
		{"transport error", 0, "dial tcp: connection refused", "ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			rec := NewSlogRecorder(slog.New(slog.NewJSONHandler(&buf, nil)))
			e := Entry{
				ID: 7, Backend: "shop", Operation: "import product", Direction: Outbound, Method: "GET",
				URL: "https://a.test/p?access_token=abc", Status: tt.status, Duration: 1500 * time.Millisecond,
				Attempts: 2, Error: tt.err, Model: "product", Record: "42",
				RequestBody: `{"password":"p"}`,
			}
			if err := rec.Record(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1", len(lines))
			}
			m := lines[0]
			want := map[string]any{
				"level": tt.wantLevel, "msg": "http exchange", "id": 7.0, "backend": "shop",
				"operation": "import product", "direction": "out", "method": "GET",
				"url": "https://a.test/p?access_token=[REDACTED]", "status": float64(tt.status),
				"duration": float64(1500 * time.Millisecond), "attempts": 2.0, "model": "product", "record": "42",
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("attr %s = %v, want %v", k, m[k], v)
				}
			}
			if (tt.err != "") != (m["error"] != nil) {
				t.Errorf("error attr = %v, want present=%v", m["error"], tt.err != "")
			}
			if _, ok := m["request_body"]; ok {
				t.Error("bodies logged without WithBodyLimit")
			}
		})
	}
}

func TestSlogRecorderBodies(t *testing.T) {
	var buf bytes.Buffer
	rec := NewSlogRecorder(slog.New(slog.NewJSONHandler(&buf, nil)), WithBodyLimit(60),
		WithRedactor(NewRedactor(WithSecrets("lit-secret-77"))))
	e := Entry{
		Status:         200,
		RequestHeader:  http.Header{"Content-Type": {"application/json"}},
		RequestBody:    `{"password":"p","note":"lit-secret-77"}`,
		ResponseBody:   strings.Repeat("z", 100),
		ResponseHeader: http.Header{"Content-Type": {"text/plain"}},
	}
	_ = rec.Record(context.Background(), e)
	m := logLines(t, &buf)[0]
	if m["msg"] != "http exchange" {
		t.Errorf("msg = %v", m["msg"])
	}
	if got := m["request_body"]; got != `{"password":"[REDACTED]","note":"[REDACTED]"}` {
		t.Errorf("request_body = %v", got)
	}
	if got, _ := m["response_body"].(string); !strings.HasSuffix(got, "…[truncated 40 bytes]") || m["truncated"] != true {
		t.Errorf("response_body = %q truncated = %v", got, m["truncated"])
	}
}

func TestSlogRecorderDisabledLevelAndNilLogger(t *testing.T) {
	var buf bytes.Buffer
	rec := NewSlogRecorder(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	_ = rec.Record(context.Background(), Entry{Status: 200})
	_ = rec.Record(context.Background(), Entry{Status: 400})
	if n := len(logLines(t, &buf)); n != 1 {
		t.Fatalf("got %d lines, want only the 4xx one", n)
	}
	// A nil logger falls back to slog.Default.
	prev := slog.Default()
	defer slog.SetDefault(prev)
	buf.Reset()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	if err := NewSlogRecorder(nil).Record(context.Background(), Entry{Status: 200}); err != nil {
		t.Fatal(err)
	}
	if n := len(logLines(t, &buf)); n != 1 {
		t.Fatalf("nil logger: got %d lines on slog.Default, want 1", n)
	}
}

func TestMulti(t *testing.T) {
	ctx := context.Background()
	var calls []string
	rec := func(name string, err error) Recorder {
		return recorderFunc(func(_ context.Context, e Entry) error {
			calls = append(calls, name+":"+e.Operation)
			return err
		})
	}
	errA, errC := errors.New("a failed"), errors.New("c failed")
	m := Multi(rec("a", errA), nil, Multi(rec("b", nil), rec("c", errC)))
	err := m.Record(ctx, Entry{Operation: "op"})
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Fatalf("err = %v, want both errors joined", err)
	}
	if got := strings.Join(calls, ","); got != "a:op,b:op,c:op" {
		t.Fatalf("calls = %s; every recorder must get the entry, in order", got)
	}
	calls = nil
	if err := Multi(rec("only", nil)).Record(ctx, Entry{}); err != nil || len(calls) != 1 {
		t.Fatalf("single recorder: err %v calls %v", err, calls)
	}
	if err := Multi().Record(ctx, Entry{}); err != nil {
		t.Fatalf("empty Multi: %v", err)
	}
	ring := NewRing(2)
	_ = Multi(ring, Multi()).Record(ctx, Entry{})
	if ring.size() != 1 {
		t.Fatal("ring behind Multi got nothing")
	}
}
