package chandelier

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// Baseline is the naive placement the figures compare against: every
// stripe of a peer goes to a uniformly random attached node with spare
// upload (a peer's feeds are shared by all stripes), blind to ISPs, NATs,
// session age and depth; backups are random nodes no deeper than the
// parent. Valid edges are kept between rounds, like [Optimizer]. It is
// not safe for concurrent use.
type Baseline struct {
	cfg   Config
	rng   *rand.Rand
	nodes []bnode // index 0 is the origin
	byID  map[string]int32
	free  []int32
	queue []int32
}

type bnode struct {
	peer    Peer
	alive   bool
	feeds   int
	used    int       // children over all stripes
	parent  []int32   // per stripe, -1 none
	depth   []int32   // per stripe, -1 detached
	kids    [][]int32 // per stripe
	backups [][]int32 // per stripe
	sent    []Assignment
}

// NewBaseline returns a Baseline drawing from src.
func NewBaseline(cfg Config, src rand.Source) (*Baseline, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Baseline{cfg: cfg, rng: rand.New(src), byID: map[string]int32{}}
	b.nodes = []bnode{b.newNode(Peer{ID: Origin})}
	b.nodes[0].alive = true
	b.nodes[0].feeds = cfg.OriginFeeds
	return b, nil
}

func (b *Baseline) newNode(p Peer) bnode {
	K := b.cfg.Stripes
	return bnode{
		peer: p, alive: true, feeds: b.cfg.Feeds(p.Upload),
		parent: fill(make([]int32, K), -1), depth: fill(make([]int32, K), -1),
		kids: make([][]int32, K), backups: make([][]int32, K), sent: make([]Assignment, K),
	}
}

// spare reports whether i can take one more child in stripe s: a peer
// shares its feeds among all stripes; the origin has its share per
// stripe, as in the Optimizer (each stripe must be seeded).
func (b *Baseline) spare(i int32, s int) bool {
	if i == 0 {
		return len(b.nodes[0].kids[s]) < b.cfg.originSlots(s)
	}
	return b.nodes[i].used < b.nodes[i].feeds
}

func (b *Baseline) unlink(i int32, s int) {
	p := b.nodes[i].parent[s]
	if p < 0 {
		return
	}
	k := &b.nodes[p].kids[s]
	if j := slices.Index(*k, i); j >= 0 {
		*k = slices.Delete(*k, j, j+1)
	}
	b.nodes[p].used--
	b.nodes[i].parent[s] = -1
}

func (b *Baseline) link(i, p int32, s int) {
	b.nodes[i].parent[s] = p
	b.nodes[p].kids[s] = append(b.nodes[p].kids[s], i)
	b.nodes[p].used++
}

