package proxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmtv/swarmtv/chandelier"
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/overlay"
	"github.com/swarmtv/swarmtv/tracker"
)

// The peer's side of the channel's structured overlay (package overlay,
// run by transport.Overlay on the peer's own socket): the viewers form a
// ring that does not need the tracker, so the swarm survives a tracker
// outage.
//
//   - A peer joins the ring through --bootstrap (a running peer's
//     host:port) when given, else through a peer the tracker named (a
//     parent or backup), else through a peer of the tracker's tree; the
//     first founds it. Every ringEvery, while the tracker answers, it
//     also tells the ring of one peer from the tracker's tree (a peer of
//     another ring, after a partition, starts a merge).
//   - Every peer answers a newcomer's request for the channel's
//     description (transport.FetchChannelInfo). A viewer started with
//     --bootstrap while the tracker is unreachable takes the channel from
//     the bootstrap peer, which also becomes its first parent on every
//     stripe (the origin's fallback covers what it cannot feed), and
//     joins the tracker once it is back: every peer re-announces itself to
//     a restarted tracker (its heartbeat is refused as unknown and it joins
//     again), so the tracker rebuilds its view from the swarm.

// ringEvery is how often a peer refreshes its ring contacts from the
// tracker.
const ringEvery = 5 * time.Second

// ErrBootstrap: neither the tracker nor the bootstrap peer let the peer
// join.
var ErrBootstrap = errors.New("peer: could not join through the tracker nor through the bootstrap peer")

// newOverlay makes the peer's overlay driver (not started).
func (p *Peer) newOverlay() (*transport.Overlay, error) {
	var seed [16]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, err
	}
	node, err := overlay.New(overlay.Config{
		Self: transport.OverlayPeer(p.ID(), p.Addr()),
		Rand: rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])),
		// A contact from the tracker or a remembered peer is probed
		// (rate-limited): that is how split rings find each other.
		PassiveContacts: true,
	})
	if err != nil {
		return nil, err
	}
	told := make(chan overlay.ID, 16)
	p.mu.Lock()
	p.parentTold = told
	p.mu.Unlock()
	return transport.NewOverlay(transport.OverlayConfig{
		Node:     node,
		Endpoint: p.ep,
		Channel:  p.cfg.Channel,
		Logger:   p.log,
		Info:     p.channelInfo,
		OnEvent: func(ev overlay.Event) {
			if ev, ok := ev.(overlay.Told); ok {
				select { // the ring loop takes the depth at once
				case told <- ev.From.ID:
				default: // it will at its next round
				}
			}
		},
	})
}

// channelInfo is the channel's description for a newcomer (nil before
// the peer joined).
func (p *Peer) channelInfo() []byte {
	p.mu.Lock()
	ch := p.channel
	p.mu.Unlock()
	if ch.Name == "" {
		return nil
	}
	b, err := json.Marshal(ch)
	if err != nil {
		return nil
	}
	return b
}

// joinBootstrap joins without the tracker: the channel's description
// comes from the bootstrap peer, which is the first parent on every
// stripe.
func (p *Peer) joinBootstrap(ctx context.Context, trackerErr error) (tracker.JoinResponse, error) {
	p.log.Warn("the tracker is unreachable; joining through the bootstrap peer", "bootstrap", p.cfg.Bootstrap, "err", trackerErr)
	jr, err := p.joinThrough(ctx, p.cfg.Bootstrap, "")
	if err != nil {
		return jr, fmt.Errorf("%w: tracker: %v; bootstrap %s: %v", ErrBootstrap, trackerErr, p.cfg.Bootstrap, err)
	}
	return jr, nil
}

// joinThrough takes the channel's description from the peer at hostport
// (want, when not empty, is the node ID it must have), which becomes the
// first parent on every stripe.
func (p *Peer) joinThrough(ctx context.Context, hostport string, want swarm.NodeID) (tracker.JoinResponse, error) {
	id, info, err := transport.FetchChannelInfo(ctx, p.ep, hostport, p.cfg.Channel)
	if err != nil {
		return tracker.JoinResponse{}, err
	}
	if want != "" && id != want {
		return tracker.JoinResponse{}, fmt.Errorf("the peer at %s is now %s, not %s", hostport, id, want)
	}
	ch, err := parseChannelInfo(info, p.cfg.Channel)
	if err != nil {
		return tracker.JoinResponse{}, err
	}
	return tracker.JoinResponse{
		Channel:     ch,
		Parent:      tracker.NodeInfo{ID: string(id), Addr: hostport},
		HeartbeatMS: 1000,
	}, nil
}

