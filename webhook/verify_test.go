package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/webhook"
)

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantSigErr(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, webhook.ErrSignature) {
		t.Fatalf("%s: error %v, want one matching ErrSignature", what, err)
	}
}

// The Standard Webhooks reference libraries' published signing vectors, from
// github.com/standard-webhooks/standard-webhooks at commit
// b2fa7b8719fb75d326b591077f5d1b385cfcdfae:
//   - libraries/go/webhook_test.go, TestWebhookSign (the same vector is in the C#, Java,
//     JavaScript, PHP, Python and Ruby tests);
//   - libraries/rust/src/lib.rs, test_sign.
var standardVectors = []struct {
	source, secret, id string
	ts                 int64
	body, signature    string
}{
	{"libraries/go/webhook_test.go TestWebhookSign", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		1614265330, `{"test": 2432232314}`, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
	{"libraries/rust/src/lib.rs test_sign", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
		1649367553, `{"email":"test@example.com","username":"test_user"}`, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="},
}

func TestStandardWebhooksVectors(t *testing.T) {
	for _, vec := range standardVectors {
		t.Run(vec.source, func(t *testing.T) {
			now := time.Unix(vec.ts, 0)
			h := http.Header{}
			h.Set("webhook-id", vec.id)
			h.Set("webhook-timestamp", strconv.FormatInt(vec.ts, 10))
			h.Set("webhook-signature", vec.signature)
			for _, secret := range []string{vec.secret, strings.TrimPrefix(vec.secret, "whsec_")} {
				v, err := webhook.NewStandardWebhooks([]string{secret})
				mustNoErr(t, err)
				mustNoErr(t, v.Verify(h, []byte(vec.body), now))
				// The reference's own multi-signature case: junk and other versions around it.
				multi := h.Clone()
				multi.Set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+vec.signature+" v1a,abc")
				mustNoErr(t, v.Verify(multi, []byte(vec.body), now))

				signed := http.Header{}
				signed.Set("webhook-id", vec.id)
				mustNoErr(t, v.Sign(signed, []byte(vec.body), now))
				if got := signed.Get("webhook-signature"); got != vec.signature {
					t.Fatalf("Sign = %s, want the published %s", got, vec.signature)
				}
				if got := signed.Get("webhook-timestamp"); got != strconv.FormatInt(vec.ts, 10) {
					t.Fatalf("Sign timestamp = %s, want %d", got, vec.ts)
				}
			}
		})
	}
}

// GitHub's documented example (docs.github.com, "Validating webhook deliveries"): secret
// "It's a Secret to Everybody", payload "Hello, World!". Checked independently with
// `printf 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"`.
func TestHMACGitHubVector(t *testing.T) {
	v, err := webhook.NewHMAC("X-Hub-Signature-256", webhook.Hex, []string{"It's a Secret to Everybody"}, webhook.WithPrefix("sha256="))
	mustNoErr(t, err)
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	h := http.Header{"X-Hub-Signature-256": {want}}
	mustNoErr(t, v.Verify(h, []byte("Hello, World!"), time.Time{}))
	h.Set("X-Hub-Signature-256", strings.ToUpper(want[7:]))
	wantSigErr(t, "signature without the sha256= prefix", v.Verify(h, []byte("Hello, World!"), time.Time{}))
	h.Set("X-Hub-Signature-256", "sha256="+strings.ToUpper(want[7:]))
	mustNoErr(t, v.Verify(h, []byte("Hello, World!"), time.Time{})) // hex is case-insensitive

	signed := http.Header{}
	mustNoErr(t, v.Sign(signed, []byte("Hello, World!"), time.Time{}))
	if got := signed.Get("X-Hub-Signature-256"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// A Shopify-style delivery (base64 HMAC-SHA256 of the body in X-Shopify-Hmac-Sha256),
// its signature computed independently with
// `printf '{"id":1,"topic":"orders/create"}' | openssl dgst -sha256 -hmac shpss_test_secret -binary | base64`.
func TestHMACShopifyVector(t *testing.T) {
	const body = `{"id":1,"topic":"orders/create"}`
	const want = "k72tceQzwLrcNoh8q2ZaNlbbj/oVrcHNV4qHTP1iWNs="
	v, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{"shpss_test_secret"})
	mustNoErr(t, err)
	h := http.Header{}
	h.Set("X-Shopify-Hmac-Sha256", want)
	mustNoErr(t, v.Verify(h, []byte(body), time.Time{}))
	signed := http.Header{}
	mustNoErr(t, v.Sign(signed, []byte(body), time.Time{}))
	if got := signed.Get("X-Shopify-Hmac-Sha256"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	// The same MAC in hex is not what this verifier reads.
	raw, _ := base64.StdEncoding.DecodeString(want)
	h.Set("X-Shopify-Hmac-Sha256", fmt.Sprintf("%x", raw))
	wantSigErr(t, "hex signature to a base64 verifier", v.Verify(h, []byte(body), time.Time{}))
}

// A Stripe-style delivery, its v1 computed independently with
// `printf '1614265330.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret`
// (Stripe uses the whole whsec_ secret as the key).
func TestStripeVector(t *testing.T) {
	const body = `{"id":"evt_1"}`
	const sig = "e135cdbed3dda004bf8a2fb350f2541d299393c770e0b9e6e319dc595e9072aa"
	v, err := webhook.NewStripe([]string{"whsec_test_secret"})
	mustNoErr(t, err)
	now := time.Unix(1614265330, 0)
	for _, header := range []string{
		"t=1614265330,v1=" + sig,
		"t=1614265330,v1=" + strings.Repeat("0", 64) + ",v1=" + sig + ",v0=abc",
		"v1=" + sig + ", t=1614265330",
	} {
		mustNoErr(t, v.Verify(http.Header{"Stripe-Signature": {header}}, []byte(body), now.Add(4*time.Minute)))
	}
	signed := http.Header{}
	mustNoErr(t, v.Sign(signed, []byte(body), now))
	if got, want := signed.Get("Stripe-Signature"), "t=1614265330,v1="+sig; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// scheme is one verifier under test with a way to sign for it.
type scheme struct {
	name string
	make func(secrets ...string) (verifier, error)
	// secret returns a valid secret of the scheme, different for each n.
	secret func(n int) string
	// timed: the scheme signs a timestamp.
	timed bool
}

type verifier interface {
	webhook.Verifier
	Sign(h http.Header, body []byte, now time.Time) error
}

var schemes = []scheme{
	{"shopify", func(s ...string) (verifier, error) {
		return webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, s)
	}, func(n int) string { return fmt.Sprintf("shopify-secret-%d", n) }, false},
	{"github", func(s ...string) (verifier, error) {
		return webhook.NewHMAC("X-Hub-Signature-256", webhook.Hex, s, webhook.WithPrefix("sha256="))
	}, func(n int) string { return fmt.Sprintf("github-secret-%d", n) }, false},
	{"standard", func(s ...string) (verifier, error) {
		return webhook.NewStandardWebhooks(s)
	}, func(n int) string {
		return "whsec_" + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("standard-secret-%024d", n)))
	}, true},
	{"stripe", func(s ...string) (verifier, error) {
		return webhook.NewStripe(s)
	}, func(n int) string { return fmt.Sprintf("whsec_stripe%d", n) }, true},
}

var testNow = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func sign(t testing.TB, v verifier, body string, at time.Time) http.Header {
	t.Helper()
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	mustNoErr(t, v.Sign(h, []byte(body), at))
	return h
}

func TestVerifiers(t *testing.T) {
	const body = `{"id":42,"type":"order.created"}`
	for _, sc := range schemes {
		t.Run(sc.name, func(t *testing.T) {
			v, err := sc.make(sc.secret(1))
			mustNoErr(t, err)
			h := sign(t, v, body, testNow)
			mustNoErr(t, v.Verify(h, []byte(body), testNow))

			t.Run("tampered body", func(t *testing.T) {
				wantSigErr(t, "tampered body", v.Verify(h, []byte(`{"id":43,"type":"order.created"}`), testNow))
				wantSigErr(t, "body with a trailing newline", v.Verify(h, []byte(body+"\n"), testNow))
				wantSigErr(t, "empty body", v.Verify(h, nil, testNow))
			})
			t.Run("wrong secret", func(t *testing.T) {
				other, err := sc.make(sc.secret(2))
				mustNoErr(t, err)
				wantSigErr(t, "wrong secret", other.Verify(h, []byte(body), testNow))
			})
			t.Run("rotated secrets", func(t *testing.T) {
				// The receiver knows the new and the old secret; deliveries signed with
				// either pass, with a third secret they fail.
				both, err := sc.make(sc.secret(2), sc.secret(1))
				mustNoErr(t, err)
				mustNoErr(t, both.Verify(h, []byte(body), testNow))
				newer, _ := sc.make(sc.secret(2))
				mustNoErr(t, both.Verify(sign(t, newer, body, testNow), []byte(body), testNow))
				third, _ := sc.make(sc.secret(3))
				wantSigErr(t, "third secret", both.Verify(sign(t, third, body, testNow), []byte(body), testNow))
			})
			t.Run("missing headers", func(t *testing.T) {
				wantSigErr(t, "no headers", v.Verify(http.Header{}, []byte(body), testNow))
				for k := range h {
					if k == "Webhook-Id" && sc.name != "standard" {
						continue // not part of this scheme
					}
					partial := h.Clone()
					partial.Del(k)
					wantSigErr(t, "without "+k, v.Verify(partial, []byte(body), testNow))
					partial.Set(k, "")
					wantSigErr(t, "with an empty "+k, v.Verify(partial, []byte(body), testNow))
				}
			})
			t.Run("timestamps", func(t *testing.T) {
				if !sc.timed {
					// No timestamp is signed: an old delivery verifies (dedup stops a replay).
					mustNoErr(t, v.Verify(h, []byte(body), testNow.Add(24*time.Hour)))
					return
				}
				for _, tc := range []struct {
					signedAt time.Time
					ok       bool
				}{
					{testNow.Add(-5 * time.Minute), true},
					{testNow.Add(5 * time.Minute), true},
					{testNow.Add(-5*time.Minute - time.Second), false},
					{testNow.Add(5*time.Minute + time.Second), false},
					{testNow.Add(-24 * time.Hour), false},
					{testNow.Add(24 * time.Hour), false},
					{time.Unix(0, 0), false},
				} {
					err := v.Verify(sign(t, v, body, tc.signedAt), []byte(body), testNow)
					if tc.ok && err != nil {
						t.Errorf("signed at now%+v: %v", tc.signedAt.Sub(testNow), err)
					}
					if !tc.ok && !errors.Is(err, webhook.ErrSignature) {
						t.Errorf("signed at now%+v: error %v, want ErrSignature", tc.signedAt.Sub(testNow), err)
					}
				}
				// A wider tolerance accepts what the default refuses.
				wide, err := map[string]func() (verifier, error){
					"standard": func() (verifier, error) {
						return webhook.NewStandardWebhooks([]string{sc.secret(1)}, webhook.WithTolerance(time.Hour))
					},
					"stripe": func() (verifier, error) {
						return webhook.NewStripe([]string{sc.secret(1)}, webhook.WithTolerance(time.Hour))
					},
				}[sc.name]()
				mustNoErr(t, err)
				mustNoErr(t, wide.Verify(sign(t, v, body, testNow.Add(-30*time.Minute)), []byte(body), testNow))
			})
			t.Run("error detail stays out of the sentinel", func(t *testing.T) {
				err := v.Verify(http.Header{}, []byte(body), testNow)
				if err.Error() == webhook.ErrSignature.Error() {
					t.Fatalf("no detail for logs: %v", err)
				}
				for _, s := range []string{sc.secret(1), strings.TrimPrefix(sc.secret(1), "whsec_")} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("error %q reveals the secret", err)
					}
				}
			})
		})
	}
}

