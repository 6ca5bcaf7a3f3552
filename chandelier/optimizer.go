package chandelier

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// ref names a node slot and the generation of the peer in it, so a slot
// reused by a later peer never passes for the earlier one.
type ref struct {
	i int32
	g uint32
}

var noRef = ref{i: -1}

// node is one peer (index 0 is the origin, which uses only its index).
// The fields a round's walks over every node read come first, so that
// they share the node's first cache lines.
type node struct {
	head
	feeds int32
	// dirty: its parent or backups may differ from those last reported
	// (it is in Optimizer.dirty).
	dirty bool
	// young: its rank still grows with its session age, or its feeds or
	// NAT changed (it is in Optimizer.young, ranked again next round).
	young   bool
	score   float64 // rank this round: feeds × maturity
	parent  []int32 // per stripe: parent index (0 = origin) or -1
	backups [][]ref // per stripe, ranked
	kids    []int32 // children in the interior stripe
	relayed []bool  // per stripe: the parent reaches it only through a relay
	peer    Peer
	// unfedSince is, per stripe, since when it has had no parent (zero:
	// it has one); a relayed parent is a last resort after RelayAfter.
	unfedSince []time.Time
	sentPar    []ref   // per stripe: the parent last reported in a Plan
	sentBack   [][]ref // per stripe: the backups last reported
}

// head is what a round reads of nodes other than the one it visits (a
// backup's validity, a child's stripe): Optimizer.heads holds a copy of
// every node's, side by side, so that reading it costs no cache miss on
// the node (set with setHead after every change).
type head struct {
	gen      uint32 // bumped when the slot is freed
	isp      int32  // interned ISP
	alive    bool
	nat      NAT   // class
	interior int16 // the stripe this peer forwards, or -1
}

// ispState is the book-keeping of one ISP.
type ispState struct {
	name     string
	peers    int
	supply   []int // per stripe: feeds of its interior peers
	interior []int // per stripe: how many interior peers
}

// Optimizer is the Chandelier placement (see the package doc). It is not
// safe for concurrent use.
type Optimizer struct {
	cfg   Config
	nodes []node // index 0 is the origin
	heads []head // per node: its head (a copy)
	slabs []slab // per slabSize nodes: parents, relayed marks, backups
	byID  map[string]int32
	free  []int32   // slots to reuse
	okids [][]int32 // the origin's children, per stripe
	// depth is, per stripe and node index, 1 under the origin, -1
	// detached; valid within a round (set by depths and settle). One
	// array per stripe: the round's walks read it without touching the
	// nodes.
	depth  [][]int32
	isps   []ispState // by interned index
	total  []int      // per stripe: feeds of all forwarders
	ispIdx map[string]int32
	compat [numNAT][numNAT]bool // [parent][child]

	// Scratch, reused across rounds.
	curStripe  int        // the stripe being placed
	now        time.Time  // the round's now
	relayedNow int        // relayed edges placed this round
	heaps      []slotHeap // per ISP × parent class
	global     [numNAT]slotHeap
	rooted     []bool // per ISP: has an attached interior node in this stripe
	queue      []int32
	color      []uint8
	lists      [4][][]int32 // backup candidates: free per ISP, all per ISP (index 0,1); [2][0], [3][0] global
	// dirty lists the peers whose parent or backups changed since the
	// last Plan, so the round's diff looks at those alone.
	dirty []int32
	// shallowest is, per ISP, the depth of its shallowest free slot in
	// the stripe being improved.
	shallowest []int32
	// young lists the peers to rank again (node.young); recheck those
	// whose NAT changed, whose edges (as child and as parent) are checked
	// again.
	young, recheck []int32
	// stale marks, per stripe, that its trees changed since it was last
	// placed (a link or unlink in it, a peer added, removed or changed),
	// or that its last placement wants another pass (improving moves
	// made, relayed placements waiting): a round places and refreshes
	// the backups of the stale stripes only. deficit is each stripe's
	// deficit from its last refresh.
	stale   []bool
	deficit []int
	// Storage of the lists a round builds, kept for the next: the
	// detached roots to place (placeStripe), the leaves by ISP and depth
	// (buildLeaves) and those a child of each NAT class can swap with
	// (swapLeaves).
	kidLists  [][]int32 // depths: one level's lists of children
	keyed     []placeKey
	items     []int32
	leafFound []leafFound
	leafStart []int
	leafBuf   []leafEntry
	leafLists [][]leafEntry
	leafNext  []int
	swapBuf   [numNAT][]leafEntry
	swapLists [numNAT][][]leafEntry
	swapNext  [numNAT][]int
}

