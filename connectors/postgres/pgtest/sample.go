package pgtest

import (
	"slices"

	"github.com/repricer/repricer/contracts"
)

// sampleRefused are the rows of testdata/sample/contracts that the store's
// constraints refuse: an overlapping contract and malformed rates.
var sampleRefused = map[string]bool{"C008": true, "8001": true, "2008": true, "4006": true, "10006": true, "14004": true, "14005": true}

// DropRefused removes from s, the sample bundle, the rows the store
// refuses, so that it imports whole.
func DropRefused(s *contracts.Schedule) {
	s.Contracts = slices.DeleteFunc(s.Contracts, func(c contracts.Contract) bool { return sampleRefused[c.ID] })
	s.Rates = slices.DeleteFunc(s.Rates, func(r contracts.Rate) bool { return sampleRefused[r.ID] })
}
