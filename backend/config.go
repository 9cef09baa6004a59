package backend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/internal/envref"
)

// Config is one configured connection to an external system. Build it in Go or load it
// from a JSON or YAML file with [LoadConfig]; either way, call [Config.Validate] (New does).
type Config struct {
	// Name identifies the backend in bindings, logs and statistics ("shop-eu"). Required.
	Name string `json:"name"`
	// Kind names the connector implementation ("shopify", "crm"); informational.
	Kind string `json:"kind,omitempty"`
	// BaseURL is the API root every request path is joined to. Required, http or https.
	BaseURL string `json:"base_url"`
	// Auth selects and configures how requests authenticate.
	Auth AuthConfig `json:"auth"`
	// ConnectTimeout bounds dialing and the TLS handshake (default 5s);
	// ReadTimeout bounds waiting for and reading a response (default 15s).
	ConnectTimeout Duration `json:"connect_timeout,omitempty"`
	ReadTimeout    Duration `json:"read_timeout,omitempty"`
	// RateLimit caps the request rate the client sends (zero: unlimited).
	RateLimit RateLimitConfig `json:"rate_limit"`
	// Retry tunes retries of failed requests (zero values: adapter defaults).
	Retry RetryConfig `json:"retry"`
	// Headers are sent with every request.
	Headers map[string]string `json:"headers,omitempty"`
	// Schedules run operations periodically once enabled (see ScheduleConfig).
	Schedules []ScheduleConfig `json:"schedules,omitempty"`
	// Settings holds connector-specific values (warehouse, pricelist, API version…).
	Settings map[string]any `json:"settings,omitempty"`
	// Webhooks declares the endpoints the external system pushes events to (see
	// WebhookConfig and Backend.Webhooks).
	Webhooks []WebhookConfig `json:"webhooks,omitempty"`
}

// ScheduleConfig declares one schedule: it runs Operation (SyncAllOperation, a model's
// "import_<model>" or "retry_<model>", or one registered with WithOperation) on Spec:
// "@every 15m", a Go duration, or a cron expression ("*/5 * * * *", "@hourly", with an
// optional "CRON_TZ=Europe/Paris " prefix).
//
// A schedule is disabled until it is enabled (Schedules().Enable), and its state — enabled,
// last and next run, last error — lives in the backend's database, so every process of the
// connector sees the same and a console can show and toggle it. Once the backend is
// started, each due tick is claimed by exactly one process and enqueues the operation as a
// job whose identity key keeps a run from overlapping the previous one.
type ScheduleConfig struct {
	// Name identifies the schedule (Schedules() knows it as "<backend>/<name>");
	// Operation is what it runs; Spec is when.
	Name      string `json:"name"`
	Operation string `json:"operation"`
	Spec      string `json:"spec"`
}

// The authentication types a Config can name in Auth.Type (see AuthConfig.Type).
const (
	authNone                    = "none"
	authBasic                   = "basic"
	authBearer                  = "bearer"
	authAPIKey                  = "api_key"
	authOAuth2ClientCredentials = "oauth2_client_credentials"
	authOAuth2RefreshToken      = "oauth2_refresh_token"
	authHMAC                    = "hmac"
)

var authTypes = []string{authNone, authBasic, authBearer, authAPIKey, authOAuth2ClientCredentials, authOAuth2RefreshToken, authHMAC}