// parseChannelInfo decodes and checks a channel description a peer gave.
func parseChannelInfo(b []byte, channel string) (tracker.ChannelInfo, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ch tracker.ChannelInfo
	if err := dec.Decode(&ch); err != nil {
		return ch, fmt.Errorf("channel description: %w", err)
	}
	pub, err := base64.StdEncoding.DecodeString(ch.PublicKey)
	switch {
	case ch.Name != channel:
		return ch, fmt.Errorf("channel description names %q, want %q", ch.Name, channel)
	case err != nil || len(pub) != ed25519.PublicKeySize:
		return ch, errors.New("channel description without a valid public key")
	case ch.Stripes < 1 || ch.Stripes > tracker.MaxStripes:
		return ch, fmt.Errorf("channel description with %d stripes", ch.Stripes)
	case ch.SliceMS < 1 || ch.SliceMS > tracker.MaxSliceMS:
		return ch, fmt.Errorf("channel description with %d ms slices", ch.SliceMS)
	case !tracker.ValidNodeID(ch.Origin.ID) || ch.Origin.Addr == "":
		return ch, errors.New("channel description without a valid origin")
	}
	return ch, nil
}

// ringLoop joins the ring and keeps it joined to the tracker's view of
// the swarm until ctx ends.
func (p *Peer) ringLoop(ctx context.Context, ov *transport.Overlay, jr tracker.JoinResponse) {
	if p.cfg.Bootstrap != "" {
		if _, err := ov.JoinAddr(ctx, p.cfg.Bootstrap); err != nil {
			p.log.Warn("joining the overlay through the bootstrap peer", "bootstrap", p.cfg.Bootstrap, "err", err)
		}
	} else if m, ok := memberOf(jr, p.ID()); ok {
		ov.Join(m)
	}
	t := time.NewTicker(ringEvery)
	defer t.Stop()
	p.mu.Lock()
	told := p.parentTold
	p.mu.Unlock()
	var saved []tracker.NodeInfo // the peer cache's members as last written
	for {
		select {
		case <-ctx.Done():
			return
		case from := <-told:
			p.onTold(ov, from)
			continue
		case <-t.C:
		}
		p.setLocal(ov)
		p.refreshDepth(ov, true)
		p.refreshCandidates(ov)
		p.mu.Lock()
		members := p.candidates
		p.mu.Unlock()
		saved = p.saveRing(members, saved)
		tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		tv, err := p.tracker.Tree(tctx, p.cfg.Channel)
		cancel()
		p.mu.Lock()
		if err != nil && !p.trackerAway {
			p.awaySince = time.Now()
		}
		p.trackerAway = err != nil
		p.mu.Unlock()
		p.setEstimates()
		if err != nil {
			p.shedOverload()
			continue // the tracker is away: the ring carries on
		}
		p.setRingView(tv)
		var cands []overlay.Peer
		for _, n := range tv.Nodes {
			if n.ID != string(p.ID()) && n.ID != tv.Origin.ID && tracker.ValidNodeID(n.ID) {
				if _, _, err := net.SplitHostPort(n.Addr); err == nil {
					cands = append(cands, transport.OverlayPeer(swarm.NodeID(n.ID), n.Addr))
				}
			}
		}
		if len(cands) == 0 {
			continue
		}
		c := cands[rand.IntN(len(cands))]
		if st := ov.Status(); !st.Joined {
			ov.Join(c)
		} else {
			ov.Contact(c)
		}
	}
}

// shedOverload lets go of children, the last taken first, while the
// tracker is away and the peer feeds more children than its capacity
// (chandelier.Shed): no round rebalances it meanwhile, and its queues
// would put its whole subtree ever further behind live. They repair at
// once, as from a parent that left.
func (p *Peer) shedOverload() {
	p.mu.Lock()
	d := p.driver
	p.mu.Unlock()
	if d == nil {
		return
	}
	cs := d.Children()
	feeds := make([]int, len(cs))
	for k := range feeds {
		feeds[k] = 1 // the capacity counts children
	}
	for _, id := range cs[len(cs)-chandelier.Shed(feeds, p.cfg.Capacity):] {
		if d.DropChild(id, "over capacity while the tracker is away") {
			p.log.Info("let go of a child: over capacity while the tracker is away", "child", id, "capacity", p.cfg.Capacity)
		}
	}
}