// New returns an Optimizer with no peers.
func New(cfg Config) (*Optimizer, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o := &Optimizer{
		cfg:     cfg,
		nodes:   make([]node, 1),
		heads:   make([]head, 1),
		byID:    map[string]int32{},
		okids:   make([][]int32, cfg.Stripes),
		depth:   make([][]int32, cfg.Stripes),
		stale:   make([]bool, cfg.Stripes),
		deficit: make([]int, cfg.Stripes),
		total:   make([]int, cfg.Stripes),
		ispIdx:  map[string]int32{},
	}
	for s := range o.depth {
		o.depth[s] = []int32{0} // the origin's (never read)
	}
	for p := NAT(0); p < numNAT; p++ {
		for c := NAT(0); c < numNAT; c++ {
			o.compat[p][c] = cfg.Connect(p.class(), c.class())
		}
	}
	return o, nil
}

// Config returns the configuration with defaults filled in.
func (o *Optimizer) Config() Config { return o.cfg }

// Round implements [Placer].
func (o *Optimizer) Round(now time.Time, ch Changes) Plan {
	var plan Plan
	var released []int32
	for _, id := range ch.Leave {
		if i, ok := o.byID[id]; ok {
			o.remove(i)
			released = append(released, i)
			plan.Left = append(plan.Left, id)
		}
	}
	var joins []Peer
	for _, list := range [][]Peer{ch.Join, ch.Update} {
		for _, p := range list {
			if p.ID == "" || p.ID == Origin {
				plan.Rejected = append(plan.Rejected, p.ID)
				continue
			}
			if i, ok := o.byID[p.ID]; ok {
				o.update(i, p)
			} else {
				joins = append(joins, p)
			}
		}
	}
	// Deal interior stripes to the biggest uploaders first (LPT), so
	// every ISP's stripes get even upload.
	slices.SortStableFunc(joins, func(a, b Peer) int {
		return cmp.Or(cmp.Compare(b.Upload, a.Upload), cmp.Compare(a.ID, b.ID))
	})
	var added []int32
	for _, p := range joins {
		if i, ok := o.byID[p.ID]; ok { // listed twice
			o.update(i, p)
			continue
		}
		added = append(added, o.add(p))
	}
	// Stripes are dealt once every ISP's new size is known.
	for _, i := range added {
		o.assignInterior(i)
	}
	for _, sw := range ch.Switched {
		if !o.applySwitch(sw) {
			plan.Rejected = append(plan.Rejected, sw.Peer)
		}
	}
	o.now = now
	o.rebalance()
	o.validate(now)
	// A stripe's backups are refreshed right after it is placed, while
	// its trees are still in the cache (placing a stripe reads and
	// changes none of the others' trees, and no backups).
	for s := range o.cfg.Stripes {
		if o.stale[s] {
			again := o.placeStripe(s)
			o.deficit[s] = o.backupStripe(s)
			o.stale[s] = again
		}
		plan.Deficit += o.deficit[s]
	}
	plan.Relayed, o.relayedNow = o.relayedNow, 0
	for i := int32(1); o.cfg.Relay && int(i) < len(o.nodes); i++ { // relayed edges exist only with Relay
		if o.heads[i].alive {
			for s := range o.cfg.Stripes {
				if o.relayedOf(i, s) {
					plan.RelayedEdges++
				}
			}
		}
	}
	o.diff(&plan)
	o.free = append(o.free, released...)
	plan.Peers = len(o.byID)
	slices.Sort(plan.Left)
	slices.Sort(plan.Rejected)
	return plan
}

