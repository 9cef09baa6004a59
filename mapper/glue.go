package mapper

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
)

// ImportFunc adapts an import mapper to the importer: the function it returns has the
// underlying type of importer.MapFunc[T], so it is passed straight to importer.New:
//
//	imp, err := importer.New(bindings, products, "shop", "product",
//		mapper.ImportFunc[Product](productImport))
//
// Each call maps rec with Options.Create set from create and decodes the values into T
// (see [Decode]; a T of type [Values] is returned as mapped). The record is read from
// rec.Raw (copied once, never re-encoded). Errors are the mapper's ([*MappingError], errors.Join of
// them with [ReportAllErrors]) naming the record by the external ID found at
// [ExternalIDPath] (default: the mapper's [WithIDPath], else "id", the importer's
// default). A [Func] rule returning an error that matches importer.ErrSkip skips the
// record, since a *MappingError unwraps to its cause.
//
// A nil m yields a function that fails every call with [ErrInvalidRule].
func ImportFunc[T any](m *ImportMapper, opts ...ImportFuncOption) func(ctx context.Context, rec gjson.Result, create bool) (T, error) {
	var cfg funcConfig
	for _, o := range opts {
		if o != nil {
			o.applyImport(&cfg)
		}
	}
	if m == nil {
		return func(context.Context, gjson.Result, bool) (T, error) {
			var zero T
			return zero, errNilMapper("ImportFunc", "NewImport")
		}
	}
	idPath := cfg.idPath
	if idPath == "" {
		idPath = m.cfg.idPath
	}
	if idPath == "" {
		idPath = "id"
	}
	return func(ctx context.Context, rec gjson.Result, create bool) (T, error) {
		var zero T
		o := Options{Create: create, AllErrors: cfg.allErrors}
		if cfg.request != nil {
			o.Request = cfg.request(ctx)
		}
		// One copy of the record, no JSON re-encoding: mapped strings point into the
		// raw text, and rec.Raw is often a slice of a whole listing page that a
		// long-lived T (an in-memory store) would otherwise keep alive.
		raw := strings.Clone(rec.Raw)
		v, err := m.mapString(ctx, raw, &o, m.name, idPath)
		if err != nil {
			return zero, err
		}
		if t, ok := any(v).(T); ok { // T is Values (or any): nothing to decode
			return t, nil
		}
		t, err := Decode[T](v)
		if err != nil {
			return zero, &MappingError{Mapper: m.name, RecordID: gjson.Get(raw, idPath).String(), Cause: err}
		}
		return t, nil
	}
}

// ExportFunc adapts an export mapper to the exporter: the function it returns has the
// underlying type of exporter.MapFunc[T], so it is passed straight to exporter.New:
//
//	exp, err := exporter.New(client, bindings, customers, "crm", "customer", "/contacts",
//		mapper.ExportFunc[Customer](customerExport))
//
// Each call encodes v into [Values] (see [Encode]; a T of type [Values] is used as is),
// maps it with Options.Create set from create and Options.RecordID from the binding's
// local ID, and returns the payload as a json.RawMessage, which the exporter sends
// without encoding it again. With [ChangedFrom], Options.Changed is filled on updates so
// [ChangedBy] rules run only when their fields changed. Errors are the mapper's
// ([*MappingError]); a [Func] rule returning an error that matches exporter.ErrSkip
// skips the record.
//
// A nil m yields a function that fails every call with [ErrInvalidRule].
func ExportFunc[T any](m *ExportMapper, opts ...ExportFuncOption) func(ctx context.Context, v T, b binding.Binding, create bool) (any, error) {
	var cfg funcConfig
	for _, o := range opts {
		if o != nil {
			o.applyExport(&cfg)
		}
	}
	if m == nil {
		return func(context.Context, T, binding.Binding, bool) (any, error) {
			return nil, errNilMapper("ExportFunc", "NewExport")
		}
	}
	return func(ctx context.Context, v T, b binding.Binding, create bool) (any, error) {
		o := Options{Create: create, RecordID: b.LocalID, AllErrors: cfg.allErrors}
		if cfg.request != nil {
			o.Request = cfg.request(ctx)
		}
		if cfg.changed != nil && !create { // on create every rule runs anyway
			changed, err := cfg.changed(ctx, b)
			if err != nil {
				return nil, &MappingError{Mapper: m.name, RecordID: b.LocalID, Cause: err}
			}
			o.Changed = changed
		}
		vals, ok := any(v).(Values)
		if !ok {
			var err error
			if vals, err = Encode(v); err != nil {
				return nil, &MappingError{Mapper: m.name, RecordID: b.LocalID, Cause: err}
			}
		}
		body, err := m.mapValues(ctx, vals, &o, m.name)
		if err != nil {
			return nil, err
		}
		return json.RawMessage(body), nil
	}
}

// errNilMapper is the error of every call of a function built from a nil mapper:
// importer.New and exporter.New accept any non-nil function, so the mistake can only
// surface when records are mapped.
func errNilMapper(fn, ctor string) error {
	return &MappingError{Mapper: "(nil)", Cause: fmt.Errorf("%w: mapper.%s was given a nil mapper; build one with mapper.%s",
		ErrInvalidRule, fn, ctor)}
}

// funcConfig is what [ImportFunc] and [ExportFunc] options set.
type funcConfig struct {
	request   func(ctx context.Context) map[string]any
	allErrors bool
	idPath    string
	changed   func(ctx context.Context, b binding.Binding) ([]string, error)
}

// ImportFuncOption configures [ImportFunc]: a [FuncOption] or [ExternalIDPath].
type ImportFuncOption interface{ applyImport(*funcConfig) }

// ExportFuncOption configures [ExportFunc]: a [FuncOption] or [ChangedFrom].
type ExportFuncOption interface{ applyExport(*funcConfig) }

// FuncOption configures both [ImportFunc] and [ExportFunc].
type FuncOption func(*funcConfig)

func (f FuncOption) applyImport(c *funcConfig) { f(c) }
func (f FuncOption) applyExport(c *funcConfig) { f(c) }

type importFuncOption func(*funcConfig)

func (f importFuncOption) applyImport(c *funcConfig) { f(c) }

type exportFuncOption func(*funcConfig)

func (f exportFuncOption) applyExport(c *funcConfig) { f(c) }

// RequestFrom sets Options.Request of every record from the call's context, so
// expression rules see data that is not in the record (`request`), e.g. the webhook
// call that triggered the sync, which the caller put in the context.
func RequestFrom(fn func(ctx context.Context) map[string]any) FuncOption {
	return func(c *funcConfig) { c.request = fn }
}

// ReportAllErrors sets Options.AllErrors: a record's error lists every failing rule
// (errors.Join of *MappingError) instead of the first.
func ReportAllErrors() FuncOption { return func(c *funcConfig) { c.allErrors = true } }

// ExternalIDPath is the gjson path of the external ID that names the record in
// errors (pass the importer's importer.WithIDPath value when it is not "id").
func ExternalIDPath(path string) ImportFuncOption {
	return importFuncOption(func(c *funcConfig) { c.idPath = path })
}

// ChangedFrom sets Options.Changed on updates (create=false) from fn, which reports the
// local fields changed since the record's last export (b.SyncedAt, b.Hash…), so
// [ChangedBy] rules run only when needed. nil means unknown (every rule runs); an
// empty slice means nothing changed. An error fails the record as a [*MappingError].
func ChangedFrom(fn func(ctx context.Context, b binding.Binding) ([]string, error)) ExportFuncOption {
	return exportFuncOption(func(c *funcConfig) { c.changed = fn })
}
