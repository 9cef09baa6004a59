package apisync

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/connkit/connkit/backend"

	"github.com/connkit/connkit/internal/schedulekit"
)

// Direction says which way a config moves records.
type Direction string

// The two directions of a config.
const (
	// In serves an HTTP endpoint other systems call (the inbound pipeline).
	In Direction = "in"
	// Out sends local records to an external API (Push and the triggers).
	Out Direction = "out"
)

// Defaults of the optional settings.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 15 * time.Second
	DefaultPageSize       = 100
	// DefaultTimeout bounds the processing of one inbound request.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxBody is the largest inbound request body accepted (1 MiB).
	DefaultMaxBody = 1 << 20
	// MaxPageSize caps page_size and an inbound GET's page_size parameter.
	MaxPageSize = 1000
)

// Config is one sync configuration: the BJ API Sync "bj.api.sync.config" record as a
// file. Load it with Load or Parse, or build it in Go and call Validate.
type Config struct {
	// Name identifies the config in logs, bindings (it is the backend name of an out
	// config) and the API. Required, unique.
	Name string `json:"name"`
	// Direction is "in" or "out". Required.
	Direction Direction `json:"direction"`
	// Model names the local model whose records are synced ("res.partner"); configs naming
	// the same model share its records. Required.
	Model string `json:"model"`
	// URL is the external endpoint an out config sends to (absolute http(s) URL). It may
	// hold "{id}", replaced by the record's external ID (or identifier value).
	URL string `json:"url,omitempty"`
	// Path is the URL path an in config is served at ("/api/partners").
	Path string `json:"path,omitempty"`
	// Methods: for in, the allowed set of GET, POST, PUT, DELETE; for out, exactly one.
	Methods []string `json:"methods"`
	// UpdateMethod is how an out POST config updates a record it pushed before, at
	// url/{id}: PUT (default) or PATCH (HubSpot, many REST APIs).
	UpdateMethod string `json:"update_method,omitempty"`
	// Auth: for in, the credentials a caller must present; for out, those sent.
	Auth Auth `json:"auth"`
	// Headers are custom headers sent with every outbound request (out) or added to every
	// response (in).
	Headers map[string]string `json:"headers,omitempty"`
	// Params are URL parameters with operators: query parameters of an outbound GET;
	// record filters of an inbound GET.
	Params []Param `json:"params,omitempty"`
	// ConnectTimeout (default 5s) and ReadTimeout (default 15s) bound outbound requests.
	ConnectTimeout backend.Duration `json:"connect_timeout,omitempty"`
	ReadTimeout    backend.Duration `json:"read_timeout,omitempty"`
	// Timeout bounds the processing of one inbound request (default 30s; 408 past it).
	Timeout backend.Duration `json:"timeout,omitempty"`
	// MaxBody is the largest inbound body in bytes (default 1 MiB; 413 past it).
	MaxBody int64 `json:"max_body,omitempty"`
	// Lines are the field-mapping lines.
	Lines []Line `json:"lines"`
	// Filter selects the records an out config pushes (and that an in config's GET may
	// return): the seed's filter domain, as [field, operator, value] triples, all of
	// which must hold. Fields are the record's own ("id" is its local ID); a dotted
	// field reads a nested value, not a related record.
	Filter []Condition `json:"filter,omitempty"`
	// FilterExpression is an expr-lang expression over `record` that must also be true,
	// for conditions a domain cannot state (`record.create_date >= ...`).
	FilterExpression string `json:"filter_expression,omitempty"`
	// Paginated and PageSize (default 100): an out config sends records in batches of
	// PageSize in one request (a JSON array) instead of one request per record; an in
	// config's GET returns pages of PageSize.
	Paginated bool `json:"paginated,omitempty"`
	PageSize  int  `json:"page_size,omitempty"`
	// Triggers say when an out config pushes besides a manual Push.
	Triggers Triggers `json:"triggers"`
	// Retry is the retry policy of outbound requests (exponential backoff with jitter).
	Retry backend.RetryConfig `json:"retry"`
	// IDPath is the gjson path of the external ID in an outbound response (default "id"),
	// stored in the record's binding. A POST config needs it in the create's response
	// (the hub's exporter fails the record with report.ErrNoExternalID otherwise, since it
	// could not update the record later); PUT, DELETE and batches bind it when present.
	IDPath string `json:"id_path,omitempty"`
	// RecordsPath is the gjson path of the records in an out GET's response ("data",
	// "result.items"). Default: the body itself, a JSON array of objects or one object.
	// Without pagination the value there may be an array or one object; with pagination
	// it must be an array (or null: no records) on every page.
	RecordsPath string `json:"records_path,omitempty"`
	// Pagination makes an out GET walk a paginated listing page by page (Link header,
	// next URL in the body, cursor, page number or offset) instead of reading one
	// response. See Pagination.
	Pagination Pagination `json:"pagination,omitzero"`

	// Source is the file the config was loaded from ("" when built in Go).
	Source string         `json:"-"`
	lines  map[string]int // field path → line in Source
}

