package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Verifier checks that a delivery was sent by who it claims: it verifies the signature
// the sender put in h over the raw body, and, for schemes that sign a timestamp, that the
// timestamp is within a tolerance of now. Every failure matches [ErrSignature]; the
// wrapped detail is for logs, never for the sender. Implementations are safe for
// concurrent use.
type Verifier interface {
	Verify(h http.Header, body []byte, now time.Time) error
}

// ErrSignature is matched (errors.Is) by every verification failure: missing or malformed
// headers, no matching signature, a timestamp outside the tolerance. The receiver answers
// all of them with the same 401.
var ErrSignature = errors.New("webhook: signature verification failed")

// Encoding is how an HMAC signature is written in its header.
type Encoding int

// Encodings of [NewHMAC] signatures.
const (
	// Hex is lower- or upper-case hexadecimal (GitHub's X-Hub-Signature-256).
	Hex Encoding = iota + 1
	// Base64 is standard base64 with padding (Shopify's X-Shopify-Hmac-Sha256).
	Base64
)

// String returns "hex" or "base64".
func (e Encoding) String() string {
	switch e {
	case Hex:
		return "hex"
	case Base64:
		return "base64"
	}
	return "Encoding(" + strconv.Itoa(int(e)) + ")"
}

// DefaultTolerance is how far a signed timestamp may be from the receiver's clock, in
// either direction, unless [WithTolerance] says otherwise.
const DefaultTolerance = 5 * time.Minute

// Limits on what a verifier parses, so a hostile header costs bounded work: a signature
// header longer than maxHeaderLen, or with more than maxSignatures entries, fails at once.
const (
	maxHeaderLen  = 8 << 10
	maxSignatures = 32
	maxSecrets    = 16
)

// VerifyOption adjusts a verifier at construction. An option that does not apply to the
// scheme (a prefix for Stripe) is a construction error.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	prefix       *string
	tolerance    time.Duration
	setTolerance bool
}

// WithPrefix sets the text in front of an HMAC signature in its header: "sha256=" for
// GitHub. Only for [NewHMAC].
func WithPrefix(prefix string) VerifyOption {
	return func(c *verifyConfig) { c.prefix = &prefix }
}

// WithTolerance sets how far a signed timestamp may be from now, in either direction
// (default [DefaultTolerance]); it must be positive. Only for schemes that sign a
// timestamp ([NewStandardWebhooks], [NewStripe]).
func WithTolerance(d time.Duration) VerifyOption {
	return func(c *verifyConfig) { c.tolerance, c.setTolerance = d, true }
}

func newConfig(opts []VerifyOption) verifyConfig {
	c := verifyConfig{tolerance: DefaultTolerance}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

func (c *verifyConfig) checkTolerance(scheme string) error {
	if c.prefix != nil {
		return fmt.Errorf("webhook: %s verifier: WithPrefix applies to NewHMAC only", scheme)
	}
	if c.tolerance <= 0 {
		return fmt.Errorf("webhook: %s verifier: the tolerance must be positive, got %s", scheme, c.tolerance)
	}
	return nil
}

// rawKeys checks the secret list and returns each secret's bytes.
func rawKeys(scheme string, secrets []string) ([][]byte, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("webhook: %s verifier: no secret given; verification is never skipped", scheme)
	}
	if len(secrets) > maxSecrets {
		return nil, fmt.Errorf("webhook: %s verifier: %d secrets given, at most %d (keep the current and the previous ones)", scheme, len(secrets), maxSecrets)
	}
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("webhook: %s verifier: secret %d of %d is empty; verification is never skipped", scheme, i+1, len(secrets))
		}
		keys[i] = []byte(s)
	}
	return keys, nil
}

func fail(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSignature}, args...)...)
}

// header returns the first value of the named header, failing when it is missing or too
// long to be honest.
func header(h http.Header, name string) (string, error) {
	v := h.Get(name)
	switch {
	case v == "":
		return "", fail("missing %s header", name)
	case len(v) > maxHeaderLen:
		return "", fail("%s header is %d bytes, more than %d", name, len(v), maxHeaderLen)
	}
	return v, nil
}

