package pipeline

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
)

// claimSet is a set of 64-bit claim-id hashes: open addressing with linear
// probing, 8 bytes a slot at most 80% full, 10 to 20 bytes per claim (a Go
// map costs several times that). It is probed once per claim, not per
// line, so the longer probes of a full table cost little.
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

func (s *claimSet) reset() {
	clear(s.slots)
	s.n = 0
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

// claimCheck finds a claim that reappears after another began: a
// reappearance among the last recentClaims to 2×recentClaims claims stops
// the pass at once (the common way scattered input shows itself), and every
// claim's hash is also logged for a final check of the whole pass. The log
// keeps one run of logChunk hashes in memory; full runs are sorted and
// spilled to a temporary file, and the final check merges them, so memory
// does not grow with the input (the hash set of the old design cost 10-20
// bytes a claim: 60 MB at 10M lines).
type claimCheck struct {
	recent, older claimSet
	run           []uint64 // the current run of the log
	spill         *os.File // the sorted runs before it
	lens          []int    // their lengths
	repeat        bool     // a run held a hash twice
}

// recentClaims is how many claims the early check remembers: two sets of
// at most this many, 512 KiB in all, which stay in the CPU's cache (with
// 1<<18, 8 MB, probing them cost a tenth of the reader's time). Scattered
// input repeats a claim far sooner; a repeat further apart is still found
// by the final check.
const recentClaims = 1 << 14

// logChunk is the number of hashes in one run of the log (512 KiB).
const logChunk = 1 << 16

// add records a claim that has ended.
func (c *claimCheck) add(h uint64) error {
	if c.recent.n >= recentClaims {
		c.older, c.recent = c.recent, c.older
		c.recent.reset()
	}
	c.recent.add(h)
	if c.run == nil {
		c.run = make([]uint64, 0, logChunk)
	}
	c.run = append(c.run, h)
	if len(c.run) < logChunk {
		return nil
	}
	return c.flush()
}

// recentlySeen reports whether h is among the last claims added.
func (c *claimCheck) recentlySeen(h uint64) bool { return c.recent.has(h) || c.older.has(h) }

// flush sorts the current run, notes a hash it holds twice and spills it.
func (c *claimCheck) flush() error {
	slices.Sort(c.run)
	for i := 1; i < len(c.run); i++ {
		if c.run[i] == c.run[i-1] {
			c.repeat = true
		}
	}
	if c.spill == nil {
		f, err := os.CreateTemp("", "repricer-claims-*")
		if err != nil {
			return fmt.Errorf("grouping check: %w", err)
		}
		c.spill = f
	}
	b := make([]byte, 0, 8*len(c.run))
	for _, h := range c.run {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	if _, err := c.spill.Write(b); err != nil {
		return fmt.Errorf("grouping check: %w", err)
	}
	c.lens = append(c.lens, len(c.run))
	c.run = c.run[:0]
	return nil
}

// discard removes the spill file, if any.
func (c *claimCheck) discard() error {
	if c.spill == nil {
		return nil
	}
	name := c.spill.Name()
	err := c.spill.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	c.spill = nil
	return err
}

// repeated reports whether any hash was added twice: it merges the sorted
// runs, comparing each hash with the one before, and removes the file.
func (c *claimCheck) repeated() (repeat bool, err error) {
	defer func() {
		if derr := c.discard(); err == nil {
			err = derr
		}
	}()
	if len(c.run) > 0 {
		if err := c.flush(); err != nil {
			return false, err
		}
	}
	if c.repeat || len(c.lens) < 2 {
		return c.repeat, nil
	}
	h := make(cursorHeap, 0, len(c.lens))
	var off int64
	for _, n := range c.lens {
		cur := &runCursor{r: bufio.NewReaderSize(io.NewSectionReader(c.spill, off, 8*int64(n)), 4096), left: n}
		off += 8 * int64(n)
		if err := cur.advance(); err != nil {
			return false, err
		}
		h = append(h, cur)
	}
	heap.Init(&h)
	for prev, first := uint64(0), true; len(h) > 0; first = false {
		cur := h[0]
		if !first && cur.v == prev {
			return true, nil
		}
		prev = cur.v
		if cur.left == 0 {
			heap.Pop(&h)
			continue
		}
		if err := cur.advance(); err != nil {
			return false, err
		}
		heap.Fix(&h, 0)
	}
	return false, nil
}

// runCursor reads one sorted run of the spill file; v is its current hash.
type runCursor struct {
	r    *bufio.Reader
	left int
	v    uint64
}

func (cur *runCursor) advance() error {
	var b [8]byte
	if _, err := io.ReadFull(cur.r, b[:]); err != nil {
		return fmt.Errorf("grouping check: %w", err)
	}
	cur.v = binary.LittleEndian.Uint64(b[:])
	cur.left--
	return nil
}

// cursorHeap orders the runs by their current hash.
type cursorHeap []*runCursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].v < h[j].v }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*runCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
