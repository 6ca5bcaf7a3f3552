package tracker

// This file is pure: no clock, no I/O, no goroutines, no global
// randomness (the baseline placer gets a seeded source). Map iteration
// order never reaches an output: every walk is sorted.

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
)

// Placer names (Config.Placer).
const (
	PlacerChandelier = "chandelier" // the topology-aware optimizer (default)
	PlacerBaseline   = "baseline"   // random parent with spare upload, for comparison
)

// DefaultStreamBPS is the stream rate assumed for a channel whose origin
// does not report one (ChannelInfo.StreamBPS).
const DefaultStreamBPS = 4_000_000

// member is one peer of a channel.
type member struct {
	id, addr string
	// gone marks a member removed from its channel: a pointer to it
	// that a cache kept names no member any more (see channel.resolve).
	gone       bool
	capacity   int   // children (stripe feeds) it accepts
	upload     int64 // measured upload, bit/s; 0 unknown
	nat        string
	isp        string
	region     string
	candidates []string
	joined     time.Time
	lastBeat   time.Time
	stats      PeerStats
	// stripes is its current assignment per stripe, as the placer last
	// gave it, with the peer's own valid switches applied.
	stripes []chandelier.Assignment
	// refs[s] caches the members stripes[s] names (see assignments).
	refs    []stripeRefs
	heapIdx int // index in the channel's expiry heap
	// held marks a rejoining member whose reported place waits for the
	// channel's seed round (channel.seedAt): stripes holds its reported
	// parents, which the placer does not know yet. reported names them
	// (with addresses, for parents that have not rejoined yet) and gives
	// its reported depths.
	held     bool
	reported []CurrentStripe
}

// stripeRefs are the members a stripe's assignment names as the last
// answer resolved them: a heartbeat answers with the parent's and the
// backups' addresses (and the backups' lags) without looking their IDs
// up again. nil: not resolved yet; setAssignment clears them whenever
// the assignment changes.
type stripeRefs struct {
	parent  *member
	backups []*member // by Assignment.Backups
}

// resolve returns the member id names (nil for none), through the
// cache *ref: a cached member that is still in the channel is the one
// ch.peers holds for its ID (members are replaced only by remove, which
// marks them gone).
func (ch *channel) resolve(id string, ref **member) *member {
	if m := *ref; m != nil && !m.gone {
		return m
	}
	m := ch.peers[id]
	*ref = m
	return m
}

// channel is one registered channel: its peers, its placer and the
// changes waiting for the next round. Guarded by Tracker.mu.
type channel struct {
	info      ChannelInfo
	key       []byte // decoded public key
	originCap int
	placer    chandelier.Placer
	pcfg      chandelier.Config
	kind      string // PlacerChandelier or PlacerBaseline
	seed      uint64
	relay     bool // Config.Relay

	peers map[string]*member
	// joins holds the times of the joins of the last crowdWindow, oldest
	// first (see crowded).
	joins []time.Time
	// kids indexes the edges by parent ID (chandelier.Origin for the
	// origin): its children sorted by ID, as a heartbeat's answer lists
	// them. Only members are children (remove unlinks a member's edges).
	kids    map[string][]kid
	pending chandelier.Changes
	expiry  expiryHeap
	// batch is closed when the round of the joins waiting in the
	// current join window has run; nil when no window is open.
	batch chan struct{}

	rounds       uint64
	roundNanos   int64 // summed wall time of rounds (set by the shell)
	lastRoundNs  int64
	edgesChanged uint64
	maxMoved     int    // the most edges one round changed
	relayed      uint64 // edges placed through the relay, all rounds
	lastPlan     chandelier.Plan

	// seedAt ends the rejoin window of a channel the tracker has just
	// learned of (registered, perhaps after a tracker restart): the
	// rejoins that report their place until then are held and placed
	// together by the first round from seedAt on, which keeps their
	// valid links (chandelier.Seeder). Zero once that round ran.
	seedAt    time.Time
	held      []string // IDs of held members, in arrival order (may repeat)
	seeded    chandelier.SeedStats
	seedNanos int64 // wall time of the seed round (set by the shell)
}

// A channel is crowded (a flash crowd) while more peers joined it within
// crowdWindow than crowdShare of its peers, and more than crowdFloor:
// 2,000 (or 300) joining in 10 s is one from the 11th join on, 10 %
// churn per minute is not, and neither is a demo's handful of peers.
const (
	crowdWindow = 10 * time.Second
	crowdShare  = 0.1
	crowdFloor  = 10
)

