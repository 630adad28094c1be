package rates

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/repricer/repricer/claims"
	"github.com/repricer/repricer/contracts"
	"github.com/repricer/repricer/money"
)

// cptClass orders rates by how they name the code: exact before range
// before none (docs/pricing.md step 3b).
const (
	classExact uint8 = iota
	classRange
	classNone
)

// indexedRate is an active, accepted rate with its static ordering key: the
// form the index is sorted in and Explain reasons with.
type indexedRate struct {
	r                    *contracts.Rate // nil while building (see pendingRate)
	id                   string
	rangeStart, rangeEnd string
	priority             int
	eff, end             contracts.Date
	class                uint8
	optional             uint8 // optional criteria populated (and so matched)
	criteria             bool  // a modifier, specialty, visit kind or place of service is set
}

func newIndexedRate(r *contracts.Rate, priority map[string]int) indexedRate {
	ir := indexedRate{r: r, id: r.ID, rangeStart: r.RangeStart, rangeEnd: r.RangeEnd, priority: priority[r.Kind],
		class: classNone, eff: r.Effective, end: r.End,
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
	return ir
}

// rateRec is an indexed rate as pricing reads it. It holds no pointers and
// no strings (criteria are ids in the engine's criteria table), so that a
// schedule of a million rates takes 64 MB the garbage collector never scans,
// instead of the 250 MB of pointer-rich contracts.Rate values.
type rateRec struct {
	value              money.Fixed
	minUnits, maxUnits int64
	eff, end           contracts.Date
	// tieEnd is one past the last position that ties with this rate on
	// docs/pricing.md step 3a to 3d: rates there differ only by id.
	tieEnd int32
	// The rate's id is Engine.ids[idOff:idOff+idLen].
	idOff, idLen uint32
	// Criteria as ids in criteriaTable (0 = not set).
	modifier, specialty, visitKind, places uint32
	priority                               uint8
	kind                                   uint8 // index in criteriaTable.kinds
	typ                                    contracts.RateType
	flags                                  recFlags
}

type recFlags uint8

const (
	recCriteria recFlags = 1 << iota // modifier, specialty, visit kind or place of service set
	recAuth                          // requires_auth
	recReview                        // requires_review
)

// criteriaTable holds, once per engine, the strings rateRecs refer to by id.
type criteriaTable struct {
	strs   []string   // modifiers, specialties, visit kinds; strs[0] = ""
	places [][]string // place-of-service sets; places[0] = nil
	kinds  []string
	// Build-time lookups, dropped once the engine is built.
	strIDs, placeIDs, kindIDs map[string]uint32
}

func newCriteriaTable() *criteriaTable {
	return &criteriaTable{strs: []string{""}, places: [][]string{nil},
		strIDs: map[string]uint32{}, placeIDs: map[string]uint32{}, kindIDs: map[string]uint32{}}
}

func (t *criteriaTable) str(s string) uint32 {
	if s == "" {
		return 0
	}
	return intern(t.strIDs, &t.strs, s, s)
}

func (t *criteriaTable) placeSet(ps []string) uint32 {
	if len(ps) == 0 {
		return 0
	}
	return intern(t.placeIDs, &t.places, strings.Join(ps, ","), ps)
}

func (t *criteriaTable) kind(k string) uint8 {
	return uint8(intern(t.kindIDs, &t.kinds, k, k)) // validated kinds are the few known ones
}

// intern returns the id of key in ids, appending v to vals when key is new.
func intern[T any](ids map[string]uint32, vals *[]T, key string, v T) uint32 {
	id, ok := ids[key]
	if !ok {
		id = uint32(len(*vals))
		*vals = append(*vals, v)
		ids[key] = id
	}
	return id
}

func (t *criteriaTable) done() { t.strIDs, t.placeIDs, t.kindIDs = nil, nil, nil }

// span is a bucket: n positions from off in rateIndex.pos.
type span struct{ off, n uint32 }

// rateIndex answers "which rates of one contract can apply to this line"
// without scanning the contract's rates. All rates sit in one slice sorted
// by the full tie-break order, and every bucket holds ascending positions in
// it, so the first match in a bucket is that bucket's best and the smallest
// position over the buckets is the winner.
type rateIndex struct {
	rates       []rateRec
	crit        *criteriaTable
	pos         []int32         // every bucket's positions, back to back
	exact       exactTable      // by codeKey, for codes of up to 8 bytes
	exactLong   map[string]span // longer codes (none in CPT or HCPCS)
	bySpecialty map[string]span
	byVisitKind map[string]span
	// Ranges as elementary segments: rangePts holds the sorted distinct
	// bounds; segment 2k is the point rangePts[k], segment 2k+1 the codes
	// strictly between rangePts[k] and rangePts[k+1]. rangeKeys holds their
	// codeKeys when every bound is short, for integer comparisons.
	rangePts  []string
	rangeKeys []uint64
	rangeSegs []span
	// The first positions of a range rate and of a rate naming no code:
	// lookup skips their buckets when a better rate is already found, so
	// that most lines search neither the ranges nor the criteria maps.
	firstRange, firstNone int32
}

// codeKey packs a code of up to 8 bytes into an integer that compares as
// the code does (bytes big-endian, zero-padded), so that lookups hash and
// compare integers. ok is false for longer codes and for codes holding a
// NUL byte, which the padding would make ambiguous.
func codeKey(s string) (key uint64, ok bool) {
	if len(s) > 8 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return 0, false
		}
		key |= uint64(s[i]) << (56 - 8*i)
	}
	return key, true
}

