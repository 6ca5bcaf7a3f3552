package overlay

import (
	"slices"
	"time"
)

// Node is one member's overlay state for one channel. It is not safe for
// concurrent use: one driver goroutine owns it, calls the input methods
// (Join, Step, Tick, NodeFailed, Contact, Lookup, ...) and after each
// drains Ready and re-arms a timer for NextDeadline.
type Node struct {
	cfg  Config
	self Peer
	rng  Source

	succs     []Peer // successor list, nearest first; empty: alone on the ring
	pred      Peer
	hasPred   bool
	predHeard time.Time

	fingers    [64]Peer
	fingerOK   [64]bool
	nextFinger int

	joined    bool
	joinVia   Peer   // set while joining
	bootstrap []Peer // the last join's via and the predecessor it found: where to rejoin

	nextReq uint64
	pending map[uint64]*pending // outstanding requests; iterated only sorted

	probeReq      uint64 // outstanding GetPred to succs[0], 0 if none
	probeDeadline time.Time

	remembered []remembered // failed members to recheck
	contacts   []Peer       // queued contacts to probe for another ring
	lastProbe  time.Time    // last contact probe
	lastMerge  time.Time    // last merge spread
	mergedOnce bool
	lastCheck  time.Time // last recheck ping

	gossip gossipState
	offers offerState

	started   bool
	nextRound time.Time

	out    []Envelope
	events []Event
	stats  Stats
}

type pending struct {
	kind     Kind
	key      ID
	finger   int
	via      Peer   // join, merge, ping: the peer asked
	user     uint64 // the request number the user was given
	hinted   bool   // a merge probe started by a MergeHint
	tries    int
	deadline time.Time
}

type remembered struct {
	peer Peer
	at   time.Time
}

// Envelope is a message to send to a peer.
type Envelope struct {
	To  Peer
	Msg Message
}

// Ready is what the driver must do after an input: send Messages (in
// order) and deliver Events.
type Ready struct {
	Messages []Envelope
	Events   []Event
}

// Event is one of the event types below.
type Event interface{ isEvent() }

// Joined: the node has a successor and is part of a ring.
type Joined struct{ Succ Peer }

// JoinFailed: a join through Via got no answer (after retries) or Via
// failed. The driver tries another bootstrap with Join.
type JoinFailed struct{ Via Peer }

// LookupDone: the answer to Lookup (Err nil) or ErrLookupTimeout.
type LookupDone struct {
	Req   uint64
	Key   ID
	Owner Peer // Key's successor: the member responsible for it
	Hops  int
	Err   error
}

// MemberFailed: a member was taken out of this node's tables, because
// the driver reported it (NodeFailed) or it did not answer a probe.
type MemberFailed struct{ Peer Peer }

// PartnerFound: a member found by DiscoverPartners.
type PartnerFound struct{ Peer Peer }

// Told: a member sent this node its own offers with Tell (not a gossip
// round): a parent or child passing on its depth at once. Offers are
// the sender's own, as Heard returns them.
type Told struct {
	From   Peer
	Offers []Offer
}

// RingMerge: probing a contact showed that it belongs to another ring;
// Succ is this node's successor in that ring, now adopted if closer.
type RingMerge struct {
	Contact Peer
	Succ    Peer
}

func (Joined) isEvent()       {}
func (JoinFailed) isEvent()   {}
func (LookupDone) isEvent()   {}
func (MemberFailed) isEvent() {}
func (PartnerFound) isEvent() {}
func (RingMerge) isEvent()    {}
func (Told) isEvent()         {}

// Stats counts what a node sent.
type Stats struct {
	Sent      uint64 // all messages
	MergeSent uint64 // merge probes, their forwards, hints and rechecks
}

// New returns a node alone on its own ring. Call Join to enter an
// existing ring, or nothing to start one.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, self: cfg.Self, rng: cfg.Rand, pending: map[uint64]*pending{}}
	n.gossip.init()
	return n, nil
}

// Self returns the node's own Peer.
func (n *Node) Self() Peer { return n.self }

// Config returns the configuration with its defaults applied.
func (n *Node) Config() Config { return n.cfg }

