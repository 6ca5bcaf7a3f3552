package swarm

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// Node is one node's protocol state for one channel. Create it with New;
// feed it inputs; drain Ready after each; call Tick at NextDeadline.
type Node struct {
	// ready holds the outputs not yet drained: storage of its own, out
	// of line, or storage a driver lent (Lend; own is then the node's
	// own). pending: an output was added since the last Ready, so that
	// an idle node's storage is not read (see Return).
	ready   *Ready
	own     *Ready
	pending bool
	cfg     Config
	k       int // cfg.Stripes

	// The window: the held slots in ascending seq order (see find),
	// their index entries alongside (idx[i] describes win[i]), and a few
	// evicted slots kept for reuse.
	win []*slot
	idx []entry
	// winBase and idxBase are the backing arrays win and idx are
	// windows of (see windowInsert).
	winBase []*slot
	idxBase []entry
	// spare holds evicted slots kept for reuse (spare[:nSpare]), in the
	// Node itself: the slot a new slice takes is found without a miss.
	spare  [maxSpare]*slot
	nSpare int

	clock     bool    // an input with a time arrived
	startAt   instant // the time of the first input
	seen      bool    // a chunk was accepted
	firstAt   instant // when the first chunk was accepted
	startCut  instant // the hellos' Start before playout starts (0: none yet; see HelloStart)
	newestSeq uint64  // highest seq accepted
	newestCap instant // latest capture accepted

	stripes  []stripe   // by stripe index
	children []child    // sorted by id (values: one array to read per chunk)
	fetching []fetch    // outstanding fetches, with when they were asked
	late     []lagCount // parents that sent slices in a row after they were fetched (LagSlices); a few at most
	mesh     mesh       // partners, watchers, pulls, Alives (mesh.go)
	heardAny instant    // when a chunk, or an Alive showing progress, last came from any node (see silenceLimit)
	play     playout    // playout clock (not in source mode)
	stats    Stats      // counters
	deadline instant    // earliest scheduled work; zero = none
	est      Estimates  // the swarm's global figures (SetEstimates)

	// The fetch scan is skipped while its inputs are unchanged and its
	// next time has not come (see step).
	scanKey  scanKey
	scanNext instant // what the last scan returned
	gen      uint64  // bumped by changes of parents, slots and outstanding fetches

	// Playout is likewise skipped while its inputs are unchanged and the
	// time it returned has not come (see step).
	playKey   playKey
	playNext  instant // what the last advancePlayout returned
	completed uint64  // bumped when a slot gets its last chunk
	// The scans' run of complete slices from doneFrom to doneTo (see
	// skipDone).
	doneFrom, doneTo uint64
	// uncached runs playout at every step and the fetch scan over every
	// slice it may fetch (a test compares it with the shortcuts).
	uncached bool
}

// playKey is what advancePlayout depends on besides the clock: the
// window's slots (gen), which of them are complete (completed), and the
// playout clock's own state. Any new input of advancePlayout must be
// part of it.
type playKey struct {
	valid     bool // advancePlayout ran
	gen       uint64
	completed uint64
	next      uint64
	skew      time.Duration
	started   bool
	stalled   bool
}

// playKeyNow returns the current playKey.
func (n *Node) playKeyNow() playKey {
	return playKey{true, n.gen, n.completed, n.play.next, n.play.skew, n.play.started, n.play.stalled}
}

// same reports whether k equals o, field by field: == on the struct
// compares its padded fields through a call.
func (k *playKey) same(o *playKey) bool {
	return k.gen == o.gen && k.completed == o.completed && k.next == o.next && k.skew == o.skew &&
		k.valid == o.valid && k.started == o.started && k.stalled == o.stalled
}

// scanKey is what the fetch scan depends on besides the clock.
type scanKey struct {
	valid     bool // a scan ran
	gen       uint64
	next      uint64
	skew      time.Duration
	started   bool
	seen      bool
	newestSeq uint64
}

// same reports whether k equals o, field by field (see playKey.same).
func (k *scanKey) same(o *scanKey) bool {
	return k.gen == o.gen && k.next == o.next && k.skew == o.skew && k.newestSeq == o.newestSeq &&
		k.valid == o.valid && k.started == o.started && k.seen == o.seen
}

