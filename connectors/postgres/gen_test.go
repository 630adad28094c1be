package postgres_test

import (
	"fmt"

	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// genSchedule builds a schedule exercising every field: nContracts
// contracts (each of its own vendor, except pairs that follow each other)
// with ratesPer rates each, ids in sorted order.
func genSchedule(nContracts, ratesPer int) *contracts.Schedule {
	s := &contracts.Schedule{Kinds: contracts.DefaultRateKinds()}
	d := func(y, m, day int) contracts.Date { return contracts.DateOf(y, m, day) }
	statuses := []contracts.Status{contracts.Active, contracts.Expired, contracts.Terminated, contracts.Draft, contracts.Pending}
	for i := 0; i < nContracts; i++ {
		c := contracts.Contract{
			ID:                fmt.Sprintf("C%06d", i),
			Number:            fmt.Sprintf("CON-2024-%05d", i),
			VendorID:          fmt.Sprintf("V%05d", i/2),
			Status:            statuses[i%len(statuses)],
			Effective:         d(2020+i%2*3, 1, 1),
			Expiration:        d(2022+i%2*3, 12, 31),
			AdminFeePct:       money.Fixed(i%7) * 250_000,
			LesserOfBilled:    i%3 == 0,
			UpdatedAt:         fmt.Sprintf("2024-05-%02dT10:00:00Z", i%28+1),
			RenewalNoticeDays: 30 * (i % 2),
		}
		if c.Status == contracts.Terminated {
			c.StatusReason = "provider left the network"
		}
		if i%4 == 1 {
			c.TPA, c.TPAName, c.TPAMedicalNecessity, c.TPAPriorAuthRequired = true, "Acme TPA", true, i%8 == 1
		}
		if i%5 == 2 {
			c.AutoRenewal, c.RenewalTermMonths = true, 12
		}
		switch i % 3 {
		case 0:
			c.DefaultRateType, c.DefaultRateValue, c.HasDefaultRate = contracts.Percentage, 85_500_000, true
		case 1:
			c.DefaultRateType, c.DefaultRateValue, c.HasDefaultRate = contracts.Amount, 125_250_000, true
		}
		if i%2 == 0 {
			c.StopLoss = money.Cents(5_000_000 + i)
		}
		if i%3 == 1 {
			c.ExcludedServices = []contracts.CodeRange{{Lo: "99201", Hi: "99215"}, {Lo: "J1100", Hi: "J1100"}}
		}
		s.Contracts = append(s.Contracts, c)
		for j := 0; j < ratesPer; j++ {
			s.Rates = append(s.Rates, genRate(&c, i, j))
		}
	}
	return s
}

var (
	kinds       = []string{contracts.KindCPTModifierSpecialty, contracts.KindCPTSpecialty, contracts.KindCPT, contracts.KindSpecialtyVisitKind, contracts.KindSpecialty, contracts.KindVisitKind}
	specialties = []string{"CARDIOLOGY", "ORTHOPEDICS", "FAMILY MEDICINE", "RADIOLOGY"}
	visitKinds  = []string{"OFFICE", "INPATIENT", "TELEHEALTH"}
	modifiers   = []string{"26", "TC", "59"}
	places      = [][]string{nil, {"11"}, {"11", "22"}, {"21", "22", "23"}}
)

func genRate(c *contracts.Contract, i, j int) contracts.Rate {
	r := contracts.Rate{
		ID:             fmt.Sprintf("%s-R%06d", c.ID, j),
		ContractID:     c.ID,
		Kind:           kinds[j%len(kinds)],
		Effective:      c.Effective,
		PlaceOfService: places[j%len(places)],
		RequiresAuth:   j%7 == 0,
		RequiresReview: j%11 == 0,
		Active:         j%13 != 5,
	}
	if j%2 == 0 {
		r.Type, r.Value = contracts.Percentage, money.Fixed(50_000_000+j%100*1_234_567)
	} else {
		r.Type, r.Value = contracts.Amount, money.Fixed(10_000_000+j%1000*10_000)
	}
	req := contracts.KindRequirements[r.Kind]
	if req.CPT {
		if j%5 == 0 {
			r.RangeStart, r.RangeEnd = fmt.Sprintf("%05d", 10000+j%900), fmt.Sprintf("%05d", 10000+j%900+50)
		} else {
			r.CPTCode = fmt.Sprintf("%05d", 99000+j%997)
		}
	}
	if req.Modifier {
		r.Modifier = modifiers[j%len(modifiers)]
	}
	if req.Specialty {
		r.Specialty = specialties[j%len(specialties)]
	}
	if req.VisitKind {
		r.VisitKind = visitKinds[j%len(visitKinds)]
	}
	if j%4 == 3 {
		r.End = c.Expiration.AddMonths(-3)
	}
	if j%6 == 1 {
		r.MinUnits, r.MaxUnits = 1, 4
	}
	return r
}
