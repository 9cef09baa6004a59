package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/webhook"
)

const fuzzBody = `{"id":1}`

// checkFuzz fails unless err is nil or matches ErrSignature, and unless a nil err came
// with the genuine signature somewhere in the header (no forgery from parsing quirks).
func checkFuzz(t *testing.T, err error, header, genuine string) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("error %v does not match ErrSignature", err)
		}
		return
	}
	if !strings.Contains(strings.ToLower(header), strings.ToLower(genuine)) {
		t.Fatalf("header %q verified without the genuine signature %q", header, genuine)
	}
}

func FuzzHMACHeader(f *testing.F) {
	v, err := webhook.NewHMAC("X-Hub-Signature-256", webhook.Hex, []string{"fuzz-secret"}, webhook.WithPrefix("sha256="))
	if err != nil {
		f.Fatal(err)
	}
	h := http.Header{}
	mustNoErr(f, v.Sign(h, []byte(fuzzBody), testNow))
	genuine := strings.TrimPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
	for _, seed := range []string{h.Get("X-Hub-Signature-256"), "sha256=", "sha256=zz", genuine, "sha256=" + strings.ToUpper(genuine), "sha256= " + genuine + " ", strings.Repeat("a", 9000)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkFuzz(t, v.Verify(http.Header{"X-Hub-Signature-256": {s}}, []byte(fuzzBody), testNow), s, genuine)
	})
}

func FuzzHMACBase64Header(f *testing.F) {
	v, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{"fuzz-secret"})
	if err != nil {
		f.Fatal(err)
	}
	h := http.Header{}
	mustNoErr(f, v.Sign(h, []byte(fuzzBody), testNow))
	genuine := h.Get("X-Shopify-Hmac-Sha256")
	for _, seed := range []string{genuine, genuine[:len(genuine)-1], "====", strings.Repeat("A", 44), ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := v.Verify(http.Header{"X-Shopify-Hmac-Sha256": {s}}, []byte(fuzzBody), testNow)
		if err == nil && !strings.Contains(s, genuine) {
			t.Fatalf("header %q verified without the genuine signature", s)
		}
		if err != nil && !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("error %v does not match ErrSignature", err)
		}
	})
}

func FuzzStandardWebhooksHeaders(f *testing.F) {
	v, err := webhook.NewStandardWebhooks([]string{standardVectors[0].secret})
	if err != nil {
		f.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	mustNoErr(f, v.Sign(h, []byte(fuzzBody), testNow))
	genuine := h.Get("webhook-signature")
	ts := h.Get("webhook-timestamp")
	for _, seed := range [][3]string{
		{"msg_1", ts, genuine},
		{"msg_1", ts, "v1,junk " + genuine + " v1a,xyz"},
		{"msg_1", ts, "v1,"},
		{"msg_1", ts, ","},
		{"msg_1", "-1", genuine},
		{"msg_1", "", genuine},
		{"", ts, genuine},
		{"msg_1", ts, strings.Repeat("v1,a ", 100)},
		{"msg_1", strconv.Itoa(1 << 62), genuine},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string) {
		h := http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}}
		err := v.Verify(h, []byte(fuzzBody), testNow)
		if err == nil && (id != "msg_1" || !strings.Contains(sig, genuine[3:])) {
			// Another ID or timestamp can only verify with its own genuine signature.
			want := http.Header{"Webhook-Id": {id}}
			mustNoErr(t, v.Sign(want, []byte(fuzzBody), testNow))
			if !strings.Contains(sig, want.Get("webhook-signature")[3:]) {
				t.Fatalf("id %q ts %q sig %q verified without a genuine signature", id, ts, sig)
			}
		}
		if err != nil && !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("error %v does not match ErrSignature", err)
		}
	})
}

func FuzzStripeHeader(f *testing.F) {
	v, err := webhook.NewStripe([]string{"whsec_fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	h := http.Header{}
	mustNoErr(f, v.Sign(h, []byte(fuzzBody), testNow))
	full := h.Get("Stripe-Signature")
	genuine := full[strings.Index(full, "v1=")+3:]
	for _, seed := range []string{full, "t=,v1=", "t=1,t=2", ",,,", "v1=" + genuine, full + ",v0=" + genuine, strings.Repeat("v1=ab,", 50), "t=" + strings.Repeat("9", 30) + ",v1=" + genuine} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := v.Verify(http.Header{"Stripe-Signature": {s}}, []byte(fuzzBody), testNow)
		if err == nil && !strings.Contains(strings.ToLower(s), genuine) {
			// Another t within the tolerance verifies only with its own genuine v1.
			ok := false
			for delta := -300; delta <= 300 && !ok; delta++ {
				want := http.Header{}
				mustNoErr(t, v.Sign(want, []byte(fuzzBody), testNow.Add(time.Duration(delta)*time.Second)))
				w := want.Get("Stripe-Signature")
				ok = strings.Contains(strings.ToLower(s), w[strings.Index(w, "v1=")+3:])
			}
			if !ok {
				t.Fatalf("header %q verified without a genuine signature", s)
			}
		}
		if err != nil && !errors.Is(err, webhook.ErrSignature) {
			t.Fatalf("error %v does not match ErrSignature", err)
		}
	})
}
