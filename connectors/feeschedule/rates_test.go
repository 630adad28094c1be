package feeschedule

import (
	"errors"
	"slices"
	"testing"
)

func TestToRatesOptions(t *testing.T) {
	s, err := parseString(t, "physician_010114.csv", synthHeader+",99213,,$38.39,$25.47,PA,\n,71010,26,$5.21,$5.21,,\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("custom POS sets", func(t *testing.T) {
		rs, err := ToRates(s, "C1", WithPlaceOfService([]string{"11", " 12 "}, []string{"21"}))
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 3 || !slices.Equal(rs[0].PlaceOfService, []string{"11", "12"}) || !slices.Equal(rs[1].PlaceOfService, []string{"21"}) || rs[2].PlaceOfService != nil {
			t.Fatalf("rates = %+v", rs)
		}
		if rs[0].ID != "C1-20140101-99213-NFS" || rs[2].ID != "C1-20140101-71010-26-ALL" || !rs[0].RequiresAuth || rs[2].RequiresAuth {
			t.Errorf("ids/auth: %s %v, %s %v", rs[0].ID, rs[0].RequiresAuth, rs[2].ID, rs[2].RequiresAuth)
		}
		// rates do not share POS slices
		rs[0].PlaceOfService[0] = "99"
		rs2, _ := ToRates(s, "C1")
		if rs2[0].PlaceOfService[0] == "99" {
			t.Error("POS slice shared between calls")
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := ToRates(s, ""); !errors.Is(err, ErrNoContract) {
			t.Errorf("no contract: %v", err)
		}
		if _, err := ToRates(s, "C1", WithPlaceOfService(nil, []string{"21"})); !errors.Is(err, ErrNoPOSConfig) {
			t.Errorf("empty POS: %v", err)
		}
		if _, err := ToRates(&Schedule{Name: "x"}, "C1"); !errors.Is(err, ErrNoDate) {
			t.Errorf("no date: %v", err)
		}
	})
	t.Run("history with custom sets", func(t *testing.T) {
		h, err := NewHistory("C1", []*Schedule{s}, WithPlaceOfService([]string{"12"}, []string{"22"}))
		if err != nil {
			t.Fatal(err)
		}
		fee, err := h.Fee("99213", "", true, s.Effective)
		if err != nil || fee != 2547 {
			t.Errorf("facility fee = %s, %v", fee, err)
		}
		if _, err := h.RateAt("99213", "", "11", s.Effective); !errors.Is(err, ErrNoRate) {
			t.Errorf("POS 11 outside both sets: %v", err)
		}
		if fee, err := h.Fee("71010", "26", false, s.Effective+400); err != nil || fee != 521 {
			t.Errorf("open-ended 26 fee = %s, %v", fee, err)
		}
	})
}
