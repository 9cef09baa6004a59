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
// underlying type of importer.DecodeFunc[T], so it is passed straight to importer.New:
//
//	imp, err := importer.New(bindings, products, "shop", "product",
//		mapper.ImportFunc[Product](productImport))
//
// Each call maps rec with Options.Create set from create (and Options.Request from
// [RequestFrom]) and decodes the values into T: struct fields are matched by the
// `mapper` tag, else the `json` tag, else the field name; numbers convert between Go
// numeric types when no precision is lost, strings parse into time.Time, nested maps
// fill nested structs and []Values fill slices of structs (a T of type [Values] is
// returned as mapped). The record is read from rec.Raw (copied once, never
// re-encoded). Errors are the mapper's ([*MappingError], errors.Join of them with
// [CollectErrors]) naming the record by the external ID found at the mapper's
// [WithIDPath] (default "id", the importer's default). A [Func] rule returning an error
// that matches report.ErrSkip skips the record, since a *MappingError unwraps to its
// cause.
//
// A nil m yields a function that fails every call with [ErrInvalidRule].
func ImportFunc[T any](m *ImportMapper) func(ctx context.Context, rec gjson.Result, create bool) (T, error) {
	if m == nil {
		return func(context.Context, gjson.Result, bool) (T, error) {
			var zero T
			return zero, errNilMapper("ImportFunc", "NewImport")
		}
	}
	idPath := m.cfg.idPath
	if idPath == "" {
		idPath = "id"
	}
	request := m.cfg.request
	return func(ctx context.Context, rec gjson.Result, create bool) (T, error) {
		var zero T
		o := Options{Create: create}
		if request != nil {
			o.Request = request(ctx)
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
		t, err := decodeValues[T](v)
		if err != nil {
			return zero, &MappingError{Mapper: m.name, RecordID: gjson.Get(raw, idPath).String(), Cause: err}
		}
		return t, nil
	}
}

// ExportFunc adapts an export mapper to the exporter: the function it returns has the
// underlying type of exporter.EncodeFunc[T], so it is passed straight to exporter.New:
//
//	exp, err := exporter.New(client, bindings, customers, "crm", "customer", "/contacts",
//		mapper.ExportFunc[Customer](customerExport))
//
// Each call turns v into [Values] (by the same field names as [ImportFunc]; a T of type
// [Values] is used as is), maps it with Options.Create set from create, Options.RecordID
// from the binding's local ID and Options.Request from [RequestFrom], and returns the
// payload as a json.RawMessage, which the exporter sends without encoding it again. With
// [ChangedFrom], Options.Changed is filled on updates so [ChangedBy] rules run only when
// their fields changed. Errors are the mapper's ([*MappingError]); a [Func] rule
// returning an error that matches report.ErrSkip skips the record.
//
// A nil m yields a function that fails every call with [ErrInvalidRule].
func ExportFunc[T any](m *ExportMapper) func(ctx context.Context, v T, b binding.Binding, create bool) (any, error) {
	if m == nil {
		return func(context.Context, T, binding.Binding, bool) (any, error) {
			return nil, errNilMapper("ExportFunc", "NewExport")
		}
	}
	request, changedFn := m.cfg.request, m.cfg.changed
	return func(ctx context.Context, v T, b binding.Binding, create bool) (any, error) {
		o := Options{Create: create, RecordID: b.LocalID}
		if request != nil {
			o.Request = request(ctx)
		}
		if changedFn != nil && !create { // on create every rule runs anyway
			changed, err := changedFn(ctx, b)
			if err != nil {
				return nil, &MappingError{Mapper: m.name, RecordID: b.LocalID, Cause: err}
			}
			o.Changed = changed
		}
		vals, ok := any(v).(Values)
		if !ok {
			var err error
			if vals, err = encodeValues(v); err != nil {
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
// the importer and exporter accept any non-nil function, so the mistake can only
// surface when records are mapped.
func errNilMapper(fn, ctor string) error {
	return &MappingError{Mapper: "(nil)", Cause: fmt.Errorf("%w: mapper.%s was given a nil mapper; build one with mapper.%s",
		ErrInvalidRule, fn, ctor)}
}