// Auth is how requests authenticate. Secrets belong in the environment: write
// "${CRM_TOKEN}" and the loader expands it.
type Auth struct {
	// Type is none (default), basic, bearer or api_key.
	Type string `json:"type,omitempty"`
	// Username and Password for basic.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Token for bearer.
	Token string `json:"token,omitempty"`
	// APIKey for api_key, carried in the header (In "header", the default) or query
	// parameter (In "query") named Name (default X-API-Key, or api_key in the query).
	APIKey string `json:"api_key,omitempty"`
	In     string `json:"in,omitempty"`
	Name   string `json:"name,omitempty"`
}

// Param is one URL parameter with an operator (bj.api.sync.param).
//
// On an out config with method GET, a Param with a Value is sent as a query parameter:
// "key=value" for "=", "key[op]=value" for the other operators (ne, lt, lte, gt, gte,
// in with comma-joined values, like).
//
// On an in config, a Param is a record filter of GET requests: with a Value it always
// applies; without one, the caller may set it as the query parameter Key, and the
// records whose Field compares to that value by Operator are returned.
type Param struct {
	// Key is the query parameter's name. Required.
	Key string `json:"key"`
	// Operator is one of =, !=, <, <=, >, >=, in, like (default =).
	Operator string `json:"operator,omitempty"`
	// Value is the parameter's fixed value, if any.
	Value any `json:"value,omitempty"`
	// Field is the local field an inbound filter compares (default Key).
	Field string `json:"field,omitempty"`
}

// Line kinds.
const (
	KindPlain      = "plain"
	KindRelational = "relational"
	KindExpression = "expression"
)

// Expression modes.
const (
	ModeEvaluate = "evaluate"
	ModeExecute  = "execute"
)

// Line is one field-mapping line (bj.api.sync.config.line): a local field and an API key.
//
//   - plain: the value is copied (Field ⇄ Key).
//   - relational: Field is a dotted path through related records, "partner_id.name":
//     partner_id holds the local ID of a record of the model Through[0], whose name is
//     sent. Inbound writes resolve it back: the related record whose name equals the
//     received value is found and its ID stored in partner_id (one hop only; longer
//     paths are read-only inbound).
//   - expression: Expression (expr-lang) computes the value (mode evaluate, assigned to
//     Key outbound, to Field inbound) or returns a map merged into the result (mode
//     execute). Expressions see record (the record being mapped), request (request data),
//     and the time and base64 helpers of package mapper (now, date, duration,
//     formatTime, parseTime, b64encode, b64decode…). Expressions run in the config's
//     direction only: outbound (local → API) for out configs, inbound (request body →
//     local) for in configs; an in config's responses leave them out.
type Line struct {
	// Field is the local field (a dotted path for relational lines; on an outbound
	// evaluate expression line, the optional source whose value the expression sees as
	// `value`).
	Field string `json:"field,omitempty"`
	// Key is the API key: a gjson path read inbound, an sjson path written outbound.
	Key string `json:"key,omitempty"`
	// Kind is plain (default), relational or expression.
	Kind string `json:"kind,omitempty"`
	// Through lists the models crossed by a relational Field, one per dot. An outbound
	// evaluate expression line may have a Field too: its value is the expression's
	// `value`, and field(...) in the expression may cross the same relations.
	Through []string `json:"through,omitempty"`
	// Expression and Mode (evaluate, the default, or execute) of an expression line.
	Expression string `json:"expression,omitempty"`
	Mode       string `json:"mode,omitempty"`
	// Identifier marks the line that identifies a record: inbound PUT and DELETE find the
	// record whose Field equals the received Key value; outbound it names the record in
	// a URL's {id} when it has no external ID yet. At most one line.
	Identifier bool `json:"identifier,omitempty"`
	// Required makes a missing value an error (400 inbound, a failed record outbound).
	Required bool `json:"required,omitempty"`
}