// Ready returns and clears what the node wants done.
func (n *Node) Ready() Ready {
	r := Ready{Messages: n.out, Events: n.events}
	n.out, n.events = nil, nil
	return r
}

// HasReady reports whether Ready has anything.
func (n *Node) HasReady() bool { return len(n.out) > 0 || len(n.events) > 0 }

// Stats returns the message counters.
func (n *Node) Stats() Stats { return n.stats }

// NextDeadline is when Tick must next be called.
func (n *Node) NextDeadline() time.Time {
	d := n.nextRound
	if n.probeReq != 0 && n.probeDeadline.Before(d) {
		d = n.probeDeadline
	}
	for _, p := range n.pending { // earliest of them: order does not matter
		if p.deadline.Before(d) {
			d = p.deadline
		}
	}
	return d
}

func (n *Node) start(now time.Time) {
	if !n.started {
		n.started = true
		n.nextRound = now.Add(n.cfg.Round)
		n.gossip.reset(n)
	}
}

// Join enters the ring that via belongs to: via finds this node's
// successor, which is all a join needs (relaxed ring); stabilisation does
// the rest. Calling Join again (another bootstrap) restarts the attempt.
func (n *Node) Join(now time.Time, via Peer) {
	n.start(now)
	if via.ID == n.self.ID {
		return
	}
	n.joinVia = via
	n.bootstrap = []Peer{via}
	for req, p := range n.pending { // at most one join at a time
		if p.kind == KindJoin {
			delete(n.pending, req)
		}
	}
	n.request(now, &pending{kind: KindJoin, key: n.self.ID, via: via})
}

// Contact tells the node of a member it may not know (a tracker hint, a
// cached peer, an inbound connection). It is probed, rate-limited, and if
// it belongs to another ring the rings merge.
func (n *Node) Contact(now time.Time, p Peer) {
	n.start(now)
	if p.ID == n.self.ID {
		return
	}
	if !n.joined && len(n.succs) == 0 {
		n.Join(now, p)
		return
	}
	n.queueContact(p)
}

func (n *Node) queueContact(p Peer) {
	if slices.Contains(n.contacts, p) {
		return
	}
	const maxContacts = 8
	if len(n.contacts) >= maxContacts {
		n.contacts = n.contacts[1:]
	}
	n.contacts = append(n.contacts, p)
}

// Lookup finds the member responsible for key (its successor on the
// ring). The answer comes as a LookupDone event carrying the returned
// request number.
func (n *Node) Lookup(now time.Time, key ID) uint64 {
	n.start(now)
	return n.request(now, &pending{kind: KindLookup, key: key})
}

// DiscoverPartners looks up k random keys; each answer is a PartnerFound
// event: members sampled across the whole ring (weighted by the gap
// before them), for the swarm core to use as partners.
func (n *Node) DiscoverPartners(now time.Time, k int) {
	n.start(now)
	for range k {
		n.request(now, &pending{kind: KindPartner, key: ID(n.rng.Uint64())})
	}
}

// Partners returns up to k distinct members from this node's own tables
// (successors, predecessor, fingers), chosen at random: an immediate
// sample that costs no messages.
func (n *Node) Partners(k int) []Peer {
	ms := n.Members()
	shuffle(n.rng, ms)
	if len(ms) > k {
		ms = ms[:k]
	}
	return ms
}

// Members returns the distinct members in this node's tables, in ring
// order from this node.
func (n *Node) Members() []Peer {
	var ms []Peer
	add := func(p Peer) {
		if p.ID != n.self.ID && !slices.Contains(ms, p) {
			ms = append(ms, p)
		}
	}
	for _, s := range n.succs {
		add(s)
	}
	if n.hasPred {
		add(n.pred)
	}
	for i, p := range n.fingers {
		if n.fingerOK[i] {
			add(p)
		}
	}
	slices.SortFunc(ms, func(a, b Peer) int {
		da, db := dist(n.self.ID, a.ID), dist(n.self.ID, b.ID)
		switch {
		case da < db:
			return -1
		case da > db:
			return 1
		}
		return 0
	})
	return ms
}

// Successor returns the first successor (this node itself when alone).
func (n *Node) Successor() Peer {
	if len(n.succs) == 0 {
		return n.self
	}
	return n.succs[0]
}

