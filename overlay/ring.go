package overlay

import (
	"slices"
	"time"
)

// maxHops drops a FindSuccessor that wandered this far: only an
// inconsistent ring routes in circles, and the origin retries.
const maxHops = 128

// adoptSucc makes c the first successor when it lies between this node
// and its successor (or the node is alone), and tells c at once: a
// Notify, and a GetPred so that a walk towards the true successor does
// not wait for the next round.
func (n *Node) adoptSucc(now time.Time, c Peer) bool {
	if c.ID == n.self.ID {
		return false
	}
	if len(n.succs) > 0 && !between(n.self.ID, c.ID, n.succs[0].ID) {
		return false
	}
	rest := slices.DeleteFunc(slices.Clone(n.succs), func(p Peer) bool { return p.ID == c.ID || p.ID == n.self.ID })
	n.succs = append([]Peer{c}, rest...)
	if len(n.succs) > n.cfg.Successors {
		n.succs = n.succs[:n.cfg.Successors]
	}
	if !n.joined {
		n.joined = true
		n.emit(Joined{Succ: c})
	}
	n.send(c, &Notify{})
	n.nextReq++
	n.probeReq = n.nextReq
	n.probeDeadline = now.Add(n.cfg.ProbeTimeout)
	n.send(c, &GetPred{Req: n.probeReq})
	return true
}

// predReply is the second half of stabilisation: take the successor's
// predecessor if it sits between us, else refresh the successor list
// from the successor's.
func (n *Node) predReply(now time.Time, from Peer, m *PredReply) {
	if m.Req != n.probeReq || len(n.succs) == 0 || from.ID != n.succs[0].ID {
		return
	}
	n.probeReq = 0
	if m.HasPred && between(n.self.ID, m.Pred.ID, from.ID) && !n.recentlyFailed(now, m.Pred.ID) && n.adoptSucc(now, m.Pred) {
		return
	}
	list := []Peer{from}
	for _, s := range m.Succs {
		if s.ID == n.self.ID || len(list) == n.cfg.Successors {
			break
		}
		if !slices.ContainsFunc(list, func(p Peer) bool { return p.ID == s.ID }) {
			list = append(list, s)
		}
	}
	n.succs = list
}

// recentlyFailed reports whether id was found failed so recently that
// other members may still point at it (they drop a silent predecessor
// after 3 rounds and a probe timeout): a stale pointer must not bring it
// back.
func (n *Node) recentlyFailed(now time.Time, id ID) bool {
	for _, r := range n.remembered {
		if r.peer.ID == id {
			return now.Sub(r.at) <= 3*n.cfg.Round+n.cfg.ProbeTimeout
		}
	}
	return false
}

// notified handles a Notify: from thinks it is our predecessor.
func (n *Node) notified(now time.Time, from Peer) {
	if from.ID == n.self.ID {
		return
	}
	if len(n.succs) == 0 {
		n.adoptSucc(now, from) // the first join to a lone node closes the ring
	}
	if n.hasPred && !between(n.pred.ID, from.ID, n.self.ID) && now.Sub(n.predHeard) <= 2*n.cfg.Round {
		// A live predecessor notifies every round; one silent for two
		// rounds has likely failed, and the member notifying now (its
		// own predecessor, which found it dead) takes its place.
		return
	}
	old, had := n.pred, n.hasPred
	n.pred, n.hasPred, n.predHeard = from, true, now
	if had && old.ID != from.ID {
		// Relaxed ring: the old predecessor learns its new successor now
		// rather than at its next round.
		n.send(old, &SuccHint{Cand: from})
	}
}

// succHint handles a SuccHint: adopt the candidate if it is closer.
func (n *Node) succHint(now time.Time, c Peer) { n.adoptSucc(now, c) }

// route handles a FindSuccessor: answer it when Key's successor is our
// successor, forward it to Key's predecessor when that is in our
// successor list, else to the closest preceding member we know.
func (n *Node) route(now time.Time, m *FindSuccessor) {
	if n.joining() && m.Origin.ID != n.self.ID {
		return // not on a ring yet: the asker retries elsewhere or later
	}
	if len(n.succs) == 0 {
		n.answer(now, m, n.self, n.self)
		return
	}
	if m.Key == n.self.ID && m.Kind != KindMerge {
		pred := n.self
		if n.hasPred {
			pred = n.pred
		}
		n.answer(now, m, pred, n.self)
		return
	}
	if m.Kind == KindLookup && n.hasPred && betweenIncl(n.pred.ID, m.Key, n.self.ID) {
		// We own the key: a user's lookup is answered by its owner
		// itself, so a member that died is never given as the answer
		// (the lookup is lost and retried instead).
		n.answer(now, m, n.pred, n.self)
		return
	}
	prev := n.self
	for _, s := range n.succs {
		if betweenIncl(prev.ID, m.Key, s.ID) {
			if m.Kind == KindLookup && prev.ID == n.self.ID {
				n.forward(m, s) // to the owner, which answers
				return
			}
			if m.Kind != KindFinger && prev.ID != n.self.ID {
				// The key's predecessor answers: it is the first to
				// learn of a member joining in front of the key (our
				// list may not show it yet), and a merge probe must
				// reach it to be adopted. Fingers tolerate staleness
				// and save the hop.
				n.forward(m, prev)
				return
			}
			n.answer(now, m, prev, s)
			return
		}
		prev = s
	}
	next := n.closestPreceding(m.Key)
	if next.ID == n.self.ID {
		n.answer(now, m, n.self, n.succs[0])
		return
	}
	n.forward(m, next)
}

