package synclog_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/connkit/connkit/synclog"
)

func ExampleRedactor_Header() {
	r := synclog.NewRedactor()
	h := http.Header{
		"Authorization":       {"Bearer eyJhbGciOi..."},
		"X-Hub-Signature-256": {"sha256=5d41402abc4b2a76"},
		"Accept":              {"application/json"},
	}
	red := r.Header(h)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range red {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Printf("%s: %s\n", k, red.Get(k))
	}
	// Output:
	// Accept: application/json
	// Authorization: Bearer [REDACTED]
	// X-Hub-Signature-256: [REDACTED]
}

func ExampleRedactor_URL() {
	r := synclog.NewRedactor()
	fmt.Println(r.URL("https://bob:hunter2@api.example.com/orders?page=2&access_token=abc123&status=open"))
	// Output:
	// https://bob@api.example.com/orders?page=2&access_token=[REDACTED]&status=open
}

func ExampleRedactor_Body() {
	r := synclog.NewRedactor(synclog.WithJSONFields("pin"))
	body := []byte(`{"user":"bob","logins":[{"password":"hunter2","pin":1234}],"note":"hi"}`)
	fmt.Println(r.Body(body, "application/json"))
	fmt.Println(r.Body([]byte("grant_type=client_credentials&client_secret=s3cr3t"), "application/x-www-form-urlencoded"))
	// Output:
	// {"user":"bob","logins":[{"password":"[REDACTED]","pin":"[REDACTED]"}],"note":"hi"}
	// grant_type=client_credentials&client_secret=[REDACTED]
}

func ExampleRedactor_AddSecrets() {
	r := synclog.NewRedactor()
	token := "ya29.a0AfH6SMBx" // say, an OAuth access token just fetched
	r.AddSecrets(token)
	fmt.Println(r.String("upstream echoed ya29.a0AfH6SMBx back; password=hunter2"))
	// Output:
	// upstream echoed [REDACTED] back; password=[REDACTED]
}

func ExampleWithBodyLimit() {
	ring := synclog.NewRing(10, synclog.WithBodyLimit(3))
	_ = ring.Record(context.Background(), synclog.Entry{RequestBody: "héllo world"})
	for e := range ring.Query(context.Background(), synclog.Filter{}) {
		fmt.Println(e.RequestBody, e.Truncated)
	}
	// Output:
	// hé…[truncated 9 bytes] true
}

func ExampleRing() {
	ctx := context.Background()
	ring := synclog.NewRing(100, synclog.WithBodyLimit(16<<10))
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, status := range []int{200, 404, 200, 503} {
		_ = ring.Record(ctx, synclog.Entry{
			Time: t0.Add(time.Duration(i) * time.Minute), Backend: "shop", Operation: "import product",
			Direction: synclog.Outbound, Method: "GET", URL: fmt.Sprintf("https://shop.example/products/%d", i), Status: status,
		})
	}
	// The failures, newest first.
	for e, err := range ring.Query(ctx, synclog.Filter{Backend: "shop", FailedOnly: true}) {
		if err != nil {
			fmt.Println("query:", err)
			return
		}
		fmt.Println(e.ID, e.Status, e.URL)
	}
	// Output:
	// 4 503 https://shop.example/products/3
	// 2 404 https://shop.example/products/1
}

func ExampleNewSlogRecorder() {
	// Drop the time attribute so the output is deterministic.
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	rec := synclog.NewSlogRecorder(slog.New(h))
	_ = rec.Record(context.Background(), synclog.Entry{
		Backend: "crm", Operation: "export contact", Direction: synclog.Outbound, Method: "POST",
		URL: "https://crm.example/api/contacts?api_key=k-123", Status: 422, Duration: 120 * time.Millisecond,
		Attempts: 1, Model: "contact", Record: "7",
	})
	// Output:
	// level=WARN msg="http exchange" backend=crm operation="export contact" direction=out method=POST url="https://crm.example/api/contacts?api_key=[REDACTED]" status=422 duration=120ms attempts=1 model=contact record=7
}

func ExampleMulti() {
	recent := synclog.NewRing(10)
	archive := synclog.NewRing(10)
	rec := synclog.Multi(recent, archive)
	_ = rec.Record(context.Background(), synclog.Entry{Status: 200})
	held := func(ring *synclog.Ring) (n int) {
		for range ring.Query(context.Background(), synclog.Filter{}) {
			n++
		}
		return n
	}
	fmt.Println(held(recent), held(archive))
	// Output:
	// 1 1
}