// Assignments implements [Placer].
func (o *Optimizer) Assignments() []Assignment {
	idx := o.sortedAlive()
	out := make([]Assignment, 0, len(idx)*o.cfg.Stripes)
	for _, i := range idx {
		for s := range o.cfg.Stripes {
			out = append(out, o.assignment(i, s))
		}
	}
	return out
}

// PeerAssignments implements [Placer].
func (o *Optimizer) PeerAssignments(id string) []Assignment {
	i, ok := o.byID[id]
	if !ok {
		return nil
	}
	out := make([]Assignment, o.cfg.Stripes)
	for s := range out {
		out[s] = o.assignment(i, s)
	}
	return out
}

func (o *Optimizer) sortedAlive() []int32 {
	idx := make([]int32, 0, len(o.byID))
	for i := 1; i < len(o.nodes); i++ {
		if o.nodes[i].alive {
			idx = append(idx, int32(i))
		}
	}
	slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(o.nodes[a].peer.ID, o.nodes[b].peer.ID) })
	return idx
}

func (o *Optimizer) id(i int32) string {
	switch {
	case i == 0:
		return Origin
	case i < 0:
		return ""
	}
	return o.nodes[i].peer.ID
}

func (o *Optimizer) assignment(i int32, s int) Assignment {
	x := &o.nodes[i]
	a := Assignment{Peer: x.peer.ID, Stripe: s, Parent: o.id(x.parent[s]), Relayed: x.relayed[s]}
	if len(x.backups[s]) > 0 {
		a.Backups = make([]string, len(x.backups[s]))
		for k, b := range x.backups[s] {
			a.Backups[k] = o.id(b.i)
		}
	}
	return a
}

// Interior returns the stripe the peer forwards (-1: a leaf everywhere)
// and whether the peer is known.
func (o *Optimizer) Interior(id string) (stripe int, ok bool) {
	i, ok := o.byID[id]
	if !ok {
		return -1, false
	}
	return int(o.nodes[i].interior), true
}

// --- membership ---

func (o *Optimizer) internISP(name string) int32 {
	if k, ok := o.ispIdx[name]; ok {
		return k
	}
	k := int32(len(o.isps))
	o.ispIdx[name] = k
	o.isps = append(o.isps, ispState{
		name:     name,
		supply:   make([]int, o.cfg.Stripes),
		interior: make([]int, o.cfg.Stripes),
	})
	return k
}

func (o *Optimizer) add(p Peer) int32 {
	var i int32
	if n := len(o.free); n > 0 {
		i, o.free = o.free[n-1], o.free[:n-1]
	} else {
		i = int32(len(o.nodes))
		o.nodes = append(o.nodes, node{})
		o.heads = append(o.heads, head{})
		for s := range o.depth {
			o.depth[s] = append(o.depth[s], -1)
		}
	}
	for s := range o.depth {
		o.depth[s][i] = -1
	}
	K := o.cfg.Stripes
	x := &o.nodes[i]
	gen := x.gen
	sl, j := o.slabOf(i)
	*x = node{
		head:       head{gen: gen, isp: o.internISP(p.ISP), alive: true, interior: -1, nat: p.NAT.class()},
		peer:       p,
		feeds:      int32(o.cfg.Feeds(p.Upload)),
		parent:     fill(sl.parent[j*K:(j+1)*K:(j+1)*K], -1),
		relayed:    fill(sl.relayed[j*K:(j+1)*K:(j+1)*K], false),
		unfedSince: make([]time.Time, K),
		backups:    o.slabBackups(i),
		sentPar:    fill(make([]ref, K), noRef),
		sentBack:   make([][]ref, K),
	}
	o.setHead(i)
	o.byID[p.ID] = i
	o.isps[x.isp].peers++
	o.touch(i)
	o.markYoung(i)
	o.staleAll()
	return i
}

// slab holds, for slabSize consecutive node slots, their parents,
// relayed marks and backup lists side by side (node.parent,
// node.relayed and node.backups point into it): a round's walks over
// every node in one stripe read them without a cache miss per node.
// Only backupStripe changes a backup list, in place: it never grows past
// Config.Backups (it would move out of the slab), and it keeps noRef
// after the list's end, so the list's length can be read from the slab.
type slab struct {
	parent  []int32 // [j*K+s] for slot j of the slab
	relayed []bool  // [j*K+s]
	backups []ref   // [(s*slabSize+j)*B+k]; past the end of a list, noRef
}

