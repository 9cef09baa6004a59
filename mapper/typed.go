package mapper

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// decodeValues copies values into a new T. Struct fields are matched by the `mapper`
// tag, else the `json` tag, else the field name; numbers convert between Go numeric
// types when no precision is lost, strings parse into time.Time (RFC 3339), nested maps
// fill nested structs and []Values fill slices of structs. A value that does not fit is
// an error naming the field.
func decodeValues[T any](v Values) (T, error) {
	var out T
	err := assign(reflect.ValueOf(&out).Elem(), v, "")
	return out, err
}

// encodeValues turns a struct (or pointer to one, or a map with string keys) into
// Values, using the same field names as decodeValues. Nested structs become Values,
// slices of structs []Values; time.Time stays a time.Time.
func encodeValues(v any) (Values, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, fmt.Errorf("%w: encoding a nil pointer", ErrConvert)
		}
		rv = rv.Elem()
	}
	out, err := encode(rv)
	if err != nil {
		return nil, err
	}
	m, ok := out.(Values)
	if !ok {
		return nil, fmt.Errorf("%w: need a struct or map, got %s", ErrConvert, rv.Type())
	}
	return m, nil
}

type fieldInfo struct {
	name  string
	index []int
}

var fieldCache sync.Map // reflect.Type → []fieldInfo

func fieldsOf(t reflect.Type) []fieldInfo {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]fieldInfo)
	}
	var fs []fieldInfo
	for _, sf := range reflect.VisibleFields(t) {
		if !sf.IsExported() || sf.Anonymous {
			continue
		}
		name := sf.Name
		if tag, ok := sf.Tag.Lookup("mapper"); ok {
			name, _, _ = strings.Cut(tag, ",")
		} else if tag, ok := sf.Tag.Lookup("json"); ok {
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
		}
		if name == "-" {
			continue
		}
		fs = append(fs, fieldInfo{name: name, index: sf.Index})
	}
	fieldCache.Store(t, fs)
	return fs
}

var timeType = reflect.TypeOf(time.Time{})

func assign(dst reflect.Value, v any, path string) error {
	if v == nil {
		dst.SetZero()
		return nil
	}
	bad := func(why string) error {
		if path == "" {
			path = "(value)"
		}
		return fmt.Errorf("%w: field %q: %T does not fit %s%s", ErrConvert, path, v, dst.Type(), why)
	}
	src := reflect.ValueOf(v)
	if dst.Kind() != reflect.Interface && src.Type().AssignableTo(dst.Type()) {
		dst.Set(src)
		return nil
	}
	switch dst.Kind() {
	case reflect.Interface:
		if !src.Type().AssignableTo(dst.Type()) {
			return bad("")
		}
		dst.Set(src)
	case reflect.Pointer:
		p := reflect.New(dst.Type().Elem())
		if err := assign(p.Elem(), v, path); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.String:
		s, err := toString(v)
		if err != nil {
			return bad("")
		}
		dst.SetString(s.(string))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := toInt(v)
		if err != nil {
			return bad("")
		}
		if dst.OverflowInt(n.(int64)) {
			return bad(" (overflow)")
		}
		dst.SetInt(n.(int64))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		switch x := widen(v).(type) {
		case uint64:
			u = x
		case json.Number: // beyond int64, as read from JSON
			n, err := strconv.ParseUint(string(x), 10, 64)
			if err != nil {
				return bad("")
			}
			u = n
		default:
			n, err := toInt(v)
			if err != nil || n.(int64) < 0 {
				return bad("")
			}
			u = uint64(n.(int64))
		}
		if dst.OverflowUint(u) {
			return bad(" (overflow)")
		}
		dst.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := toFloat(v)
		if err != nil {
			return bad("")
		}
		if dst.Kind() == reflect.Float32 && math.Abs(f.(float64)) > math.MaxFloat32 {
			return bad(" (overflow)")
		}
		dst.SetFloat(f.(float64))
	case reflect.Bool:
		b, err := toBool(v)
		if err != nil {
			return bad("")
		}
		dst.SetBool(b.(bool))
	case reflect.Struct:
		if dst.Type() == timeType {
			t, err := parseTime(v, time.UTC, defaultTimeLayouts)
			if err != nil {
				return bad("")
			}
			dst.Set(reflect.ValueOf(t))
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return bad("")
		}
		for _, f := range fieldsOf(dst.Type()) {
			fv, ok := m[f.name]
			if !ok {
				continue
			}
			if err := assign(dst.FieldByIndex(f.index), fv, join(path, f.name)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if src.Kind() != reflect.Slice && src.Kind() != reflect.Array {
			return bad("")
		}
		out := reflect.MakeSlice(dst.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			if err := assign(out.Index(i), src.Index(i).Interface(), join(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
		dst.Set(out)
	case reflect.Map:
		if dst.Type().Key().Kind() != reflect.String || src.Kind() != reflect.Map {
			return bad("")
		}
		out := reflect.MakeMapWithSize(dst.Type(), src.Len())
		iter := src.MapRange()
		for iter.Next() {
			k := iter.Key().String()
			e := reflect.New(dst.Type().Elem()).Elem()
			if err := assign(e, iter.Value().Interface(), join(path, k)); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), e)
		}
		dst.Set(out)
	default:
		// Last resort for exotic types (json.RawMessage, custom unmarshalers): JSON.
		b, err := json.Marshal(v)
		if err != nil {
			return bad("")
		}
		if err := json.Unmarshal(b, dst.Addr().Interface()); err != nil {
			return bad(": " + err.Error())
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func encode(rv reflect.Value) (any, error) {
	switch rv.Kind() {
	case reflect.Invalid:
		return nil, nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return encode(rv.Elem())
	case reflect.Struct:
		if rv.Type() == timeType {
			return rv.Interface(), nil
		}
		fs := fieldsOf(rv.Type())
		out := make(Values, len(fs))
		for _, f := range fs {
			v, err := encode(rv.FieldByIndex(f.index))
			if err != nil {
				return nil, err
			}
			out[f.name] = v
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%w: map key %s is not a string", ErrConvert, rv.Type().Key())
		}
		if rv.IsNil() {
			return nil, nil
		}
		out := make(Values, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			v, err := encode(iter.Value())
			if err != nil {
				return nil, err
			}
			out[iter.Key().String()] = v
		}
		return out, nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return rv.Interface(), nil
		}
		elem := rv.Type().Elem()
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if elem.Kind() == reflect.Struct && elem != timeType {
			out := make([]Values, rv.Len())
			for i := range out {
				v, err := encode(rv.Index(i))
				if err != nil {
					return nil, err
				}
				out[i], _ = v.(Values)
			}
			return out, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			v, err := encode(rv.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return rv.Interface(), nil
}