func TestVerifierTamperedSignedHeaders(t *testing.T) {
	const body = `{"a":1}`
	sw, _ := webhook.NewStandardWebhooks([]string{schemes[2].secret(1)})
	h := sign(t, sw, body, testNow)
	changed := h.Clone()
	changed.Set("webhook-id", "msg_2")
	wantSigErr(t, "Standard Webhooks with another ID", sw.Verify(changed, []byte(body), testNow))
	changed = h.Clone()
	ts, _ := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	changed.Set("webhook-timestamp", strconv.FormatInt(ts+1, 10))
	wantSigErr(t, "Standard Webhooks with another timestamp", sw.Verify(changed, []byte(body), testNow))
	for _, bad := range []string{"+" + h.Get("webhook-timestamp"), h.Get("webhook-timestamp") + ".0", " " + h.Get("webhook-timestamp"), "1e9", "-1", "99999999999999999999"} {
		changed.Set("webhook-timestamp", bad)
		wantSigErr(t, "timestamp "+bad, sw.Verify(changed, []byte(body), testNow))
	}

	st, _ := webhook.NewStripe([]string{"whsec_x"})
	h = sign(t, st, body, testNow)
	sig := h.Get("Stripe-Signature")
	v1 := sig[strings.Index(sig, "v1="):]
	for name, header := range map[string]string{
		"other t":       fmt.Sprintf("t=%d,%s", testNow.Unix()+1, v1),
		"two t":         fmt.Sprintf("t=%d,t=%d,%s", testNow.Unix(), testNow.Unix(), v1),
		"no t":          v1,
		"empty t":       "t=," + v1,
		"no v1":         fmt.Sprintf("t=%d,v0=%s", testNow.Unix(), v1[3:]),
		"short v1":      fmt.Sprintf("t=%d,%s", testNow.Unix(), v1[:20]),
		"v1 not hex":    fmt.Sprintf("t=%d,v1=%s", testNow.Unix(), strings.Repeat("zz", 32)),
		"garbage":       ",,,==,=,t",
		"just a string": "hello",
	} {
		wantSigErr(t, "Stripe-Signature "+name, st.Verify(http.Header{"Stripe-Signature": {header}}, []byte(body), testNow))
	}
}