// memberOf picks a peer the tracker named in its answer (a parent or a
// backup, not the origin) to join the ring through.
func memberOf(jr tracker.JoinResponse, self swarm.NodeID) (overlay.Peer, bool) {
	var ns []tracker.NodeInfo
	ns = append(ns, jr.Parent)
	for _, s := range jr.Stripes {
		ns = append(ns, s.Parent)
		ns = append(ns, s.Backups...)
	}
	for _, n := range ns {
		if !n.IsZero() && n.ID != jr.Channel.Origin.ID && n.ID != string(self) {
			return transport.OverlayPeer(swarm.NodeID(n.ID), n.Addr), true
		}
	}
	return overlay.Peer{}, false
}

// Overlay returns a snapshot of the peer's overlay tables (the zero value
// before Run started it).
func (p *Peer) Overlay() transport.OverlayStatus {
	p.mu.Lock()
	ov := p.ov
	p.mu.Unlock()
	if ov == nil {
		return transport.OverlayStatus{}
	}
	return ov.Status()
}

// setLocal hands the ring's gossip this peer's figures: its measured
// upload (bit/s) and its recent playout continuity (recentHealth); and
// keeps the ring's estimates for the repair policy (chandelier.RepairWith)
// and the swarm core (setEstimates).
func (p *Peer) setLocal(ov *transport.Overlay) {
	st := p.Status().Swarm
	p.mu.Lock()
	health := p.recentHealthLocked(st)
	p.mu.Unlock()
	ov.SetLocal(float64(p.UploadBPS()), health)
	e := ov.Status().Estimates
	p.mu.Lock()
	defer p.mu.Unlock()
	p.estimates = estimatesOf(e, p.channel.StreamBPS)
}

// healthSlices is how many slices due a recent health figure spans at
// least (5 s of 100 ms slices).
const healthSlices = 50

// recentHealthLocked is this peer's recent continuity: slices played
// complete and on time / slices due since it was last figured, once at
// least healthSlices were due; the figure before until then (1 at first).
// The gossip's mean health so follows the swarm's state now, not its
// whole history.
func (p *Peer) recentHealthLocked(st swarm.Stats) float64 {
	if p.health == 0 {
		p.health = 1
	}
	played, due := st.PlayedSlices, st.PlayedSlices+st.LateSlices+st.LostSlices
	if due < p.healthDue || played < p.healthPlayed {
		p.healthPlayed, p.healthDue = played, due // a new core
	}
	if due-p.healthDue >= healthSlices {
		p.health = float64(played-p.healthPlayed) / float64(due-p.healthDue)
		p.healthPlayed, p.healthDue = played, due
	}
	return p.health
}

// setEstimates hands the swarm core the ring's estimates and whether the
// tracker answers (swarm.Node.SetEstimates: the accept limit while the
// tracker is away, the fetch margin while the swarm's health is poor).
func (p *Peer) setEstimates() {
	p.mu.Lock()
	d, e, away := p.driver, p.estimates, p.trackerAway
	p.mu.Unlock()
	if d != nil {
		d.SetEstimates(swarm.Estimates{Peers: e.Peers, UploadRatio: e.UploadRatio, Health: e.Health, TrackerAway: away})
	}
}

// estimatesOf turns the ring's gossip estimates into the repair policy's
// figures: the mean upload (bit/s) over the stream rate (0: unknown).
func estimatesOf(e overlay.Estimates, streamBPS int64) chandelier.Estimates {
	out := chandelier.Estimates{Peers: e.Peers, Health: e.Health}
	if streamBPS > 0 && e.MeanUpload > 0 {
		out.UploadRatio = e.MeanUpload / float64(streamBPS)
	}
	return out
}

