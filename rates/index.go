package rates

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
)

// cptClass orders rates by how they name the code: exact before range
// before none (SPEC §3 tie-break b).
const (
	classExact uint8 = iota
	classRange
	classNone
)

// indexedRate is an active, accepted rate with its static ordering key and
// what matching reads first, kept inline so that the common rate (a code
// and dates, no other criterion) matches without touching the Rate.
type indexedRate struct {
	r        *contracts.Rate
	priority int
	eff, end contracts.Date
	class    uint8
	optional uint8 // optional criteria populated (and so matched)
	criteria bool  // a modifier, specialty, visit kind or place of service is set
}

// rateIndex answers "which rates of one contract can apply to this line"
// without scanning the contract's rates. All rates sit in one slice sorted
// by the full tie-break order, and every bucket holds ascending positions in
// it, so the first match in a bucket is that bucket's best and the smallest
// position over the buckets is the winner.
type rateIndex struct {
	rates       []indexedRate
	exact       map[string][]int32
	bySpecialty map[string][]int32
	byVisitKind map[string][]int32
	// Ranges as elementary segments: rangePts holds the sorted distinct
	// bounds; segment 2k is the point rangePts[k], segment 2k+1 the codes
	// strictly between rangePts[k] and rangePts[k+1].
	rangePts  []string
	rangeSegs [][]int32
}

func newRateIndex(rs []*contracts.Rate, priority map[string]int) *rateIndex {
	ix := &rateIndex{
		rates:       make([]indexedRate, 0, len(rs)),
		exact:       map[string][]int32{},
		bySpecialty: map[string][]int32{},
		byVisitKind: map[string][]int32{},
	}
	for _, r := range rs {
		if !r.Active {
			continue
		}
		ir := indexedRate{r: r, priority: priority[r.Kind], class: classNone, eff: r.Effective, end: r.End,
			criteria: r.Modifier != "" || r.Specialty != "" || r.VisitKind != "" || len(r.PlaceOfService) > 0}
		switch {
		case r.CPTCode != "":
			ir.class = classExact
		case r.IsRange():
			ir.class = classRange
		}
		if r.Modifier != "" && !contracts.KindRequirements[r.Kind].Modifier {
			ir.optional++
		}
		if len(r.PlaceOfService) > 0 {
			ir.optional++
		}
		ix.rates = append(ix.rates, ir)
	}
	slices.SortFunc(ix.rates, compareRates)

	var pts []string
	for _, ir := range ix.rates {
		if ir.class == classRange {
			pts = append(pts, ir.r.RangeStart, ir.r.RangeEnd)
		}
	}
	slices.Sort(pts)
	ix.rangePts = slices.Compact(pts)
	ix.rangeSegs = make([][]int32, 2*len(ix.rangePts))
	for i, ir := range ix.rates {
		pos := int32(i)
		r := ir.r
		switch {
		case ir.class == classExact:
			ix.exact[r.CPTCode] = append(ix.exact[r.CPTCode], pos)
		case ir.class == classRange:
			lo, _ := slices.BinarySearch(ix.rangePts, r.RangeStart)
			hi, _ := slices.BinarySearch(ix.rangePts, r.RangeEnd)
			for k := lo; k <= hi; k++ {
				ix.rangeSegs[2*k] = append(ix.rangeSegs[2*k], pos)
				if k < hi {
					ix.rangeSegs[2*k+1] = append(ix.rangeSegs[2*k+1], pos)
				}
			}
		case r.Specialty != "":
			ix.bySpecialty[r.Specialty] = append(ix.bySpecialty[r.Specialty], pos)
		default:
			ix.byVisitKind[r.VisitKind] = append(ix.byVisitKind[r.VisitKind], pos)
		}
	}
	return ix
}

// compareRates is the full winner order of SPEC §3 step 3: priority, then
// exact over range over none (a later range start, then an earlier end, wins
// between ranges), more optional criteria, later effective date, smaller id.
func compareRates(a, b indexedRate) int {
	if c := compareKey(&a, &b); c != 0 {
		return c
	}
	return compareIDs(a.r.ID, b.r.ID)
}

