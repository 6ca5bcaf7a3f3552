package overlay

import (
	"slices"
	"time"
)

// Partition merge (after Shafaat, Ghodsi and Haridi's ring unification):
//
//   - Detection. A node remembers the members it saw fail and pings one
//     of them every RecheckInterval; one that answers, a Contact from the
//     driver (tracker hint, cached peer) or a passive contact is queued.
//     One queued contact is probed per ContactInterval.
//   - Probe. The node asks the contact to route a KindMerge
//     FindSuccessor for the node's own ID. In the same ring the answer
//     names the node itself as the key's successor: nothing to do. In
//     another ring it reaches the node's predecessor there, which adopts
//     the prober as its successor; the answer names the prober's
//     successor there, which the prober adopts if closer.
//   - Spread. A node that found another ring tells MergeFanout random
//     members of its tables (MergeHint); each probes the contact for its
//     own place and spreads again, at most once per MergeCooldown, and
//     only while its probe still finds a foreign ring. Every probe seeds
//     the merged ring at one place; ordinary stabilisation (the relaxed
//     ring's SuccHint and the successor's predecessor) zips the rings
//     between the seeds.

// remember adds p to the members to recheck.
func (n *Node) remember(now time.Time, p Peer) {
	if n.cfg.Remember == 0 {
		return
	}
	n.remembered = slices.DeleteFunc(n.remembered, func(r remembered) bool { return r.peer.ID == p.ID })
	if len(n.remembered) >= n.cfg.Remember {
		n.remembered = n.remembered[1:]
	}
	n.remembered = append(n.remembered, remembered{peer: p, at: now})
}

// Remembered returns the failed members kept for rechecks, oldest first.
func (n *Node) Remembered() []Peer {
	ps := make([]Peer, len(n.remembered))
	for i, r := range n.remembered {
		ps[i] = r.peer
	}
	return ps
}

// recheck pings one remembered member, if one is due.
func (n *Node) recheck(now time.Time) {
	n.remembered = slices.DeleteFunc(n.remembered, func(r remembered) bool { return now.Sub(r.at) > n.cfg.RememberFor })
	if len(n.remembered) == 0 || !n.joined || (!n.lastCheck.IsZero() && now.Sub(n.lastCheck) < n.cfg.RecheckInterval) {
		return
	}
	n.lastCheck = now
	r := n.remembered[intN(n.rng, len(n.remembered))]
	n.request(now, &pending{kind: kindPing, via: r.peer})
}

func (n *Node) pong(now time.Time, from Peer, m *Pong) {
	p, ok := n.pending[m.Req]
	if !ok || p.kind != kindPing || p.via.ID != from.ID {
		return
	}
	delete(n.pending, m.Req)
	n.remembered = slices.DeleteFunc(n.remembered, func(r remembered) bool { return r.peer.ID == from.ID })
	if !n.knows(from.ID) {
		n.queueContact(from)
	}
}

// probeContact probes the oldest queued contact, if one is due.
func (n *Node) probeContact(now time.Time) {
	if !n.joined || len(n.contacts) == 0 || (!n.lastProbe.IsZero() && now.Sub(n.lastProbe) < n.cfg.ContactInterval) {
		return
	}
	c := n.contacts[0]
	n.contacts = n.contacts[1:]
	if n.knows(c.ID) {
		return
	}
	n.lastProbe = now
	n.request(now, &pending{kind: KindMerge, key: n.self.ID, via: c})
}

func (n *Node) inCooldown(now time.Time) bool {
	return n.mergedOnce && now.Sub(n.lastMerge) < n.cfg.MergeCooldown
}

// mergeHint handles a MergeHint: probe the other ring, once per cooldown.
func (n *Node) mergeHint(now time.Time, c Peer) {
	if !n.joined || c.ID == n.self.ID || n.inCooldown(now) {
		return
	}
	n.lastMerge, n.mergedOnce = now, true
	n.request(now, &pending{kind: KindMerge, key: n.self.ID, via: c, hinted: true})
}

// mergeFound handles the answer to a merge probe.
func (n *Node) mergeFound(now time.Time, p *pending, f *Found) {
	if f.Succ.ID == n.self.ID || f.Pred.ID == n.self.ID {
		return // the contact is in our ring (here, at least)
	}
	n.adoptSucc(now, f.Succ)
	n.emit(RingMerge{Contact: p.via, Succ: f.Succ})
	if !p.hinted && n.inCooldown(now) {
		return
	}
	n.lastMerge, n.mergedOnce = now, true
	n.spread(f.Succ)
}

// spread sends MergeHint{contact} to MergeFanout random members.
func (n *Node) spread(contact Peer) {
	if n.cfg.MergeFanout <= 0 {
		return
	}
	ms := slices.DeleteFunc(n.Members(), func(p Peer) bool { return p.ID == contact.ID })
	shuffle(n.rng, ms)
	for i := 0; i < n.cfg.MergeFanout && i < len(ms); i++ {
		n.send(ms[i], &MergeHint{Contact: contact})
	}
}