// timestamp parses decimal Unix seconds and checks them against now.
func timestamp(v string, now time.Time, tolerance time.Duration) error {
	if v == "" || len(v) > 12 {
		return fail("timestamp %.20q is not Unix seconds", v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return fail("timestamp %.20q is not Unix seconds", v)
		}
	}
	sec, _ := strconv.ParseInt(v, 10, 64) // 12 digits always parse
	skew := now.Sub(time.Unix(sec, 0))
	switch {
	case skew > tolerance:
		return fail("timestamp %d is %s old, outside the %s tolerance", sec, skew.Round(time.Second), tolerance)
	case skew < -tolerance:
		return fail("timestamp %d is %s in the future, outside the %s tolerance", sec, (-skew).Round(time.Second), tolerance)
	}
	return nil
}

// macKey is one secret with a pool of its HMAC-SHA256 states: making a state hashes the
// key's pads and allocates, which every delivery would pay for again.
type macKey struct {
	key   []byte
	state sync.Pool // of hash.Hash
}

// macKeys wraps secrets' bytes.
func macKeys(keys [][]byte) []*macKey {
	out := make([]*macKey, len(keys))
	for i, k := range keys {
		out[i] = &macKey{key: k}
	}
	return out
}

// sum appends the MAC of the content write writes to out.
func (k *macKey) sum(out []byte, write func(hash.Hash)) []byte {
	m, ok := k.state.Get().(hash.Hash)
	if ok {
		m.Reset()
	} else {
		m = hmac.New(sha256.New, k.key)
	}
	write(m)
	out = m.Sum(out)
	k.state.Put(m)
	return out
}

// match reports whether one of the MACs of the keys over the signed content equals one of
// the candidates, comparing in constant time.
func match(keys []*macKey, candidates [][sha256.Size]byte, write func(hash.Hash)) bool {
	var sum [sha256.Size]byte
	ok := false
	for _, k := range keys {
		k.sum(sum[:0], write)
		for i := range candidates {
			if hmac.Equal(sum[:], candidates[i][:]) {
				ok = true // keep going: the time taken does not depend on which matched
			}
		}
	}
	return ok
}

func mac(key *macKey, write func(hash.Hash)) []byte { return key.sum(nil, write) }

// decodeSig decodes one signature in enc; ok is false for anything but a SHA-256 MAC.
func decodeSig(s string, enc Encoding) (sig [sha256.Size]byte, ok bool) {
	switch enc {
	case Hex:
		if len(s) != hex.EncodedLen(sha256.Size) {
			return sig, false
		}
		_, err := hex.Decode(sig[:], []byte(s))
		return sig, err == nil
	case Base64:
		if len(s) != base64.StdEncoding.EncodedLen(sha256.Size) {
			return sig, false
		}
		var buf [sha256.Size + 2]byte
		n, err := base64.StdEncoding.Decode(buf[:], []byte(s))
		if err != nil || n != sha256.Size {
			return sig, false
		}
		copy(sig[:], buf[:n])
		return sig, true
	}
	return sig, false
}

// --- HMAC over the raw body ---

// HMAC verifies an HMAC-SHA256 of the raw body carried in one header, as Shopify and
// GitHub send it. Made by [NewHMAC].
type HMAC struct {
	header, prefix string
	enc            Encoding
	keys           []*macKey
}

var _ Verifier = (*HMAC)(nil)

// NewHMAC returns a verifier of an HMAC-SHA256 of the raw body, written in enc in the
// named header after an optional [WithPrefix]. Each secret is used as is (its bytes are
// the key); a delivery passes when its signature matches any of them, so during a
// rotation both the new and the old secret are listed. No secret, an empty one, a missing
// header name or an unknown encoding is an error.
//
//	Shopify: NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, secrets)
//	GitHub:  NewHMAC("X-Hub-Signature-256", webhook.Hex, secrets, webhook.WithPrefix("sha256="))
//
// The scheme signs the body only — no timestamp, no delivery ID, no topic header: a
// captured delivery can be replayed, and only the receiver's deduplication by delivery ID
// stops it being processed twice (the ID header itself is not signed, so a replay under
// a new ID gets through: prefer a scheme that signs the ID where the sender offers one).
func NewHMAC(header string, enc Encoding, secrets []string, opts ...VerifyOption) (*HMAC, error) {
	c := newConfig(opts)
	switch {
	case strings.TrimSpace(header) == "":
		return nil, errors.New("webhook: HMAC verifier: no signature header name")
	case enc != Hex && enc != Base64:
		return nil, fmt.Errorf("webhook: HMAC verifier: unknown encoding %s; use webhook.Hex or webhook.Base64", enc)
	case c.setTolerance:
		return nil, errors.New("webhook: HMAC verifier: WithTolerance does not apply: the scheme signs no timestamp")
	}
	keys, err := rawKeys("HMAC", secrets)
	if err != nil {
		return nil, err
	}
	v := &HMAC{header: http.CanonicalHeaderKey(header), enc: enc, keys: macKeys(keys)}
	if c.prefix != nil {
		v.prefix = *c.prefix
	}
	return v, nil
}