// stripe is the node's state for one stripe tree. The stripes that share
// a parent share its liveness (up and since are kept equal).
type stripe struct {
	parent NodeID // "" = none
	// up: the parent accepted the subscription (ParentUp, or a chunk
	// from it arrived).
	up bool
	// group is the first stripe with the same parent (noGroup while
	// parent is ""): the stripes one parent feeds share it, so loops
	// over a parent's stripes compare bytes, not IDs (see regroup).
	group uint8
	// ptag is idTag(parent), set with group: loops over the stripes
	// looking for one sender's compare it first.
	ptag uint64
	// since is the liveness timer: until up, when SetParent named the
	// parent (ParentConnectTimeout runs from it); then the later of
	// ParentUp and the last chunk from the parent on any stripe
	// (ParentTimeout runs from it).
	since instant
	// moved is when the parent last showed it moving: it came up, a
	// chunk came from it, or an Alive showed it further on. Alives that
	// show it stuck keep it for at most starveLimit after that.
	moved instant
	// heardAt is when anything last came from the parent (a chunk or an
	// Alive, moving or stuck), or when it was named or came up: see
	// silenceLimit.
	heardAt instant
	// keepAt: no keepalive fetch for this parent before then (see
	// keepaliveDue).
	keepAt instant
	lostAt instant // when its parent was lost; zero unless repairing
	newest uint64  // highest seq received on this stripe
	seen   bool    // newest is valid
	// pushSeq is the highest seq the parent pushed on this stripe, and
	// pushAt when it arrived (zero: none from this parent); see pushing.
	pushSeq uint64
	pushAt  instant

	// Alive, parent side (mesh.go): the newest seq pushed on the stripe
	// and when it (or an Alive) last went out.
	pushedNewest uint64
	pushedAt     instant
	// Alive, child side: the newest seq the parent's last Alive named,
	// and which parent sent it.
	aliveNewest uint64
	aliveFrom   NodeID
}

// child is a subscriber the node pushes chunks to.
type child struct {
	id   NodeID
	mask uint16 // subscribed stripes
	// ci is the child's index into slot.sent, unique among the node's
	// children (a removed child's index is cleared and reused).
	ci int
}

// New returns a Node for cfg, with zero fields set to their defaults. It
// fails with an error wrapping ErrConfig when cfg is unusable.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		ready:   new(Ready),
		cfg:     cfg,
		k:       cfg.Stripes,
		stripes: make([]stripe, cfg.Stripes),
	}
	n.regroup()
	return n, nil
}

// noGroup is the group of a stripe without a parent.
const noGroup = 0xff

// regroup sets every stripe's group from the parents: it runs whenever a
// stripe's parent changes.
func (n *Node) regroup() {
	for s := range n.stripes {
		st := &n.stripes[s]
		st.group, st.ptag = noGroup, idTag(st.parent)
		if st.parent == "" {
			continue
		}
		st.group = uint8(s)
		for o := range s {
			if n.stripes[o].parent == st.parent {
				st.group = uint8(o)
				break
			}
		}
	}
}

// Config returns the node's configuration with defaults applied.
func (n *Node) Config() Config { return n.cfg }

// Publish stores a chunk this node made and forwards it to the children
// subscribed to its stripe. c must be signed and raw must be its
// encoding; the node keeps raw and hands it to Sends, so the caller must
// not modify it afterwards. Only a source node publishes: on other nodes,
// and for a chunk of another channel or stripe count, Publish does nothing.
func (n *Node) Publish(nowT time.Time, c *wire.Chunk, raw []byte) {
	now := at(nowT)
	if !n.cfg.Source || c == nil || c.Channel != n.cfg.Channel ||
		int(c.Stripes) != n.k || int(c.Stripe) >= n.k {
		return
	}
	n.accept(now, "", c, raw, false)
	n.step(now)
}

