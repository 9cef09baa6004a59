package mapper

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Converter transforms one value on its way through a rule. Converters run in order,
// after the value is read and before it is written; they are skipped for missing and
// null values (see [Default] and [Required] for those). A Converter is also a
// [RuleOption], so it is passed straight to [Direct], [Relation] or [Expr]:
//
//	mapper.Direct("price", "list_price", mapper.Float())
//
// Converters receive the JSON-decoded value on import (string, float64, int64 for
// integral numbers, bool, map[string]any, []any) and the local value on export.
type Converter struct {
	name string
	fn   func(any) (any, error)
}

func (c Converter) applyRule(r *Rule) { r.convs = append(r.convs, c) }

// Convert makes a custom converter from a Go func; name is used in error messages. An
// error fn returns is reported wrapped in [ErrConvert] (and stays matchable itself).
func Convert(name string, fn func(any) (any, error)) Converter {
	return Converter{name: name, fn: fn}
}

func convErr(conv string, v any, why string) error {
	s := fmt.Sprint(v)
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	if why != "" {
		why = ": " + why
	}
	return fmt.Errorf("%w %T(%q) with %s%s", ErrConvert, v, s, conv, why)
}

// widen turns Go integers of every size into int64 (a uint beyond int64 stays uint64)
// and float32 into float64, so converters handle local values of any numeric type.
func widen(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint:
		if uint64(x) <= math.MaxInt64 {
			return int64(x)
		}
		return uint64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
	}
	return v
}

// String converts to string: numbers in their shortest form, bools as "true"/"false",
// times as RFC 3339. Objects and arrays are an error.
func String() Converter { return Converter{name: "string", fn: toString} }

func toString(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int, int8, int16, int32, uint, uint8, uint16, uint32:
		return toString(widen(x))
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return string(x), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	return nil, convErr("string", v, "not a scalar")
}

// Int converts to int64: integral numbers, numeric strings ("42", " 42 ", "42.0") and
// bools (0/1). A fractional number is an error rather than a silent truncation.
func Int() Converter { return Converter{name: "int", fn: toInt} }

func toInt(v any) (any, error) {
	switch x := widen(v).(type) {
	case int64:
		return x, nil
	case uint64:
		return nil, convErr("int", v, "out of the int64 range")
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, convErr("int", v, "not an integer")
		}
		if x < -(1<<63) || x >= 1<<63 { // exactly the float64 values int64 holds
			return nil, convErr("int", v, "out of the int64 range")
		}
		return int64(x), nil
	case float32:
		return toInt(float64(x))
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case json.Number:
		return toInt(string(x))
	case string:
		s := strings.TrimSpace(x)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return toInt(f)
		}
		return nil, convErr("int", v, "not a number")
	}
	return nil, convErr("int", v, "not a number")
}

// Float converts to float64: numbers, numeric strings ("19.99", " 1e3 ") and bools.
func Float() Converter { return Converter{name: "float", fn: toFloat} }

func toFloat(v any) (any, error) {
	switch x := widen(v).(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float32:
		return float64(x), nil
	case bool:
		if x {
			return 1.0, nil
		}
		return 0.0, nil
	case json.Number:
		return toFloat(string(x))
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, convErr("float", v, "not a number")
		}
		return f, nil
	}
	return nil, convErr("float", v, "not a number")
}

// Bool converts to bool: bools, numbers (non-zero is true) and the strings
// true/false, 1/0, yes/no, y/n, on/off (any case). Other strings are an error.
func Bool() Converter { return Converter{name: "bool", fn: toBool} }

func toBool(v any) (any, error) {
	switch x := widen(v).(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case uint64:
		return x != 0, nil
	case float64:
		return x != 0, nil
	case float32:
		return x != 0, nil
	case json.Number:
		return toBool(string(x))
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1", "yes", "y", "on", "t":
			return true, nil
		case "false", "0", "no", "n", "off", "f", "":
			return false, nil
		}
	}
	return nil, convErr("bool", v, "not a boolean")
}

