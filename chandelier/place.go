package chandelier

import (
	"cmp"
	"slices"
)

// depths sets depth[s] of every attached node by a breadth-first walk
// from the origin (the forwarders of s in the walk's order are returned
// in o.queue: by depth) and cuts any cycle among the detached nodes (a
// cycle can only come from a bug or a corrupted switch; cutting keeps the
// round safe).
func (o *Optimizer) depths(s int) {
	dep := o.depth[s]
	fill(dep, -1)
	q := o.queue[:0]
	attached := len(o.okids[s])
	for _, k := range o.okids[s] {
		dep[k] = 1
		if int(o.heads[k].interior) == s {
			q = append(q, k)
		}
	}
	// Only forwarders have children in s: leaves are set, not walked.
	// One level at a time, the forwarders' lists of children are read
	// first, then walked: the reads of nodes spread over memory go out
	// side by side instead of one after another.
	for from, d := 0, int32(2); from < len(q); d++ {
		level := q[from:]
		from = len(q)
		lists := o.kidLists[:0]
		for _, i := range level {
			lists = append(lists, o.nodes[i].kids)
		}
		o.kidLists = lists
		for _, kids := range lists {
			attached += len(kids)
			for _, k := range kids {
				dep[k] = d
				if int(o.heads[k].interior) == s {
					q = append(q, k)
				}
			}
		}
	}
	o.queue = q
	if attached == len(o.byID) {
		return
	}
	if cap(o.color) < len(o.nodes) {
		o.color = make([]uint8, len(o.nodes))
	}
	color := o.color[:len(o.nodes)]
	clear(color)
	for i := int32(1); int(i) < len(o.nodes); i++ {
		if !o.heads[i].alive || dep[i] >= 0 || color[i] != 0 {
			continue
		}
		j := i
		for j > 0 && dep[j] < 0 && color[j] == 0 && o.parentOf(j, s) >= 0 {
			color[j] = 1
			j = o.parentOf(j, s)
		}
		if j > 0 && color[j] == 1 {
			o.unlink(j, s) // j closes a cycle
		}
		for k := i; k > 0 && color[k] == 1; k = o.parentOf(k, s) {
			color[k] = 2
		}
	}
}

// hasSlot reports whether attached node i can take one more child in s.
func (o *Optimizer) hasSlot(i int32, s int) bool {
	x := &o.nodes[i]
	return int(x.interior) == s && len(x.kids) < int(x.feeds) && o.depth[s][i] > 0
}

// top returns the best live slot of h, dropping stale entries.
func (o *Optimizer) top(h *slotHeap, s int) (slot, bool) {
	for len(*h) > 0 {
		if t := (*h)[0]; o.hasSlot(t.i, s) {
			return t, true
		}
		h.pop()
	}
	return slot{}, false
}

// best returns the best slot a child behind NAT class c can use among
// heaps (one per parent class): shallowest, then the scarcer kind of
// parent (a child that can use anyone leaves open parents to those that
// cannot), then rank.
func (o *Optimizer) best(heaps []slotHeap, c NAT, s int) (slot, bool) {
	var b slot
	var bc NAT
	found := false
	for pc := NAT(0); pc < numNAT; pc++ {
		if !o.compat[pc][c] || len(heaps[pc]) == 0 {
			continue
		}
		t, ok := o.top(&heaps[pc], s)
		if !ok {
			continue
		}
		if !found || t.depth < b.depth ||
			t.depth == b.depth && (restrictiveness(pc) > restrictiveness(bc) ||
				restrictiveness(pc) == restrictiveness(bc) && t.before(b)) {
			b, bc, found = t, pc, true
		}
	}
	return b, found
}

// stripeState is one stripe's placement state within a round.
type stripeState struct {
	s          int
	originFree int
	reserved   int           // ISPs with interior peers in s but none attached
	leaves     [][]leafEntry // per ISP: attached leaves by depth, for displacement; built lazily
	leafNext   []int         // per ISP: entries before it are used or stale
	leavesOK   bool
	swap       [numNAT][][]leafEntry // per child NAT class, per ISP: see swapLeaves; built lazily
	swapNext   [numNAT][]int
	swapOK     [numNAT]bool
	home       bool // leaves take only their ISP's slots or the origin's
}