const slabSize = 256

// slabOf returns node slot i's slab and its place in it; the first
// slot of a slab allocates it.
func (o *Optimizer) slabOf(i int32) (*slab, int) {
	K, B := o.cfg.Stripes, o.cfg.Backups
	for int(i/slabSize) >= len(o.slabs) {
		o.slabs = append(o.slabs, slab{
			parent:  make([]int32, slabSize*K),
			relayed: make([]bool, slabSize*K),
			backups: make([]ref, slabSize*K*B),
		})
	}
	return &o.slabs[i/slabSize], int(i % slabSize)
}

// slabBackups returns node slot i's backup lists (empty, room for
// Config.Backups each), in its slab.
func (o *Optimizer) slabBackups(i int32) [][]ref {
	lists := make([][]ref, o.cfg.Stripes)
	for s := range lists {
		lists[s] = fill(o.backupRoom(i, s), noRef)[:0]
	}
	return lists
}

// parentOf is o.nodes[i].parent[s], read from the slab.
func (o *Optimizer) parentOf(i int32, s int) int32 {
	return o.slabs[i/slabSize].parent[int(i%slabSize)*o.cfg.Stripes+s]
}

// relayedOf is o.nodes[i].relayed[s], read from the slab.
func (o *Optimizer) relayedOf(i int32, s int) bool {
	return o.slabs[i/slabSize].relayed[int(i%slabSize)*o.cfg.Stripes+s]
}

// backupRoom returns the room of node i's backup list in stripe s:
// o.nodes[i].backups[s] and past its end noRef, up to Config.Backups.
func (o *Optimizer) backupRoom(i int32, s int) []ref {
	B := o.cfg.Backups
	k := (s*slabSize + int(i%slabSize)) * B
	return o.slabs[i/slabSize].backups[k : k+B : k+B]
}

// setHead copies node i's head to Optimizer.heads.
func (o *Optimizer) setHead(i int32) { o.heads[i] = o.nodes[i].head }

// markYoung has i ranked again in the next validate.
func (o *Optimizer) markYoung(i int32) {
	if x := &o.nodes[i]; !x.young {
		x.young = true
		o.young = append(o.young, i)
	}
}

// staleAll marks every stripe to be placed again.
func (o *Optimizer) staleAll() {
	for s := range o.stale {
		o.stale[s] = true
	}
}

// touch marks i's parent or backups as changed since the last Plan.
func (o *Optimizer) touch(i int32) {
	if x := &o.nodes[i]; !x.dirty {
		x.dirty = true
		o.dirty = append(o.dirty, i)
	}
}

func fill[T any](s []T, v T) []T {
	for k := range s {
		s[k] = v
	}
	return s
}

// assignInterior makes a leaf-only peer with upload interior in the
// stripe its ISP lacks most. A peer with a single feed is made interior
// only where upload is short: as a leaf it costs no depth.
func (o *Optimizer) assignInterior(i int32) {
	x := &o.nodes[i]
	if x.interior >= 0 || x.feeds < 1 {
		return
	}
	st := &o.isps[x.isp]
	// The stripe this ISP lacks most, relative to its size, plus the
	// stripe the whole swarm lacks most: with many small ISPs, ties
	// within each ISP would otherwise starve the same stripe everywhere.
	total := o.total
	n := float64(max(1, len(o.byID)))
	best, bestKey := -1, 0.0
	for s := range o.cfg.Stripes {
		key := float64(st.supply[s])/float64(max(1, st.peers)) + float64(total[s])/n
		if best < 0 || key < bestKey {
			best, bestKey = s, key
		}
	}
	if x.feeds == 1 && st.supply[best] >= st.peers+st.peers/4+1 {
		return
	}
	o.setInterior(i, best)
}