// HandleChunk takes an encoded chunk from another node: a parent, a
// partner, or the origin (pushed or fetched). The node keeps raw (it is
// forwarded as is), so the caller must not modify it afterwards.
//
// A chunk that does not parse, is not signed by the channel key, or does
// not fit the channel fails with an error wrapping ErrBadChunk or
// ErrWrongChannel; from is then put into Ready.CutOff and, where it is a
// parent, lost. Duplicates and chunks too old to use are dropped without
// error.
func (n *Node) HandleChunk(now time.Time, from NodeID, raw []byte) error {
	return n.handleChunk(at(now), from, raw)
}

// handleChunk is HandleChunk.
func (n *Node) handleChunk(now instant, from NodeID, raw []byte) error {
	parse := wire.ParseChunk
	if n.cfg.Parse != nil {
		parse = n.cfg.Parse
	}
	c, err := parse(raw)
	if err != nil {
		return n.bad(now, from, fmt.Errorf("%w: %w", ErrBadChunk, err))
	}
	if c.Channel != n.cfg.Channel {
		return n.bad(now, from, fmt.Errorf("%w: chunk of channel %q on %q", ErrWrongChannel, c.Channel, n.cfg.Channel))
	}
	if int(c.Stripes) != n.k || int(c.Stripe) >= n.k {
		return n.bad(now, from, fmt.Errorf("%w: chunk of stripe %d of %d, channel has %d stripes", ErrBadChunk, c.Stripe, c.Stripes, n.k))
	}
	// A byte-identical copy of a held chunk needs no second verification.
	if i, ok := n.find(c.Seq); ok && n.idx[i].held&(1<<c.Stripe) != 0 && bytes.Equal(n.win[i].raws[c.Stripe], raw) {
		n.judgeLag(now, from, n.win[i], int(c.Stripe))
		n.latePush(now, from, n.win[i], int(c.Stripe))
		n.notePush(now, from, int(c.Stripe), c.Seq)
		n.duplicate(now, from)
		n.step(now)
		return nil
	}
	if err := n.verify(raw); err != nil {
		return n.bad(now, from, fmt.Errorf("%w: %w", ErrBadChunk, err))
	}
	n.accept(now, from, c, raw, true)
	n.step(now)
	return nil
}

// verify checks a chunk's signature with Config.Verify or the channel
// key.
func (n *Node) verify(raw []byte) error {
	if n.cfg.Verify != nil {
		return n.cfg.Verify(raw)
	}
	return wire.VerifyChunk(raw, n.cfg.PublicKey)
}

// bad handles a chunk that failed checks: count it, cut the sender off,
// and lose it as a parent.
func (n *Node) bad(now instant, from NodeID, err error) error {
	n.stats.BadChunks++
	if !slices.Contains(n.ready.CutOff, from) {
		r := n.out()
		r.CutOff = append(r.CutOff, from)
	}
	n.loseParent(now, from)
	n.step(now)
	return err
}

// HandleMissing notes that the origin does not hold id (yet); the fetch
// is asked again after Config.FetchRetry.
func (n *Node) HandleMissing(nowT time.Time, from NodeID, id wire.ID) {
	now := at(nowT)
	// The outstanding entry stays until its retry time, which both paces
	// the retry and keeps it counted against MaxFetches.
	n.pullMissing(from, id) // a partner's answer to a pull
	n.step(now)
}

// SetParent sets the parent of a stripe (-1: of every stripe; "" = none).
// Out-of-range stripes are ignored, and so is naming a stripe's current
// parent again. A new parent starts down: it has ParentConnectTimeout to
// come up (ParentUp) before it is lost — unless it is already up as the
// parent of another stripe, whose liveness it then shares.
func (n *Node) SetParent(nowT time.Time, stripe int, parent NodeID) {
	now := at(nowT)
	if stripe < -1 || stripe >= n.k {
		return
	}
	for s := range n.stripes {
		st := &n.stripes[s]
		if (stripe != -1 && s != stripe) || st.parent == parent {
			continue
		}
		st.parent, st.up, st.since, st.moved, st.heardAt = parent, false, now, now, now
		st.pushAt = 0
		n.gen++
		for o := range n.stripes {
			if sib := &n.stripes[o]; o != s && parent != "" && sib.parent == parent {
				st.up, st.since, st.moved, st.heardAt = sib.up, sib.since, sib.moved, sib.heardAt
				break
			}
		}
		n.regroup()
	}
	n.step(now)
}