// placeKey is a detached root's sort key in placeStripe, read once per
// peer, not per comparison.
type placeKey struct {
	rank  float64
	restr int
	sec   int64 // Joined, as Unix seconds and nanoseconds
	nsec  int32
	i     int32
}

// placeStripe attaches the detached roots of stripe s (new peers and
// orphaned subtrees), best ranked first, then improves the stripe. It
// reports whether the stripe wants another pass even if nothing changes
// meanwhile: improving moves were made (more may follow), or a peer
// waits for a relayed placement.
func (o *Optimizer) placeStripe(s int) (again bool) {
	o.curStripe = s
	o.depths(s)
	nISP := len(o.isps)
	if cap(o.heaps) < nISP*int(numNAT) {
		o.heaps = make([]slotHeap, nISP*int(numNAT))
	}
	o.heaps = o.heaps[:nISP*int(numNAT)]
	for k := range o.heaps {
		o.heaps[k] = o.heaps[k][:0]
	}
	for k := range o.global {
		o.global[k] = o.global[k][:0]
	}
	o.rooted = slices.Grow(o.rooted[:0], nISP)[:nISP]
	clear(o.rooted)
	for _, i := range o.queue {
		x := &o.nodes[i]
		o.rooted[x.isp] = true
		if len(x.kids) < int(x.feeds) {
			o.pushSlot(i, s)
		}
	}
	st := stripeState{s: s, originFree: o.cfg.originSlots(s) - len(o.okids[s])}
	for k := range o.isps {
		if o.isps[k].interior[s] > 0 && !o.rooted[k] {
			st.reserved++
		}
	}
	keyed := o.keyed[:0]
	for i := 1; i < len(o.nodes); i++ {
		if o.heads[i].alive && o.parentOf(int32(i), s) < 0 {
			x := &o.nodes[i]
			keyed = append(keyed, placeKey{o.rank(x, s), restrictiveness(x.nat), x.peer.Joined.Unix(), int32(x.peer.Joined.Nanosecond()), int32(i)})
		}
	}
	o.keyed = keyed
	slices.SortFunc(keyed, func(a, b placeKey) int {
		if c := cmp.Or(cmp.Compare(b.rank, a.rank), cmp.Compare(b.restr, a.restr), cmp.Compare(a.sec, b.sec), cmp.Compare(a.nsec, b.nsec)); c != 0 {
			return c
		}
		return cmp.Compare(o.nodes[a.i].peer.ID, o.nodes[b.i].peer.ID)
	})
	items := slices.Grow(o.items[:0], len(keyed))[:len(keyed)]
	o.items = items
	for k, it := range keyed {
		items[k] = it.i
	}
	// A peer that finds no slot is retried after the others: the slots
	// it can use may come with a forwarder placed after it. Leaves are
	// first placed at home only (their ISP's slots or the origin's);
	// those left over may then cross a border. When upload is short
	// everywhere, a leaf taking another ISP's slot would only push one
	// of that ISP's own leaves onto the origin, and send the stripe
	// across the border for nothing.
	st.home = true
	for len(items) > 0 {
		failed := items[:0:0]
		for _, i := range items {
			p := o.choose(i, &st)
			// A forwarder takes a leaf's place when that puts it
			// higher than the best free slot.
			if p != 0 && o.displaceOriginLeaf(i, &st) || o.displace(i, &st, o.slotDepth(p), o.nodes[i].isp) {
				continue
			}
			if p < 0 && st.home && int(o.nodes[i].interior) != s {
				// Its ISP's free slots may be behind NATs it cannot
				// reach: swap with a leaf that can. Else it waits
				// for the pass that may cross.
				if !o.rescueHome(i, &st) {
					failed = append(failed, i)
				}
				continue
			}
			if p < 0 { // nothing free in reach: any leaf will do
				placed := false
				for k := range o.isps {
					if placed = o.displace(i, &st, 1<<30, int32(k)); placed {
						break
					}
				}
				if placed || o.rescue(i, &st) {
					continue
				}
			}
			if p >= 0 {
				o.link(i, p, s)
				if p == 0 {
					st.originFree--
				}
				o.settle(i, &st)
			} else {
				failed = append(failed, i)
			}
		}
		if len(failed) == len(items) {
			if !st.home {
				break
			}
			st.home = false
		}
		items = failed
	}
	if o.cfg.Relay {
		for _, i := range items {
			x := &o.nodes[i]
			switch {
			case x.parent[s] >= 0:
			case x.unfedSince[s].IsZero():
				x.unfedSince[s] = o.now
				again = true
			case o.now.Sub(x.unfedSince[s]) >= o.cfg.RelayAfter:
				if !o.relayPlace(i, &st) {
					again = true
				}
			default:
				again = true
			}
		}
	}
	return o.improve(&st) || again
}

