package mapper

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestConverters(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	table := map[string]any{"draft": "quotation", "done": "sale", "1": "one"}
	tests := []struct {
		name    string
		conv    Converter
		in      any
		want    any
		wantErr bool
	}{
		{"string/string", String(), "a", "a", false},
		{"string/int64", String(), int64(42), "42", false},
		{"string/int", String(), 7, "7", false},
		{"string/float", String(), 19.99, "19.99", false},
		{"string/bool", String(), true, "true", false},
		{"string/number", String(), json.Number("3.5"), "3.5", false},
		{"string/time", String(), time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02T03:04:05Z", false},
		{"string/map", String(), map[string]any{}, nil, true},
		{"int/int64", Int(), int64(3), int64(3), false},
		{"int/float integral", Int(), 3.0, int64(3), false},
		{"int/float fractional", Int(), 3.5, nil, true},
		{"int/string", Int(), " 42 ", int64(42), false},
		{"int/string float", Int(), "42.0", int64(42), false},
		{"int/string bad", Int(), "4x2", nil, true},
		{"int/bool", Int(), true, int64(1), false},
		{"int/slice", Int(), []any{}, nil, true},
		{"float/float", Float(), 1.5, 1.5, false},
		{"float/int64", Float(), int64(2), 2.0, false},
		{"float/numeric string", Float(), "19.99", 19.99, false},
		{"float/exp string", Float(), " 1e3 ", 1000.0, false},
		{"float/bad string", Float(), "nineteen", nil, true},
		{"float/NaN string", Float(), "NaN", nil, true},
		{"float/bool", Float(), false, 0.0, false},
		{"bool/bool", Bool(), true, true, false},
		{"bool/yes", Bool(), "Yes", true, false},
		{"bool/off", Bool(), "off", false, false},
		{"bool/1", Bool(), "1", true, false},
		{"bool/number", Bool(), 0.0, false, false},
		{"bool/int", Bool(), int64(2), true, false},
		{"bool/bad", Bool(), "maybe", nil, true},
		{"time/rfc3339", Time(), "2024-03-01T10:00:00+02:00", time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC), false},
		{"time/date", Time(), "2024-03-01", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{"time/layout", Time("02/01/2006"), "31/12/2023", time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{"time/zone", TimeIn(paris, "2006-01-02 15:04"), "2024-07-01 12:00", time.Date(2024, 7, 1, 10, 0, 0, 0, time.UTC), false},
		{"time/unix", Time(), int64(86400), time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), false},
		{"time/bad", Time(), "yesterday", nil, true},
		{"time/bool", Time(), true, nil, true},
		{"format_time/time", FormatTime("2006-01-02", nil), time.Date(2024, 3, 1, 23, 0, 0, 0, time.UTC), "2024-03-01", false},
		{"format_time/zone", FormatTime("2006-01-02 15:04", paris), time.Date(2024, 7, 1, 10, 0, 0, 0, time.UTC), "2024-07-01 12:00", false},
		{"format_time/string", FormatTime("02.01.2006", nil), "2024-03-01T00:00:00Z", "01.03.2024", false},
		{"format_time/bad", FormatTime("2006", nil), "soon", nil, true},
		{"enum/hit", Enum(table), "done", "sale", false},
		{"enum/number key", Enum(table), int64(1), "one", false},
		{"enum/miss", Enum(table), "cancel", nil, true},
		{"enum/default", EnumDefault(table, "other"), "cancel", "other", false},
		{"enum/not scalar", EnumDefault(table, "other"), []any{}, nil, true},
		{"trim", Trim(), "  a b  ", "a b", false},
		{"lower", Lower(), "ÀBC", "àbc", false},
		{"upper", Upper(), "abc", "ABC", false},
		{"upper/not string", Upper(), 1.0, nil, true},
		{"custom", Convert("cents", func(v any) (any, error) {
			f, err := toFloat(v)
			if err != nil {
				return nil, err
			}
			return int64(f.(float64)*100 + 0.5), nil
		}), "19.99", int64(1999), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.conv.fn(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("%s(%#v) = %#v, want error", tt.conv.name, tt.in, got)
				}
				if tt.conv.name != "cents" && !errors.Is(err, ErrConvert) {
					t.Fatalf("error %v does not match ErrConvert", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s(%#v): %v", tt.conv.name, tt.in, err)
			}
			if gt, ok := got.(time.Time); ok {
				if !gt.Equal(tt.want.(time.Time)) {
					t.Fatalf("got %v, want %v", gt, tt.want)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}
