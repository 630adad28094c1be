package pqwrite

import (
	"strings"
	"testing"
)

func TestCommonPrefix(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 0}, {"abc", "abd", 2}, {"abc", "abc", 3}, {"abc", "abcdef", 3},
		{"CLM000000001", "CLM000000002", 11}, {"CLM000000001", "CLM000000001", 12},
		{"12345678", "12345678", 8}, {"12345678x", "12345678y", 8}, {"1234567", "1234568", 6},
		{strings.Repeat("a", 40) + "b", strings.Repeat("a", 40) + "c", 40}, {"xbcdefghij", "abcdefghij", 0},
	} {
		if got := commonPrefix(c.a, c.b); got != c.want {
			t.Errorf("commonPrefix(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := commonPrefix(c.b, c.a); got != c.want {
			t.Errorf("commonPrefix(%q, %q) = %d, want %d", c.b, c.a, got, c.want)
		}
	}
}