// improve spends a small budget of edge changes per round (Config.Moves
// per thousand peers) on moves that make the stripe better: a forwarder
// with children moves up to a free slot in its ISP at least one level
// shallower (its whole subtree rises), deepest first; a peer fed across
// an ISP border moves to a free slot inside its ISP that is no deeper
// than ISPSlack levels below its parent (or, when no slot at home can
// reach it, swaps NATs with a leaf of its ISP); a peer fed through a
// relay moves first, to any direct slot. Churn leaves orphans wherever
// there was room; these moves bring the trees back towards a fresh
// build, a few edges at a time. It reports whether it moved anything.
func (o *Optimizer) improve(st *stripeState) bool {
	s := st.s
	budget := (len(o.byID)*o.cfg.Moves + 999) / 1000
	if budget == 0 {
		return false
	}
	start := budget
	// A forwarder lifts only into a free slot of its ISP at least two
	// levels above it: the shallowest free slot per ISP (whatever its
	// NAT) rules out most forwarders before any sorting.
	shallowest := o.shallowest[:0]
	for k := range o.isps {
		d := int32(1 << 30)
		for pc := range numNAT {
			if t, ok := o.top(&o.heaps[k*int(numNAT)+int(pc)], s); ok {
				d = min(d, t.depth)
			}
		}
		shallowest = append(shallowest, d)
	}
	o.shallowest = shallowest
	var cands []int32
	for i := int32(1); int(i) < len(o.nodes); i++ {
		h := &o.heads[i]
		d := o.depth[s][i]
		if !h.alive || d <= 1 {
			continue
		}
		p := o.parentOf(i, s)
		cross := p > 0 && o.heads[p].isp != h.isp
		// (Edges are relayed only with Config.Relay.)
		if cross || o.cfg.Relay && o.relayedOf(i, s) ||
			int(h.interior) == s && d > 2 && shallowest[h.isp]+1 < d && len(o.nodes[i].kids) > 0 {
			cands = append(cands, i)
		}
	}
	rel := func(x *node) int {
		if x.relayed[s] {
			return 0
		}
		return 1
	}
	slices.SortFunc(cands, func(a, b int32) int {
		x, y := &o.nodes[a], &o.nodes[b]
		return cmp.Or(cmp.Compare(rel(x), rel(y)), cmp.Compare(o.depth[s][b], o.depth[s][a]), cmp.Compare(y.score, x.score), cmp.Compare(a, b))
	})
	slack := int32(o.cfg.ISPSlack)
	if slack < 0 {
		slack = 1 << 20 // strict locality: home at any depth
	}
	for _, i := range cands {
		if budget <= 0 {
			return budget < start
		}
		x := &o.nodes[i]
		p := x.parent[s]
		cross := p > 0 && o.nodes[p].isp != x.isp
		if cross && int(x.interior) == s && len(x.kids) < int(x.feeds) {
			// A forwarder fed from another ISP goes home in a leaf's
			// place when that costs at most ISPSlack levels.
			d := o.depth[s][i]
			o.unlink(i, s)
			if o.displaceIn(i, st, d+slack, x.isp, true) {
				if o.hasSlot(p, s) {
					o.pushSlot(p, s)
				}
				budget -= 2
				continue
			}
			o.link(i, p, s)
		}
		base := int(x.isp) * int(numNAT)
		sl, ok := o.best(o.heaps[base:base+int(numNAT)], x.nat, s)
		relayed := x.relayed[s]
		if relayed && !ok {
			// A relayed peer takes a direct slot anywhere.
			sl, ok = o.best(o.global[:], x.nat, s)
		}
		if !ok && cross && !relayed {
			// No free slot at home it can reach: swap NATs inside
			// its ISP (an easy leaf moves to a slot only it can use).
			o.unlink(i, s)
			if o.rescueHome(i, st) {
				if o.hasSlot(p, s) {
					o.pushSlot(p, s)
				}
				budget -= 2
				continue
			}
			o.link(i, p, s)
		}
		if !ok || sl.i == i {
			continue
		}
		if !(sl.depth+1 < o.depth[s][i] || cross && sl.depth <= o.depth[s][p]+slack || relayed) {
			continue
		}
		// The slot is not below i: it is shallower than i, or i is a
		// leaf here (a cross-ISP leaf has no subtree).
		if sl.depth >= o.depth[s][i] && int(x.interior) == s && len(x.kids) > 0 {
			continue
		}
		o.unlink(i, s)
		if p > 0 && o.hasSlot(p, s) {
			o.pushSlot(p, s)
		}
		o.link(i, sl.i, s)
		o.settle(i, st)
		budget--
	}
	return budget < start
}