// Triggers say when an out config pushes, besides a manual Push.
type Triggers struct {
	// OnCreate, OnUpdate and OnDelete push a record when it is written through
	// Sync.Create, Sync.Update or Sync.Delete (or an inbound config): the write and the
	// push job commit in one transaction.
	OnCreate bool `json:"on_create,omitempty"`
	OnUpdate bool `json:"on_update,omitempty"`
	OnDelete bool `json:"on_delete,omitempty"`
	// Schedule pushes every record the filter selects on an interval ("@every 1h", "15m")
	// or a cron expression ("0 * * * *"). Schedules are disabled until enabled (see
	// Sync.EnableSchedule).
	Schedule string `json:"schedule,omitempty"`
}

// Condition is one [field, operator, value] triple of a filter domain. In a file it is
// written as a three-element list: ["active", "=", true].
type Condition struct {
	Field    string
	Operator string
	Value    any
}

// The operators of params and filters.
var operators = []string{"=", "!=", "<", "<=", ">", ">=", "in", "like"}

var (
	authTypes   = []string{"none", "basic", "bearer", "api_key"}
	httpMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
	lineKinds   = []string{KindPlain, KindRelational, KindExpression}
)

// ErrInvalidConfig is matched (errors.Is) by every error that reports an unusable config.
var ErrInvalidConfig = errors.New("invalid apisync config")

// FieldError is one problem of a config: the field, its line in the file, what is wrong.
type FieldError struct {
	// Field is the field's path in the file's terms: "lines[2].kind", "auth.token".
	Field string
	// Line is the 1-based line of the field in its file, 0 when unknown.
	Line int
	// Problem says what is wrong and what to write instead.
	Problem string
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Problem)
	}
	return e.Field + ": " + e.Problem
}

// ConfigError lists every problem found in one config (or one file).
type ConfigError struct {
	// File is the file the config came from ("" when built in Go); Config its name.
	File   string
	Config string
	Fields []*FieldError
}

