// Package jsontime reads the modification times APIs put in records: RFC 3339 strings or
// Unix times in seconds, milliseconds, microseconds or nanoseconds, as numbers or digit
// strings. The importer and the exporter read them the same way, so that a time one stored
// on a binding compares equal to the same time read by the other.
package jsontime

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// Parse reads v as a time in UTC; a missing or null value (or "") is the zero time.
func Parse(v gjson.Result) (time.Time, error) {
	switch v.Type {
	case gjson.Null:
		return time.Time{}, nil
	case gjson.Number:
		return Epoch(v.Float())
	case gjson.String:
		if v.Str == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v.Str)
		if err != nil {
			if f, nerr := strconv.ParseFloat(v.Str, 64); nerr == nil {
				return Epoch(f)
			}
			return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a Unix time", v.Str)
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("a %s is not a time", v.Type)
}

// Epoch reads a Unix time in seconds, milliseconds, microseconds or nanoseconds, told apart
// by size: no API dates records after the year 5138 (1e11 s), and milliseconds since 1973
// already exceed 1e11. Reading milliseconds as seconds would date a record tens of
// thousands of years ahead, and every later change would look older and be skipped.
func Epoch(v float64) (time.Time, error) {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || a >= 1e20:
		return time.Time{}, fmt.Errorf("%v is not a Unix time", v)
	case a < 1e11:
		return time.Unix(0, int64(v*1e9)).UTC(), nil
	case a < 1e14:
		return time.UnixMicro(int64(v * 1e3)).UTC(), nil // milliseconds
	case a < 1e17:
		return time.UnixMicro(int64(v)).UTC(), nil
	default:
		return time.Unix(0, int64(v)).UTC(), nil
	}
}
