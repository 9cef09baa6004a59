package jsontime

import (
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func TestParse(t *testing.T) {
	jan := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		json string
		want time.Time
	}{
		{`1704067200`, jan},
		{`1704067200.5`, jan.Add(500 * time.Millisecond)},
		{`1704067200000`, jan},
		{`1704067200123`, jan.Add(123 * time.Millisecond)},
		{`1704067200000000`, jan},
		{`1704067200000000000`, jan},
		{`"1704067200"`, jan},
		{`"1704067200000"`, jan},
		{`"2024-01-01T01:00:00+01:00"`, jan},
		{`"2024-01-01T00:00:00.25Z"`, jan.Add(250 * time.Millisecond)},
		{`null`, time.Time{}},
		{`""`, time.Time{}},
		{`0`, time.Unix(0, 0).UTC()},
	} {
		got, err := Parse(gjson.Parse(tc.json))
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("Parse(%s) = %v, %v; want %v in UTC", tc.json, got, err, tc.want)
		}
	}
	for _, bad := range []string{`1e300`, `"soon"`, `true`, `{}`, `[1]`, `"2024-13-01T00:00:00Z"`} {
		if got, err := Parse(gjson.Parse(bad)); err == nil {
			t.Errorf("Parse(%s) = %v, want an error", bad, got)
		}
	}
	// A missing value is zero, not an error.
	if got, err := Parse(gjson.Get(`{}`, "updated_at")); err != nil || !got.IsZero() {
		t.Errorf("missing value = %v, %v", got, err)
	}
}