// staleLocked reports whether switching stripe to member id cannot help
// (chandelier.Pointless): this peer's newest slice of the stripe (own)
// is older than chandelier.Starved, and the member's offer (as of the
// last ring refresh) showed no newer one — even had it received a slice
// every slice duration since it made the offer. A member whose offer
// carries no newest slice (an older build, or none heard) is worth a
// try.
func (p *Peer) staleLocked(id string, stripe int, now time.Time, own transport.StripeNewest) bool {
	if !own.OK || stripe >= len(p.ringOffers) || p.channel.SliceMS <= 0 {
		return false
	}
	for _, o := range p.ringOffers[stripe] {
		if nodeOf(o.Peer) != id {
			continue
		}
		if o.Newest == 0 {
			return false
		}
		slice := time.Duration(p.channel.SliceMS) * time.Millisecond
		since := max(now.Sub(p.ringOffersAt)+o.Age, 0)
		bound := o.Newest + uint64((since+slice-1)/slice)
		return chandelier.Pointless(own.Seq, now.Sub(own.Capture), bound, true)
	}
	return false
}

// fullLocked reports whether member id offered no room in stripe in the
// offers partner discovery found (as of the last ring refresh).
func (p *Peer) fullLocked(id string, stripe int) bool {
	if stripe >= len(p.ringOffers) {
		return false
	}
	for _, o := range p.ringOffers[stripe] {
		if nodeOf(o.Peer) == id {
			return o.Free == 0
		}
	}
	return false
}

// OverlayView is the peer's overlay as its status page shows it.
type OverlayView struct {
	Joined      bool     `json:"joined"`
	RingID      string   `json:"ring_id"`
	Successors  []string `json:"successors"` // node IDs, nearest first; never null
	Predecessor string   `json:"predecessor"`
	Members     int      `json:"members"` // members in its tables
	// Gossip estimates over the ring (push-sum): its size, the mean
	// upload (bit/s) and the mean playout continuity of its members.
	EstPeers         float64 `json:"est_peers"`
	EstMeanUploadBPS float64 `json:"est_mean_upload_bps"`
	EstHealth        float64 `json:"est_health"`
	MessagesSent     uint64  `json:"messages_sent"`
	// Offers are, per stripe, the members with room that partner
	// discovery found (best first, as of the last ring refresh): the
	// ring rule's candidates beyond the ring tables. Never null.
	Offers [][]OfferView `json:"offers"`
}

// OfferView is one member's offer of room in a stripe tree.
type OfferView struct {
	Node  string `json:"node"`
	Depth int    `json:"depth"`
	Free  int    `json:"free"`   // children it still takes
	AgeMS int64  `json:"age_ms"` // how old the offer was when heard
}

func nodeOf(m overlay.Peer) string {
	if p, err := transport.ParseOverlayPeer(m); err == nil {
		return string(p.ID)
	}
	return m.Addr
}

func (p *Peer) overlayView() OverlayView {
	st := p.Overlay()
	v := OverlayView{Joined: st.Joined, Successors: []string{}, Members: len(st.Members),
		EstPeers: st.Estimates.Peers, EstMeanUploadBPS: st.Estimates.MeanUpload, EstHealth: st.Estimates.Health,
		MessagesSent: st.Sent}
	if st.Self.Addr != "" {
		v.RingID = st.Self.ID.String()
	}
	for _, s := range st.Successors {
		v.Successors = append(v.Successors, nodeOf(s))
	}
	if st.HasPred {
		v.Predecessor = nodeOf(st.Pred)
	}
	p.mu.Lock()
	v.Offers = make([][]OfferView, len(p.ringOffers))
	for i, os := range p.ringOffers {
		v.Offers[i] = []OfferView{}
		for _, o := range os {
			v.Offers[i] = append(v.Offers[i], OfferView{Node: nodeOf(o.Peer), Depth: int(o.Depth), Free: int(o.Free), AgeMS: o.Age.Milliseconds()})
		}
	}
	p.mu.Unlock()
	return v
}

// maxCandidates bounds the overlay members kept as parents of last
// resort (and in the peer cache).
const maxCandidates = 8