// pendingRate is an accepted active rate between Builder.Add and Build: its
// record and the strings its ordering key and buckets need, without the
// contracts.Rate (about 120 bytes instead of 250).
type pendingRate struct {
	rec                        rateRec
	code, rangeStart, rangeEnd string
	class, optional            uint8
}

func newPendingRate(r *contracts.Rate, idOff uint32, priority map[string]int, crit *criteriaTable) pendingRate {
	ir := newIndexedRate(r, priority)
	rec := rateRec{value: r.Value, minUnits: int64(r.MinUnits), maxUnits: int64(r.MaxUnits), eff: ir.eff, end: ir.end,
		idOff: idOff, idLen: uint32(len(r.ID)), modifier: crit.str(r.Modifier), specialty: crit.str(r.Specialty), visitKind: crit.str(r.VisitKind),
		places: crit.placeSet(r.PlaceOfService), priority: uint8(ir.priority), kind: crit.kind(r.Kind), typ: r.Type}
	if ir.criteria {
		rec.flags |= recCriteria
	}
	if r.RequiresAuth {
		rec.flags |= recAuth
	}
	if r.RequiresReview {
		rec.flags |= recReview
	}
	p := pendingRate{rec: rec, rangeStart: ir.rangeStart, rangeEnd: ir.rangeEnd, class: ir.class, optional: ir.optional}
	if ir.class == classExact {
		p.code = r.CPTCode
	}
	return p
}

// key is p's ordering key; ids holds its rate id (see rateRec.idOff).
func (p *pendingRate) key(ids string) indexedRate {
	return indexedRate{id: ids[p.rec.idOff : p.rec.idOff+p.rec.idLen], rangeStart: p.rangeStart, rangeEnd: p.rangeEnd, priority: int(p.rec.priority),
		eff: p.rec.eff, end: p.rec.end, class: p.class, optional: p.optional, criteria: p.rec.flags&recCriteria != 0}
}

// newRateIndex indexes the pending rates of one contract (it sorts ps);
// ids holds the rate ids (see rateRec.idOff).
func newRateIndex(ps []pendingRate, crit *criteriaTable, ids string) *rateIndex {
	slices.SortFunc(ps, func(a, b pendingRate) int { return compareRates(a.key(ids), b.key(ids)) })
	ix := &rateIndex{rates: make([]rateRec, len(ps)), crit: crit}
	keys := make([]indexedRate, len(ps))
	var pts []string
	for i := range ps {
		ix.rates[i], keys[i] = ps[i].rec, ps[i].key(ids)
		if keys[i].class == classRange {
			pts = append(pts, keys[i].rangeStart, keys[i].rangeEnd)
		}
	}
	for i := len(keys) - 1; i >= 0; i-- {
		ix.rates[i].tieEnd = int32(i + 1)
		if i+1 < len(keys) && compareKey(&keys[i], &keys[i+1]) == 0 {
			ix.rates[i].tieEnd = ix.rates[i+1].tieEnd
		}
	}

	ix.firstRange, ix.firstNone = int32(len(ps)), int32(len(ps))
	for i := len(keys) - 1; i >= 0; i-- {
		switch keys[i].class {
		case classRange:
			ix.firstRange = int32(i)
		case classNone:
			ix.firstNone = int32(i)
		}
	}
	slices.Sort(pts)
	ix.rangePts = slices.Compact(pts)
	segs := make([][]int32, 2*len(ix.rangePts))
	exact := map[uint64][]int32{}
	exactLong := map[string][]int32{}
	bySpecialty := map[string][]int32{}
	byVisitKind := map[string][]int32{}
	for i := range ps {
		pos, k, p := int32(i), &keys[i], &ps[i]
		switch {
		case k.class == classExact:
			if key, ok := codeKey(p.code); ok {
				exact[key] = append(exact[key], pos)
			} else {
				exactLong[p.code] = append(exactLong[p.code], pos)
			}
		case k.class == classRange:
			lo, _ := slices.BinarySearch(ix.rangePts, k.rangeStart)
			hi, _ := slices.BinarySearch(ix.rangePts, k.rangeEnd)
			for j := lo; j <= hi; j++ {
				segs[2*j] = append(segs[2*j], pos)
				if j < hi {
					segs[2*j+1] = append(segs[2*j+1], pos)
				}
			}
		case p.rec.specialty != 0:
			spec := crit.strs[p.rec.specialty]
			bySpecialty[spec] = append(bySpecialty[spec], pos)
		default:
			vk := crit.strs[p.rec.visitKind]
			byVisitKind[vk] = append(byVisitKind[vk], pos)
		}
	}
	ix.exact = newExactTable(ix, exact)
	if len(exactLong) > 0 {
		ix.exactLong = flatten(ix, exactLong)
	}
	ix.rangeKeys = make([]uint64, len(ix.rangePts))
	for k, p := range ix.rangePts {
		key, ok := codeKey(p)
		if !ok {
			ix.rangeKeys = nil
			break
		}
		ix.rangeKeys[k] = key
	}
	ix.bySpecialty = flatten(ix, bySpecialty)
	ix.byVisitKind = flatten(ix, byVisitKind)
	ix.rangeSegs = make([]span, len(segs))
	for k, b := range segs {
		ix.rangeSegs[k] = ix.add(b)
	}
	return ix
}

