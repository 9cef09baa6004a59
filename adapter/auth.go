package adapter

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Auth adds credentials to an outgoing request. The client calls Apply before every
// attempt, so signatures carry a fresh timestamp and refreshed tokens are used on
// retries. Apply may set headers, replace req.URL (never modify *req.URL in place) and
// read the body through req.GetBody; it must not consume req.Body.
//
// An Auth that can recover from a 401 also has the method
//
//	Refresh(ctx context.Context, rejected *http.Request) (bool, error)
//
// When a response is 401, the client calls it once per call with the rejected request; if
// it reports true the request is sent again with fresh credentials, and a second 401
// fails with ErrUnauthorized. The OAuth2 strategies have it.
type Auth interface {
	Apply(req *http.Request) error
}

// refresher is an Auth that can recover from a 401 (see Auth).
type refresher interface {
	Refresh(ctx context.Context, rejected *http.Request) (bool, error)
}

// secretHolder is implemented by Auth strategies that hold credentials. The client
// registers them as literal secrets with its redactor so they never reach the audit log,
// logs or error texts.
type secretHolder interface {
	Secrets() []string
}

// headerAuth sets one fixed header.
type headerAuth struct {
	name    string   // canonical
	values  []string // the one value, len == cap: shared by every request, never written to
	secrets []string
}

func newHeaderAuth(name, value string, secrets ...string) *headerAuth {
	return &headerAuth{name: http.CanonicalHeaderKey(name), values: []string{value}[:1:1], secrets: secrets}
}

// Apply sets the header. The value slice is shared, as Set would not: an Add on the
// request reallocates (len == cap), and nothing writes into header values in place.
func (a *headerAuth) Apply(req *http.Request) error {
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header[a.name] = a.values
	return nil
}

func (a *headerAuth) Secrets() []string { return a.secrets }

// BasicAuth sends HTTP Basic credentials (RFC 7617).
func BasicAuth(user, password string) Auth {
	enc := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	return newHeaderAuth("Authorization", "Basic "+enc, password, enc)
}

// BearerAuth sends "Authorization: Bearer <token>".
func BearerAuth(token string) Auth {
	return newHeaderAuth("Authorization", "Bearer "+token, token)
}

// APIKeyHeader sends key in the named header ("X-API-Key: key").
func APIKeyHeader(header, key string) Auth {
	return newHeaderAuth(header, key, key)
}

// APIKeyQuery sends key as the named query parameter ("?api_key=key"). Prefer a header
// where the API allows it: URLs end up in proxies' logs. The client itself redacts it.
func APIKeyQuery(param, key string) Auth { return &queryAuth{param: param, key: key} }

type queryAuth struct{ param, key string }

func (a *queryAuth) Apply(req *http.Request) error {
	u := *req.URL
	q := u.Query()
	q.Set(a.param, a.key)
	u.RawQuery = q.Encode()
	req.URL = &u
	return nil
}

func (a *queryAuth) Secrets() []string { return []string{a.key} }

// HMACFormat says where and how HMACAuth writes its signature. The zero value is the
// default: lower-case hex in X-Signature, the timestamp in X-Timestamp.
type HMACFormat struct {
	// SignatureHeader carries the signature ("" is "X-Signature").
	SignatureHeader string
	// TimestampHeader carries the timestamp ("" is "X-Timestamp").
	TimestampHeader string
	// Prefix goes in front of the signature, as in "sha256=…" (default none).
	Prefix string
	// Base64 writes the signature in standard base64 instead of lower-case hex.
	Base64 bool
}

type hmacAuth struct {
	secret              []byte
	sigHeader, tsHeader string
	prefix              string
	b64                 bool
	now                 func() time.Time
}

// HMACAuth returns an Auth that signs every attempt with HMAC-SHA256 of secret. The
// signed string is four lines joined by "\n":
//
//	METHOD       upper case, as sent ("POST")
//	PATH?QUERY   the request URI as sent: escaped path, plus "?" and the raw query when there is one
//	TIMESTAMP    Unix seconds, also sent in the timestamp header (default "X-Timestamp")
//	BODY         the raw body bytes (empty for no body)
//
// The signature — lower-case hex (or base64), after an optional prefix such as "sha256="
// (see HMACFormat) — goes in the signature header (default "X-Signature"). Retries are
// signed afresh. A server verifies it by computing the same HMAC over the same four lines;
// a server should also reject timestamps outside a short window to stop replays.
func HMACAuth(secret []byte, format HMACFormat) Auth {
	a := &hmacAuth{secret: secret, sigHeader: "X-Signature", tsHeader: "X-Timestamp", now: time.Now,
		prefix: format.Prefix, b64: format.Base64}
	if format.SignatureHeader != "" {
		a.sigHeader = format.SignatureHeader
	}
	if format.TimestampHeader != "" {
		a.tsHeader = format.TimestampHeader
	}
	return a
}

func (a *hmacAuth) Secrets() []string { return []string{string(a.secret)} }

// bindClient makes the signer use the client's clock (WithClock).
func (a *hmacAuth) bindClient(c *Client) { a.now = c.cfg.now }

func (a *hmacAuth) Apply(req *http.Request) error {
	if len(a.secret) == 0 {
		return errors.New("HMAC signing: the secret is empty")
	}
	var body []byte
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return fmt.Errorf("HMAC signing: reading the body: %w", err)
		}
		body, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("HMAC signing: reading the body: %w", err)
		}
	}
	ts := strconv.FormatInt(a.now().Unix(), 10)
	sig := signHMAC(a.secret, req.Method, req.URL.RequestURI(), ts, body)
	if a.b64 {
		raw, _ := hex.DecodeString(sig)
		sig = base64.StdEncoding.EncodeToString(raw)
	}
	req.Header.Set(a.tsHeader, ts)
	req.Header.Set(a.sigHeader, a.prefix+sig)
	return nil
}

// signHMAC returns the hex HMAC-SHA256 of method, requestURI, timestamp and body joined
// by "\n" — the signature HMACAuth sends.
func signHMAC(secret []byte, method, requestURI, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, method)
	m.Write([]byte{'\n'})
	io.WriteString(m, requestURI)
	m.Write([]byte{'\n'})
	io.WriteString(m, timestamp)
	m.Write([]byte{'\n'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// newIdempotencyKey returns a random UUID (version 4) string for Request.IdempotencyKey.
func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