// ParentUp tells the node that parent accepted its subscription (the
// driver wrote the hello on an open stream, or the simulated link came
// up): the liveness timer of that parent's stripes starts now, and from
// here on ParentTimeout applies instead of ParentConnectTimeout. It does
// nothing when parent is no stripe's parent or is already up. A chunk
// from a parent also brings it up.
func (n *Node) ParentUp(nowT time.Time, parent NodeID) {
	now := at(nowT)
	if parent == "" {
		return
	}
	for s := range n.stripes {
		if st := &n.stripes[s]; st.parent == parent && !st.up {
			st.up, st.since, st.moved, st.heardAt = true, now, now, now
			n.gen++
		}
	}
	n.step(now)
}

// heard records that a chunk (new or a duplicate) from from arrived: a
// parent that sends anything is alive and up, on all its stripes.
func (n *Node) heard(now instant, from NodeID) {
	if from == "" {
		return
	}
	n.heardAny = now
	t := idTag(from)
	for s := range n.stripes {
		if st := &n.stripes[s]; st.ptag == t && st.parent == from {
			if !st.up {
				n.gen++
			}
			st.up, st.since, st.moved, st.heardAt = true, now, now, now
		}
	}
}

// starveLimit is how long Alives that show a parent stuck keep it: a
// parent starved by its own upstream repairs within its ParentTimeout,
// and one stuck for longer is left like a silent one. Else two nodes
// that lost their parents and took each other as backups (a cycle)
// would keep each other forever with Alives.
func (n *Node) starveLimit() time.Duration { return 2 * n.cfg.ParentTimeout }

// heardStuck records an Alive from parent from that shows it no further
// on: it proves the parent alive while it moved within starveLimit, and
// not silent (see silenceLimit) in any case.
func (n *Node) heardStuck(now instant, from NodeID) {
	t := idTag(from)
	for s := range n.stripes {
		if st := &n.stripes[s]; st.ptag == t && st.parent == from && st.up {
			st.heardAt = now
			if now.Sub(st.moved) < n.starveLimit() {
				st.since = now
			}
		}
	}
}

// ParentIsUp reports whether the parent of a stripe is up (false for no
// parent or out of range).
func (n *Node) ParentIsUp(stripe int) bool {
	if stripe < 0 || stripe >= n.k {
		return false
	}
	st := &n.stripes[stripe]
	return st.parent != "" && st.up
}

// Parent returns the parent of a stripe ("" for none or out of range).
func (n *Node) Parent(stripe int) NodeID {
	if stripe < 0 || stripe >= n.k {
		return ""
	}
	return n.stripes[stripe].parent
}