// dropInterior makes an interior peer a leaf everywhere; its children
// become detached roots.
func (o *Optimizer) dropInterior(i int32) {
	x := &o.nodes[i]
	s := int(x.interior)
	if s < 0 {
		return
	}
	for _, k := range x.kids {
		o.nodes[k].parent[s] = -1
		o.touch(k)
	}
	x.kids = x.kids[:0]
	o.stale[s] = true
	st := &o.isps[x.isp]
	st.supply[s] -= int(x.feeds)
	o.total[s] -= int(x.feeds)
	st.interior[s]--
	x.interior = -1
	o.setHead(i)
}

func (o *Optimizer) remove(i int32) {
	x := &o.nodes[i]
	for s := range o.cfg.Stripes {
		o.unlink(i, s)
	}
	o.dropInterior(i)
	o.isps[x.isp].peers--
	delete(o.byID, x.peer.ID)
	o.staleAll() // its backup entries turn invalid
	x.alive = false
	x.gen++
	o.setHead(i)
	x.kids = nil
}

func (o *Optimizer) update(i int32, p Peer) {
	x := &o.nodes[i]
	if p.Joined.IsZero() {
		p.Joined = x.peer.Joined
	}
	feeds := int32(o.cfg.Feeds(p.Upload))
	if feeds != x.feeds || p.ISP != x.peer.ISP || p.NAT.class() != x.nat || !p.Joined.Equal(x.peer.Joined) {
		// Its rank, its slots, its reach or its ISP's supply changed:
		// every stripe is placed again.
		o.markYoung(i)
		o.staleAll()
	}
	if p.NAT.class() != x.nat {
		o.recheck = append(o.recheck, i)
	}
	if p.ISP != x.peer.ISP || feeds == 0 {
		o.dropInterior(i)
		o.isps[x.isp].peers--
		x.isp = o.internISP(p.ISP)
		o.isps[x.isp].peers++
	}
	x.peer = p
	x.nat = p.NAT.class()
	o.setHead(i)
	if s := int(x.interior); s >= 0 {
		if excess := len(x.kids) - int(feeds); excess > 0 {
			// Keep the children that carry the most (their rank from
			// the previous round); detach the rest.
			slices.SortStableFunc(x.kids, func(a, b int32) int {
				return cmp.Or(cmp.Compare(o.nodes[b].score, o.nodes[a].score), cmp.Compare(a, b))
			})
			for _, k := range x.kids[len(x.kids)-excess:] {
				o.nodes[k].parent[s] = -1
				o.touch(k)
			}
			o.stale[s] = true
			x.kids = x.kids[:len(x.kids)-excess]
		}
		o.isps[x.isp].supply[s] += int(feeds - x.feeds)
		o.total[s] += int(feeds - x.feeds)
	}
	x.feeds = feeds
	o.assignInterior(i)
}

func (o *Optimizer) kidsOf(p int32, s int) *[]int32 {
	if p == 0 {
		return &o.okids[s]
	}
	return &o.nodes[p].kids
}

// capOf is how many children p may have in stripe s.
func (o *Optimizer) capOf(p int32, s int) int {
	if p == 0 {
		return o.cfg.originSlots(s)
	}
	if int(o.nodes[p].interior) != s {
		return 0
	}
	return int(o.nodes[p].feeds)
}

func (o *Optimizer) natOf(p int32) NAT {
	if p == 0 {
		return NATOpen
	}
	return o.nodes[p].nat
}

func (o *Optimizer) link(i, p int32, s int) {
	o.touch(i)
	o.stale[s] = true
	o.nodes[i].parent[s] = p
	o.nodes[i].relayed[s] = false
	o.nodes[i].unfedSince[s] = time.Time{}
	k := o.kidsOf(p, s)
	*k = append(*k, i)
}

func (o *Optimizer) unlink(i int32, s int) {
	p := o.nodes[i].parent[s]
	if p < 0 {
		return
	}
	o.touch(i)
	o.stale[s] = true
	k := o.kidsOf(p, s)
	if j := slices.Index(*k, i); j >= 0 {
		*k = slices.Delete(*k, j, j+1)
	}
	o.nodes[i].parent[s] = -1
	o.nodes[i].relayed[s] = false
}

