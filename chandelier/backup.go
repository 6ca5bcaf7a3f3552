package chandelier

import (
	"cmp"
	"slices"
	"sort"
)

// backupStripe refreshes the backups of stripe s and returns how many
// peers have no parent chain to the origin in s (the deficit).
//
// A backup of peer x under parent p is a forwarder of s that can reach x
// and is no deeper than p (no deeper than x when p is the origin), so it
// is neither x, p, nor below either of them: switching to it never closes
// a cycle and it does not fail with p. Valid backups are kept; missing
// ones are drawn from forwarders with a free slot, x's ISP first, at a
// per-peer offset so that siblings spread over different backups.
func (o *Optimizer) backupStripe(s int) (deficit int) {
	o.depths(s)
	nISP := max(len(o.isps), 1) // lists [2] and [3] use index 0 even with no ISP yet
	for k := range o.lists {
		if cap(o.lists[k]) < nISP {
			o.lists[k] = make([][]int32, nISP)
		}
		o.lists[k] = o.lists[k][:nISP]
		for j := range o.lists[k] {
			o.lists[k][j] = o.lists[k][j][:0]
		}
	}
	freeISP, allISP := o.lists[0], o.lists[1]
	freeAll, all := o.lists[2][:1], o.lists[3][:1]
	for _, i := range o.queue { // the forwarders, by depth
		x := &o.nodes[i]
		allISP[x.isp] = append(allISP[x.isp], i)
		all[0] = append(all[0], i)
		if len(x.kids) < int(x.feeds) {
			freeISP[x.isp] = append(freeISP[x.isp], i)
			freeAll[0] = append(freeAll[0], i)
		}
	}
	B := o.cfg.Backups
	dep := o.depth[s]
	for i := int32(1); int(i) < len(o.nodes); i++ {
		if !o.heads[i].alive {
			continue
		}
		if dep[i] < 0 {
			deficit++
		}
		p := o.parentOf(i, s)
		limit := int32(1 << 30)
		switch {
		case p == 0:
			limit = 1
		case p > 0 && dep[p] > 0:
			limit = dep[p]
		}
		// The list as the node has it (backups[s]), read from its
		// room in the slab: the node is visited only when it changes.
		room := o.backupRoom(i, s)
		had := slices.Index(room, noRef)
		if had < 0 {
			had = B
		}
		kept := room[:0]
		for _, b := range room[:had] {
			if o.validBackup(b, i, p, s, limit) && !slices.Contains(kept, b) && len(kept) < B {
				kept = append(kept, b)
			}
		}
		// Its ISP first (a switch elsewhere sends the stripe across a
		// border until a round moves it home), free slots first within
		// it (a switch to a full forwarder is not kept).
		n := len(kept)
		if len(kept) < B {
			isp := o.heads[i].isp
			for _, l := range [...][]int32{freeISP[isp], allISP[isp], freeAll[0], all[0]} {
				if len(kept) >= B {
					break
				}
				kept = o.draw(kept, l, i, p, s, limit)
			}
		}
		if len(kept)-n > 1 {
			// New backups are ranked behind the kept ones (a stable
			// list changes nothing at the peer).
			x := &o.nodes[i]
			slices.SortStableFunc(kept[n:], func(a, b ref) int { return o.rankBackup(x, s, a, b) })
		}
		if len(kept) != had {
			if len(kept) < had {
				fill(room[len(kept):had], noRef)
			}
			o.nodes[i].backups[s] = kept
		}
		// Kept in full and nothing drawn: the list is as it was, and as
		// last reported unless i is touched already.
		if len(kept) != had || len(kept) != n {
			o.touch(i)
		}
	}
	return deficit
}

func (o *Optimizer) validBackup(b ref, x, p int32, s int, limit int32) bool {
	if b.i <= 0 || int(b.i) >= len(o.nodes) || b.i == x || b.i == p {
		return false
	}
	n := &o.heads[b.i]
	return n.alive && n.gen == b.g && int(n.interior) == s && o.depth[s][b.i] > 0 && o.depth[s][b.i] <= limit &&
		o.compat[n.nat][o.heads[x].nat]
}