// AddChild subscribes id to the stripes in h.Stripes (bits beyond the
// channel's stripes are ignored). Re-adding a child replaces its
// subscription. It queues Sends of the held chunks of the subscribed
// stripes — from the newest keyframe slice held when h.From is 0, else
// from slice h.From (clamped to the window) — in seq, then stripe order,
// then pushes new chunks as they arrive. A child never gets a chunk twice,
// nor one of a slice that arrived more than Window before now (a node cut
// off from every source keeps its window until new chunks evict it).
// It refuses (ErrCycle) a hello from the node's own parent on a stripe
// the hello asks for.
func (n *Node) AddChild(nowT time.Time, id NodeID, h wire.Hello) error {
	now := at(nowT)
	if h.Channel != n.cfg.Channel {
		return fmt.Errorf("%w: hello for channel %q on %q", ErrWrongChannel, h.Channel, n.cfg.Channel)
	}
	// Two peers that lost their parents at once may take each other as
	// backups, each before the other's hello arrived: the one that hears
	// its own parent subscribe to the same stripe refuses it (a cycle
	// feeds neither), and the refused one repairs again.
	for s := range n.k {
		if h.Stripes&(1<<s) != 0 && id != "" && sameID(n.stripes[s].parent, id) {
			return fmt.Errorf("%w: %s, stripe %d", ErrCycle, id, s)
		}
	}
	i, found := slices.BinarySearchFunc(n.children, id, func(c child, id NodeID) int {
		switch {
		case c.id < id:
			return -1
		case c.id > id:
			return 1
		}
		return 0
	})
	if !found && len(n.children) >= n.cfg.MaxChildren {
		return fmt.Errorf("%w: %d children", ErrFull, len(n.children))
	}
	if err := n.checkFeeds(id, h.Stripes&uint16(1<<n.k-1)); err != nil {
		return err
	}
	if !found {
		n.children = slices.Insert(n.children, i, child{id: id, ci: n.freeChildIndex()})
		n.gen++ // keepalives depend on having children
	}
	ch := &n.children[i]
	ch.mask = h.Stripes & uint16(1<<n.k-1)
	if len(n.win) > 0 && ch.mask != 0 {
		first := len(n.ready.Sends)
		start := n.backlogStart(now, h.From, h.Start)
		j, _ := n.find(start)
		for _, sl := range n.win[j:] {
			if now.Sub(sl.firstAt) > n.cfg.Window {
				continue // held since the stream last reached this node: too old for a child
			}
			for s := 0; s < n.k; s++ {
				if sl.raws[s] != nil {
					n.sendTo(ch, sl, s, "")
				}
			}
		}
		if !found {
			// A new child's start; a renewed subscription's catch-up on
			// the stripes it moved here is as urgent as live chunks.
			n.markBacklog(first)
		}
	}
	n.step(now)
	return nil
}

// backlogStart returns the first seq of a new child's backlog: only what
// the child can use without holding up the live chunks queued behind it.
//
// A child that asks from a slice (from > 0) already plays or holds a
// start keyframe: it gets the held slices from there, but none captured
// more than MaxBacklog before the newest held — older ones it would get
// too late, and it fetches what it misses at the margin.
//
// A child that holds nothing (from 0) needs a keyframe to start: it gets
// the newest keyframe slice held and the slices after it, unless the next
// keyframe is expected within KeyframeWait (the interval between the two
// newest keyframes held, minus the newest's age) while the stream flows.
// Then it gets only the live chunks and starts at that next keyframe,
// closer to live, while a stale group of pictures does not delay the
// live chunks queued behind it at every hop. A child that names a start
// (wire.Hello.Start, see HelloStart) decides instead: it gets the first
// keyframe slice held captured at or after start and the slices after
// it, or only live chunks when none is held (the keyframe is still to
// come); a start more than twice MaxBacklog before the newest slice held
// counts from there.
func (n *Node) backlogStart(now instant, from uint64, start int64) uint64 {
	newest := n.win[len(n.win)-1]
	if from == 0 && start > 0 {
		return n.keyframeFrom(max(instant(start), newest.capture.Add(-2*n.cfg.MaxBacklog)))
	}
	if from > 0 {
		lo := n.win[0]
		if cut := newest.capture.Add(-n.cfg.MaxBacklog); lo.capture.Before(cut) {
			j, _ := slices.BinarySearchFunc(n.win, cut, func(sl *slot, t instant) int {
				return sl.capture.Compare(t)
			})
			if j < len(n.win) {
				lo = n.win[j]
			}
		}
		return max(from, lo.seq)
	}
	var kf, prev *slot
	for i := len(n.win) - 1; i >= 0; i-- {
		if sl := n.win[i]; sl.keyframe {
			if kf == nil {
				kf = sl
				continue
			}
			prev = sl
			break
		}
	}
	switch {
	case kf == nil:
		return n.win[0].seq // no keyframe held: everything held
	case prev == nil || n.cfg.KeyframeWait <= 0:
		return kf.seq // never wait, or the keyframe interval is unknown
	}
	age := newest.capture.Sub(kf.capture)
	// Only while the stream flows (its newest slice came within two slice
	// durations of now): a paused or ended stream brings no next keyframe.
	flowing := now.Sub(newest.firstAt) <= 2*n.cfg.SliceDuration
	if wait := kf.capture.Sub(prev.capture) - age; flowing && wait <= n.cfg.KeyframeWait {
		return newest.seq + 1 // only live chunks: the next keyframe is near
	}
	return kf.seq
}