// AuthConfig configures one authentication strategy. Which fields are required depends
// on Type; Validate names any that are missing. Keep secrets out of files: write
// "${SHOP_TOKEN}" and let LoadConfig expand it from the environment.
type AuthConfig struct {
	// Type is one of none (default), basic, bearer, api_key, oauth2_client_credentials,
	// oauth2_refresh_token, hmac.
	Type string `json:"type,omitempty"`
	// Username and Password for basic.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Token for bearer.
	Token string `json:"token,omitempty"`
	// APIKey for api_key, sent in the header or query parameter named Name ("header" is
	// the default for In; Name defaults to X-API-Key).
	APIKey string `json:"api_key,omitempty"`
	In     string `json:"in,omitempty"`
	Name   string `json:"name,omitempty"`
	// ClientID, ClientSecret, TokenURL and Scopes for the OAuth2 flows; RefreshToken for
	// oauth2_refresh_token.
	ClientID     string   `json:"client_id,omitempty"`
	ClientSecret string   `json:"client_secret,omitempty"`
	TokenURL     string   `json:"token_url,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	RefreshToken string   `json:"refresh_token,omitempty"`
	// Secret and Header for hmac request signing (Header defaults to X-Signature).
	Secret string `json:"secret,omitempty"`
	Header string `json:"header,omitempty"`
}

// RateLimitConfig caps the request rate.
type RateLimitConfig struct {
	// PerSecond is the sustained rate; 0 disables client-side limiting.
	PerSecond float64 `json:"per_second,omitempty"`
	// Burst is how many requests may go at once (default 1 when PerSecond is set).
	Burst int `json:"burst,omitempty"`
	// Headers names the rate-limit headers the API sends, so the client slows down before
	// it is refused: "x-ratelimit" (X-RateLimit-Limit/Remaining/Reset), "ietf" (RateLimit
	// and RateLimit-Policy), "shopify" (X-Shopify-Shop-Api-Call-Limit), "hubspot"
	// (X-HubSpot-RateLimit-Max/Remaining/Interval-Milliseconds). Empty: none read
	// (429 and Retry-After are always honoured).
	Headers string `json:"headers,omitempty"`
}

// RetryConfig tunes retries. Zero values keep the adapter's defaults.
type RetryConfig struct {
	// MaxAttempts counts the first try: 1 disables retries.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// MinWait and MaxWait bound the exponential backoff between attempts.
	MinWait Duration `json:"min_wait,omitempty"`
	MaxWait Duration `json:"max_wait,omitempty"`
	// MaxRetryAfter is the longest Retry-After the client will honour before failing
	// with a rate-limit error instead.
	MaxRetryAfter Duration `json:"max_retry_after,omitempty"`
}

// Duration is a time.Duration that reads from config files as a Go duration string
// ("1m30s", "500ms") or as a number of seconds (5, 0.5).
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			*d = Duration(f * float64(time.Second))
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			// An UnmarshalTypeError gets the field's path filled in by encoding/json.
			return &json.UnmarshalTypeError{Value: strconv.Quote(s), Type: reflect.TypeFor[Duration]()}
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[Duration]()}
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// FieldError reports one invalid configuration field.
type FieldError struct {
	// Field is the field's path in the file's terms, e.g. "auth.token".
	Field string
	// Problem says what is wrong and, where it helps, what to write instead.
	Problem string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ErrInvalidConfig is matched (errors.Is) by every error Validate and LoadConfig return
// for a configuration that cannot be used.
var ErrInvalidConfig = errors.New("invalid backend config")

// ConfigError lists every problem found in one configuration.
type ConfigError struct {
	// Backend is the config's name, when it has one; Source is the file it came from.
	Backend string
	Source  string
	Fields  []*FieldError
}

// Error implements error, naming every bad field.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("invalid backend config")
	if e.Backend != "" {
		fmt.Fprintf(&b, " %q", e.Backend)
	}
	if e.Source != "" {
		fmt.Fprintf(&b, " in %s", e.Source)
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate checks c and returns a *ConfigError naming every bad field, or nil.
func (c *Config) Validate() error {
	var fields []*FieldError
	bad := func(field, format string, args ...any) {
		fields = append(fields, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(c.Name) == "" {
		bad("name", "is required: it identifies the backend in bindings and logs")
	}
	if c.BaseURL == "" {
		bad("base_url", "is required, e.g. https://api.example.com/v1")
	} else if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("base_url", "%q is not an absolute http(s) URL", c.BaseURL)
	}
	if c.ConnectTimeout < 0 {
		bad("connect_timeout", "must not be negative")
	}
	if c.ReadTimeout < 0 {
		bad("read_timeout", "must not be negative")
	}
	if c.RateLimit.PerSecond < 0 {
		bad("rate_limit.per_second", "must not be negative")
	}
	if c.RateLimit.Burst < 0 {
		bad("rate_limit.burst", "must not be negative")
	}
	if _, err := adapter.New("", adapter.WithLimitHeaders(c.RateLimit.Headers)); err != nil { // the adapter knows the styles
		bad("rate_limit.headers", "%q: use x-ratelimit, ietf, shopify or hubspot", c.RateLimit.Headers)
	}
	if c.Retry.MaxAttempts < 0 {
		bad("retry.max_attempts", "must not be negative")
	}
	if c.Retry.MinWait < 0 || c.Retry.MaxWait < 0 || c.Retry.MaxRetryAfter < 0 {
		bad("retry", "waits must not be negative")
	}
	if c.Retry.MaxWait > 0 && c.Retry.MinWait > c.Retry.MaxWait {
		bad("retry.min_wait", "(%s) is longer than retry.max_wait (%s)", c.Retry.MinWait.Std(), c.Retry.MaxWait.Std())
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			bad("headers", "%q is not a valid header name", k)
		}
	}
	for i, sc := range c.Schedules {
		if sc.Name == "" || sc.Operation == "" || sc.Spec == "" {
			bad(fmt.Sprintf("schedules[%d]", i), "needs a name, an operation and a spec")
		}
	}
	fields = append(fields, c.Auth.validate()...)
	fields = append(fields, c.validateWebhooks()...)
	if len(fields) == 0 {
		return nil
	}
	return &ConfigError{Backend: c.Name, Fields: fields}
}

func (a *AuthConfig) validate() []*FieldError {
	var fields []*FieldError
	need := func(value, field, what string) {
		if value == "" {
			fields = append(fields, &FieldError{Field: "auth." + field, Problem: "is required for auth type " + a.Type + " (" + what + ")"})
		}
	}
	switch a.Type {
	case "", authNone:
	case authBasic:
		need(a.Username, "username", "the login")
		need(a.Password, "password", "write ${ENV_VAR} to keep it out of the file")
	case authBearer:
		need(a.Token, "token", "write ${ENV_VAR} to keep it out of the file")
	case authAPIKey:
		need(a.APIKey, "api_key", "write ${ENV_VAR} to keep it out of the file")
		if a.In != "" && a.In != "header" && a.In != "query" {
			fields = append(fields, &FieldError{Field: "auth.in", Problem: fmt.Sprintf("%q: use header or query", a.In)})
		}
	case authOAuth2ClientCredentials, authOAuth2RefreshToken:
		need(a.ClientID, "client_id", "the OAuth2 client")
		need(a.TokenURL, "token_url", "the provider's token endpoint")
		if a.Type == authOAuth2ClientCredentials {
			need(a.ClientSecret, "client_secret", "write ${ENV_VAR} to keep it out of the file")
		} else {
			need(a.RefreshToken, "refresh_token", "the long-lived token the flow starts from")
		}
		if a.TokenURL != "" {
			if u, err := url.Parse(a.TokenURL); err != nil || u.Host == "" {
				fields = append(fields, &FieldError{Field: "auth.token_url", Problem: fmt.Sprintf("%q is not an absolute URL", a.TokenURL)})
			}
		}
	case authHMAC:
		need(a.Secret, "secret", "the shared signing key")
	default:
		fields = append(fields, &FieldError{Field: "auth.type", Problem: fmt.Sprintf("unknown type %q: use one of %s", a.Type, strings.Join(authTypes, ", "))})
	}
	return fields
}

// LoadConfig reads a backend configuration from a .json, .yaml or .yml file, expands
// ${VAR} and ${VAR:-default} references from the environment, and validates it.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("loading backend config: %w", err)
	}
	cfg, err := ParseConfig(data, os.LookupEnv)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Source = filepath.Base(path)
			return cfg, ce
		}
		return cfg, fmt.Errorf("loading backend config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses a JSON or YAML configuration (JSON is YAML, so either works),
// expands ${VAR} and ${VAR:-default} inside string values with lookup (os.LookupEnv when
// nil), rejects unknown fields, and validates the result.
//
// Expansion happens after parsing, value by value, so an environment value can never
// change the file's structure, and a missing variable is an error naming the field.
func ParseConfig(data []byte, lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return Config{}, &ConfigError{Fields: []*FieldError{{Field: "(file)", Problem: "is not valid JSON or YAML: " + err.Error()}}}
	}
	if raw == nil {
		return Config{}, &ConfigError{Fields: []*FieldError{{Field: "(file)", Problem: "is empty"}}}
	}
	var fields []*FieldError
	env := map[string]string{} // the values taken from the environment, by name
	envLookup := func(name string) (string, bool) {
		v, ok := lookup(name)
		if ok && v != "" {
			env[name] = v
		}
		return v, ok
	}
	raw = expandTree(raw, "", envLookup, &fields)
	if len(fields) > 0 {
		return Config{}, &ConfigError{Fields: fields}
	}
	js, err := json.Marshal(raw)
	if err != nil {
		return Config{}, &ConfigError{Fields: []*FieldError{{Field: "(file)", Problem: "cannot be read as a configuration: " + err.Error()}}}
	}
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, hideEnv(&ConfigError{Fields: []*FieldError{decodeFieldError(err)}}, env)
	}
	if err := cfg.Validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			hideEnv(ce, env)
		}
		return cfg, err
	}
	return cfg, nil
}

// hideEnv replaces, in e's texts, every value taken from the environment by the
// reference that was written (${NAME}): the loader cannot know which values are secrets,
// and an error quoting a misplaced token must not leak it.
func hideEnv(e *ConfigError, env map[string]string) *ConfigError {
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	// Longer values first, so a value containing another is replaced whole.
	slices.SortFunc(names, func(a, b string) int { return len(env[b]) - len(env[a]) })
	hide := func(s string) string {
		for _, n := range names {
			v, ref := env[n], "${"+n+"}"
			quoted := strconv.Quote(v)
			// A short value is hidden only as a whole word, so "a" or "on" does not
			// rewrite every message it happens to occur in.
			s = replaceValue(s, quoted[1:len(quoted)-1], ref, len(v) < 8)
			s = replaceValue(s, v, ref, len(v) < 8)
		}
		return s
	}
	e.Backend = hide(e.Backend)
	for _, f := range e.Fields {
		f.Problem = hide(f.Problem)
	}
	return e
}

// replaceValue replaces old by repl in s; with wholeWord, only where old is not part of
// a longer word (letters, digits, '_').
func replaceValue(s, old, repl string, wholeWord bool) string {
	if old == "" || !strings.Contains(s, old) {
		return s
	}
	if !wholeWord {
		return strings.ReplaceAll(s, old, repl)
	}
	word := func(c byte) bool {
		return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
	}
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(old)
		if (i > 0 && word(s[i-1]) && word(old[0])) || (end < len(s) && word(s[end]) && word(old[len(old)-1])) {
			b.WriteString(s[:i+1]) // part of a longer word: keep it, look further
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s = s[end:]
	}
}

// decodeFieldError turns encoding/json's messages into a FieldError naming the field.
func decodeFieldError(err error) *FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Type == reflect.TypeFor[Duration]() {
			return &FieldError{Field: te.Field, Problem: fmt.Sprintf("invalid duration %s: use a number of seconds or a Go duration such as \"5s\" or \"1m30s\"", te.Value)}
		}
		return &FieldError{Field: te.Field, Problem: fmt.Sprintf("has the wrong type: got %s, want %s", te.Value, te.Type)}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(name, `"`), Problem: "is not a known setting (custom values go under settings:)"}
	}
	if i := strings.Index(msg, "Go struct field "); i >= 0 {
		rest := msg[i+len("Go struct field "):]
		if j := strings.Index(rest, " "); j > 0 {
			return &FieldError{Field: rest[:j], Problem: msg}
		}
	}
	return &FieldError{Field: "(file)", Problem: msg}
}

// expandTree replaces ${VAR} references in every string of a decoded YAML/JSON tree.
func expandTree(v any, path string, lookup func(string) (string, bool), fields *[]*FieldError) any {
	switch t := v.(type) {
	case string:
		s, err := expandString(t, lookup)
		if err != nil {
			*fields = append(*fields, &FieldError{Field: path, Problem: err.Error()})
		}
		return s
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys) // deterministic error order
		for _, k := range keys {
			t[k] = expandTree(t[k], joinPath(path, k), lookup, fields)
		}
		return t
	case []any:
		for i := range t {
			t[i] = expandTree(t[i], fmt.Sprintf("%s[%d]", path, i), lookup, fields)
		}
		return t
	}
	return v
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// expandString expands ${VAR} and ${VAR:-default}; "$$" stands for a literal "$".
func expandString(s string, lookup func(string) (string, bool)) (string, error) {
	return envref.Expand(s, lookup, nil)
}