// Round implements [Placer].
func (b *Baseline) Round(_ time.Time, ch Changes) Plan {
	var plan Plan
	K := b.cfg.Stripes
	var released []int32
	for _, id := range ch.Leave {
		i, ok := b.byID[id]
		if !ok {
			continue
		}
		for s := range K {
			b.unlink(i, s)
			for _, k := range b.nodes[i].kids[s] {
				b.nodes[k].parent[s] = -1
			}
			b.nodes[i].kids[s] = nil
		}
		b.nodes[i].alive = false
		delete(b.byID, id)
		released = append(released, i)
		plan.Left = append(plan.Left, id)
	}
	for _, list := range [][]Peer{ch.Join, ch.Update} {
		for _, p := range list {
			if p.ID == "" || p.ID == Origin {
				plan.Rejected = append(plan.Rejected, p.ID)
				continue
			}
			i, ok := b.byID[p.ID]
			if !ok {
				if n := len(b.free); n > 0 {
					i, b.free = b.free[n-1], b.free[:n-1]
					b.nodes[i] = b.newNode(p)
				} else {
					i = int32(len(b.nodes))
					b.nodes = append(b.nodes, b.newNode(p))
				}
				b.byID[p.ID] = i
				continue
			}
			x := &b.nodes[i]
			x.peer, x.feeds = p, b.cfg.Feeds(p.Upload)
			for x.used > x.feeds { // drop random children
				s := b.rng.IntN(K)
				if n := len(x.kids[s]); n > 0 {
					b.unlink(x.kids[s][b.rng.IntN(n)], s)
				}
			}
		}
	}
	for _, sw := range ch.Switched {
		i, ok := b.byID[sw.Peer]
		if ok && sw.Parent == "" && sw.Stripe >= 0 && sw.Stripe < K {
			b.unlink(i, sw.Stripe) // lost with no backup: re-placed below
			continue
		}
		q, okq := b.byID[sw.Parent]
		if sw.Parent == Origin {
			q, okq = 0, true
		}
		if !ok || !okq || sw.Stripe < 0 || sw.Stripe >= K {
			plan.Rejected = append(plan.Rejected, sw.Peer)
			continue
		}
		b.unlink(i, sw.Stripe)
		if q != i && b.spare(q, sw.Stripe) && !b.below(q, i, sw.Stripe) {
			b.link(i, q, sw.Stripe)
		}
	}
	b.place()
	for s := range K {
		plan.Deficit += b.finish(s)
	}
	b.diff(&plan)
	b.free = append(b.free, released...)
	plan.Peers = len(b.byID)
	slices.Sort(plan.Left)
	slices.Sort(plan.Rejected)
	return plan
}

// below reports whether j is in the subtree of a in stripe s.
func (b *Baseline) below(j, a int32, s int) bool {
	for steps := 0; j > 0 && steps <= len(b.nodes); steps++ {
		if j == a {
			return true
		}
		j = b.nodes[j].parent[s]
	}
	return false
}

// walk sets depths in stripe s from the origin and leaves the attached
// nodes in b.queue, by depth.
func (b *Baseline) walk(s int) {
	for i := range b.nodes {
		b.nodes[i].depth[s] = -1
	}
	b.nodes[0].depth[s] = 0
	b.queue = append(b.queue[:0], 0)
	for h := 0; h < len(b.queue); h++ {
		x := &b.nodes[b.queue[h]]
		for _, k := range x.kids[s] {
			b.nodes[k].depth[s] = x.depth[s] + 1
			b.queue = append(b.queue, k)
		}
	}
}

// place attaches every detached (peer, stripe) pair, in a random order
// over all stripes (a peer's feeds are shared, so no stripe goes first),
// each under a random attached node with spare upload; pairs that find
// none are retried once after the others.
func (b *Baseline) place() {
	K := b.cfg.Stripes
	cands := make([][]int32, K)
	type pair struct {
		i int32
		s int
	}
	var items []pair
	for s := range K {
		b.walk(s)
		for _, i := range b.queue {
			if b.spare(i, s) {
				cands[s] = append(cands[s], i)
			}
		}
		for i := 1; i < len(b.nodes); i++ {
			if b.nodes[i].alive && b.nodes[i].parent[s] < 0 {
				items = append(items, pair{int32(i), s})
			}
		}
	}
	b.rng.Shuffle(len(items), func(x, y int) { items[x], items[y] = items[y], items[x] })
	for pass := 0; pass < 2 && len(items) > 0; pass++ {
		var failed []pair
		for _, it := range items {
			if !b.attach(it.i, it.s, &cands[it.s]) {
				failed = append(failed, it)
			}
		}
		items = failed
	}
}

// attach puts detached root i of stripe s under a random candidate with
// spare upload and offers the slots of its subtree.
func (b *Baseline) attach(i int32, s int, cands *[]int32) bool {
	c := *cands
	defer func() { *cands = c }()
	for len(c) > 0 {
		k := b.rng.IntN(len(c))
		p := c[k]
		if !b.spare(p, s) || b.nodes[p].depth[s] < 0 {
			c[k] = c[len(c)-1]
			c = c[:len(c)-1]
			continue
		}
		b.link(i, p, s)
		q := append(b.queue[:0], i)
		for h := 0; h < len(q); h++ {
			x := &b.nodes[q[h]]
			x.depth[s] = b.nodes[x.parent[s]].depth[s] + 1
			if b.spare(q[h], s) {
				c = append(c, q[h])
			}
			q = append(q, x.kids[s]...)
		}
		b.queue = q
		return true
	}
	return false
}

