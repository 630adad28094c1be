package varcodec

import (
	"encoding/binary"
	"testing"
)

func TestRoundTripAndFailure(t *testing.T) {
	var b []byte
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -7)
	b = append(b, 9)
	b = AppendString(b, "héllo")
	b = AppendString(b, "")
	d := NewDecoder(b)
	if u, v, c, s, e := d.Uvarint(), d.Varint(), d.Byte(), d.String(), d.String(); u != 300 || v != -7 || c != 9 || s != "héllo" || e != "" || d.Failed() || d.Len() != 0 {
		t.Fatalf("read %d %d %d %q %q failed=%v left=%d", u, v, c, s, e, d.Failed(), d.Len())
	}
	// Every cut short of the whole record fails, and stays failed.
	for n := 0; n < len(b); n++ {
		d := NewDecoder(b[:n])
		d.Uvarint()
		d.Varint()
		d.Byte()
		_ = d.String()
		_ = d.String()
		if !d.Failed() {
			t.Errorf("a record cut to %d bytes decoded", n)
		}
		if d.Uvarint() != 0 || d.String() != "" {
			t.Errorf("a failed decoder read a value")
		}
	}
}
