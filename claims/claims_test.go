package claims

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// TestCopyRaw copies a line's text into an arena with too little room: the
// raw values stay equal, all of them land in the one array the arena grew
// into, after what it held, and Parse then reads the copies.
func TestCopyRaw(t *testing.T) {
	var l Line
	l.Raw[ClaimID], l.Raw[LineNumber], l.Raw[VendorID] = "CL1", "1", "V1"
	l.Raw[CPTCode], l.Raw[ServiceDate], l.Raw[BilledAmount] = "99213", "2024-06-01", "100.00"
	want := l.Raw
	arena := append(make([]byte, 0, 4), "xy"...)
	arena = l.CopyRaw(arena)
	if l.Raw != want {
		t.Fatalf("raw %q, want %q", l.Raw, want)
	}
	if string(arena[:2]) != "xy" {
		t.Fatalf("the arena's old text became %q", arena[:2])
	}
	lo, hi := uintptr(unsafe.Pointer(&arena[2])), uintptr(unsafe.Pointer(unsafe.SliceData(arena)))+uintptr(len(arena))
	for f, v := range l.Raw {
		p := uintptr(unsafe.Pointer(unsafe.StringData(v)))
		if v != "" && (p < lo || p >= hi) {
			t.Errorf("%s is not in the arena's new text", Field(f))
		}
	}
	l.Parse()
	for i := range arena {
		arena[i] = '#'
	}
	if l.Raw[ClaimID] != "###" || l.ClaimID != "###" || l.Raw[MemberID] != "" {
		t.Errorf("after the arena changed: raw claim %q, claim %q, member %q", l.Raw[ClaimID], l.ClaimID, l.Raw[MemberID])
	}
}

func TestCheckMapping(t *testing.T) {
	for _, tt := range []struct {
		name    string
		mapping map[string]string
		bad     string
	}{
		{"none", nil, ""},
		{"canonical names, any case", map[string]string{"billed_amount": "charge", "Member_ID": "mbr"}, ""},
		{"a typo", map[string]string{"billed_amount": "charge", "member": "mbr"}, "member"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMapping(tt.mapping)
			var me *MappingError
			switch {
			case tt.bad == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.bad != "" && (!errors.As(err, &me) || me.Name != tt.bad || !strings.Contains(err.Error(), "member_id")):
				t.Errorf("error %v, want a MappingError for %q listing the canonical columns", err, tt.bad)
			}
		})
	}
}