// slotDepth is the depth of parent p's slot (0 for the origin); with no
// parent (-1) any depth is better.
func (o *Optimizer) slotDepth(p int32) int32 {
	switch {
	case p == 0:
		return 0
	case p < 0:
		return 1 << 30
	}
	return o.depth[o.curStripe][p]
}

// rank orders the peers to place in stripe s: forwarders by capacity ×
// maturity; leaves (rank 0) after them.
func (o *Optimizer) rank(x *node, s int) float64 {
	if int(x.interior) != s {
		return 0
	}
	return x.score
}

func (o *Optimizer) pushSlot(i int32, s int) {
	x := &o.nodes[i]
	sl := slot{depth: o.depth[s][i], score: x.score, i: i}
	o.heaps[int(x.isp)*int(numNAT)+int(x.nat)].push(sl)
	o.global[x.nat].push(sl)
}

// choose picks the parent of detached root i: the origin while it has
// slots beyond those kept for ISPs not yet fed (or when i would be the
// first feed of its ISP); else the shallowest reachable slot in i's ISP
// unless one elsewhere is more than ISPSlack levels shallower; else (a
// leaf only in the second pass, st.home false) a slot elsewhere; else
// the origin's kept slots. -1: no slot.
func (o *Optimizer) choose(i int32, st *stripeState) int32 {
	x := &o.nodes[i]
	s := st.s
	firstOfISP := int(x.interior) == s && !o.rooted[x.isp]
	if st.originFree > 0 && (st.originFree > st.reserved || firstOfISP) {
		return 0
	}
	base := int(x.isp) * int(numNAT)
	own, okOwn := o.best(o.heaps[base:base+int(numNAT)], x.nat, s)
	glob, okGlob := o.best(o.global[:], x.nat, s)
	switch {
	case okOwn && (!okGlob || o.cfg.ISPSlack < 0 || own.depth <= glob.depth+int32(o.cfg.ISPSlack)):
		return own.i
	case st.home && int(x.interior) != s:
		return -1 // a leaf with no slot at home waits for the second pass
	case okGlob:
		return glob.i
	case st.originFree > 0:
		return 0
	}
	return -1
}

// settle sets the depths of i's subtree after i was attached and offers
// its free slots.
func (o *Optimizer) settle(i int32, st *stripeState) {
	s := st.s
	p := o.nodes[i].parent[s]
	d := int32(1)
	if p > 0 {
		d = o.depth[s][p] + 1
	}
	o.depth[s][i] = d
	q := append(o.queue[:0], i)
	for h := 0; h < len(q); h++ {
		x := &o.nodes[q[h]]
		if int(x.interior) != s {
			continue
		}
		if !o.rooted[x.isp] {
			o.rooted[x.isp] = true
			st.reserved--
		}
		if len(x.kids) < int(x.feeds) {
			o.pushSlot(q[h], s)
		}
		for _, k := range x.kids {
			o.depth[s][k] = o.depth[s][q[h]] + 1
			q = append(q, k)
		}
	}
	o.queue = q
}