// finish refreshes the backups of stripe s and returns its deficit.
func (b *Baseline) finish(s int) (deficit int) {
	// Backups, and the deficit.
	b.walk(s)
	for i := 1; i < len(b.nodes); i++ {
		x := &b.nodes[i]
		if !x.alive {
			continue
		}
		if x.depth[s] < 0 {
			deficit++
		}
		limit := int32(1 << 30)
		if p := x.parent[s]; p == 0 {
			limit = 1
		} else if p > 0 && b.nodes[p].depth[s] > 0 {
			limit = b.nodes[p].depth[s]
		}
		valid := func(j int32) bool {
			n := &b.nodes[j]
			return j > 0 && j != int32(i) && j != x.parent[s] && n.alive && n.depth[s] > 0 && n.depth[s] <= limit
		}
		kept := x.backups[s][:0]
		for _, j := range x.backups[s] {
			if valid(j) {
				kept = append(kept, j)
			}
		}
		// b.queue is by depth: draw from the prefix within the limit.
		n := sort.Search(len(b.queue), func(k int) bool { return b.nodes[b.queue[k]].depth[s] > limit })
		for try := 0; len(kept) < b.cfg.Backups && n > 1 && try < 4*b.cfg.Backups; try++ {
			if j := b.queue[b.rng.IntN(n)]; valid(j) && !slices.Contains(kept, j) {
				kept = append(kept, j)
			}
		}
		x.backups[s] = kept
	}
	return deficit
}

func (b *Baseline) assignment(i int32, s int) Assignment {
	x := &b.nodes[i]
	a := Assignment{Peer: x.peer.ID, Stripe: s}
	if p := x.parent[s]; p >= 0 {
		a.Parent = b.nodes[p].peer.ID
	}
	for _, j := range x.backups[s] {
		a.Backups = append(a.Backups, b.nodes[j].peer.ID)
	}
	return a
}

func (b *Baseline) diff(plan *Plan) {
	for i := int32(1); int(i) < len(b.nodes); i++ {
		x := &b.nodes[i]
		if !x.alive {
			continue
		}
		for s := range b.cfg.Stripes {
			a := b.assignment(i, s)
			old := x.sent[s]
			if a.equal(old) {
				continue
			}
			switch {
			case old.Peer == "" || old.Parent == "" && a.Parent != "":
				plan.Placed++
			case old.Parent != a.Parent:
				plan.Moved++
			default:
				plan.BackupChanges++
			}
			x.sent[s] = a
			plan.Changed = append(plan.Changed, a)
		}
	}
	slices.SortFunc(plan.Changed, compareAssignments)
}

// PeerAssignments implements [Placer].
func (b *Baseline) PeerAssignments(id string) []Assignment {
	i, ok := b.byID[id]
	if !ok {
		return nil
	}
	out := make([]Assignment, b.cfg.Stripes)
	for s := range out {
		out[s] = b.assignment(i, s)
	}
	return out
}

// Assignments implements [Placer].
func (b *Baseline) Assignments() []Assignment {
	var out []Assignment
	for i := int32(1); int(i) < len(b.nodes); i++ {
		if b.nodes[i].alive {
			for s := range b.cfg.Stripes {
				out = append(out, b.assignment(i, s))
			}
		}
	}
	slices.SortFunc(out, func(x, y Assignment) int {
		return cmp.Or(cmp.Compare(x.Peer, y.Peer), cmp.Compare(x.Stripe, y.Stripe))
	})
	return out
}