func TestVerifierHeaderLimits(t *testing.T) {
	const body = `{"a":1}`
	sw, _ := webhook.NewStandardWebhooks([]string{schemes[2].secret(1)})
	h := sign(t, sw, body, testNow)
	valid := h.Get("webhook-signature")

	// The valid signature after 32 junk ones: past the cap, refused without looking.
	junk := strings.Repeat("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ", 32)
	h.Set("webhook-signature", junk+valid)
	wantSigErr(t, "33 signatures", sw.Verify(h, []byte(body), testNow))
	h.Set("webhook-signature", strings.Repeat("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ", 31)+valid)
	mustNoErr(t, sw.Verify(h, []byte(body), testNow))
	h.Set("webhook-signature", valid+strings.Repeat(" ", 9000))
	wantSigErr(t, "header over 8 KiB", sw.Verify(h, []byte(body), testNow))
	h.Set("webhook-signature", "v1,"+strings.Repeat("A", 4000))
	wantSigErr(t, "oversized signature", sw.Verify(h, []byte(body), testNow))

	st, _ := webhook.NewStripe([]string{"whsec_x"})
	sh := sign(t, st, body, testNow)
	sh.Set("Stripe-Signature", sh.Get("Stripe-Signature")+strings.Repeat(",v0=x", 40))
	wantSigErr(t, "Stripe-Signature with 42 entries", st.Verify(sh, []byte(body), testNow))
}