// keyframeFrom returns the seq of the first keyframe slice held captured
// at or after cut, or the seq after the newest held when there is none.
func (n *Node) keyframeFrom(cut instant) uint64 {
	seq := n.win[len(n.win)-1].seq + 1
	for i := len(n.idx) - 1; i >= 0 && !n.win[i].capture.Before(cut); i-- {
		if n.win[i].keyframe {
			seq = n.win[i].seq
		}
	}
	return seq
}

// SetStartAge sets Config.StartAge (a negative d counts as 0): the
// tracker's join answer tells a new node the start age for the swarm as
// it is now (shorter during a flash crowd). It applies to the hellos
// from then on.
func (n *Node) SetStartAge(d time.Duration) {
	n.cfg.StartAge = max(d, 0)
}

// HelloStart returns the wire.Hello.Start the node asks a new parent for
// when it holds nothing (Hello.From 0): before playout starts, StartAge
// before the first such hello, kept for the hellos up to StartAge after
// it (the other stripes' parents, moves before the first chunk) and
// renewed for a later one (nothing came from the earlier parents, and an
// old start would cost a long backlog); 0 once playout runs, in source
// mode or without StartAge.
func (n *Node) HelloStart(nowT time.Time) int64 {
	if n.cfg.StartAge <= 0 || n.cfg.Source || n.play.started {
		return 0
	}
	now := at(nowT)
	if n.startCut.IsZero() || now.Sub(n.startCut) > 2*n.cfg.StartAge {
		n.startCut = max(now.Add(-n.cfg.StartAge), 1)
	}
	return int64(n.startCut)
}

// freeChildIndex returns the smallest child index (child.ci) no child
// uses.
func (n *Node) freeChildIndex() int {
	for ci := 0; ; ci++ {
		if !slices.ContainsFunc(n.children, func(c child) bool { return c.ci == ci }) {
			return ci
		}
	}
}

// RemoveChild unsubscribes id.
func (n *Node) RemoveChild(id NodeID) {
	i := slices.IndexFunc(n.children, func(c child) bool { return c.id == id })
	if i < 0 {
		return
	}
	ci := n.children[i].ci
	for _, sl := range n.win { // its index is reused: forget what it was sent
		if ci < len(sl.sent) {
			sl.sent[ci] = 0
		}
	}
	n.children = slices.Delete(n.children, i, i+1)
	n.gen++ // keepalives depend on having children
}

// NodeGone tells the node that the driver lost its connection to id: a
// parent is lost on its stripes (reported in Ready.Lost), a child removed.
func (n *Node) NodeGone(nowT time.Time, id NodeID) {
	now := at(nowT)
	n.loseParent(now, id)
	n.RemoveChild(id)
	n.meshGone(id)
	n.step(now)
}

// loseParent drops parent from every stripe it feeds, reports each and
// starts their repair timers.
func (n *Node) loseParent(now instant, parent NodeID) {
	if parent == "" {
		return
	}
	n.forgetLate(parent)
	for s := range n.stripes {
		st := &n.stripes[s]
		if st.parent != parent {
			continue
		}
		r := n.out()
		r.Lost = append(r.Lost, Lost{Parent: parent, Stripe: s})
		st.parent, st.up, st.since = "", false, now
		n.gen++
		if st.lostAt.IsZero() {
			st.lostAt = now
		}
	}
	n.regroup()
}

// NewestKeyframe returns the seq of the newest keyframe slice held (in
// source mode: the newest the node published). A driver serving fetches
// answers a request for slice 0 — which no origin makes: slices are
// numbered from 1 — with that slice's chunk of the requested stripe; a
// node that has received nothing asks so to learn where the stream is.
func (n *Node) NewestKeyframe() (seq uint64, ok bool) {
	if sl := n.newestKeyframe(); sl != nil {
		return sl.seq, true
	}
	return 0, false
}

// Lookup returns a held chunk's encoding, to serve a fetch.
func (n *Node) Lookup(id wire.ID) ([]byte, bool) {
	sl := n.slot(id.Seq)
	if sl == nil || int(id.Stripe) >= n.k || sl.raws[id.Stripe] == nil {
		return nil, false
	}
	return sl.raws[id.Stripe], true
}