// rescue places i, which no free slot in reach can take, by moving an
// easy leaf (open, full-cone or restricted: any parent reaches it) from a
// parent that can reach i to a free slot i cannot use, and giving i the
// parent's slot. Hard NATs are placed first in each round, but churn can
// leave a stripe whose only free slots are behind symmetric or
// port-restricted parents. It reports whether i was placed.
func (o *Optimizer) rescue(i int32, st *stripeState) bool {
	s := st.s
	x := &o.nodes[i]
	o.buildLeaves(st)
	const probes = 256
	for k := range st.leaves {
		n := 0
		for _, e := range st.leaves[k][st.leafNext[k]:] {
			if n++; n > probes {
				break
			}
			l := &o.nodes[e.i]
			if !l.alive || o.depth[s][e.i] != e.depth || restrictiveness(l.nat) != 0 || int(l.interior) == s {
				continue
			}
			q := l.parent[s]
			if q < 0 || !o.compat[o.natOf(q)][x.nat] {
				continue
			}
			sl, ok := o.best(o.global[:], l.nat, s)
			if !ok || sl.i == q {
				return false // no free slot at all
			}
			o.unlink(e.i, s)
			o.link(e.i, sl.i, s)
			o.settle(e.i, st)
			o.link(i, q, s)
			o.settle(i, st)
			return true
		}
	}
	return false
}

// displaceOriginLeaf gives forwarder i (a detached root with a free
// slot) the origin slot of a leaf, which becomes i's child. Origin slots
// are the most valuable: after a crowd of peers whose upload is not
// measured yet, leaves hold them all.
func (o *Optimizer) displaceOriginLeaf(i int32, st *stripeState) bool {
	s := st.s
	x := &o.nodes[i]
	if int(x.interior) != s || len(x.kids) >= int(x.feeds) {
		return false
	}
	for _, l := range o.okids[s] {
		if n := &o.nodes[l]; int(n.interior) != s && o.compat[x.nat][n.nat] {
			o.unlink(l, s)
			o.link(i, 0, s)
			o.link(l, i, s)
			o.settle(i, st)
			return true
		}
	}
	return false
}

// under reports whether node j is i or below it in stripe s (depths of a
// subtree just unlinked are stale, so the walk follows parents).
func (o *Optimizer) under(j, i int32, s int) bool {
	for steps := 0; j > 0 && steps <= len(o.nodes); steps++ {
		if j == i {
			return true
		}
		j = o.nodes[j].parent[s]
	}
	return false
}

// leafEntry is a leaf of the stripe as it was when the list was built.
type leafEntry struct {
	i     int32
	depth int32
}

// leafFound is a leaf and its ISP, as buildLeaves finds them.
type leafFound struct {
	leafEntry
	isp int32
}

// displace puts forwarder i (a detached root with a free slot) in the
// place of an attached leaf of its ISP no deeper than maxDepth, which
// becomes i's child (isp is the leaves' ISP, normally i's own): the
// shallowest such leaf it can connect to and whose
// parent can reach it. Forwarders belong above leaves: placed in one
// build they are, but a forwarder that joins a full tree, or whose upload
// was measured only after it joined as a leaf, would otherwise stay deep.
// It also keeps leaf-only peers that came first from locking forwarders
// out of a full tree. It reports whether i was placed.
func (o *Optimizer) displace(i int32, st *stripeState, maxDepth int32, isp int32) bool {
	s := st.s
	o.buildLeaves(st)
	x := &o.nodes[i]
	if int(x.interior) != s || len(x.kids) >= int(x.feeds) || maxDepth < 1 {
		return false
	}
	return o.displaceIn(i, st, maxDepth, isp, false)
}