// defaultTimeLayouts are tried, in order, by [Time] when no layout is given.
var defaultTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"}

// Time parses a string into a time.Time with the first layout that matches
// (RFC 3339 with or without fractional seconds, "2006-01-02T15:04:05",
// "2006-01-02 15:04:05", then "2006-01-02" when none is given). Strings without a zone are read in UTC;
// see [TimeIn]. Numbers are Unix seconds; a time.Time passes through.
func Time(layouts ...string) Converter { return TimeIn(time.UTC, layouts...) }

// TimeIn is [Time] reading zone-less strings in loc (time.ParseInLocation). The result
// keeps the zone it was parsed in. The layouts are copied.
func TimeIn(loc *time.Location, layouts ...string) Converter {
	if loc == nil {
		loc = time.UTC
	}
	if len(layouts) == 0 {
		layouts = defaultTimeLayouts
	}
	layouts = slices.Clone(layouts) // later changes to the caller's slice do not race with mapping
	return Converter{name: "time", fn: func(v any) (any, error) { return parseTime(v, loc, layouts) }}
}

func parseTime(v any, loc *time.Location, layouts []string) (any, error) {
	switch x := widen(v).(type) {
	case time.Time:
		return x, nil
	case string:
		s := strings.TrimSpace(x)
		for _, l := range layouts {
			if t, err := time.ParseInLocation(l, s, loc); err == nil {
				return t, nil
			}
		}
		return nil, convErr("time", v, "matches none of the layouts "+strings.Join(layouts, ", "))
	case int64:
		return time.Unix(x, 0).In(loc), nil
	case float64:
		if math.IsNaN(x) || x < -(1<<63) || x >= 1<<63 {
			return nil, convErr("time", v, "not a Unix time")
		}
		sec, frac := math.Modf(x)
		return time.Unix(int64(sec), int64(frac*1e9)).In(loc), nil
	}
	return nil, convErr("time", v, "not a time")
}

// FormatTime formats a time.Time (or a string [Time] can parse) with layout after
// moving it to loc (nil keeps the value's own zone). Used on export.
func FormatTime(layout string, loc *time.Location) Converter {
	parse := Time().fn
	return Converter{name: "format_time", fn: func(v any) (any, error) {
		t, ok := v.(time.Time)
		if !ok {
			p, err := parse(v)
			if err != nil {
				return nil, convErr("format_time", v, "not a time")
			}
			t = p.(time.Time)
		}
		if loc != nil {
			t = t.In(loc)
		}
		return t.Format(layout), nil
	}}
}

// Enum maps values through a table keyed by the value's string form (see [String]).
// The table is copied.
// A value not in the table is an error; use [EnumDefault] to fall back instead.
func Enum(table map[string]any) Converter { return enumConv(table, nil, false) }

// EnumDefault is [Enum] with a fallback for values not in the table.
func EnumDefault(table map[string]any, def any) Converter { return enumConv(table, def, true) }

func enumConv(table map[string]any, def any, hasDef bool) Converter {
	table = maps.Clone(table) // the caller may change its map; mappers run concurrently
	return Converter{name: "enum", fn: func(v any) (any, error) {
		k, err := toString(v)
		if err != nil {
			return nil, convErr("enum", v, "not a scalar")
		}
		if out, ok := table[k.(string)]; ok {
			return out, nil
		}
		if hasDef {
			return def, nil
		}
		return nil, convErr("enum", v, "not in the table")
	}}
}

func stringConv(name string, f func(string) string) Converter {
	return Converter{name: name, fn: func(v any) (any, error) {
		s, ok := v.(string)
		if !ok {
			return nil, convErr(name, v, "not a string")
		}
		return f(s), nil
	}}
}

// Trim removes leading and trailing white space from a string.
func Trim() Converter { return stringConv("trim", strings.TrimSpace) }

// Lower lower-cases a string.
func Lower() Converter { return stringConv("lower", strings.ToLower) }

// Upper upper-cases a string.
func Upper() Converter { return stringConv("upper", strings.ToUpper) }