// ChildStripes returns the stripes id takes from the node as a mask (0:
// id is no child). A peer repairing a stripe must not take a child on
// that stripe as its parent: that closes a cycle.
func (n *Node) ChildStripes(id NodeID) uint16 {
	for _, c := range n.children {
		if sameID(c.id, id) {
			return c.mask
		}
	}
	return 0
}

// Children returns the subscribed children, sorted.
func (n *Node) Children() []NodeID {
	out := make([]NodeID, len(n.children))
	for i, c := range n.children {
		out[i] = c.id
	}
	return out
}

// NumChildren returns how many children the node has: len(Children())
// without the copy.
func (n *Node) NumChildren() int { return len(n.children) }

// Tick advances the node's clock: parent timeouts, playout, fetches.
func (n *Node) Tick(now time.Time) { n.step(at(now)) }

// Ready returns the outputs accumulated since the last call and clears
// them.
func (n *Node) Ready() Ready {
	if !n.pending {
		return Ready{} // nothing was added since the last call
	}
	r := *n.ready
	*n.ready, n.pending = Ready{}, false
	return r
}

// Recycle hands back a Ready the caller has finished with, so the node
// reuses its slices' storage for later outputs instead of allocating new
// ones (the simulator, which drains millions, does). Neither r nor
// anything its slices hold (a Slice's Packets) may be used afterwards.
// Recycling is optional. r may come from another node: a driver that
// runs many nodes one input at a time can pass one Ready's storage from
// node to node (taking it back with Ready when the node has nothing
// ready), so that the outputs go to memory in the cache rather than to
// each node's own.
func (n *Node) Recycle(r Ready) {
	d := n.ready
	if cap(r.packets) > cap(d.packets) {
		d.packets = r.packets[:0] // cleared when it was handed out
	}
	for i := range r.Play {
		if pk := r.Play[i].Packets; cap(pk) > cap(d.packets) {
			clear(pk)
			d.packets = pk[:0]
		}
	}
	if cap(r.chunks) > cap(d.chunks) {
		clear(r.chunks)
		d.chunks = r.chunks[:0]
	}
	if d.Sends == nil {
		d.Sends = recycled(r.Sends)
	}
	if d.Fetches == nil {
		d.Fetches = recycled(r.Fetches)
		d.FetchDue = recycled(r.FetchDue)
	}
	if d.Play == nil {
		d.Play = recycled(r.Play)
	}
	if d.CutOff == nil {
		d.CutOff = recycled(r.CutOff)
	}
	if d.Lost == nil {
		d.Lost = recycled(r.Lost)
	}
	if d.Pulls == nil {
		d.Pulls = recycled(r.Pulls)
	}
	if d.Maps == nil {
		d.Maps = recycled(r.Maps)
	}
	if d.MapRequests == nil {
		d.MapRequests = recycled(r.MapRequests)
	}
	if d.Alives == nil {
		d.Alives = recycled(r.Alives)
	}
}

// Lend makes r the node's output storage until Return, for a driver
// that runs many nodes one input at a time: passing one storage from
// node to node, it has each node's outputs written to memory the last
// node used, in the cache, rather than to the node's own. It returns
// false and changes nothing when the node has outputs ready or storage
// lent already, or r is nil or holds outputs. Lending is optional; r
// must not be used otherwise until Return hands it back.
func (n *Node) Lend(r *Ready) bool {
	if r == nil || n.own != nil || n.HasReady() || r.any() {
		return false
	}
	n.own, n.ready, n.pending = n.ready, r, false
	return true
}

// Return ends a Lend and hands back storage for the driver's next
// Lend: the lent storage, while the node takes its own back, or, when
// the node has outputs ready in the lent storage (they wait there for
// the next Ready), the node's own, empty, while the node keeps the lent
// storage as its own. It returns nil when nothing is lent. Neither
// reads the node's own storage: at 10,000 simulated nodes it is not in
// the cache.
func (n *Node) Return() *Ready {
	own := n.own
	if own == nil {
		return nil
	}
	n.own = nil
	if n.HasReady() {
		return own // empty: outputs went to the lent storage
	}
	lent := n.ready
	n.ready, n.pending = own, false
	return lent
}