// Verify implements [Verifier]; now is not used.
func (v *HMAC) Verify(h http.Header, body []byte, now time.Time) error {
	s, err := header(h, v.header)
	if err != nil {
		return err
	}
	s, ok := strings.CutPrefix(s, v.prefix)
	if !ok {
		return fail("%s header does not start with %q", v.header, v.prefix)
	}
	sig, ok := decodeSig(strings.TrimSpace(s), v.enc)
	if !ok {
		return fail("%s header holds no %s HMAC-SHA256", v.header, v.enc)
	}
	if !match(v.keys, [][sha256.Size]byte{sig}, func(m hash.Hash) { m.Write(body) }) {
		return fail("%s does not match the body with any of the %d secrets", v.header, len(v.keys))
	}
	return nil
}

// Sign sets the signature header of body in h, with the first secret, as the sender
// would; tests use it to make deliveries that Verify accepts. now is not used.
func (v *HMAC) Sign(h http.Header, body []byte, now time.Time) error {
	sum := mac(v.keys[0], func(m hash.Hash) { m.Write(body) })
	var s string
	if v.enc == Hex {
		s = hex.EncodeToString(sum)
	} else {
		s = base64.StdEncoding.EncodeToString(sum)
	}
	h.Set(v.header, v.prefix+s)
	return nil
}

func (v *HMAC) secretHeaders() []string { return []string{v.header} }

// --- Standard Webhooks ---

// Standard Webhooks header names.
const (
	headerSWID        = "Webhook-Id"
	headerSWTimestamp = "Webhook-Timestamp"
	headerSWSignature = "Webhook-Signature"
)

// StandardWebhooks verifies deliveries signed per the Standard Webhooks specification
// (standardwebhooks.com): webhook-id, webhook-timestamp and webhook-signature headers, an
// HMAC-SHA256 over "id.timestamp.body", space-separated "v1,<base64>" signatures. Made
// by [NewStandardWebhooks].
type StandardWebhooks struct {
	keys      []*macKey
	tolerance time.Duration
}

var _ Verifier = (*StandardWebhooks)(nil)

// NewStandardWebhooks returns a Standard Webhooks verifier. Each secret is base64, with
// or without the "whsec_" prefix; a delivery passes when one of its v1 signatures
// matches any secret. Its timestamp must be within [WithTolerance] of now (default
// [DefaultTolerance]) in either direction. No secret, or an empty or undecodable one, is
// an error. Asymmetric (v1a) signatures are not supported and are skipped.
func NewStandardWebhooks(secrets []string, opts ...VerifyOption) (*StandardWebhooks, error) {
	c := newConfig(opts)
	if err := c.checkTolerance("Standard Webhooks"); err != nil {
		return nil, err
	}
	raw, err := rawKeys("Standard Webhooks", secrets)
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(raw))
	for i, s := range secrets {
		k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "whsec_"))
		if err != nil {
			return nil, fmt.Errorf("webhook: Standard Webhooks verifier: secret %d of %d is not base64 after its whsec_ prefix: %w", i+1, len(secrets), err)
		}
		if len(k) == 0 {
			return nil, fmt.Errorf("webhook: Standard Webhooks verifier: secret %d of %d is empty; verification is never skipped", i+1, len(secrets))
		}
		keys[i] = k
	}
	return &StandardWebhooks{keys: macKeys(keys), tolerance: c.tolerance}, nil
}

// Verify implements [Verifier].
func (v *StandardWebhooks) Verify(h http.Header, body []byte, now time.Time) error {
	id, err := header(h, headerSWID)
	if err != nil {
		return err
	}
	ts, err := header(h, headerSWTimestamp)
	if err != nil {
		return err
	}
	sigs, err := header(h, headerSWSignature)
	if err != nil {
		return err
	}
	if err := timestamp(ts, now, v.tolerance); err != nil {
		return err
	}
	var candidates [][sha256.Size]byte
	n := 0
	for entry := range strings.FieldsSeq(sigs) {
		if n++; n > maxSignatures {
			return fail("%s header holds more than %d signatures", headerSWSignature, maxSignatures)
		}
		if b64, ok := strings.CutPrefix(entry, "v1,"); ok {
			if sig, ok := decodeSig(b64, Base64); ok {
				candidates = append(candidates, sig)
			}
		}
	}
	if len(candidates) == 0 {
		return fail("%s header holds no well-formed v1 signature", headerSWSignature)
	}
	if !match(v.keys, candidates, swContent(id, ts, body)) {
		return fail("none of the %d v1 signatures matches any of the %d secrets", len(candidates), len(v.keys))
	}
	return nil
}