// Successors returns a copy of the successor list.
func (n *Node) Successors() []Peer { return slices.Clone(n.succs) }

// Predecessor returns the predecessor, if known.
func (n *Node) Predecessor() (Peer, bool) { return n.pred, n.hasPred }

// joining reports whether a join is under way and the node is not yet on
// a ring.
func (n *Node) joining() bool { return !n.joined && n.joinVia != (Peer{}) }

// Joined reports whether the node is on a ring with others.
func (n *Node) Joined() bool { return n.joined }

func (n *Node) send(to Peer, m Message) {
	n.stats.Sent++
	switch m := m.(type) {
	case *MergeHint, *Ping, *Pong:
		n.stats.MergeSent++
	case *FindSuccessor:
		if m.Kind == KindMerge {
			n.stats.MergeSent++
		}
	case *Found:
		if m.Kind == KindMerge {
			n.stats.MergeSent++
		}
	}
	n.out = append(n.out, Envelope{To: to, Msg: m})
}

func (n *Node) emit(e Event) { n.events = append(n.events, e) }

// Step handles a message from a peer.
func (n *Node) Step(now time.Time, from Peer, m Message) {
	n.start(now)
	if n.hasPred && from.ID == n.pred.ID {
		n.predHeard = now
	}
	if n.cfg.PassiveContacts && n.joined && !n.knows(from.ID) {
		n.queueContact(from)
	}
	switch m := m.(type) {
	case *FindSuccessor:
		n.route(now, m)
	case *Found:
		n.found(now, from, m)
	case *GetPred:
		n.send(from, &PredReply{Req: m.Req, Pred: n.pred, HasPred: n.hasPred, Succs: slices.Clone(n.succs)})
	case *PredReply:
		n.predReply(now, from, m)
	case *Notify:
		n.notified(now, from)
	case *SuccHint:
		n.succHint(now, m.Cand)
	case *Ping:
		n.send(from, &Pong{Req: m.Req})
	case *Pong:
		n.pong(now, from, m)
	case *MergeHint:
		n.mergeHint(now, m.Contact)
	case *Gossip:
		n.gossip.receive(n, m)
		n.offers.heardFrom(n, now, from, m.Offers)
		n.offers.receive(n, now, m.Offers)
		if m.Weight == 0 {
			if offers, ok := n.Heard(now, from.ID); ok {
				n.emit(Told{From: from, Offers: offers})
			}
			n.answerTell(now, from)
		}
	}
}

// knows reports whether id is in this node's tables.
func (n *Node) knows(id ID) bool {
	if id == n.self.ID || (n.hasPred && n.pred.ID == id) {
		return true
	}
	for _, s := range n.succs {
		if s.ID == id {
			return true
		}
	}
	for i, f := range n.fingers {
		if n.fingerOK[i] && f.ID == id {
			return true
		}
	}
	return false
}

// Tick runs the periodic work that is due: a stabilisation round every
// Round, probe and request timeouts.
func (n *Node) Tick(now time.Time) {
	n.start(now)
	if n.probeReq != 0 && !now.Before(n.probeDeadline) {
		s := n.Successor()
		n.probeReq = 0
		n.failed(now, s)
	}
	n.expire(now)
	if !now.Before(n.nextRound) {
		n.nextRound = now.Add(n.cfg.Round)
		n.round(now)
	}
}

// expire retries or fails the requests whose deadline passed, in request
// order.
func (n *Node) expire(now time.Time) {
	var due []uint64
	for req, p := range n.pending {
		if !now.Before(p.deadline) {
			due = append(due, req)
		}
	}
	slices.Sort(due)
	for _, req := range due {
		p := n.pending[req]
		delete(n.pending, req)
		switch {
		case p.kind == kindPing:
			// still silent: stays remembered
		case p.kind == KindJoin && p.tries >= n.cfg.LookupRetries:
			n.joinFailed(p.via)
		case p.tries < n.cfg.LookupRetries:
			p.tries++
			n.resend(now, p)
		case p.kind == KindLookup:
			n.emit(LookupDone{Req: p.user, Key: p.key, Err: ErrLookupTimeout})
		}
	}
}

