package chandelier

// slot is a parent with free child slots, as the placement sees it.
type slot struct {
	depth int32
	score float64
	i     int32
}

// before orders slots: shallower first, then the better-ranked parent,
// then the lower index (determinism).
func (a slot) before(b slot) bool {
	if a.depth != b.depth {
		return a.depth < b.depth
	}
	if a.score != b.score {
		return a.score > b.score
	}
	return a.i < b.i
}

// slotHeap is a binary min-heap of slots. Entries go stale when their
// parent fills up; callers drop them lazily at the top.
type slotHeap []slot

func (h *slotHeap) push(s slot) {
	*h = append(*h, s)
	a := *h
	for j := len(a) - 1; j > 0; {
		p := (j - 1) / 2
		if !a[j].before(a[p]) {
			break
		}
		a[j], a[p] = a[p], a[j]
		j = p
	}
}

func (h *slotHeap) pop() {
	a := *h
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	for j := 0; ; {
		l, r, m := 2*j+1, 2*j+2, j
		if l < n && a[l].before(a[m]) {
			m = l
		}
		if r < n && a[r].before(a[m]) {
			m = r
		}
		if m == j {
			break
		}
		a[j], a[m] = a[m], a[j]
		j = m
	}
	*h = a
}
