package pipeline

// claimSet is a set of 64-bit claim-id hashes: open addressing with linear
// probing, 8 bytes a slot at most 80% full, so the grouping check costs 10
// to 20 bytes per claim (a Go map costs several times that). It is probed
// once per claim, not per line, so the longer probes of a full table cost
// little.
type claimSet struct {
	slots []uint64 // 0 = empty; a zero hash is stored as 1
	n     int
}

func (s *claimSet) has(h uint64) bool {
	if len(s.slots) == 0 {
		return false
	}
	if h == 0 {
		h = 1
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (s *claimSet) add(h uint64) {
	if h == 0 {
		h = 1
	}
	if 5*(s.n+1) > 4*len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

func (s *claimSet) grow() {
	old := s.slots
	size := 2 * len(old)
	if size == 0 {
		size = 1 << 12
	}
	s.slots, s.n = make([]uint64, size), 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}
