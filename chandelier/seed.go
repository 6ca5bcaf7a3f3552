package chandelier

import (
	"cmp"
	"slices"
	"time"
)

// Link is one stripe edge a rejoining peer reports holding: Parent (a
// peer ID or [Origin]) feeds Peer the stripe now.
type Link struct {
	Peer   string
	Stripe int
	Parent string
	// Depth is the peer's own depth in the stripe as it knows it (1
	// under the origin); 0 unknown. Among the links into a parent with
	// too little room, the shallower are kept.
	Depth int
}

// SeedStats counts what a [Seeder] did with the reported links.
type SeedStats struct {
	Links int // links reported
	Kept  int // links kept as they were
	// Dropped counts the links refused: unknown parent or stripe, no
	// room left, a parent forwarding another stripe, a pair the NATs
	// forbid, or a cycle. The round places those stripes afresh.
	Dropped int
}

// Seeder is a [Placer] that can take a whole swarm of rejoining peers
// at once (a restarted tracker rebuilding its state from the peers)
// without building the trees from scratch.
type Seeder interface {
	Placer
	// Seed adds peers with the links they report, keeps every valid
	// link and then runs one round with ch (which should not list the
	// same peers again) placing only what is missing. Peers already
	// known are updated and their links ignored.
	Seed(now time.Time, peers []Peer, links []Link, ch Changes) (Plan, SeedStats)
}

var _ Seeder = (*Optimizer)(nil)

// Seed implements [Seeder]. Each new parent is made interior in the
// stripe most of its reported children take from it; a link is kept when
// its parent forwards that stripe with room left (the origin: its share
// of feeds), the NATs allow the pair (or the relay is on: it is then
// marked relayed), and it closes no cycle. Links are taken by stripe,
// shallowest reported depth first. ISP locality is not asked of a kept
// link; the round's improvement budget moves cross-ISP peers as usual.
func (o *Optimizer) Seed(now time.Time, peers []Peer, links []Link, ch Changes) (Plan, SeedStats) {
	st := SeedStats{Links: len(links)}
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b Peer) int { return cmp.Compare(a.ID, b.ID) })
	var added []int32
	for _, p := range peers {
		if p.ID == "" || p.ID == Origin {
			ch.Join = append(ch.Join, p) // rejected by the round
			continue
		}
		if _, ok := o.byID[p.ID]; ok {
			ch.Update = append(ch.Update, p)
			continue
		}
		added = append(added, o.add(p))
	}
	K := o.cfg.Stripes
	fresh := make([]bool, len(o.nodes)) // by node index: added here
	for _, i := range added {
		fresh[i] = true
	}
	// Resolve the links once: child and parent indexes, valid stripes.
	type rlink struct {
		i, q  int32
		s     int
		depth int
	}
	rl := make([]rlink, 0, len(links))
	for _, l := range links {
		i, ok := o.byID[l.Peer]
		q := int32(0)
		if ok && l.Parent != Origin {
			q, ok = o.byID[l.Parent]
		}
		if !ok || !fresh[i] || l.Stripe < 0 || l.Stripe >= K || q == i {
			st.Dropped++
			continue
		}
		d := l.Depth
		if d <= 0 {
			d = 1 << 30
		}
		rl = append(rl, rlink{i: i, q: q, s: l.Stripe, depth: d})
	}
	slices.SortFunc(rl, func(a, b rlink) int {
		return cmp.Or(cmp.Compare(a.s, b.s), cmp.Compare(a.depth, b.depth), cmp.Compare(a.i, b.i))
	})
	// A new parent forwards the stripe most of its children report.
	votes := make([]int32, len(o.nodes)*K)
	for _, l := range rl {
		if l.q > 0 && fresh[l.q] && o.nodes[l.q].feeds >= 1 {
			votes[int(l.q)*K+l.s]++
		}
	}
	for _, i := range added {
		v := votes[int(i)*K : int(i)*K+K]
		best := 0
		for s := range v {
			if v[s] > v[best] {
				best = s
			}
		}
		if v[best] > 0 {
			o.setInterior(i, best)
		}
	}
	for _, l := range rl {
		if o.seedLink(l.i, l.q, l.s) {
			st.Kept++
		} else {
			st.Dropped++
		}
	}
	kept := make(map[int32][]int32, len(added)) // parents of peers still leaf-only
	for _, i := range added {
		if x := &o.nodes[i]; x.interior < 0 && x.feeds > 0 {
			kept[i] = slices.Clone(x.parent)
		}
	}
	// The others with upload forward the stripe their ISP lacks most;
	// they keep their parent there (setInterior would re-place them).
	for _, i := range added {
		x := &o.nodes[i]
		if x.interior >= 0 {
			continue
		}
		o.assignInterior(i)
		if s := int(x.interior); s >= 0 {
			if l, ok := kept[i]; ok && l[s] >= 0 && x.parent[s] < 0 {
				o.link(i, l[s], s)
				x.relayed[s] = o.cfg.Relay && !o.compat[o.natOf(l[s])][x.nat]
			}
		}
	}
	return o.Round(now, ch), st
}

// seedLink links new peer i under q in stripe s when that is valid (see
// Seed).
func (o *Optimizer) seedLink(i, q int32, s int) bool {
	x := &o.nodes[i]
	if x.parent[s] >= 0 || len(*o.kidsOf(q, s)) >= o.capOf(q, s) {
		return false
	}
	relayed := false
	if !o.compat[o.natOf(q)][x.nat] {
		if !o.cfg.Relay {
			return false
		}
		relayed = true
	}
	for j, steps := q, 0; j > 0; j, steps = o.nodes[j].parent[s], steps+1 {
		if j == i || steps > len(o.nodes) {
			return false // would close a cycle
		}
	}
	o.link(i, q, s)
	x.relayed[s] = relayed
	return true
}