// applySwitch records a peer's own repair. The peer has left its old
// parent either way; the new edge is kept when it is valid (a forwarding
// parent with a free slot, reachable, not below the peer). It reports
// false for an unknown peer or parent or a stripe out of range.
func (o *Optimizer) applySwitch(sw Switch) bool {
	i, ok := o.byID[sw.Peer]
	if !ok || sw.Stripe < 0 || sw.Stripe >= o.cfg.Stripes {
		return false
	}
	s := sw.Stripe
	if sw.Parent == "" { // lost with no backup: re-placed this round
		o.unlink(i, s)
		return true
	}
	q := int32(0)
	if sw.Parent != Origin {
		if q, ok = o.byID[sw.Parent]; !ok {
			return false
		}
	}
	if o.nodes[i].parent[s] == q {
		return true
	}
	o.unlink(i, s)
	if q == i || len(*o.kidsOf(q, s)) >= o.capOf(q, s) || !o.compat[o.natOf(q)][o.nodes[i].nat] {
		return true
	}
	for j, steps := q, 0; j > 0; j, steps = o.nodes[j].parent[s], steps+1 {
		if j == i || steps > len(o.nodes) {
			return true // would close a cycle
		}
	}
	o.link(i, q, s)
	return true
}

// natWorth weighs a forwarder's feeds by the share of children that can
// connect to it (with the NAT mix seen in the field, about 55 % of peers
// are open, full-cone or restricted): port-restricted parents cannot feed
// symmetric children, symmetric parents only the first three classes.
var natWorth = [numNAT]float64{1, 1, 1, 0.85, 0.5, 0.5}

// validate ranks the peers whose rank may have changed (new, changed or
// still maturing: node.young) and cuts the edges that became invalid:
// those of peers whose NAT changed, as child and as parent, and origin
// children over its share.
func (o *Optimizer) validate(now time.Time) {
	mature := float64(o.cfg.MatureAge)
	keep := o.young[:0]
	for _, i := range o.young {
		x := &o.nodes[i]
		if !x.alive || !x.young {
			continue
		}
		m := 1.0
		if age := float64(now.Sub(x.peer.Joined)); mature > 0 && age < mature {
			m = 0.5 + 0.5*max(0, age)/mature
		}
		score := float64(x.feeds) * m * natWorth[x.nat]
		if score != x.score && x.interior >= 0 {
			// A forwarder's rank orders its stripe's slots and
			// placements: the stripe is placed again.
			o.stale[x.interior] = true
		}
		x.score = score
		if x.young = m < 1; x.young {
			keep = append(keep, i)
		}
	}
	o.young = keep
	for _, i := range o.recheck {
		x := &o.nodes[i]
		if !x.alive {
			continue
		}
		for s := range o.cfg.Stripes {
			o.checkEdge(i, s)
		}
		if s := int(x.interior); s >= 0 {
			for _, k := range slices.Clone(x.kids) {
				o.checkEdge(k, s)
			}
		}
	}
	o.recheck = o.recheck[:0]
	for s := range o.cfg.Stripes {
		for len(o.okids[s]) > o.cfg.originSlots(s) {
			o.unlink(o.okids[s][len(o.okids[s])-1], s)
		}
	}
}

// checkEdge cuts i's edge in stripe s when its parent no longer forwards
// s or can no longer reach it (unless relayed), and clears the relayed
// mark of a path that became direct.
func (o *Optimizer) checkEdge(i int32, s int) {
	x := &o.nodes[i]
	p := x.parent[s]
	switch {
	case p <= 0:
	case int(o.nodes[p].interior) != s || !o.compat[o.nodes[p].nat][x.nat] && !(x.relayed[s] && o.cfg.Relay):
		o.unlink(i, s)
	case x.relayed[s] && o.compat[o.nodes[p].nat][x.nat]:
		x.relayed[s] = false // a NAT changed: the path is direct now
	}
}

// String describes the optimizer's size, for logs.
func (o *Optimizer) String() string {
	return fmt.Sprintf("chandelier: %d peers, %d ISPs, %d stripes", len(o.byID), len(o.isps), o.cfg.Stripes)
}