// Error implements error: `file.yaml: config "name": line 12: lines[2].kind: problem; …`.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("apisync: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Config != "" {
		fmt.Fprintf(&b, "config %q: ", e.Config)
	}
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		if e.File != "" && f.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s: %s", filepath.Base(e.File), f.Line, f.Field, f.Problem)
			continue
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate checks c and returns a *ConfigError naming every bad field (with its line
// when c was loaded from a file), or nil.
func (c *Config) Validate() error {
	var fs []*FieldError
	add := func(field, format string, args ...any) {
		fs = append(fs, &FieldError{Field: field, Line: c.line(field), Problem: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(c.Name) == "" {
		add("name", "is required")
	} else if strings.ContainsAny(c.Name, "/\x00") {
		add("name", "must not contain '/' or NUL")
	}
	if c.Model == "" {
		add("model", "is required (the local model, e.g. res.partner)")
	}
	switch c.Direction {
	case In:
		if c.URL != "" {
			add("url", "is for out configs; an in config is served at path")
		}
		if c.Path == "" || !strings.HasPrefix(c.Path, "/") {
			add("path", "is required for an in config and must start with '/' (e.g. /api/partners)")
		} else if strings.ContainsAny(c.Path, "?#{} ") {
			add("path", "must be a plain URL path without query, fragment, braces or spaces")
		} else if len(c.Path) > 1 && strings.HasSuffix(c.Path, "/") {
			add("path", "must not end with '/' (requests to %s/ are served too)", strings.TrimSuffix(c.Path, "/"))
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"connect_timeout", c.ConnectTimeout != 0}, {"read_timeout", c.ReadTimeout != 0}, {"retry", c.Retry != (backend.RetryConfig{})}, {"paginated", c.Paginated},
			{"update_method", c.UpdateMethod != ""}} {
			if f.set {
				add(f.name, "is for out configs (outbound requests)")
			}
		}
		if len(c.Methods) == 0 {
			add("methods", "an in config allows at least one of %s", strings.Join(httpMethods, ", "))
		}
		if len(c.Triggers.Schedule) > 0 || c.Triggers.OnCreate || c.Triggers.OnUpdate || c.Triggers.OnDelete {
			add("triggers", "are for out configs")
		}
	case Out:
		if c.Path != "" {
			add("path", "is for in configs; an out config sends to url")
		}
		if u, err := url.Parse(strings.ReplaceAll(c.URL, "{id}", "0")); c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("url", "must be an absolute http or https URL (got %q)", c.URL)
		}
		if len(c.Methods) != 1 {
			add("methods", "an out config needs exactly one HTTP method, got %d", len(c.Methods))
		} else if strings.Contains(c.URL, "{id}") && (c.Methods[0] == http.MethodPost || c.Methods[0] == http.MethodGet || c.Paginated) {
			add("url", "{id} names one remote record: it is for PUT and DELETE sent one record at a time (POST creates at url and updates at url/{id})")
		}
		switch {
		case c.UpdateMethod == "":
		case c.UpdateMethod != http.MethodPut && c.UpdateMethod != http.MethodPatch:
			add("update_method", "unknown update method %q: use PUT or PATCH (upper case)", c.UpdateMethod)
		case len(c.Methods) != 1 || c.Methods[0] != http.MethodPost || c.Paginated:
			add("update_method", "is for out configs sending POST one record at a time (they update at url/{id})")
		}
		if c.Timeout != 0 {
			add("timeout", "is for in configs (the processing limit of an inbound request); out configs have connect_timeout and read_timeout")
		}
		if c.MaxBody != 0 {
			add("max_body", "is for in configs")
		}
		if c.Triggers.Schedule != "" {
			if _, err := schedulekit.ParseSpec(c.Triggers.Schedule); err != nil {
				add("triggers.schedule", "%v", err)
			}
		}
	case "":
		add("direction", "is required: in or out")
	default:
		add("direction", "unknown direction %q: use in or out", c.Direction)
	}
	seen := map[string]bool{}
	for i, m := range c.Methods {
		f := fmt.Sprintf("methods[%d]", i)
		if !slices.Contains(httpMethods, m) {
			add(f, "unknown method %q: use one of %s (upper case)", m, strings.Join(httpMethods, ", "))
		} else if seen[m] {
			add(f, "%s is listed twice", m)
		}
		seen[m] = true
	}
	if c.Direction == Out && len(c.Methods) == 1 && c.Methods[0] == http.MethodGet && c.Paginated {
		add("paginated", "an outbound GET sends no records: batches apply to POST, PUT and DELETE")
	}
	c.validateAuth(add)
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			add("headers", "invalid header name %q", k)
		}
	}
	for _, v := range c.Headers {
		if strings.ContainsAny(v, "\r\n") {
			add("headers", "a header value must not contain line breaks")
		}
	}
	for i, p := range c.Params {
		f := fmt.Sprintf("params[%d]", i)
		if p.Key == "" {
			add(f+".key", "is required")
		}
		if p.Operator != "" && !slices.Contains(operators, p.Operator) {
			add(f+".operator", "unknown operator %q: use one of %s", p.Operator, strings.Join(operators, " "))
		}
		if p.Operator == "in" && p.Value != nil {
			if _, ok := p.Value.([]any); !ok {
				add(f+".value", "the in operator needs a list")
			}
		}
		if c.Direction == Out {
			if p.Value == nil {
				add(f+".value", "an outbound param needs a value")
			}
			if p.Field != "" {
				add(f+".field", "is for inbound params (the local field filtered)")
			}
			if len(c.Methods) == 1 && c.Methods[0] != http.MethodGet {
				add(f, "params are sent on outbound GET requests only")
			}
		}
	}
	for _, d := range []struct {
		name string
		v    backend.Duration
	}{{"connect_timeout", c.ConnectTimeout}, {"read_timeout", c.ReadTimeout}, {"timeout", c.Timeout}, {"retry.min_wait", c.Retry.MinWait}, {"retry.max_wait", c.Retry.MaxWait}, {"retry.max_retry_after", c.Retry.MaxRetryAfter}} {
		if d.v < 0 {
			add(d.name, "must not be negative")
		}
	}
	if c.Retry.MaxAttempts < 0 {
		add("retry.max_attempts", "must not be negative")
	}
	if c.MaxBody < 0 {
		add("max_body", "must not be negative")
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		add("page_size", "must be between 1 and %d (default %d)", MaxPageSize, DefaultPageSize)
	}
	if c.Direction == In && c.IDPath != "" {
		add("id_path", "is for out configs")
	}
	c.validatePagination(add)
	c.validateLines(add)
	for i, cond := range c.Filter {
		f := fmt.Sprintf("filter[%d]", i)
		if cond.Field == "" {
			add(f, "needs a field name")
		}
		if !slices.Contains(operators, cond.Operator) {
			add(f, "unknown operator %q: use one of %s", cond.Operator, strings.Join(operators, " "))
		} else if cond.Operator == "in" {
			if _, ok := cond.Value.([]any); !ok {
				add(f, "the in operator needs a list value")
			}
		}
	}
	if c.FilterExpression != "" {
		if _, err := compileFilter(c.FilterExpression); err != nil {
			add("filter_expression", "%v", err)
		}
	}
	if len(fs) == 0 {
		// The lines compile (expressions included) only once they are well-formed.
		var s *Sync
		if _, err := s.buildMappings(c, nil); err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				fs = append(fs, ce.Fields...)
			} else {
				add("lines", "%v", err)
			}
		}
	}
	if len(fs) == 0 {
		return nil
	}
	return &ConfigError{File: c.Source, Config: c.Name, Fields: fs}
}