// buildLeaves lists the stripe's attached leaves per ISP, by depth then
// index, once per round and stripe, in storage the Optimizer keeps (a
// counting sort: depths are small).
func (o *Optimizer) buildLeaves(st *stripeState) {
	if st.leavesOK {
		return
	}
	st.leavesOK = true
	s := st.s
	found := o.leafFound[:0]
	maxD := int32(0)
	for j := 1; j < len(o.nodes); j++ {
		if l := &o.heads[j]; l.alive && int(l.interior) != s && o.depth[s][j] > 0 {
			found = append(found, leafFound{leafEntry{int32(j), o.depth[s][j]}, l.isp})
			maxD = max(maxD, o.depth[s][j])
		}
	}
	o.leafFound = found
	// Sort by (ISP, depth), stable: within each, by index.
	key := func(f leafFound) int { return int(f.isp)*int(maxD+1) + int(f.depth) }
	start := slices.Grow(o.leafStart[:0], len(o.isps)*int(maxD+1)+1)[:len(o.isps)*int(maxD+1)+1]
	clear(start)
	for _, f := range found {
		start[key(f)+1]++
	}
	for k := 1; k < len(start); k++ {
		start[k] += start[k-1]
	}
	o.leafStart = start
	buf := slices.Grow(o.leafBuf[:0], len(found))[:len(found)]
	o.leafBuf = buf
	for _, f := range found {
		buf[start[key(f)]] = f.leafEntry
		start[key(f)]++
	}
	// start[k] is now the end of key k: ISP k's list ends at the end of
	// its deepest key.
	st.leaves = slices.Grow(o.leafLists[:0], len(o.isps))[:len(o.isps)]
	st.leafNext = slices.Grow(o.leafNext[:0], len(o.isps))[:len(o.isps)]
	o.leafLists, o.leafNext = st.leaves, st.leafNext
	from := 0
	for k := range st.leaves {
		end := start[(k+1)*int(maxD+1)-1]
		st.leaves[k] = buf[from:end:end]
		st.leafNext[k] = 0
		from = end
	}
}

// displaceIn is displace within the leaves of one ISP; home restricts it
// to leaves whose parent is the origin or in i's ISP.
func (o *Optimizer) displaceIn(i int32, st *stripeState, maxDepth int32, isp int32, home bool) bool {
	s := st.s
	o.buildLeaves(st)
	x := &o.nodes[i]
	const probes = 64
	list := st.leaves[isp]
	next := &st.leafNext[isp]
	for k, n := *next, 0; k < len(list) && n < probes; k, n = k+1, n+1 {
		e := list[k]
		if e.depth > maxDepth {
			return false
		}
		l := &o.nodes[e.i]
		if !l.alive || o.depth[s][e.i] != e.depth || l.parent[s] < 0 || int(l.interior) == s {
			if k == *next {
				*next = k + 1
			}
			continue
		}
		p := l.parent[s]
		if !o.compat[o.natOf(p)][x.nat] || !o.compat[x.nat][l.nat] ||
			home && p > 0 && o.nodes[p].isp != x.isp || o.under(p, i, s) {
			continue
		}
		o.unlink(e.i, s)
		o.link(i, p, s)
		o.link(e.i, i, s)
		if k == *next {
			*next = k + 1
		}
		o.settle(i, st)
		return true
	}
	return false
}

// rescueHome places detached root i inside its own ISP when the ISP's
// free slots are all behind parents i cannot reach (a symmetric or
// port-restricted child when only symmetric parents have room, as
// arrivals in mixed order leave it). [Optimizer.improve] calls it for
// peers fed across a border, within its budget of moves: a leaf of i's
// ISP that the free slot's parent can reach moves there, and i takes the
// leaf's place under a home parent that can reach i. It costs two edges
// and keeps a feed from crossing an ISP border. It reports whether i
// was placed.
func (o *Optimizer) rescueHome(i int32, st *stripeState) bool {
	s := st.s
	x := &o.nodes[i]
	base := int(x.isp) * int(numNAT)
	var q slot
	found := false
	for pc := NAT(0); pc < numNAT; pc++ {
		if o.compat[pc][x.nat] {
			continue
		}
		if t, ok := o.topOutside(&o.heaps[base+int(pc)], s, i); ok && (!found || t.before(q)) {
			q, found = t, true
		}
	}
	if !found {
		return false
	}
	qc := o.nodes[q.i].nat
	list, next := o.swapLeaves(st, x.nat, x.isp)
	const probes = 256
	for k, n := *next, 0; k < len(list) && n < probes; k, n = k+1, n+1 {
		e := list[k]
		l := &o.nodes[e.i]
		if !l.alive || o.depth[s][e.i] != e.depth || int(l.interior) == s {
			if k == *next {
				*next = k + 1
			}
			continue
		}
		if !o.compat[qc][l.nat] {
			continue
		}
		pp := l.parent[s]
		if pp < 0 || pp == q.i || !o.compat[o.natOf(pp)][x.nat] || pp > 0 && o.nodes[pp].isp != x.isp || o.under(pp, i, s) {
			continue
		}
		o.unlink(e.i, s)
		o.link(e.i, q.i, s)
		o.settle(e.i, st)
		o.link(i, pp, s)
		o.settle(i, st)
		return true
	}
	return false
}