// refreshCandidates caches ring members as parents of last resort: while
// the tracker is away, a stripe that lost its parent and has no usable
// backup switches to one of them (overlayBackupLocked).
func (p *Peer) refreshCandidates(ov *transport.Overlay) {
	var cands []tracker.NodeInfo
	for _, m := range ov.Status().Members {
		tp, err := transport.ParseOverlayPeer(m)
		if err != nil || tp.ID == p.ID() {
			continue
		}
		cands = append(cands, tracker.NodeInfo{ID: string(tp.ID), Addr: tp.Addr})
		if len(cands) == maxCandidates {
			break
		}
	}
	var offers [][]overlay.Offer
	p.mu.Lock()
	stripes := len(p.stripes)
	p.mu.Unlock()
	for st := range min(stripes, overlay.MaxStripes) {
		offers = append(offers, ov.Offers(uint8(st)))
	}
	p.mu.Lock()
	p.candidates = cands
	p.ringOffers, p.ringOffersAt = offers, time.Now()
	p.mu.Unlock()
}

// setOffers hands the ring's partner discovery this peer's offers of
// room: per stripe, its depth as the ring rule keeps it, how many more
// children it takes and the newest slice of the stripe it holds.
func (p *Peer) setOffers(ov *transport.Overlay) {
	p.mu.Lock()
	d := p.driver
	depth := slices.Clone(p.ringSelf.depth)
	p.mu.Unlock()
	free := p.cfg.Capacity
	if d != nil {
		free -= len(d.Children())
	}
	free = max(free, 0)
	var newest []transport.StripeNewest
	if d != nil {
		newest = d.Newest()
	}
	var offers []overlay.Offer
	for st, dd := range depth {
		if dd > 0 && dd < unknownDepth && dd <= math.MaxUint16 && st < overlay.MaxStripes {
			o := overlay.Offer{Stripe: uint8(st), Depth: uint16(dd), Free: uint16(free)}
			if st < len(newest) && newest[st].OK {
				o.Newest = newest[st].Seq
			}
			offers = append(offers, o)
		}
	}
	ov.SetOffers(offers)
}

