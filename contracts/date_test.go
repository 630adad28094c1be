package contracts

import (
	"testing"
	"time"
)

func TestDateRoundTrip(t *testing.T) {
	start := time.Date(1899, 12, 25, 0, 0, 0, 0, time.UTC)
	prev := Date(0)
	for i := 0; i < 200*366; i++ {
		tm := start.AddDate(0, 0, i)
		s := tm.Format("2006-01-02")
		d, err := ParseDate(s)
		if err != nil {
			t.Fatalf("ParseDate(%q): %v", s, err)
		}
		if d.String() != s {
			t.Fatalf("round trip %q -> %q", s, d.String())
		}
		if prev != 0 && d != prev+1 {
			t.Fatalf("%s is not the day after the previous date", s)
		}
		if DateFromTime(tm) != d {
			t.Fatalf("DateFromTime(%s) differs", s)
		}
		prev = d
	}
}

func TestParseDateRejects(t *testing.T) {
	for _, s := range []string{"", "2024-02-30", "2023-02-29", "2024-13-01", "2024-1-01", "20240101", "2024/01/01", "2024-01-0a", "0000-01-01", " 2024-01-01"} {
		t.Run(s, func(t *testing.T) {
			if _, err := ParseDate(s); err == nil {
				t.Fatalf("ParseDate(%q) accepted", s)
			}
		})
	}
}

func TestAddMonths(t *testing.T) {
	tests := []struct {
		from, want string
		n          int
	}{
		{"2024-01-31", "2024-02-29", 1},
		{"2024-01-15", "2025-01-15", 12},
		{"2024-11-30", "2025-02-28", 3},
	}
	for _, tt := range tests {
		d, _ := ParseDate(tt.from)
		if got := d.AddMonths(tt.n).String(); got != tt.want {
			t.Errorf("%s + %d months = %s, want %s", tt.from, tt.n, got, tt.want)
		}
	}
}

func TestDateZeroIsUnset(t *testing.T) {
	first, err := ParseDate("0001-01-01")
	if err != nil {
		t.Fatal(err)
	}
	if first != 1 || first.IsZero() || first.String() != "0001-01-01" {
		t.Errorf("0001-01-01 is day %d (%q)", first, first.String())
	}
	if Date(0).String() != "" {
		t.Error("the zero Date formats as a date")
	}
}
