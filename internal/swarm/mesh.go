package swarm

import (
	"fmt"
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// The partner mesh and parent liveness: "push, then pull, then origin".
//
// Partners. The driver names a few partners (SetPartners): nodes that
// hold the stream independently of this node's parents and that it can
// reach. The drivers take them from the tracker's backups — per stripe, a
// forwarder of that stripe outside the subtree of the node's parent that
// the placement checked the node can connect to — so a partner of stripe
// s still receives s when the node's parent of s fails, and it is the
// node the node would switch to anyway (its connection is warm).
//
// Maps. A partner sends the node its buffer map (wire.BufferMap: the
// last mapSlices slices, K bits each) when the node takes it as a
// partner, and again whenever the node asks (Ready.MapRequests,
// HandleMapRequest): the node asks all its partners, at most once per
// MapInterval, when a pull scan finds a chunk due to be pulled that no
// partner's map shows (or predicts, see pickPartner) and that is not
// asked of the origin. Maps serve only to choose pulls, and a healthy
// node pulls rarely: sent to every watcher every 250 ms, they were 18 %
// of the simulator's events (2,000 peers, 60 s, seed 1: 1.58 M maps, 13
// per viewer per second) for 0.2 new chunks pulled per viewer per
// second. Asked for, maps and requests are 2.7 % (0.10 M and 0.085 M of
// 6.9 M events), and as many chunks are pulled (11,924 against 11,375):
// a map asked for is a round trip old when it chooses a pull, where one
// sent every 250 ms was up to 250 ms old. (A stripe that just lost its
// parent asks the origin at once, a round trip before the maps come;
// holding the origin for them cost the scarce-upload test continuity
// 0.94 against 0.9998.) A node sends maps only to the nodes that made it
// their partner (its watchers, at most MaxWatchers).
//
// Pull. A chunk of a stripe whose parent was lost is pulled at once
// (as soon as its slice should exist) from a partner whose map shows it
// (or, when its newest map is older, whose map showed the stripe flowing
// up to its last slice and would have it by now); one of a stripe whose
// new parent is still connecting, PullMargin before its slice is due. A
// chunk of a stripe whose parent is up mostly has it on its way: it is
// pulled only when still missing just before the origin's margin
// (FetchMargin before it is due), and only from a partner whose map
// shows it (pulling every late chunk earlier, or on a guess, floods
// partners with duplicates). The origin is asked for a chunk a pull is
// in flight for only when that pull fails, or pullPatience after it: it
// stays the last resort, and its fetch budget is the swarm's scarcest
// resource. A pull
// answered Missing is asked of another partner; one not answered within
// Config.PullTimeout counts against its partner, and maxPartnerMisses in a row
// drop the partner (Ready.DropPartners). A partner that sends a chunk
// failing verification is cut off like any node and dropped (chunks
// from partners are verified like all others).
//
// Alive. A parent with children sends each child whose stripes had
// nothing new for AliveInterval an Alive (the newest seq it holds per
// stripe). Any frame from a parent proves it alive, so a parent silent
// for a few Alive intervals (silenceLimit) is dead and lost, however
// long ParentTimeout is, without losing parents starved by their own
// upstream (they keep sending Alive). A child whose
// parent's Alive shows it does not hold a chunk pulls it at once. A
// parent that stays starved is not left on that account while its own
// repair (a switch within ParentTimeout) may feed it again, and
// meanwhile its children pull; but Alives that show it stuck keep it at
// most twice ParentTimeout after it last moved (starveLimit), so two
// nodes that took each other as parents (a cycle) cannot keep each other
// with Alives. Config.LagSlices still judges a parent by its lag.

// Mesh defaults and limits.
const (
	DefaultPullMargin    = 700 * time.Millisecond
	DefaultMapInterval   = 100 * time.Millisecond
	DefaultAliveInterval = 150 * time.Millisecond
	DefaultMaxWatchers   = 8
	// MaxPartners bounds SetPartners.
	MaxPartners        = 8
	DefaultPullTimeout = 300 * time.Millisecond
	// mapSlices is how many slices a buffer map describes.
	mapSlices = 32
	// maxPartnerMisses unanswered pulls in a row drop a partner.
	maxPartnerMisses = 3
	// maxPulls bounds the pulls outstanding at once; maxPartnerPulls
	// those to one partner.
	maxPulls        = 32
	maxPartnerPulls = 8
	// maxRefused bounds the chunks remembered per partner as answered
	// Missing.
	maxRefused = 16
	// pullLead: a chunk of a stripe whose parent is up is pulled this
	// long before the origin's margin (FetchMargin before it is due),
	// and pullPatience after a pull the origin is asked for a chunk
	// still missing (at once when the partner answers Missing).
	pullLead     = 100 * time.Millisecond
	pullPatience = 150 * time.Millisecond
	// firstMapWait: see scanPulls.
	firstMapWait = time.Second
)

// Pull asks a partner for a chunk (a Request on the partner stream).
type Pull struct {
	To NodeID
	ID wire.ID
}

// MapSend is a buffer map to send to a watcher.
type MapSend struct {
	To  NodeID
	Map wire.BufferMap
}

// AliveSend is an Alive to send to a child. Alive.Newest is shared by
// the sends of one round: never modify it.
type AliveSend struct {
	To    NodeID
	Alive wire.Alive
}

// Errors of the mesh.
var (
	ErrNotPartner = fmt.Errorf("swarm: not a partner")
	ErrBadMap     = fmt.Errorf("swarm: buffer map does not fit the channel")
	ErrNotWatcher = fmt.Errorf("swarm: not a watcher")
)

// mesh is a node's partner mesh and liveness state.
type mesh struct {
	partners []partner // as SetPartners named them
	// tags holds idTag of each partner's ID, by index in partners, side
	// by side: partnerIndex reads one line of the node for them, not a
	// line of each partner (a map, an answer, a pull's timeout each look
	// their partner up; at 10,000 peers the partners are not cached).
	tags     [MaxPartners]uint64
	mapped   int      // partners with a map (mapAt set)
	watchers []NodeID // nodes the node sends maps to, sorted
	pulls    []pull   // outstanding
	// mapsAsked is when the node last asked its partners for their maps
	// (zero: never); named when SetPartners last named a new partner.
	mapsAsked instant
	named     instant
	// stale is set by a pull scan that found a chunk to pull that no
	// partner's map shows (and that is not asked of the origin).
	stale    bool
	gen      uint64 // bumped by maps, answers and partner changes
	scanGen  uint64 // gen and n.gen the last pull scan saw
	scanNGen uint64
	scanNext instant // what the last pull scan returned
	scanPlay uint64  // play.next the last pull scan saw
	// The Alives' per-stripe state lives in the node's stripes (stripe's
	// pushed and alive fields): K entries, not MaxStripes.
}

// partner is a node the node pulls from.
type partner struct {
	id      NodeID
	m       wire.BufferMap // its last map (Held owned here)
	mapAt   instant        // when it came; zero: none yet
	misses  int            // pulls in a row it did not answer
	out     int            // pulls outstanding to it
	refused []wire.ID      // chunks it answered Missing (newest last)
}

// pull is an outstanding pull.
type pull struct {
	id wire.ID
	to NodeID
	at instant
}

// SetPartners names the nodes the node pulls from (at most MaxPartners;
// the first ones win; the node itself, duplicates and "" are skipped).
// Partners kept keep their buffer maps; pulls to dropped ones are asked
// elsewhere.
func (n *Node) SetPartners(nowT time.Time, ids []NodeID) {
	now := at(nowT)
	m := &n.mesh
	var next []partner
	for _, id := range ids {
		if id == "" || len(next) >= MaxPartners || slices.ContainsFunc(next, func(p partner) bool { return p.id == id }) {
			continue
		}
		if i := m.partnerIndex(id); i >= 0 {
			next = append(next, m.partners[i])
		} else {
			next = append(next, partner{id: id})
			m.named = now
		}
	}
	m.partners = next
	m.retag()
	m.mapped = 0
	for i := range next {
		if !next[i].mapAt.IsZero() {
			m.mapped++
		}
	}
	m.pulls = slices.DeleteFunc(m.pulls, func(p pull) bool { return m.partnerIndex(p.to) < 0 })
	m.gen++
	n.step(now)
}

// Partners returns the partners, in the order SetPartners named them.
func (n *Node) Partners() []NodeID {
	out := make([]NodeID, len(n.mesh.partners))
	for i, p := range n.mesh.partners {
		out[i] = p.id
	}
	return out
}

func (m *mesh) partnerIndex(id NodeID) int {
	t := idTag(id)
	for i := range m.partners {
		if m.tags[i] == t && m.partners[i].id == id {
			return i
		}
	}
	return -1
}

// retag sets tags from partners, after they changed.
func (m *mesh) retag() {
	for i := range m.partners {
		m.tags[i] = idTag(m.partners[i].id)
	}
}

// AddWatcher makes id a node the node sends its buffer map to (at once,
// and whenever it asks: HandleMapRequest) and whose pulls it serves: id
// made it its partner. It fails with ErrFull beyond MaxWatchers.
func (n *Node) AddWatcher(nowT time.Time, id NodeID) error {
	now := at(nowT)
	m := &n.mesh
	i, found := slices.BinarySearch(m.watchers, id)
	if !found {
		if len(m.watchers) >= n.cfg.MaxWatchers {
			return fmt.Errorf("%w: %d partners watching", ErrFull, len(m.watchers))
		}
		m.watchers = slices.Insert(m.watchers, i, id)
	}
	n.sendMap(id)
	n.step(now)
	return nil
}

// HandleMapRequest takes a watcher's request for the node's buffer map:
// the map goes to it at once (Ready.Maps). A request from a node that is
// not a watcher is ignored (ErrNotWatcher: it may have been removed while
// the request was on its way).
func (n *Node) HandleMapRequest(from NodeID) error {
	if _, found := slices.BinarySearch(n.mesh.watchers, from); !found {
		return ErrNotWatcher
	}
	n.sendMap(from)
	return nil
}

// RemoveWatcher stops sending maps to id.
func (n *Node) RemoveWatcher(id NodeID) {
	if i, found := slices.BinarySearch(n.mesh.watchers, id); found {
		n.mesh.watchers = slices.Delete(n.mesh.watchers, i, i+1)
	}
}

// Watchers returns the nodes the node sends maps to, sorted.
func (n *Node) Watchers() []NodeID { return slices.Clone(n.mesh.watchers) }

// meshGone forgets id as a partner and a watcher: its connection is
// gone. The driver names other partners.
func (n *Node) meshGone(id NodeID) {
	n.RemoveWatcher(id)
	n.removePartner(id)
}

// removePartner forgets id as a partner.
func (n *Node) removePartner(id NodeID) {
	m := &n.mesh
	if i := m.partnerIndex(id); i >= 0 {
		if !m.partners[i].mapAt.IsZero() {
			m.mapped--
		}
		m.partners = slices.Delete(m.partners, i, i+1)
		m.retag()
		m.pulls = slices.DeleteFunc(m.pulls, func(p pull) bool { return sameID(p.to, id) })
		m.gen++
		n.gen++
	}
}

// PartnerGone tells the node that the driver lost its partner stream to
// id: it is no partner any more (pulls to it are asked elsewhere).
func (n *Node) PartnerGone(nowT time.Time, id NodeID) {
	now := at(nowT)
	n.removePartner(id)
	n.step(now)
}

// dropPartner gives up on a partner: it is reported in
// Ready.DropPartners.
func (n *Node) dropPartner(id NodeID) {
	if n.mesh.partnerIndex(id) < 0 {
		return
	}
	n.removePartner(id)
	n.stats.PartnersDropped++
	r := n.out()
	r.DropPartners = append(r.DropPartners, id)
}

// HandleMap takes a partner's buffer map. A map from a node that is not
// a partner is ignored (ErrNotPartner: it may have been dropped while
// the map was on its way); one that does not fit the channel drops the
// partner (ErrBadMap).
func (n *Node) HandleMap(nowT time.Time, from NodeID, bm wire.BufferMap) error {
	now := at(nowT)
	m := &n.mesh
	i := m.partnerIndex(from)
	if i < 0 {
		return ErrNotPartner
	}
	if bm.Stripes != n.k || len(bm.Held) > wire.MaxMapSlices {
		n.dropPartner(from)
		n.step(now)
		return fmt.Errorf("%w: %d stripes, %d slices", ErrBadMap, bm.Stripes, len(bm.Held))
	}
	p := &m.partners[i]
	p.m.First, p.m.Stripes = bm.First, bm.Stripes
	p.m.Held = append(p.m.Held[:0], bm.Held...)
	if p.mapAt.IsZero() && !now.IsZero() {
		m.mapped++
	}
	p.mapAt = now
	m.gen++
	n.step(now)
	return nil
}

// HandlePulled takes a chunk a partner sent in answer to a pull; it is
// verified and stored like any chunk (see HandleChunk). A chunk that
// fails verification cuts the partner off and drops it.
func (n *Node) HandlePulled(nowT time.Time, from NodeID, raw []byte) error {
	now := at(nowT)
	m := &n.mesh
	before := n.stats.P2PBytesIn
	err := n.handleChunk(now, from, raw)
	if err != nil {
		n.dropPartner(from)
		n.step(now)
		return err
	}
	if i := m.partnerIndex(from); i >= 0 {
		m.partners[i].misses = 0
	}
	if n.stats.P2PBytesIn > before {
		n.stats.Pulled++ // a new chunk (the step in HandleChunk retired its pull)
	}
	return nil
}

// unpull counts one pull to id as no longer outstanding.
func (m *mesh) unpull(id NodeID) {
	if i := m.partnerIndex(id); i >= 0 && m.partners[i].out > 0 {
		m.partners[i].out--
	}
}

// pullMissing handles a partner's Missing answer to a pull: the chunk is
// asked elsewhere. It reports whether from was a partner asked for id.
func (n *Node) pullMissing(from NodeID, id wire.ID) bool {
	m := &n.mesh
	j := slices.IndexFunc(m.pulls, func(p pull) bool { return p.id == id && sameID(p.to, from) })
	if j < 0 {
		return false
	}
	m.pulls = slices.Delete(m.pulls, j, j+1)
	m.unpull(from)
	if i := m.partnerIndex(from); i >= 0 {
		p := &m.partners[i]
		p.misses = 0 // it answered
		if len(p.refused) >= maxRefused {
			p.refused = slices.Delete(p.refused, 0, 1)
		}
		p.refused = append(p.refused, id)
	}
	n.stats.PullMisses++
	m.gen++
	n.gen++ // the fetch scan may ask the origin now
	return true
}

// HandleAlive takes an Alive from a node: from a parent it proves the
// parent alive (like a chunk) and tells how far it got on each stripe.
// An Alive from a node that is no parent is ignored.
func (n *Node) HandleAlive(nowT time.Time, from NodeID, a wire.Alive) {
	now := at(nowT)
	m := &n.mesh
	parent, moving := false, false
	t := idTag(from)
	for s := range n.stripes {
		st := &n.stripes[s]
		if from == "" || st.ptag != t || st.parent != from {
			continue
		}
		parent = true
		if s >= len(a.Newest) {
			continue
		}
		// The parent moves on this stripe when it holds a chunk the node
		// lacks (on its way) or got further since its last Alive.
		if !st.up || !st.seen || a.Newest[s] > st.newest || !sameID(st.aliveFrom, st.parent) || a.Newest[s] > st.aliveNewest {
			moving = true
		}
		st.aliveNewest, st.aliveFrom = a.Newest[s], st.parent
	}
	if !parent {
		return
	}
	n.stats.AlivesIn++
	if moving {
		n.heard(now, from)
	} else {
		n.heardStuck(now, from)
	}
	m.gen++
	n.step(now)
}

// holds reports whether the node holds chunk id.
func (n *Node) holds(id wire.ID) bool {
	i, ok := n.find(id.Seq)
	return ok && int(id.Stripe) < n.k && n.idx[i].held&(1<<id.Stripe) != 0
}

// pulling reports whether a pull of id is outstanding.
func (n *Node) pulling(id wire.ID) bool {
	_, ok := n.pulledAt(id)
	return ok
}

// pulledAt returns when the outstanding pull of id was asked; ok is
// false when none is.
func (n *Node) pulledAt(id wire.ID) (at instant, ok bool) {
	for i := range n.mesh.pulls {
		if n.mesh.pulls[i].id == id {
			return n.mesh.pulls[i].at, true
		}
	}
	return 0, false
}

// stepMesh runs the mesh's time-driven work: maps to watchers, Alives to
// quiet children, starved parents, pull timeouts and new pulls. It
// returns when it next needs to run (zero: not until an input).
func (n *Node) stepMesh(now instant) instant {
	next := n.sendAlives(now)
	m := &n.mesh
	if len(m.partners) == 0 && len(m.pulls) == 0 {
		return next
	}
	if m.gen != m.scanGen || n.gen != m.scanNGen || n.play.next != m.scanPlay || !now.Before(m.scanNext) {
		m.stale = false
		m.scanNext = n.scanPulls(now)
		if m.stale {
			m.scanNext = earliest(m.scanNext, n.askMaps(now))
		}
		m.scanGen, m.scanNGen, m.scanPlay = m.gen, n.gen, n.play.next
	}
	return earliest(next, m.scanNext)
}

// sendMap queues the node's buffer map for watcher to.
func (n *Node) sendMap(to NodeID) {
	r := n.out()
	r.Maps = append(r.Maps, MapSend{To: to, Map: n.bufferMap()})
	n.stats.MapsSent++
}

// askMaps asks every partner for its buffer map (Ready.MapRequests),
// unless the node asked less than MapInterval ago: then it returns when
// it may ask again.
func (n *Node) askMaps(now instant) instant {
	m := &n.mesh
	if !m.mapsAsked.IsZero() {
		if at := m.mapsAsked.Add(n.cfg.MapInterval); at.After(now) {
			return at
		}
	}
	for i := range m.partners {
		r := n.out()
		r.MapRequests = append(r.MapRequests, m.partners[i].id)
	}
	n.stats.MapRequests += uint64(len(m.partners))
	m.mapsAsked = now
	return 0
}

// bufferMap returns the node's map of its newest mapSlices slices.
func (n *Node) bufferMap() wire.BufferMap {
	bm := wire.BufferMap{Stripes: n.k}
	if !n.seen || len(n.idx) == 0 {
		return bm
	}
	first := n.idx[0].seq
	if n.newestSeq >= mapSlices && n.newestSeq-mapSlices+1 > first {
		first = n.newestSeq - mapSlices + 1
	}
	bm.First = first
	bm.Held = make([]uint16, n.newestSeq-first+1)
	j, _ := n.find(first)
	for ; j < len(n.idx); j++ {
		bm.Held[n.idx[j].seq-first] = n.idx[j].held
	}
	return bm
}

// sendAlives queues an Alive for each child none of whose stripes had a
// chunk pushed (or an Alive) for AliveInterval, and returns when a
// stripe some child takes next turns quiet. A stripe no child takes is
// not watched: its quiet spells would wake the node for nothing (at
// 1,000 simulated peers, four in five quiet rounds were of such stripes
// only, a quarter of all Ticks); when a child takes it later, the time
// of its last chunk tells whether it is quiet.
func (n *Node) sendAlives(now instant) instant {
	for s := range n.k {
		if st := &n.stripes[s]; st.seen && st.newest != st.pushedNewest {
			st.pushedNewest, st.pushedAt = st.newest, now
		}
	}
	if n.cfg.AliveInterval <= 0 || len(n.children) == 0 || !n.seen {
		return 0
	}
	var taken uint16
	for i := range n.children {
		taken |= n.children[i].mask
	}
	var quiet uint16
	var next instant
	for s := range n.k {
		if taken&(1<<s) == 0 {
			continue
		}
		if at := n.stripes[s].pushedAt.Add(n.cfg.AliveInterval); !at.After(now) {
			quiet |= 1 << s
		} else {
			next = earliest(next, at)
		}
	}
	if quiet == 0 {
		return next
	}
	var newest []uint64
	for i := range n.children {
		ch := &n.children[i]
		if ch.mask == 0 || ch.mask&quiet != ch.mask {
			continue
		}
		if newest == nil {
			newest = make([]uint64, n.k)
			for s := range n.k {
				newest[s] = n.stripes[s].newest
			}
		}
		r := n.out()
		r.Alives = append(r.Alives, AliveSend{To: ch.id, Alive: wire.Alive{Newest: newest}})
		n.stats.AlivesSent++
	}
	for s := range n.k {
		if quiet&(1<<s) != 0 {
			n.stripes[s].pushedAt = now
			next = earliest(next, now.Add(n.cfg.AliveInterval))
		}
	}
	return next
}

// scanPulls times out unanswered pulls and queues new ones for the
// chunks missing at their pull time, from the partner likeliest to hold
// each. It returns when it next needs to look.
func (n *Node) scanPulls(now instant) instant {
	m := &n.mesh
	var next instant
	var drop []NodeID
	pulls := len(m.pulls)
	m.pulls = slices.DeleteFunc(m.pulls, func(p pull) bool {
		if n.holds(p.id) || (n.play.started && p.id.Seq < n.play.next) {
			m.unpull(p.to)
			m.gen++
			return true
		}
		if at := p.at.Add(n.cfg.PullTimeout); at.After(now) {
			next = earliest(next, at)
			return false
		}
		n.stats.PullMisses++
		m.unpull(p.to)
		if i := m.partnerIndex(p.to); i >= 0 {
			if m.partners[i].misses++; m.partners[i].misses >= maxPartnerMisses {
				drop = append(drop, p.to)
			}
		}
		m.gen++
		return true
	})
	for _, id := range drop {
		n.dropPartner(id)
	}
	if len(m.pulls) != pulls {
		n.gen++ // the fetch scan may ask the origin now
	}
	// (Every stripe may pull now, parent up or not: a live parent's
	// late chunks too, just before the origin's margin.)
	if len(m.partners) == 0 {
		return next
	}
	if m.mapped == 0 {
		// No partner's map yet: each sends one when it takes the node as
		// its watcher. When none came in firstMapWait (lost on the way,
		// as in a partition), they are asked for, once per firstMapWait.
		if at := max(m.named, m.mapsAsked).Add(firstMapWait); at.After(now) {
			return earliest(next, at)
		}
		m.stale = true
		return next
	}
	if !n.play.started {
		return n.scanStartPulls(now, next)
	}
	lo := n.play.next
	hi := max(n.newestSeq, lo) + fetchAhead
	full := n.full()
	waiting := false
	// When each stripe's chunks are pulled, read once per scan: at the
	// chunk's capture + off, moved by push (pushState.later).
	var plans [wire.MaxStripes]struct {
		off   time.Duration
		shown bool // pull only from a partner whose map shows it
		push  pushState
	}
	for s := range n.k {
		pl := &plans[s]
		switch st := &n.stripes[s]; {
		case st.parent == "":
			pl.off = n.play.skew // the parent was lost: pull at once
		case !st.up:
			// A new parent still connecting: pull what is missing
			// PullMargin before it is due.
			pl.off = n.play.skew + n.cfg.PlayoutDelay - n.cfg.PullMargin
		default:
			// A parent that is up mostly has it on its way: pull it
			// only when it is late for the origin's margin, just
			// before (pullLead), and only from a partner whose map
			// shows it — the origin waits for that pull (see
			// scanFetches). Pulling every late chunk earlier, or on a
			// guess, flooded partners with duplicates (300 peers,
			// churn 20 %/min: 9,710 pulls of which 624 brought a new
			// chunk, continuity 0.978 against 0.985); leaving them all
			// to the origin had its fetch budget refuse most of them
			// under churn (2,000 peers, churn 10 %/min: 92 % of the
			// chunks missing at a stall had been refused by the origin,
			// and a partner held 92 % of them).
			// While the parent is still pushing the stripe (see
			// pushing), at PushedMargin rather than FetchMargin, as
			// the origin is asked.
			pl.off = n.play.skew + n.cfg.PlayoutDelay - n.cfg.FetchMargin - pullLead
			pl.shown = true
			pl.push = n.pushing(now, s)
		}
	}
	// Walk the held seqs alongside, as scanFetches does: captures of
	// slices not held are predicted as captureOf does, without a lookup
	// per seq.
	start, j := n.skipDone(lo) // complete slices: nothing to pull
	below := j - 1             // index of the nearest held slot below seq; -1: none
walk:
	for seq := start; seq <= hi && seq-lo < maxFetchScan; seq++ {
		var have uint16
		var c instant
		tail := j == len(n.idx) // nothing held from seq on
		switch {
		case !tail && n.idx[j].seq == seq:
			e := &n.idx[j]
			below = j
			j++
			if have = e.held; have == full {
				continue
			}
			c = e.captureTime()
		default:
			p, ok := n.predictCapture(seq, below, j)
			if !ok {
				if tail {
					break walk // nor any later seq (below and j stay)
				}
				continue
			}
			c = p
		}
		// In the tail, a seq whose chunks are all ahead ends the walk:
		// the later seqs' captures are predicted no earlier (from the
		// same held slot), and from the first seq a stripe's pushing
		// covers it covers them all, so their pull times are no
		// earlier and add only what this seq added to next.
		ahead := tail
		for s := range n.k {
			if have&(1<<s) != 0 {
				continue
			}
			id := wire.ID{Seq: seq, Stripe: uint8(s)}
			pl := &plans[s]
			if pl.push.ok && seq < pl.push.from {
				ahead = false // pushing may cover a later seq
			}
			t := pl.push.later(n, now, seq, c.Add(pl.off), &next)
			if t.After(now) {
				next = earliest(next, t)
				continue
			}
			ahead = false
			if n.pulling(id) {
				continue
			}
			if len(m.pulls) >= maxPulls {
				return next // an answer or a timeout frees a slot (gen)
			}
			to, ok := n.pickPartner(now, id, pl.shown)
			if !ok {
				// A new map (gen) may show it (one is asked for);
				// else the partner's predicted progress may cover it
				// a slice later.
				waiting = waiting || !pl.shown
				m.stale = m.stale || n.fetchIndex(id) < 0
				continue
			}
			next = earliest(next, n.askPull(now, to, id))
		}
		if ahead {
			break
		}
	}
	if waiting {
		// A partner's map grows older: its prediction may cover the
		// chunk a slice later.
		next = earliest(next, now.Add(n.cfg.SliceDuration))
	}
	return next
}

// scanStartPulls is scanPulls before playout starts: it pulls the
// missing chunks of the start picture — the newest keyframe slice held
// and the slices that continue it (see groupEnd) — from a partner whose
// map shows them: at once on a stripe without a parent or whose parent
// went past the chunk (see passed), else Config.StartPull after the
// keyframe slice's first chunk arrived, when the parent is evidently
// slow; and the chunks of the slices StartMargin beyond the picture
// that no parent will push. A new viewer starts only with the whole
// picture, and its parents are often new themselves: a stripe's parent
// moved by the tracker starts the stripe after the picture, and the
// origin's fetch budget, busy with the playing viewers' deadlines,
// refuses most start fetches in a flash crowd. The origin is asked
// pullPatience after such a pull (see scanFetches). It returns next,
// brought forward to when it next needs to look.
func (n *Node) scanStartPulls(now, next instant) instant {
	m := &n.mesh
	kf := n.newestKeyframe()
	if kf == nil || n.cfg.StartPull < 0 {
		return next
	}
	end := n.groupEnd(kf)
	for seq := kf.seq; seq <= n.newestSeq; seq++ {
		if seq > end {
			// The slices the start plays first (StartMargin beyond the
			// picture): only those no parent will send.
			c, ok := n.captureOf(seq)
			if !ok || c.Sub(kf.capture) > n.cfg.StartMargin {
				break
			}
		}
		sl := n.slot(seq)
		for s := range n.k {
			if sl != nil && sl.chunks[s] != nil {
				continue
			}
			id := wire.ID{Seq: seq, Stripe: uint8(s)}
			st := &n.stripes[s]
			at := kf.firstAt.Add(n.cfg.StartPull)
			if st.parent == "" || n.passed(s, seq) {
				at = now
			} else if seq > end {
				continue
			}
			if at.After(now) {
				next = earliest(next, at)
				continue
			}
			if n.pulling(id) {
				continue
			}
			if len(m.pulls) >= maxPulls {
				return next // an answer or a timeout frees a slot (gen)
			}
			to, ok := n.pickPartner(now, id, true)
			if !ok {
				// A new map (gen) may show it: one is asked for.
				m.stale = m.stale || n.fetchIndex(id) < 0
				continue
			}
			next = earliest(next, n.askPull(now, to, id))
		}
	}
	return next
}

// askPull asks partner to for id and returns when the pull times out.
func (n *Node) askPull(now instant, to int, id wire.ID) instant {
	m := &n.mesh
	m.pulls = append(m.pulls, pull{id: id, to: m.partners[to].id, at: now})
	m.partners[to].out++
	r := n.out()
	r.Pulls = append(r.Pulls, Pull{To: m.partners[to].id, ID: id})
	n.stats.Pulls++
	n.gen++ // the fetch scan waits for it (see scanFetches)
	return now.Add(n.cfg.PullTimeout)
}

// pickPartner returns the index of the partner to pull id from: one
// whose map shows it, else one whose map showed the stripe flowing to its
// last slice and that should hold id by now (a slice later than its map
// for every SliceDuration since, rounded up: a guess, answered Missing when wrong,
// and the origin is asked at once then); the one with the fewest
// pulls outstanding first, then the order of SetPartners; with shown,
// only a partner whose map shows id. Partners that
// answered Missing for id or have maxPartnerPulls outstanding are
// skipped.
func (n *Node) pickPartner(now instant, id wire.ID, shown bool) (int, bool) {
	m := &n.mesh
	best, bestRank := -1, 0
	for i := range m.partners {
		p := &m.partners[i]
		if p.mapAt.IsZero() || p.out >= maxPartnerPulls || slices.Contains(p.refused, id) {
			continue
		}
		rank := 0 // lower is better
		if !p.m.Has(id.Seq, int(id.Stripe)) {
			if shown {
				continue
			}
			last, ok := p.m.Last()
			if !ok || !p.m.Has(last, int(id.Stripe)) || id.Seq <= last {
				continue
			}
			grown := uint64((now.Sub(p.mapAt) + n.cfg.SliceDuration - 1) / n.cfg.SliceDuration) // rounded up
			if grown == 0 || id.Seq > last+grown {
				continue
			}
			rank = 1 << 16
		}
		rank += p.out
		if best < 0 || rank < bestRank {
			best, bestRank = i, rank
		}
	}
	return best, best >= 0
}