func swContent(id, ts string, body []byte) func(hash.Hash) {
	return func(m hash.Hash) {
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
		m.Write(body)
	}
}

// Sign signs body as a Standard Webhooks sender would, with the first secret: it sets
// webhook-timestamp to now and webhook-signature for the delivery ID already in h's
// webhook-id header (an error when there is none).
func (v *StandardWebhooks) Sign(h http.Header, body []byte, now time.Time) error {
	id := h.Get(headerSWID)
	if id == "" {
		return errors.New("webhook: Standard Webhooks sign: set the webhook-id header first")
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(headerSWTimestamp, ts)
	h.Set(headerSWSignature, "v1,"+base64.StdEncoding.EncodeToString(mac(v.keys[0], swContent(id, ts, body))))
	return nil
}

func (v *StandardWebhooks) secretHeaders() []string { return []string{headerSWSignature} }

// --- Stripe ---

const headerStripe = "Stripe-Signature"

// Stripe verifies Stripe-style deliveries: a Stripe-Signature header
// "t=<unix seconds>,v1=<hex>[,v1=<hex>…]" holding HMAC-SHA256s of "t.body". Made by
// [NewStripe].
type Stripe struct {
	keys      []*macKey
	tolerance time.Duration
}

var _ Verifier = (*Stripe)(nil)

// NewStripe returns a Stripe-style verifier. Each secret is the endpoint's signing
// secret exactly as Stripe shows it ("whsec_…", used whole as the key); a delivery passes
// when one of its v1 signatures matches any secret, and its t is within [WithTolerance]
// of now (default [DefaultTolerance]) in either direction. Entries other than t and v1
// (v0, …) are ignored. No secret or an empty one is an error.
func NewStripe(secrets []string, opts ...VerifyOption) (*Stripe, error) {
	c := newConfig(opts)
	if err := c.checkTolerance("Stripe"); err != nil {
		return nil, err
	}
	keys, err := rawKeys("Stripe", secrets)
	if err != nil {
		return nil, err
	}
	return &Stripe{keys: macKeys(keys), tolerance: c.tolerance}, nil
}

// Verify implements [Verifier].
func (v *Stripe) Verify(h http.Header, body []byte, now time.Time) error {
	s, err := header(h, headerStripe)
	if err != nil {
		return err
	}
	var (
		ts         string
		candidates [][sha256.Size]byte
		n          int
	)
	for entry := range strings.SplitSeq(s, ",") {
		if n++; n > maxSignatures {
			return fail("%s header holds more than %d entries", headerStripe, maxSignatures)
		}
		k, val, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			if ts != "" {
				return fail("%s header holds more than one t", headerStripe)
			}
			if ts = val; ts == "" {
				return fail("%s header holds an empty t", headerStripe)
			}
		case "v1":
			if sig, ok := decodeSig(val, Hex); ok {
				candidates = append(candidates, sig)
			}
		}
	}
	if ts == "" {
		return fail("%s header holds no timestamp t", headerStripe)
	}
	if err := timestamp(ts, now, v.tolerance); err != nil {
		return err
	}
	if len(candidates) == 0 {
		return fail("%s header holds no well-formed v1 signature", headerStripe)
	}
	if !match(v.keys, candidates, stripeContent(ts, body)) {
		return fail("none of the %d v1 signatures matches any of the %d secrets", len(candidates), len(v.keys))
	}
	return nil
}

func stripeContent(ts string, body []byte) func(hash.Hash) {
	return func(m hash.Hash) {
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
		m.Write(body)
	}
}

// Sign sets the Stripe-Signature header of body in h for time now, with the first
// secret, as Stripe would.
func (v *Stripe) Sign(h http.Header, body []byte, now time.Time) error {
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(headerStripe, "t="+ts+",v1="+hex.EncodeToString(mac(v.keys[0], stripeContent(ts, body))))
	return nil
}

func (v *Stripe) secretHeaders() []string { return []string{headerStripe} }