// round is one stabilisation round.
func (n *Node) round(now time.Time) {
	if n.hasPred && now.Sub(n.predHeard) > 3*n.cfg.Round+n.cfg.ProbeTimeout {
		n.hasPred = false
	}
	if len(n.succs) > 0 {
		s := n.succs[0]
		if n.probeReq == 0 {
			n.nextReq++
			n.probeReq = n.nextReq
			n.probeDeadline = now.Add(n.cfg.ProbeTimeout)
			n.send(s, &GetPred{Req: n.probeReq})
		}
		n.send(s, &Notify{})
		n.fixFingers(now)
		n.gossip.round(n, now)
	}
	n.recheck(now)
	n.probeContact(now)
}

// request starts a request and routes or sends it.
func (n *Node) request(now time.Time, p *pending) uint64 {
	n.nextReq++
	req := n.nextReq
	p.user = req
	n.pending[req] = p
	n.send1(now, req, p)
	return req
}

func (n *Node) resend(now time.Time, p *pending) {
	n.nextReq++
	n.pending[n.nextReq] = p
	n.send1(now, n.nextReq, p)
}

func (n *Node) send1(now time.Time, req uint64, p *pending) {
	p.deadline = now.Add(n.cfg.LookupTimeout)
	switch p.kind {
	case kindPing:
		p.deadline = now.Add(n.cfg.ProbeTimeout)
		n.send(p.via, &Ping{Req: req})
	case KindJoin, KindMerge:
		n.send(p.via, &FindSuccessor{Req: req, Key: p.key, Origin: n.self, Kind: p.kind})
	default:
		n.route(now, &FindSuccessor{Req: req, Key: p.key, Origin: n.self, Kind: p.kind})
	}
}

func (n *Node) joinFailed(via Peer) {
	for req, p := range n.pending { // at most one
		if p.kind == KindJoin {
			delete(n.pending, req)
		}
	}
	n.joinVia = Peer{}
	n.emit(JoinFailed{Via: via})
}

// NodeFailed tells the node that the driver found id unreachable (a
// connection failed or timed out). It is taken out of every table and
// remembered for rechecks.
func (n *Node) NodeFailed(now time.Time, id ID) {
	n.start(now)
	delete(n.offers.direct, id) // its depth, as it told it, is void
	if n.joining() && n.joinVia.ID == id {
		n.joinFailed(n.joinVia)
		return
	}
	var p Peer
	found := false
	if n.hasPred && n.pred.ID == id {
		p, found = n.pred, true
	}
	for _, s := range n.succs {
		if s.ID == id {
			p, found = s, true
		}
	}
	for i, f := range n.fingers {
		if n.fingerOK[i] && f.ID == id {
			p, found = f, true
		}
	}
	if found {
		n.failed(now, p)
	}
}

// failed removes p from the tables and remembers it.
func (n *Node) failed(now time.Time, p Peer) {
	if p.ID == n.self.ID {
		return
	}
	wasSucc := len(n.succs) > 0 && n.succs[0].ID == p.ID
	n.succs = slices.DeleteFunc(n.succs, func(s Peer) bool { return s.ID == p.ID })
	if n.hasPred && n.pred.ID == p.ID {
		n.hasPred = false
	}
	for i := range n.fingers {
		if n.fingerOK[i] && n.fingers[i].ID == p.ID {
			n.fingerOK[i] = false
		}
	}
	if wasSucc {
		n.probeReq = 0
	}
	if len(n.succs) == 0 {
		// Every successor gone: fall back on the nearest member known;
		// stabilisation walks back from there.
		if ms := n.Members(); len(ms) > 0 {
			n.succs = []Peer{ms[0]}
		} else if n.hasPred {
			n.succs = []Peer{n.pred}
		}
	}
	n.remember(now, p)
	n.offers.forget(p.ID)
	n.emit(MemberFailed{Peer: p})
	if len(n.succs) == 0 && n.joined {
		// Cut off from every member known: rejoin through a bootstrap.
		n.bootstrap = slices.DeleteFunc(n.bootstrap, func(b Peer) bool { return b.ID == p.ID })
		if len(n.bootstrap) > 0 {
			n.joined = false
			n.Join(now, n.bootstrap[len(n.bootstrap)-1])
		}
	}
}