func (n *Node) forward(m *FindSuccessor, to Peer) {
	if m.Hops >= maxHops {
		return
	}
	fwd := *m
	fwd.Hops++
	n.send(to, &fwd)
}

func (n *Node) answer(now time.Time, m *FindSuccessor, pred, succ Peer) {
	f := &Found{Req: m.Req, Key: m.Key, Kind: m.Kind, Pred: pred, Succ: succ, Hops: m.Hops}
	if m.Kind == KindJoin {
		if i := slices.IndexFunc(n.succs, func(p Peer) bool { return p.ID == succ.ID }); i >= 0 {
			f.Succs = slices.Clone(n.succs[i+1:])
		}
	}
	if m.Kind == KindMerge && pred.ID == n.self.ID && m.Origin.ID != succ.ID && m.Origin.ID != n.self.ID {
		// The prober, from another ring, lies between us and our
		// successor: take it, and probe its ring for our own place.
		if n.adoptSucc(now, m.Origin) {
			n.queueContact(m.Origin)
		}
	}
	if m.Origin.ID == n.self.ID {
		n.found(now, m.Origin, f)
		return
	}
	n.send(m.Origin, f)
}

// closestPreceding is the member in our tables closest before key.
func (n *Node) closestPreceding(key ID) Peer {
	best, bd, kd := n.self, uint64(0), dist(n.self.ID, key)
	consider := func(p Peer) {
		if d := dist(n.self.ID, p.ID); d > bd && d < kd {
			best, bd = p, d
		}
	}
	for _, s := range n.succs {
		consider(s)
	}
	for i, f := range n.fingers {
		if n.fingerOK[i] {
			consider(f)
		}
	}
	return best
}

// found handles the answer to one of our requests.
func (n *Node) found(now time.Time, _ Peer, f *Found) {
	p, ok := n.pending[f.Req]
	if !ok || p.kind != f.Kind || p.key != f.Key {
		return
	}
	delete(n.pending, f.Req)
	switch p.kind {
	case KindLookup:
		n.emit(LookupDone{Req: p.user, Key: p.key, Owner: f.Succ, Hops: f.Hops})
	case KindPartner:
		if f.Succ.ID != n.self.ID {
			n.emit(PartnerFound{Peer: f.Succ})
		}
	case KindFinger:
		n.fingers[p.finger], n.fingerOK[p.finger] = f.Succ, f.Succ.ID != n.self.ID
	case KindJoin:
		n.joinVia = Peer{}
		succ, rest := f.Succ, f.Succs
		if succ.ID == n.self.ID && len(rest) > 0 {
			// A rejoin: the ring still lists us; take the member after us.
			succ, rest = rest[0], rest[1:]
		}
		if succ.ID != n.self.ID {
			n.succs = nil // the answer is authoritative: take it
			n.adoptSucc(now, succ)
			for _, s := range rest {
				if s.ID == n.self.ID || len(n.succs) == n.cfg.Successors {
					break
				}
				n.succs = append(n.succs, s)
			}
			if f.Pred.ID != n.self.ID && f.Pred.ID != succ.ID {
				n.bootstrap = append(n.bootstrap[:min(len(n.bootstrap), 1)], f.Pred)
			}
		} else {
			n.emit(JoinFailed{Via: p.via}) // the ring knows no one else
		}
	case KindMerge:
		n.mergeFound(now, p, f)
	}
}

// fixFingers refreshes the next FingersPerRound fingers, round robin
// over those beyond the successor.
func (n *Node) fixFingers(now time.Time) {
	lo := lowestUsefulFinger(n.self.ID, n.succs[0].ID)
	for i := 0; i < lo; i++ {
		n.fingerOK[i] = false
	}
	for range n.cfg.FingersPerRound {
		if n.nextFinger < lo || n.nextFinger > 63 {
			n.nextFinger = lo
		}
		i := n.nextFinger
		n.nextFinger++
		n.request(now, &pending{kind: KindFinger, key: fingerStart(n.self.ID, i), finger: i})
	}
}