// flatten moves buckets into ix.pos, in key order so that the layout (and
// so the run) does not depend on map iteration.
func flatten[K cmp.Ordered](ix *rateIndex, buckets map[K][]int32) map[K]span {
	keys := slices.Sorted(maps.Keys(buckets))
	out := make(map[K]span, len(buckets))
	for _, k := range keys {
		out[k] = ix.add(buckets[k])
	}
	return out
}

// exactTable maps codeKeys to exact-code buckets by open addressing in one
// flat array, so that the slot of a code has an address computable ahead
// of the lookup (see Pricer.Prefetch), which a Go map does not offer.
type exactTable struct {
	slots []exactSlot // a power of two, at most half full
	shift uint8       // 64 - log2(len(slots))
}

// exactSlot is one code's bucket. Key 0 marks an empty slot: a code with a
// key is non-empty and NUL-free, so its key is never 0. A bucket of one
// rate (most codes) keeps its position in the slot itself, saving a read.
type exactSlot struct {
	key uint64
	n   uint32
	v   [1]int32 // the position when n == 1, else the offset in rateIndex.pos
}

func (t *exactTable) home(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> t.shift }

// newExactTable lays out buckets, in key order so that the layout does not
// depend on map iteration.
func newExactTable(ix *rateIndex, buckets map[uint64][]int32) exactTable {
	if len(buckets) == 0 {
		return exactTable{}
	}
	bits := 1
	for 1<<bits < 2*len(buckets) {
		bits++
	}
	t := exactTable{slots: make([]exactSlot, 1<<bits), shift: uint8(64 - bits)}
	mask := uint64(len(t.slots) - 1)
	for _, k := range slices.Sorted(maps.Keys(buckets)) {
		i := t.home(k)
		for t.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		b := buckets[k]
		sl := exactSlot{key: k, n: uint32(len(b))}
		if len(b) == 1 {
			sl.v[0] = b[0]
		} else {
			sl.v[0] = int32(ix.add(b).off)
		}
		t.slots[i] = sl
	}
	return t
}