func TestVerifierConstruction(t *testing.T) {
	ok := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789"))
	for name, mk := range map[string]func() (webhook.Verifier, error){
		"HMAC no secret":    func() (webhook.Verifier, error) { return webhook.NewHMAC("X-Sig", webhook.Hex, nil) },
		"HMAC empty secret": func() (webhook.Verifier, error) { return webhook.NewHMAC("X-Sig", webhook.Hex, []string{""}) },
		"HMAC blank secret": func() (webhook.Verifier, error) { return webhook.NewHMAC("X-Sig", webhook.Hex, []string{"ok", "  "}) },
		"HMAC no header":    func() (webhook.Verifier, error) { return webhook.NewHMAC("", webhook.Hex, []string{"s"}) },
		"HMAC no encoding":  func() (webhook.Verifier, error) { return webhook.NewHMAC("X-Sig", 0, []string{"s"}) },
		"HMAC with a tolerance": func() (webhook.Verifier, error) {
			return webhook.NewHMAC("X-Sig", webhook.Hex, []string{"s"}, webhook.WithTolerance(time.Minute))
		},
		"HMAC 17 secrets": func() (webhook.Verifier, error) {
			return webhook.NewHMAC("X-Sig", webhook.Hex, strings.Split(strings.Repeat("s,", 16)+"s", ","))
		},
		"Standard no secret":    func() (webhook.Verifier, error) { return webhook.NewStandardWebhooks(nil) },
		"Standard empty secret": func() (webhook.Verifier, error) { return webhook.NewStandardWebhooks([]string{""}) },
		"Standard bare prefix":  func() (webhook.Verifier, error) { return webhook.NewStandardWebhooks([]string{"whsec_"}) },
		"Standard not base64":   func() (webhook.Verifier, error) { return webhook.NewStandardWebhooks([]string{ok, "whsec_not*base64"}) },
		"Standard zero tolerance": func() (webhook.Verifier, error) {
			return webhook.NewStandardWebhooks([]string{ok}, webhook.WithTolerance(0))
		},
		"Standard negative tolerance": func() (webhook.Verifier, error) {
			return webhook.NewStandardWebhooks([]string{ok}, webhook.WithTolerance(-time.Second))
		},
		"Standard with a prefix": func() (webhook.Verifier, error) {
			return webhook.NewStandardWebhooks([]string{ok}, webhook.WithPrefix("v1="))
		},
		"Stripe no secret":    func() (webhook.Verifier, error) { return webhook.NewStripe([]string{}) },
		"Stripe empty secret": func() (webhook.Verifier, error) { return webhook.NewStripe([]string{""}) },
		"Stripe zero tolerance": func() (webhook.Verifier, error) {
			return webhook.NewStripe([]string{"whsec_x"}, webhook.WithTolerance(0))
		},
	} {
		v, err := mk()
		if err == nil {
			t.Errorf("%s: constructed a verifier (%T), want a configuration error", name, v)
		}
	}
}

// The verifiers' MAC equals one computed here from the primitives, for random bodies.
func TestVerifierMatchesPrimitives(t *testing.T) {
	v, _ := webhook.NewHMAC("X-Sig", webhook.Hex, []string{"k"})
	for i := range 50 {
		body := []byte(strings.Repeat(fmt.Sprint(i), i))
		m := hmac.New(sha256.New, []byte("k"))
		m.Write(body)
		h := http.Header{"X-Sig": {fmt.Sprintf("%x", m.Sum(nil))}}
		mustNoErr(t, v.Verify(h, body, time.Time{}))
	}
}