// noteJoin records a join at now and forgets those older than
// crowdWindow.
func (ch *channel) noteJoin(now time.Time) {
	cut := now.Add(-crowdWindow)
	i := 0
	for i < len(ch.joins) && !ch.joins[i].After(cut) {
		i++
	}
	if i > 0 && i >= len(ch.joins)/2 {
		ch.joins = append(ch.joins[:0], ch.joins[i:]...)
		i = 0
	}
	ch.joins = append(ch.joins[i:], now)
}

// crowded reports whether the channel has a flash crowd: the joins of
// the last crowdWindow as of the newest (all noteJoin keeps) are more
// than crowdShare of its peers and more than crowdFloor.
func (ch *channel) crowded() bool {
	n := len(ch.joins)
	return n > crowdFloor && float64(n) > crowdShare*float64(len(ch.peers))
}

func newChannel(req RegisterRequest, key []byte, kind string, seed uint64, relay bool) (*channel, error) {
	ch := &channel{
		info: req.Channel, key: key, kind: kind, seed: seed, relay: relay,
		peers: map[string]*member{},
		kids:  map[string][]kid{},
	}
	if err := ch.reset(req.Capacity, nil); err != nil {
		return nil, err
	}
	return ch, nil
}

// streamRate is the channel's stream rate in bit/s.
func (ch *channel) streamRate() int64 {
	if ch.info.StreamBPS > 0 {
		return ch.info.StreamBPS
	}
	return DefaultStreamBPS
}

// reset builds a fresh placer (a new channel, or an origin restart that
// changed the stripes, the rate or the capacity) and re-joins every peer.
func (ch *channel) reset(originCap int, now *time.Time) error {
	K := ch.info.Stripes
	cfg := chandelier.Config{
		Stripes:     K,
		StreamRate:  ch.streamRate(),
		OriginFeeds: originCap * K,
		Relay:       ch.relay,
	}
	var (
		p   chandelier.Placer
		err error
	)
	switch ch.kind {
	case PlacerBaseline:
		p, err = chandelier.NewBaseline(cfg, rand.NewPCG(ch.seed, 0x7472))
	default:
		p, err = chandelier.New(cfg)
	}
	if err != nil {
		return fmt.Errorf("tracker: placer: %w", err)
	}
	ch.placer, ch.originCap = p, originCap
	ch.pcfg = cfg
	ch.pcfg.Usable = chandelier.DefaultUsable
	ch.pcfg.MaxFeeds = chandelier.DefaultMaxFeeds
	ch.pending = chandelier.Changes{}
	clear(ch.kids)
	ch.held, ch.seedAt = nil, time.Time{}
	for _, id := range ch.sortedIDs() {
		m := ch.peers[id]
		m.held, m.reported = false, nil
		m.stripes, m.refs = emptyStripes(m.id, K), make([]stripeRefs, K)
		ch.pending.Join = append(ch.pending.Join, ch.peerOf(m))
	}
	if now != nil && len(ch.pending.Join) > 0 {
		ch.round(*now)
	}
	return nil
}

func emptyStripes(id string, k int) []chandelier.Assignment {
	as := make([]chandelier.Assignment, k)
	for s := range as {
		as[s] = chandelier.Assignment{Peer: id, Stripe: s}
	}
	return as
}