// slot returns the slot of key, nil when the table does not hold it.
func (t *exactTable) slot(key uint64) *exactSlot {
	if key == 0 || len(t.slots) == 0 { // 0 is the key of "", and of no code
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.home(key); ; i = (i + 1) & mask {
		switch sl := &t.slots[i]; sl.key {
		case key:
			return sl
		case 0:
			return nil
		}
	}
}

// exactBucket returns the positions of the exact rates of the code whose
// codeKey is key.
func (ix *rateIndex) exactBucket(key uint64) []int32 {
	switch sl := ix.exact.slot(key); {
	case sl == nil:
		return nil
	case sl.n == 1:
		return sl.v[:]
	default:
		return ix.pos[sl.v[0] : uint32(sl.v[0])+sl.n]
	}
}

// prefetchRate starts loading the first rate of the exact bucket of key
// (or the bucket's positions), once its slot has been prefetched and had
// time to arrive (see Pricer.Prefetch).
func (ix *rateIndex) prefetchRate(key uint64) {
	switch sl := ix.exact.slot(key); {
	case sl == nil:
	case sl.n == 1:
		prefetch(unsafe.Pointer(&ix.rates[sl.v[0]]))
	default:
		prefetch(unsafe.Pointer(&ix.pos[sl.v[0]]))
	}
}

func (ix *rateIndex) add(b []int32) span {
	s := span{off: uint32(len(ix.pos)), n: uint32(len(b))}
	ix.pos = append(ix.pos, b...)
	return s
}

func (ix *rateIndex) bucket(s span) []int32 { return ix.pos[s.off : s.off+s.n] }

// compareRates is the full winner order of docs/pricing.md step 3: priority, then
// exact over range over none (a later range start, then an earlier end, wins
// between ranges), more optional criteria, later effective date, smaller id.
func compareRates(a, b indexedRate) int {
	if c := compareKey(&a, &b); c != 0 {
		return c
	}
	return compareIDs(a.id, b.id)
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
		if c := strings.Compare(b.rangeStart, a.rangeStart); c != 0 {
			return c
		}
		if c := strings.Compare(a.rangeEnd, b.rangeEnd); c != 0 {
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
func (ix *rateIndex) matchesInBucket(r *rateRec, l *claims.Line) bool {
	if r.eff > l.ServiceDate || (r.end != 0 && r.end < l.ServiceDate) {
		return false
	}
	if r.flags&recCriteria == 0 {
		return true
	}
	t := ix.crit
	if r.modifier != 0 && !l.HasModifier(t.strs[r.modifier]) {
		return false
	}
	if r.specialty != 0 && t.strs[r.specialty] != l.Specialty {
		return false
	}
	if r.visitKind != 0 && t.strs[r.visitKind] != l.VisitKind {
		return false
	}
	return r.places == 0 || slices.Contains(t.places[r.places], l.POS)
}

// firstMatch returns the smallest position in bucket whose rate matches l,
// stopping early at limit (a better position already found elsewhere).
func (ix *rateIndex) firstMatch(bucket []int32, l *claims.Line, limit int32) int32 {
	for _, pos := range bucket {
		if pos >= limit {
			break
		}
		if ix.matchesInBucket(&ix.rates[pos], l) {
			return pos
		}
	}
	return limit
}

// lookup returns the position of the winning rate for l (-1 for none) and
// whether another matching rate ties with it on criteria (a)-(d) with a
// different type or value.
func (ix *rateIndex) lookup(l *claims.Line) (best int32, conflict bool) {
	// Buckets by class, best class first. A bucket whose rates all sit at
	// or after the best match so far cannot win, nor tie with it (a tie
	// shares the class), so it is not looked up.
	var buckets [4][]int32
	none := int32(len(ix.rates))
	key, short := codeKey(l.CPT)
	if short {
		buckets[0] = ix.exactBucket(key)
	} else if s, ok := ix.exactLong[l.CPT]; ok {
		buckets[0] = ix.bucket(s)
	}
	pos := ix.firstMatch(buckets[0], l, none)
	if len(ix.rangePts) > 0 && pos > ix.firstRange {
		var k int
		var at bool // l.CPT is the bound rangePts[k]
		if short && ix.rangeKeys != nil {
			k, at = slices.BinarySearch(ix.rangeKeys, key)
		} else {
			k, at = slices.BinarySearch(ix.rangePts, l.CPT)
		}
		switch {
		case at:
			buckets[1] = ix.bucket(ix.rangeSegs[2*k])
		case k > 0:
			buckets[1] = ix.bucket(ix.rangeSegs[2*(k-1)+1])
		}
	}
	pos = ix.firstMatch(buckets[1], l, pos)
	if pos > ix.firstNone {
		if l.Specialty != "" && len(ix.bySpecialty) > 0 {
			buckets[2] = ix.bucket(ix.bySpecialty[l.Specialty])
		}
		if l.VisitKind != "" && len(ix.byVisitKind) > 0 {
			buckets[3] = ix.bucket(ix.byVisitKind[l.VisitKind])
		}
		pos = ix.firstMatch(buckets[2], l, pos)
		pos = ix.firstMatch(buckets[3], l, pos)
	}
	if pos == none {
		return -1, false
	}
	w := &ix.rates[pos]
	// A conflicting rate ties with the winner on (a)-(d), so it sits just
	// after it, before w.tieEnd, in one of the same buckets.
	for _, b := range buckets {
		i, _ := slices.BinarySearch(b, pos+1)
		for ; i < len(b) && b[i] < w.tieEnd; i++ {
			other := &ix.rates[b[i]]
			if ix.matchesInBucket(other, l) && (other.typ != w.typ || other.value != w.value) {
				return pos, true
			}
		}
	}
	return pos, false
}