func (c *Config) validateAuth(add func(field, format string, args ...any)) {
	a := c.Auth
	switch a.Type {
	case "", "none":
	case "basic":
		if a.Username == "" {
			add("auth.username", "is required for basic auth")
		}
		if a.Password == "" {
			add("auth.password", "is required for basic auth (write \"${ENV_VAR}\")")
		}
	case "bearer":
		if a.Token == "" {
			add("auth.token", "is required for bearer auth (write \"${ENV_VAR}\")")
		}
	case "api_key":
		if a.APIKey == "" {
			add("auth.api_key", "is required for api_key auth (write \"${ENV_VAR}\")")
		}
		if a.In != "" && a.In != "header" && a.In != "query" {
			add("auth.in", "must be header or query")
		}
	default:
		add("auth.type", "unknown type %q: use one of %s", a.Type, strings.Join(authTypes, ", "))
	}
	if a.Type != "basic" && (a.Username != "" || a.Password != "") {
		add("auth", "username and password are for basic auth")
	}
	if a.Type != "bearer" && a.Token != "" {
		add("auth.token", "is for bearer auth")
	}
	if a.Type != "api_key" && (a.APIKey != "" || a.In != "" || a.Name != "") {
		add("auth", "api_key, in and name are for api_key auth")
	}
}