// out returns the storage for a new output and notes that one is ready.
func (n *Node) out() *Ready {
	n.pending = true
	return n.ready
}

// recycled returns s emptied and cleared (no references kept), or nil
// when it has no storage.
func recycled[T any](s []T) []T {
	if cap(s) == 0 {
		return nil
	}
	clear(s)
	return s[:0]
}

// HasReady reports whether Ready has anything to hand out.
func (n *Node) HasReady() bool { return n.pending && n.ready.any() }

// any reports whether r holds outputs.
func (r *Ready) any() bool {
	return len(r.Sends) > 0 || len(r.Fetches) > 0 || len(r.Play) > 0 || len(r.CutOff) > 0 || len(r.Lost) > 0 ||
		len(r.Pulls) > 0 || len(r.Maps) > 0 || len(r.MapRequests) > 0 || len(r.Alives) > 0 || len(r.DropPartners) > 0
}

// NextDeadline is when the node next needs a Tick; zero when nothing is
// scheduled.
func (n *Node) NextDeadline() time.Time { return n.deadline.Time() }

// Stats returns a copy of the node's counters.
func (n *Node) Stats() Stats {
	s := n.stats
	s.RepairTimes = slices.Clone(n.stats.RepairTimes)
	return s
}

// step runs the time-driven work after an input and recomputes the
// deadline.
func (n *Node) step(now instant) {
	if !n.clock {
		n.clock, n.startAt = true, now
	}
	if n.cfg.Source {
		n.deadline = 0
		return
	}
	d := n.checkParents(now)
	// Playout with unchanged inputs before the time it returned would
	// return the same time and do nothing else: skip it (most chunks are
	// not the last one of the next slice to play).
	if pk := n.playKeyNow(); n.uncached || !pk.same(&n.playKey) || (!n.playNext.IsZero() && !now.Before(n.playNext)) {
		n.playNext = n.advancePlayout(now)
		n.playKey = n.playKeyNow()
	}
	d = earliest(d, n.playNext)
	d = earliest(d, n.stepMesh(now))
	k := scanKey{true, n.gen, n.play.next, n.play.skew, n.play.started, n.seen, n.newestSeq}
	if !k.same(&n.scanKey) || (!n.scanNext.IsZero() && !now.Before(n.scanNext)) {
		n.scanKey = k
		n.scanNext = n.scanFetches(now)
	}
	d = earliest(d, n.scanNext)
	n.deadline = d
}

// earliest returns the earlier of two times, zero meaning none.
func earliest(a, b instant) instant {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// NextMissing returns the slice a new parent of stripe should start its
// backlog from (wire.Hello.From). Before playout starts it is the first
// slice from the newest keyframe held whose chunk of the stripe is not
// held (the node needs them all to start). Once playout runs it is the
// slice after the newest held on the stripe — or the next slice to play,
// if that is later: a hole before the stripe's newest chunk is fetched
// at the margin rather than asked of the new parent, which would send
// everything after it again. It returns 0 (the parent's newest keyframe
// on) when the node holds nothing or the stripe is out of range.
func (n *Node) NextMissing(stripe int) uint64 {
	if stripe < 0 || stripe >= n.k || !n.seen || len(n.win) == 0 {
		return 0
	}
	if n.play.started {
		if st := &n.stripes[stripe]; st.seen && st.newest >= n.play.next {
			return st.newest + 1
		}
		return n.play.next
	}
	start := n.win[0].seq
	if kf := n.newestKeyframe(); kf != nil {
		start = kf.seq
	}
	seq := start
	for i := 0; seq <= n.newestSeq && i < n.maxSlots(); seq, i = seq+1, i+1 {
		if sl := n.slot(seq); sl == nil || sl.raws[stripe] == nil {
			return seq
		}
	}
	return seq
}

// markBacklog marks the Sends queued from index first on as backlog.
func (n *Node) markBacklog(first int) {
	for i := first; i < len(n.ready.Sends); i++ {
		n.ready.Sends[i].Backlog = true
	}
}