func (ch *channel) sortedIDs() []string {
	ids := make([]string, 0, len(ch.peers))
	for id := range ch.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// natOf maps an API NAT class to the placer's.
func natOf(s string) chandelier.NAT {
	switch s {
	case "open":
		return chandelier.NATOpen
	case "fullcone":
		return chandelier.NATFullCone
	case "restricted":
		return chandelier.NATRestricted
	case "portrestricted":
		return chandelier.NATPortRestricted
	case "symmetric":
		return chandelier.NATSymmetric
	}
	// Not probed: placed as port-restricted, the commonest home NAT. It
	// pairs with every class but symmetric; taking it as symmetric
	// would leave a swarm of unprobed peers (every peer before the NAT
	// prober runs) fed by the origin alone.
	return chandelier.NATPortRestricted
}

// uploadOf is the upload the placer plans with: the measured upload, at
// most what the peer's capacity (stripe feeds it accepts) needs; without
// a measurement, exactly that.
func (ch *channel) uploadOf(m *member) int64 {
	if m.capacity <= 0 {
		return 0
	}
	stripeRate := float64(ch.pcfg.StreamRate) / float64(ch.pcfg.Stripes)
	// The smallest upload that gives capacity feeds, plus a margin
	// against rounding.
	full := int64(math.Ceil(float64(m.capacity)*stripeRate/ch.pcfg.Usable)) + 1
	if m.upload > 0 {
		return min(m.upload, full)
	}
	return full
}

func (ch *channel) peerOf(m *member) chandelier.Peer {
	return chandelier.Peer{
		ID: m.id, Upload: ch.uploadOf(m), ISP: m.isp, Region: m.region,
		NAT: natOf(m.nat), Joined: m.joined,
	}
}

// join adds (or replaces) a member; the caller runs a round.
func (ch *channel) join(req JoinRequest, now time.Time, timeout time.Duration) {
	if old, ok := ch.peers[req.ID]; ok {
		ch.remove(old)
	}
	ch.noteJoin(now)
	m := &member{
		id: req.ID, addr: req.Addr, capacity: req.Capacity, upload: req.UploadBPS,
		nat: req.NAT, isp: req.ISP, region: req.Region, candidates: slices.Clone(req.Candidates),
		joined: now, lastBeat: now,
		stripes: emptyStripes(req.ID, ch.info.Stripes), refs: make([]stripeRefs, ch.info.Stripes),
	}
	ch.peers[m.id] = m
	heap.Push(&ch.expiry, expiryItem{at: now.Add(timeout), m: m})
	cur := req.Current
	if !cur.usable(len(m.stripes)) {
		ch.pending.Join = append(ch.pending.Join, ch.peerOf(m))
		return
	}
	if !ch.seedAt.IsZero() {
		// The rejoin window is open: hold the reported place for the
		// seed round; until then the peer is told what it holds.
		m.held, m.reported = true, slices.Clone(cur.Stripes)
		for s, st := range cur.Stripes {
			if p := ch.parentRef(st.Parent.ID); p != "" && p != m.id {
				a := m.stripes[s]
				a.Parent = p
				ch.setAssignment(a)
			}
		}
		ch.held = append(ch.held, m.id)
		return
	}
	// Later rejoins (the tracker expired the peer): its links are
	// switches the round keeps when valid.
	ch.pending.Join = append(ch.pending.Join, ch.peerOf(m))
	for s, st := range cur.Stripes {
		p := ch.parentRef(st.Parent.ID)
		if p == "" || p == m.id || (p != chandelier.Origin && ch.peers[p] == nil) {
			continue
		}
		a := m.stripes[s]
		a.Parent = p
		ch.setAssignment(a)
		ch.pending.Switched = append(ch.pending.Switched, chandelier.Switch{Peer: m.id, Stripe: s, Parent: p})
	}
}

// parentRef maps a reported parent's node ID to the placer's name for
// it (chandelier.Origin for the origin); "" for none.
func (ch *channel) parentRef(id string) string {
	if id != "" && id == ch.info.Origin.ID {
		return chandelier.Origin
	}
	return id
}

// seedRound places the held members, keeping their valid links, and
// closes the rejoin window. It returns false when there was nothing to
// seed (the caller runs a plain round).
func (ch *channel) seedRound(now time.Time) (chandelier.Plan, bool) {
	ch.seedAt = time.Time{}
	ids := ch.held
	ch.held = nil
	var (
		peers []chandelier.Peer
		links []chandelier.Link
		seen  = make(map[string]bool, len(ids))
	)
	for _, id := range ids {
		m := ch.peers[id]
		if m == nil || !m.held || seen[id] {
			continue
		}
		seen[id] = true
		m.held = false
		peers = append(peers, ch.peerOf(m))
		for s, a := range m.stripes {
			if a.Parent == "" {
				continue
			}
			if a.Parent != chandelier.Origin && ch.peers[a.Parent] == nil {
				continue // its parent never rejoined: placed afresh
			}
			d := 0
			if s < len(m.reported) {
				d = m.reported[s].Depth
			}
			links = append(links, chandelier.Link{Peer: m.id, Stripe: s, Parent: a.Parent, Depth: d})
		}
		m.reported = nil
	}
	if len(peers) == 0 {
		return chandelier.Plan{}, false
	}
	sd, ok := ch.placer.(chandelier.Seeder)
	if !ok {
		// A placer that cannot seed: joins, and the links as switches.
		ch.pending.Join = append(ch.pending.Join, peers...)
		for _, l := range links {
			ch.pending.Switched = append(ch.pending.Switched, chandelier.Switch{Peer: l.Peer, Stripe: l.Stripe, Parent: l.Parent})
		}
		return chandelier.Plan{}, false
	}
	changes := ch.pending
	ch.pending = chandelier.Changes{}
	plan, st := sd.Seed(now, peers, links, changes)
	ch.seeded.Links += st.Links
	ch.seeded.Kept += st.Kept
	ch.seeded.Dropped += st.Dropped
	ch.applyPlan(plan, changes)
	// Every seeded peer's assignment as the placer has it now (a kept
	// link is no change in the plan's diff against what it was told).
	for _, p := range peers {
		for _, a := range ch.placer.PeerAssignments(p.ID) {
			ch.setAssignment(a)
		}
	}
	return plan, true
}

// remove takes a member out at once; the placer hears of it in the next
// round. Its children keep naming it until then (or until they report
// it lost).
func (ch *channel) remove(m *member) {
	delete(ch.peers, m.id)
	m.gone = true
	if m.heapIdx >= 0 && m.heapIdx < len(ch.expiry) && ch.expiry[m.heapIdx].m == m {
		heap.Remove(&ch.expiry, m.heapIdx)
	}
	for s := range m.stripes {
		ch.unlinkKid(m.stripes[s].Parent, m.id, s)
	}
	// A pending join of the same ID must not reach the placer after the
	// leave (the placer applies leaves first).
	ch.pending.Join = slices.DeleteFunc(ch.pending.Join, func(p chandelier.Peer) bool { return p.ID == m.id })
	ch.pending.Update = slices.DeleteFunc(ch.pending.Update, func(p chandelier.Peer) bool { return p.ID == m.id })
	ch.pending.Switched = slices.DeleteFunc(ch.pending.Switched, func(s chandelier.Switch) bool { return s.Peer == m.id })
	ch.pending.Leave = append(ch.pending.Leave, m.id)
}

// kid is one child in the children index: its ID and address, and the
// stripes it takes from the parent (a mask).
type kid struct {
	id, addr string
	stripes  uint16
}

// findKid returns where child is, or would be, in a parent's children.
func findKid(kids []kid, child string) (int, bool) {
	return slices.BinarySearchFunc(kids, child, func(k kid, id string) int { return strings.Compare(k.id, id) })
}

// stripesFrom returns the stripes child takes from parent (0: none).
func (ch *channel) stripesFrom(parent, child string) uint16 {
	k := ch.kids[parent]
	if i, ok := findKid(k, child); ok {
		return k[i].stripes
	}
	return 0
}

func (ch *channel) linkKid(parent string, child *member, s int) {
	if parent == "" {
		return
	}
	k := ch.kids[parent]
	i, ok := findKid(k, child.id)
	if !ok {
		k = slices.Insert(k, i, kid{id: child.id, addr: child.addr})
		ch.kids[parent] = k
	}
	k[i].stripes |= 1 << s
}

func (ch *channel) unlinkKid(parent, child string, s int) {
	k := ch.kids[parent]
	i, ok := findKid(k, child)
	if !ok {
		return
	}
	if k[i].stripes &^= 1 << s; k[i].stripes != 0 {
		return
	}
	if k = slices.Delete(k, i, i+1); len(k) > 0 {
		ch.kids[parent] = k
	} else {
		delete(ch.kids, parent)
	}
}

// setAssignment records a's parent and backups for its peer.
func (ch *channel) setAssignment(a chandelier.Assignment) {
	m, ok := ch.peers[a.Peer]
	if !ok || a.Stripe < 0 || a.Stripe >= len(m.stripes) {
		return
	}
	old := m.stripes[a.Stripe]
	if old.Parent != a.Parent {
		ch.unlinkKid(old.Parent, a.Peer, a.Stripe)
		ch.linkKid(a.Parent, m, a.Stripe)
	}
	m.stripes[a.Stripe] = a
	r := &m.refs[a.Stripe]
	r.parent = nil
	r.backups = slices.Grow(r.backups[:0], len(a.Backups))[:len(a.Backups)]
	clear(r.backups)
}

// round runs one placer round over the pending changes and applies its
// plan. It reports the plan.
func (ch *channel) round(now time.Time) chandelier.Plan {
	if !ch.seedAt.IsZero() && !now.Before(ch.seedAt) {
		if plan, ok := ch.seedRound(now); ok {
			return plan
		}
	}
	changes := ch.pending
	ch.pending = chandelier.Changes{}
	plan := ch.placer.Round(now, changes)
	ch.applyPlan(plan, changes)
	return plan
}

// applyPlan records a round's plan.
func (ch *channel) applyPlan(plan chandelier.Plan, changes chandelier.Changes) {
	for _, a := range plan.Changed {
		ch.setAssignment(a)
	}
	// The peers' own switches were shown to them before the round; the
	// plan's diff does not see them, so take those peers' assignments
	// as the placer has them now (a refused switch is undone).
	for k, sw := range changes.Switched {
		if k > 0 && changes.Switched[k-1].Peer == sw.Peer {
			continue
		}
		if m, ok := ch.peers[sw.Peer]; ok {
			for _, a := range ch.placer.PeerAssignments(m.id) {
				ch.setAssignment(a)
			}
		}
	}
	ch.rounds++
	ch.edgesChanged += uint64(plan.Moved)
	ch.maxMoved = max(ch.maxMoved, plan.Moved)
	ch.relayed += uint64(plan.Relayed)
	ch.lastPlan = plan
}

// switched records a peer's own switches: the assignment shows them at
// once, and the next round keeps the valid ones.
func (ch *channel) switched(m *member, sws []StripeSwitch) {
	for _, sw := range sws {
		if sw.Stripe >= len(m.stripes) {
			continue
		}
		parent := sw.Parent
		if parent == ch.info.Origin.ID {
			parent = chandelier.Origin
		} else if _, ok := ch.peers[parent]; !ok {
			continue // a backup that left meanwhile: the round re-places the stripe
		}
		a := m.stripes[sw.Stripe]
		a.Parent = parent
		a.Backups = slices.DeleteFunc(slices.Clone(a.Backups), func(b string) bool { return b == parent })
		ch.setAssignment(a)
		ch.pending.Switched = append(ch.pending.Switched, chandelier.Switch{Peer: m.id, Stripe: sw.Stripe, Parent: parent})
	}
}

// dropParent clears every stripe m receives from lost (the peer reported
// it lost and did not switch): the stripe waits for the next round.
func (ch *channel) dropParent(m *member, lost string) (dropped int) {
	for s := range m.stripes {
		if m.stripes[s].Parent == lost {
			a := m.stripes[s]
			a.Parent = ""
			ch.setAssignment(a)
			dropped++
		}
	}
	return dropped
}

// nodeInfo names a parent of an assignment.
func (ch *channel) nodeInfo(id string) NodeInfo {
	var m *member
	return ch.parentInfo(id, &m)
}

// parentInfo names a parent of an assignment, resolved through *ref.
func (ch *channel) parentInfo(id string, ref **member) NodeInfo {
	if id == chandelier.Origin {
		return ch.info.Origin
	}
	if id == "" {
		return NodeInfo{}
	}
	if m := ch.resolve(id, ref); m != nil {
		return NodeInfo{ID: m.id, Addr: m.addr}
	}
	return NodeInfo{}
}

// assignments returns m's assignment in API form.
// Every heartbeat asks for it (10,000 a second at 10,000 peers), so the
// members it names are resolved through m.refs, and all the stripes'
// backups share one array.
func (ch *channel) assignments(m *member) []StripeAssignment {
	out := make([]StripeAssignment, len(m.stripes))
	n := 0
	for _, a := range m.stripes {
		n += len(a.Backups)
	}
	backups := make([]NodeInfo, 0, n)
	for s, a := range m.stripes {
		r := &m.refs[s]
		out[s] = StripeAssignment{Parent: ch.parentInfo(a.Parent, &r.parent), Relayed: a.Relayed}
		if m.held && out[s].Parent.IsZero() && s < len(m.reported) && ch.parentRef(m.reported[s].Parent.ID) == a.Parent {
			// A held place whose parent has not rejoined yet.
			out[s].Parent = m.reported[s].Parent
		}
		from := len(backups)
		for k, b := range a.Backups {
			if b == chandelier.Origin {
				if !ch.info.Origin.IsZero() {
					backups = append(backups, ch.info.Origin)
				}
			} else if bm := ch.resolve(b, &r.backups[k]); bm != nil {
				backups = append(backups, NodeInfo{ID: bm.id, Addr: bm.addr, LagMS: bm.stats.LagMS})
			}
		}
		out[s].Backups = backups[from:len(backups):len(backups)] // appending to one stripe's leaves the others
	}
	return out
}

// children returns the peers id feeds on any stripe, sorted by ID.
func (ch *channel) children(id string) []NodeInfo {
	k := ch.kids[id]
	out := make([]NodeInfo, len(k))
	for i, c := range k {
		out[i] = NodeInfo{ID: c.id, Addr: c.addr}
	}
	return out
}

// expire removes the members whose deadline passed (silent for longer
// than timeout) and returns their IDs in expiry order. It costs
// O(log N) per member due, not a walk over every member.
func (ch *channel) expire(now time.Time, timeout time.Duration) []string {
	var dead []string
	for len(ch.expiry) > 0 && ch.expiry[0].at.Before(now) {
		it := ch.expiry[0]
		if due := it.m.lastBeat.Add(timeout); !due.Before(now) {
			ch.expiry[0].at = due
			heap.Fix(&ch.expiry, 0)
			continue
		}
		ch.remove(it.m) // removes it from the heap too
		dead = append(dead, it.m.id)
	}
	return dead
}

// depths returns, per stripe, every member's depth (1 under the origin,
// 0 when its chain does not reach the origin).
func (ch *channel) depths() []map[string]int {
	K := ch.info.Stripes
	out := make([]map[string]int, K)
	for s := range K {
		d := make(map[string]int, len(ch.peers))
		var walk func(id string, steps int) int
		walk = func(id string, steps int) int {
			if v, ok := d[id]; ok {
				return v
			}
			m, ok := ch.peers[id]
			if !ok || steps > len(ch.peers) {
				return 0
			}
			d[id] = 0 // a cycle resolves to 0
			v := 0
			switch p := m.stripes[s].Parent; p {
			case chandelier.Origin:
				v = 1
			case "":
			default:
				if pd := walk(p, steps+1); pd > 0 {
					v = pd + 1
				}
			}
			d[id] = v
			return v
		}
		for id := range ch.peers {
			walk(id, 0)
		}
		out[s] = d
	}
	return out
}

// view returns every member, by stripe-0 depth then ID, detached ones
// (depth 0) last.
func (ch *channel) view() []TreeNode {
	ds := ch.depths()
	out := make([]TreeNode, 0, len(ch.peers))
	for _, id := range ch.sortedIDs() {
		m := ch.peers[id]
		kids := make([]string, len(ch.kids[id]))
		for i, c := range ch.kids[id] {
			kids[i] = c.id
		}
		st := make([]TreeStripe, len(m.stripes))
		for s, a := range m.stripes {
			st[s] = TreeStripe{Parent: ch.nodeInfo(a.Parent).ID, Depth: ds[s][id]}
		}
		out = append(out, TreeNode{
			ID: m.id, Addr: m.addr, Parent: st[0].Parent, Depth: st[0].Depth,
			Capacity: m.capacity, Children: kids,
			JoinedUnixMS: m.joined.UnixMilli(), LastHeartbeatUnixMS: m.lastBeat.UnixMilli(),
			Stats: m.stats, ISP: m.isp, NAT: m.nat, UploadBPS: m.upload, Stripes: st,
		})
	}
	slices.SortStableFunc(out, func(a, b TreeNode) int {
		if (a.Depth == 0) != (b.Depth == 0) {
			if a.Depth == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Depth, b.Depth)
	})
	return out
}

// expiryItem is a member's heartbeat deadline as last seen by the heap;
// the member's lastBeat may have moved it later (checked when it pops).
type expiryItem struct {
	at time.Time
	m  *member
}

// expiryHeap is a min-heap of deadlines, one item per member.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int { return len(h) }
func (h expiryHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].m.id < h[j].m.id
}
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].m.heapIdx, h[j].m.heapIdx = i, j
}
func (h *expiryHeap) Push(x any) {
	it := x.(expiryItem)
	it.m.heapIdx = len(*h)
	*h = append(*h, it)
}
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = expiryItem{}
	*h = old[:len(old)-1]
	it.m.heapIdx = -1
	return it
}