func (c *Config) validateLines(add func(field, format string, args ...any)) {
	ids := 0
	for i, l := range c.Lines {
		f := fmt.Sprintf("lines[%d]", i)
		kind := l.Kind
		if kind == "" {
			kind = KindPlain
		}
		if !slices.Contains(lineKinds, kind) {
			add(f+".kind", "unknown kind %q: use one of %s", l.Kind, strings.Join(lineKinds, ", "))
			continue
		}
		if l.Identifier {
			ids++
			if ids > 1 {
				add(f+".identifier", "only one line may be the identifier")
			}
			if kind != KindPlain {
				add(f+".identifier", "the identifier must be a plain line")
			}
		}
		if kind != KindExpression && (l.Expression != "" || l.Mode != "") {
			add(f+".expression", "expression and mode are for expression lines")
		}
		if len(l.Through) > 0 && kind != KindRelational && (kind != KindExpression || c.Direction != Out || l.Mode == ModeExecute) {
			add(f+".through", "is for relational lines and outbound evaluate expression lines with a dotted field")
		}
		switch kind {
		case KindPlain:
			if l.Field == "" {
				add(f+".field", "is required")
			} else if strings.Contains(l.Field, ".") {
				add(f+".field", "%q crosses a relation: make it a relational line with through", l.Field)
			}
			if l.Key == "" {
				add(f+".key", "is required")
			}
		case KindRelational:
			hops := strings.Count(l.Field, ".")
			if l.Field == "" || hops == 0 {
				add(f+".field", "a relational line needs a dotted path such as partner_id.name")
			} else if len(l.Through) != hops {
				add(f+".through", "names the model of each related record crossed by %q: want %d model(s), got %d", l.Field, hops, len(l.Through))
			}
			if l.Key == "" {
				add(f+".key", "is required")
			}
		case KindExpression:
			if strings.TrimSpace(l.Expression) == "" {
				add(f+".expression", "is required for an expression line")
			}
			switch l.Mode {
			case "", ModeEvaluate:
				if c.Direction == Out && l.Field != "" {
					if hops := strings.Count(l.Field, "."); hops != len(l.Through) {
						add(f+".through", "names the model of each related record crossed by %q: want %d model(s), got %d", l.Field, hops, len(l.Through))
					}
				}
				target := l.Key
				if c.Direction == In {
					target = l.Field
				}
				if target == "" {
					if c.Direction == In {
						add(f+".field", "an inbound evaluate line assigns its value to field: it is required")
					} else {
						add(f+".key", "an outbound evaluate line assigns its value to key: it is required")
					}
				}
			case ModeExecute:
				if l.Key != "" || l.Field != "" {
					add(f+".mode", "an execute line returns a map merged into the result: leave field and key out")
				}
			default:
				add(f+".mode", "unknown mode %q: use evaluate or execute", l.Mode)
			}
		}
		if l.Field == "id" && c.Direction == In && !l.Identifier {
			add(f+".field", "id is the local record ID, read-only inbound unless the line is the identifier")
		}
	}
	if len(c.Lines) == 0 {
		add("lines", "at least one field-mapping line is required")
	}
	if c.Direction == In && ids == 0 && (slices.Contains(c.Methods, http.MethodPut) || slices.Contains(c.Methods, http.MethodDelete)) {
		add("lines", "PUT and DELETE find the record by the identifier line: mark one line identifier: true")
	}
}

// line returns the file line of a field path, or of its closest parent.
func (c *Config) line(field string) int {
	for field != "" {
		if n, ok := c.lines[field]; ok {
			return n
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// ValidateAll validates each config and what they must agree on: unique names, and
// no two in configs serving the same method on the same path.
func ValidateAll(cfgs []Config) error {
	var errs []error
	names := map[string]string{}
	routes := map[string]string{}
	for i := range cfgs {
		c := &cfgs[i]
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := names[c.Name]; dup {
			errs = append(errs, &ConfigError{File: c.Source, Config: c.Name, Fields: []*FieldError{{Field: "name", Line: c.line("name"), Problem: "is also the name of the config in " + orGo(prev)}}})
		}
		names[c.Name] = c.Source
		if c.Direction == In {
			for _, m := range c.Methods {
				r := m + " " + c.Path
				if prev, dup := routes[r]; dup {
					errs = append(errs, &ConfigError{File: c.Source, Config: c.Name, Fields: []*FieldError{{Field: "methods", Line: c.line("methods"), Problem: fmt.Sprintf("%s %s is also served by config %q", m, c.Path, prev)}}})
				}
				routes[r] = c.Name
			}
		}
	}
	return errors.Join(errs...)
}

func orGo(src string) string {
	if src == "" {
		return "Go code"
	}
	return src
}

// Load reads configs from files and directories: a .json, .yaml or .yml file holds one
// config; a directory contributes its files with those extensions (not its
// subdirectories), in name order. ${VAR} and ${VAR:-default} in string values are
// expanded from the environment. Every config is validated, together (ValidateAll);
// the error joins a *ConfigError per bad file.
func Load(paths ...string) ([]Config, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("apisync: loading configs: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("apisync: loading configs: %w", err)
		}
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".json", ".yaml", ".yml":
				if !e.IsDir() {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("apisync: no config files (.json, .yaml, .yml) in %s", strings.Join(paths, ", "))
	}
	var cfgs []Config
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("apisync: %w", err))
			continue
		}
		c, err := parse(data, f, os.LookupEnv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfgs = append(cfgs, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := ValidateAll(cfgs); err != nil {
		return nil, err
	}
	return cfgs, nil
}

// Parse reads one config from JSON or YAML. source names it in errors (a file name);
// lookup expands ${VAR} references (os.LookupEnv when nil). Unknown fields are errors.
// The config is validated.
func Parse(data []byte, source string, lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return parse(data, source, lookup)
}