// compareKey compares the tie-break criteria (a)-(d), without the id.
func compareKey(a, b *indexedRate) int {
	if c := cmp.Compare(a.priority, b.priority); c != 0 {
		return c
	}
	if c := cmp.Compare(a.class, b.class); c != 0 {
		return c
	}
	if a.class == classRange {
		if c := strings.Compare(b.r.RangeStart, a.r.RangeStart); c != 0 {
			return c
		}
		if c := strings.Compare(a.r.RangeEnd, b.r.RangeEnd); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(b.optional, a.optional); c != 0 {
		return c
	}
	return cmp.Compare(b.eff, a.eff)
}

// compareIDs orders rate ids numerically when both are whole numbers, and
// as strings otherwise.
func compareIDs(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(na, nb)
	}
	return strings.Compare(a, b)
}

// matches reports whether every populated criterion of r accepts the line.
func matches(r *contracts.Rate, l *claims.Line) bool {
	if r.Effective > l.ServiceDate || (r.End != 0 && r.End < l.ServiceDate) {
		return false
	}
	if r.CPTCode != "" {
		if r.CPTCode != l.CPT {
			return false
		}
	} else if r.RangeStart != "" && (l.CPT < r.RangeStart || l.CPT > r.RangeEnd) {
		return false
	}
	if r.Modifier != "" && !l.HasModifier(r.Modifier) {
		return false
	}
	if r.Specialty != "" && r.Specialty != l.Specialty {
		return false
	}
	if r.VisitKind != "" && r.VisitKind != l.VisitKind {
		return false
	}
	if len(r.PlaceOfService) > 0 && !slices.Contains(r.PlaceOfService, l.POS) {
		return false
	}
	return true
}

// matchesInBucket is matches for a rate found in one of l's buckets: the
// bucket already guarantees the code or range, so only dates and the other
// criteria are left to check.
func matchesInBucket(ir *indexedRate, l *claims.Line) bool {
	if ir.eff > l.ServiceDate || (ir.end != 0 && ir.end < l.ServiceDate) {
		return false
	}
	if !ir.criteria {
		return true
	}
	r := ir.r
	if r.Modifier != "" && !l.HasModifier(r.Modifier) {
		return false
	}
	if r.Specialty != "" && r.Specialty != l.Specialty {
		return false
	}
	if r.VisitKind != "" && r.VisitKind != l.VisitKind {
		return false
	}
	return len(r.PlaceOfService) == 0 || slices.Contains(r.PlaceOfService, l.POS)
}

// firstMatch returns the smallest position in bucket whose rate matches l,
// stopping early at limit (a better position already found elsewhere).
func (ix *rateIndex) firstMatch(bucket []int32, l *claims.Line, limit int32) int32 {
	for _, pos := range bucket {
		if pos >= limit {
			break
		}
		if matchesInBucket(&ix.rates[pos], l) {
			return pos
		}
	}
	return limit
}

// lookup returns the winning rate for l and whether another matching rate
// ties with it on criteria (a)-(d) with a different type or value.
func (ix *rateIndex) lookup(l *claims.Line) (best *indexedRate, conflict bool) {
	var buckets [4][]int32
	buckets[0] = ix.exact[l.CPT]
	if len(ix.rangePts) > 0 {
		k := sort.SearchStrings(ix.rangePts, l.CPT)
		switch {
		case k < len(ix.rangePts) && ix.rangePts[k] == l.CPT:
			buckets[1] = ix.rangeSegs[2*k]
		case k > 0:
			buckets[1] = ix.rangeSegs[2*(k-1)+1]
		}
	}
	if l.Specialty != "" && len(ix.bySpecialty) > 0 {
		buckets[2] = ix.bySpecialty[l.Specialty]
	}
	if l.VisitKind != "" && len(ix.byVisitKind) > 0 {
		buckets[3] = ix.byVisitKind[l.VisitKind]
	}
	none := int32(len(ix.rates))
	pos := none
	for _, b := range buckets {
		pos = ix.firstMatch(b, l, pos)
	}
	if pos == none {
		return nil, false
	}
	best = &ix.rates[pos]
	// A conflicting rate ties with the winner on (a)-(d), so it sits just
	// after it in one of the same buckets.
	for _, b := range buckets {
		i, _ := slices.BinarySearch(b, pos+1)
		for ; i < len(b); i++ {
			other := &ix.rates[b[i]]
			if compareKey(best, other) != 0 {
				break
			}
			if matchesInBucket(other, l) && (other.r.Type != best.r.Type || other.r.Value != best.r.Value) {
				return best, true
			}
		}
	}
	return best, false
}