// depthFromParents takes this peer's depth in each stripe from its
// parent: 1 under the origin, else the depth the parent last told it
// (overlay Tell/Heard) plus one. While the tracker is away the depth
// never grows (chandelier.RingDepth). It tells each parent its own
// offers, which the parent answers with its own: the depths flow down the
// trees one level per ringEvery, and a move made just before an outage
// does not leave a stale depth. A stripe whose parent has not told its
// depth keeps the tracker's view of it.
func (p *Peer) depthFromParents(ov *transport.Overlay, tell bool) {
	p.mu.Lock()
	origin := p.channel.Origin.ID
	parents := make([]tracker.NodeInfo, len(p.stripes))
	for st, a := range p.stripes {
		parents[st] = a.Parent
	}
	p.mu.Unlock()
	depth := make([]int, len(parents)) // 0: not heard
	told := map[string]bool{}
	for st, par := range parents {
		switch {
		case par.IsZero():
		case par.ID == origin:
			depth[st] = 1
		default:
			if tell && !told[par.ID] {
				told[par.ID] = true
				ov.Tell(transport.OverlayPeer(swarm.NodeID(par.ID), par.Addr))
			}
			offers, ok := ov.Heard(transport.OverlayID(swarm.NodeID(par.ID)))
			if !ok {
				continue
			}
			for _, o := range offers {
				if int(o.Stripe) == st && o.Depth > 0 {
					depth[st] = int(o.Depth) + 1
				}
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parentDepth = depth
	p.applyParentDepthLocked()
}

// refreshDepth takes this peer's depths from its parents
// (depthFromParents) and offers them to the ring; when one changed, it
// tells its children at once (overlay TellID), which do the same: a
// change of depth travels down a tree in a few one-way delays, not one
// level per ringEvery.
func (p *Peer) refreshDepth(ov *transport.Overlay, tell bool) {
	p.mu.Lock()
	before := slices.Clone(p.ringSelf.depth)
	d := p.driver
	p.mu.Unlock()
	p.depthFromParents(ov, tell)
	p.setOffers(ov)
	p.mu.Lock()
	changed := !slices.Equal(before, p.ringSelf.depth)
	children := p.childIDs
	p.mu.Unlock()
	if !changed {
		return
	}
	// The parents heard this peer's offers from before the change (or
	// none yet): tell them again, so that they know how to reach it when
	// their own depth changes.
	p.depthFromParents(ov, true)
	if children == nil && d != nil {
		children = d.Children
	}
	if children == nil {
		return
	}
	for _, c := range children() {
		ov.TellID(transport.OverlayID(c))
	}
}

// onTold takes this peer's depth at once when a parent told its own
// (overlay Told), and passes a change on to its children.
func (p *Peer) onTold(ov *transport.Overlay, from overlay.ID) {
	if p.isParent(from) {
		p.refreshDepth(ov, false)
	}
}

// isParent reports whether ring member id is a parent of one of this
// peer's stripes.
func (p *Peer) isParent(id overlay.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.stripes {
		if !a.Parent.IsZero() && transport.OverlayID(swarm.NodeID(a.Parent.ID)) == id {
			return true
		}
	}
	return false
}

// applyParentDepthLocked sets ringSelf's depths from parentDepth.
func (p *Peer) applyParentDepthLocked() {
	if len(p.ringSelf.depth) < len(p.parentDepth) {
		d := make([]int, len(p.parentDepth))
		for st := range d {
			d[st] = unknownDepth
			if st < len(p.ringSelf.depth) {
				d[st] = p.ringSelf.depth[st]
			}
		}
		p.ringSelf.depth = d
	}
	for st, d := range p.parentDepth {
		switch {
		case d <= 0:
		case p.trackerAway:
			p.ringSelf.depth[st] = chandelier.RingDepth(p.ringSelf.depth[st], d-1)
		default:
			p.ringSelf.depth[st] = d
		}
	}
}

// ringRank is a node's place in the stripe trees for the ring rule.
type ringRank struct {
	depth    []int    // per stripe: hops from the origin; unknownDepth when not connected
	spare    bool     // it had room for another child
	children []string // its children (sorted IDs)
}

// unknownDepth ranks a node whose depth is not known: it feeds no one
// under the ring rule, and a peer of unknown depth (it has no children
// the tracker knew of) may take any ranked member.
const unknownDepth = 1 << 20

// setRingView keeps, from the tracker's tree view, the ranks of the ring
// candidates and this peer's own: the ring rule's inputs while the
// tracker is away. The view is at most ringEvery old when the tracker
// goes, and true then; depths only shrink under the rule, so a stale rank
// errs on the safe side (see chandelier.RingParent).
func (p *Peer) setRingView(tv tracker.TreeView) {
	self := string(p.ID())
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make(map[string]bool, len(p.candidates)+1)
	want[self] = true
	for _, c := range p.candidates {
		want[c.ID] = true
	}
	ranks := make(map[string]ringRank, len(want))
	for _, n := range tv.Nodes {
		if !want[n.ID] {
			continue
		}
		r := ringRank{depth: make([]int, len(n.Stripes)), spare: len(n.Children) < n.Capacity, children: n.Children}
		for st, s := range n.Stripes {
			r.depth[st] = s.Depth
			if s.Depth <= 0 {
				r.depth[st] = unknownDepth
			}
		}
		ranks[n.ID] = r
	}
	p.ringRanks = ranks
	p.ringSelf = ranks[self]
	p.applyParentDepthLocked() // the parents' word is fresher than the view
}

// ringDepthLocked is this peer's depth in stripe for the ring rule.
func (p *Peer) ringDepthLocked(stripe int) int {
	if stripe < len(p.ringSelf.depth) {
		return p.ringSelf.depth[stripe]
	}
	return unknownDepth
}

// overlayBackupLocked picks a ring member as the new parent of a stripe
// that lost its parent with no usable backup, while the tracker is away,
// by the ring rule (chandelier.RingParent): a member that ranks before
// this peer in the stripe's tree (smaller depth, or the same and a
// smaller ring ID), had room, is not one of its children and has not
// failed lately; the shallowest. No cycle can form that way. A member
// that is full says so and the next loss moves on; the origin's fallback
// covers the gap meanwhile. Ranks come from the tracker's last tree view.
func (p *Peer) overlayBackupLocked(now time.Time, stripe int, own transport.StripeNewest) (tracker.NodeInfo, bool) {
	if !p.trackerAway || len(p.candidates) == 0 && len(p.ringOffers) == 0 {
		return tracker.NodeInfo{}, false
	}
	self := chandelier.RingRank{Depth: p.ringDepthLocked(stripe), ID: uint64(transport.OverlayID(p.ID()))}
	// Offers heard through the ring (partner discovery): members with
	// room near the top, and the depths members advertise themselves,
	// fresher than the tracker's last view. An offer made while the
	// tracker was away holds a depth that was true once (it never grows
	// meanwhile); one made before may be older than a move the tracker
	// made just before the outage, so for a member the view also ranks
	// the deeper of the two counts (ranking a member too deep only
	// excludes it more often).
	var offers []overlay.Offer
	if stripe < len(p.ringOffers) {
		offers = p.ringOffers[stripe]
	}
	offerOf := func(id string) (overlay.Offer, bool) {
		for _, o := range offers {
			if tp, err := transport.ParseOverlayPeer(o.Peer); err == nil && string(tp.ID) == id {
				return o, true
			}
		}
		return overlay.Offer{}, false
	}
	nodes := slices.Clone(p.candidates)
	for _, o := range offers {
		tp, err := transport.ParseOverlayPeer(o.Peer)
		if err != nil || tp.ID == p.ID() || slices.ContainsFunc(nodes, func(n tracker.NodeInfo) bool { return n.ID == string(tp.ID) }) {
			continue
		}
		nodes = append(nodes, tracker.NodeInfo{ID: string(tp.ID), Addr: tp.Addr})
	}
	cands := make([]chandelier.RingCandidate, len(nodes))
	for i, c := range nodes {
		r, known := p.ringRanks[c.ID]
		depth, spare := unknownDepth, r.spare
		if known && stripe < len(r.depth) {
			depth = r.depth[stripe]
		}
		if o, ok := offerOf(c.ID); ok {
			d := int(o.Depth)
			if known && p.ringOffersAt.Add(-o.Age).Before(p.awaySince) {
				d = max(d, depth)
			}
			depth, spare, known = d, o.Free > 0, true
		}
		cands[i] = chandelier.RingCandidate{
			Rank:   chandelier.RingRank{Depth: depth, ID: uint64(transport.OverlayID(swarm.NodeID(c.ID)))},
			Spare:  spare,
			Linked: slices.ContainsFunc(p.stripes, func(a tracker.StripeAssignment) bool { return a.Parent.ID == c.ID }),
			Failed: !known || c.ID == string(p.ID()) || p.failedLocked(c.ID, now) || slices.Contains(p.ringSelf.children, c.ID),
			Stale:  p.staleLocked(c.ID, stripe, now, own),
		}
	}
	i, ok := chandelier.RingParent(self, cands)
	if !ok {
		return tracker.NodeInfo{}, false
	}
	if stripe < len(p.ringSelf.depth) {
		p.ringSelf.depth[stripe] = chandelier.RingDepth(p.ringSelf.depth[stripe], cands[i].Rank.Depth)
	}
	return nodes[i], true
}

// The peer's overlay series.
var (
	descOverlayJoined   = prometheus.NewDesc("swarmtv_peer_overlay_joined", "1 while this peer is on the channel's overlay ring.", nil, nil)
	descOverlayEstPeers = prometheus.NewDesc("swarmtv_peer_overlay_estimated_peers",
		"The ring's size as this peer estimates it by gossip (push-sum), without the tracker.", nil, nil)
	descOverlayEstHealth = prometheus.NewDesc("swarmtv_peer_overlay_estimated_health",
		"The ring members' mean playout continuity as this peer estimates it by gossip.", nil, nil)
	descOverlaySent = prometheus.NewDesc("swarmtv_peer_overlay_messages_sent_total", "Overlay messages this peer sent.", nil, nil)
)

func describeOverlay(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOverlayJoined, descOverlayEstPeers, descOverlayEstHealth, descOverlaySent} {
		ch <- d
	}
}

func collectOverlay(ch chan<- prometheus.Metric, v OverlayView) {
	joined := 0.0
	if v.Joined {
		joined = 1
	}
	ch <- prometheus.MustNewConstMetric(descOverlayJoined, prometheus.GaugeValue, joined)
	ch <- prometheus.MustNewConstMetric(descOverlayEstPeers, prometheus.GaugeValue, v.EstPeers)
	ch <- prometheus.MustNewConstMetric(descOverlayEstHealth, prometheus.GaugeValue, v.EstHealth)
	ch <- prometheus.MustNewConstMetric(descOverlaySent, prometheus.CounterValue, float64(v.MessagesSent))
}