// draw appends backups for x from list (sorted by depth) to kept.
func (o *Optimizer) draw(kept []ref, list []int32, x, p int32, s int, limit int32) []ref {
	n := sort.Search(len(list), func(k int) bool { return o.depth[s][list[k]] > limit })
	if n == 0 {
		return kept
	}
	start := int(mix(uint64(x)<<8|uint64(s), uint64(o.nodes[x].gen)) % uint64(n))
	probes := min(n, 4*o.cfg.Backups+8)
	for k := range probes {
		b := list[(start+k)%n]
		r := ref{i: b, g: o.nodes[b].gen}
		if o.validBackup(r, x, p, s, limit) && !slices.Contains(kept, r) {
			kept = append(kept, r)
			if len(kept) >= o.cfg.Backups {
				break
			}
		}
	}
	return kept
}

// rankBackup orders two backups of x in stripe s by what the placement
// knows: the same ISP first (no border crossed), then one with a free
// slot (it can take x without going over its capacity), then closer
// (region, RTT), then the longer session (less likely to leave), then
// the index (determinism). Depth is bounded already (no deeper than the
// parent); ranking by it would send every sibling of a failed parent to
// the same few shallow forwarders. Reachability is a filter. The peer's
// [Repair] takes the first that has not failed and is not further
// behind live than itself (the lag the tracker passes on).
func (o *Optimizer) rankBackup(x *node, s int, a, b ref) int {
	na, nb := &o.nodes[a.i], &o.nodes[b.i]
	same := func(n *node) int {
		if n.isp == x.isp {
			return 0
		}
		return 1
	}
	full := func(n *node) int {
		if len(n.kids) < int(n.feeds) {
			return 0
		}
		return 1
	}
	return cmp.Or(
		cmp.Compare(same(na), same(nb)),
		cmp.Compare(full(na), full(nb)),
		o.closer(x, a, b),
		na.peer.Joined.Compare(nb.peer.Joined),
		cmp.Compare(a.i, b.i))
}

// closer ranks two backups of x: same ISP, then same region, then lower
// RTT when known.
func (o *Optimizer) closer(x *node, a, b ref) int {
	na, nb := &o.nodes[a.i], &o.nodes[b.i]
	sameISP := func(n *node) int {
		if n.isp == x.isp {
			return 0
		}
		return 1
	}
	sameRegion := func(n *node) int {
		if x.peer.Region != "" && n.peer.Region == x.peer.Region {
			return 0
		}
		return 1
	}
	if c := cmp.Or(cmp.Compare(sameISP(na), sameISP(nb)), cmp.Compare(sameRegion(na), sameRegion(nb))); c != 0 || o.cfg.RTT == nil {
		return c
	}
	ra, oka := o.cfg.RTT(x.peer.ID, na.peer.ID)
	rb, okb := o.cfg.RTT(x.peer.ID, nb.peer.ID)
	switch {
	case oka && okb:
		return cmp.Compare(ra, rb)
	case oka:
		return -1
	case okb:
		return 1
	}
	return 0
}

// mix is SplitMix64's finalizer over two words: a fixed, seedless hash.
func mix(a, b uint64) uint64 {
	z := a*0x9e3779b97f4a7c15 ^ b
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// diff fills plan with the assignments that changed since the last Plan:
// those of the peers touched since (Optimizer.dirty), not a walk over all.
func (o *Optimizer) diff(plan *Plan) {
	type change struct {
		i int32
		s int
	}
	var changed []change
	for _, i := range o.dirty {
		x := &o.nodes[i]
		x.dirty = false
		if !x.alive {
			continue
		}
		for s := range o.cfg.Stripes {
			par := noRef
			if p := x.parent[s]; p >= 0 {
				par = ref{i: p, g: o.nodes[p].gen}
			}
			switch {
			case par != x.sentPar[s]:
				if x.sentPar[s] == noRef {
					plan.Placed++
				} else {
					plan.Moved++
				}
			case !slices.Equal(x.backups[s], x.sentBack[s]):
				plan.BackupChanges++
			default:
				continue
			}
			x.sentPar[s] = par
			x.sentBack[s] = append(x.sentBack[s][:0], x.backups[s]...)
			changed = append(changed, change{i, s})
		}
	}
	o.dirty = o.dirty[:0]
	slices.SortFunc(changed, func(a, b change) int {
		return cmp.Or(cmp.Compare(o.nodes[a.i].peer.ID, o.nodes[b.i].peer.ID), cmp.Compare(a.s, b.s))
	})
	plan.Changed = make([]Assignment, len(changed))
	for k, c := range changed {
		plan.Changed[k] = o.assignment(c.i, c.s)
	}
}
