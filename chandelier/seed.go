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
	fresh := make(map[string]int32, len(peers))
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
		i := o.add(p)
		fresh[p.ID] = i
		added = append(added, i)
	}
	links = slices.Clone(links)
	slices.SortFunc(links, func(a, b Link) int {
		da, db := a.Depth, b.Depth
		if da <= 0 {
			da = 1 << 30
		}
		if db <= 0 {
			db = 1 << 30
		}
		return cmp.Or(cmp.Compare(a.Stripe, b.Stripe), cmp.Compare(da, db), cmp.Compare(a.Peer, b.Peer))
	})
	// A new parent forwards the stripe most of its children report.
	votes := map[int32][]int{}
	for _, l := range links {
		q, ok := fresh[l.Parent]
		if !ok || l.Stripe < 0 || l.Stripe >= o.cfg.Stripes || o.nodes[q].feeds < 1 {
			continue
		}
		v := votes[q]
		if v == nil {
			v = make([]int, o.cfg.Stripes)
			votes[q] = v
		}
		v[l.Stripe]++
	}
	for _, i := range added {
		v := votes[i]
		if v == nil {
			continue
		}
		best := 0
		for s := range v {
			if v[s] > v[best] {
				best = s
			}
		}
		o.setInterior(i, best)
	}
	for _, l := range links {
		if o.seedLink(l, fresh) {
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

// seedLink links l when it is valid (see Seed); only peers added by this
// Seed take links.
func (o *Optimizer) seedLink(l Link, fresh map[string]int32) bool {
	i, ok := fresh[l.Peer]
	if !ok || l.Stripe < 0 || l.Stripe >= o.cfg.Stripes {
		return false
	}
	s := l.Stripe
	q := int32(0)
	if l.Parent != Origin {
		if q, ok = o.byID[l.Parent]; !ok || q == i {
			return false
		}
	}
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