// topOutside returns the best live slot of h that is not i's or below
// it: the top, or when that one is (i's own free slot, typically) the
// best of the rest.
func (o *Optimizer) topOutside(h *slotHeap, s int, i int32) (slot, bool) {
	t, ok := o.top(h, s)
	if !ok || !o.under(t.i, i, s) {
		return t, ok
	}
	var b slot
	found := false
	for _, e := range (*h)[1:] {
		if (!found || e.before(b)) && o.hasSlot(e.i, s) && !o.under(e.i, i, s) {
			b, found = e, true
		}
	}
	return b, found
}

// swapLeaves returns the leaves of ISP isp, by depth, whose parent is in
// the ISP (or the origin) and could feed a child behind NAT class c — the
// leaves whose place such a child can take in rescueHome — and the index
// before which the list's entries are used or stale. Built once per
// round, stripe and class: skipping the leaves under parents the child
// cannot use would otherwise spend rescueHome's probes on the shallow
// levels, where parents behind hard NATs are common.
func (o *Optimizer) swapLeaves(st *stripeState, c NAT, isp int32) ([]leafEntry, *int) {
	o.buildLeaves(st)
	if !st.swapOK[c] {
		st.swapOK[c] = true
		s := st.s
		// One list per ISP, side by side in buf (in ISP order).
		buf := o.swapBuf[c][:0]
		lists := slices.Grow(o.swapLists[c][:0], len(o.isps))[:len(o.isps)]
		for k := range lists {
			from := len(buf)
			for _, e := range st.leaves[k][st.leafNext[k]:] {
				l := &o.nodes[e.i]
				pp := l.parent[s]
				if !l.alive || o.depth[s][e.i] != e.depth || int(l.interior) == s || pp < 0 ||
					pp > 0 && o.nodes[pp].isp != int32(k) || !o.compat[o.natOf(pp)][c] {
					continue
				}
				buf = append(buf, e)
			}
			lists[k] = buf[from:len(buf):len(buf)]
		}
		o.swapBuf[c], o.swapLists[c] = buf, lists
		st.swap[c] = lists
		st.swapNext[c] = fill(slices.Grow(o.swapNext[c][:0], len(o.isps))[:len(o.isps)], 0)
		o.swapNext[c] = st.swapNext[c]
	}
	return st.swap[c][isp], &st.swapNext[c][isp]
}

// relayPlace is the last resort for detached root i, which no free slot
// can reach directly even after the NAT swaps (Config.Relay): the best
// free slot whatever the NATs, in i's ISP first, through a relay. The
// round's improving moves take i to a direct slot when one frees up.
func (o *Optimizer) relayPlace(i int32, st *stripeState) bool {
	s := st.s
	x := &o.nodes[i]
	pick := func(heaps []slotHeap) (slot, bool) {
		var b slot
		found := false
		for pc := range heaps {
			if t, ok := o.top(&heaps[pc], s); ok && !o.under(t.i, i, s) && (!found || t.before(b)) {
				b, found = t, true
			}
		}
		return b, found
	}
	base := int(x.isp) * int(numNAT)
	sl, ok := pick(o.heaps[base : base+int(numNAT)])
	if !ok {
		if sl, ok = pick(o.global[:]); !ok {
			return false
		}
	}
	o.link(i, sl.i, s)
	x.relayed[s] = !o.compat[o.natOf(sl.i)][x.nat]
	if x.relayed[s] {
		o.relayedNow++
	}
	o.settle(i, st)
	return true
}
