package proxy

import (
	"context"
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/tracker"
)

// failedFor is how long a lost parent is not switched to as a backup.
const failedFor = 5 * time.Second

// holdOff is how long a parent lost n times in a row (each within
// failedFor of the last) is not taken back from the tracker's answers: a
// parent that keeps refusing (full, say, while the tracker still counts a
// free slot) is retried with backoff rather than in a tight loop; the
// origin's fallback covers its stripes meanwhile.
func holdOff(n int) time.Duration {
	if n < 2 {
		return 0
	}
	return min(250*time.Millisecond<<min(n-2, 8), failedFor)
}

// lostReport is a lost parent and the local switches made for its
// stripes, for the tracker.
type lostReport struct {
	parent   swarm.NodeID
	switched []tracker.StripeSwitch
}

// onLost runs on the driver's goroutine when a parent fails: each stripe
// it fed switches at once to its first usable backup (chandelier.Repair),
// and the control loop reports the loss and the switches to the tracker.
// A stripe with no usable backup has no parent until the tracker answers;
// the origin's fallback covers it meanwhile.
func (p *Peer) onLost(l transport.Lost) {
	now := time.Now()
	rep := lostReport{parent: l.Parent}
	p.mu.Lock()
	p.failed[string(l.Parent)] = now
	p.losses[string(l.Parent)]++
	for _, s := range l.Stripes {
		if s < 0 || s >= len(p.stripes) || p.stripes[s].Parent.ID != string(l.Parent) {
			continue // already moved
		}
		a := &p.stripes[s]
		a.Parent = tracker.NodeInfo{}
		var own transport.StripeNewest
		if s < len(l.Newest) {
			own = l.Newest[s]
		}
		b, ok := p.backupLocked(a.Backups, now, s, l.Children, own)
		if !ok {
			b, ok = p.overlayBackupLocked(now, s, own) // the tracker is away: a ring member
		}
		if ok {
			a.Parent = b
			rep.switched = append(rep.switched, tracker.StripeSwitch{Stripe: s, Parent: b.ID})
		}
		p.driver.SetStripeParent(s, peerOf(a.Parent))
	}
	p.mu.Unlock()
	p.log.Info("parent lost", "parent", l.Parent, "stripes", l.Stripes, "switched", rep.switched)
	select {
	case p.lost <- rep:
	default:
		p.log.Warn("too many lost parents to report; the next heartbeat catches up", "parent", l.Parent)
	}
}

// backupLocked picks the backup to switch to: the first ranked one that
// is not this peer, has not failed lately and is no further behind live
// than this peer (chandelier.MaxBackupLag), else the least lagging; never
// one of children (the node's children and their stripe masks) that takes
// stripe from this peer, nor one that holds nothing newer of a starved
// stripe than this peer's newest (own; see staleLocked).
func (p *Peer) backupLocked(backups []tracker.NodeInfo, now time.Time, stripe int, children map[swarm.NodeID]uint16, own transport.StripeNewest) (tracker.NodeInfo, bool) {
	ids := make([]string, len(backups))
	for i, b := range backups {
		ids[i] = b.ID
	}
	// A backup further behind live than this peer (its lag from the
	// tracker) is taken only when no other is left.
	// One known to be full (its offer of room) is taken last, and not
	// while the swarm has upload to spare (the ring's estimates).
	id, ok := chandelier.RepairWith(ids, func(id string) chandelier.Status {
		b := backups[slices.Index(ids, id)]
		return chandelier.Status{
			Failed: id == string(p.ID()) || p.failedLocked(id, now),
			Child:  children[swarm.NodeID(id)]&(1<<stripe) != 0,
			Stale:  p.staleLocked(id, stripe, now, own),
			Full:   p.fullLocked(id, stripe),
			Lag:    time.Duration(b.LagMS) * time.Millisecond,
		}
	}, chandelier.MaxBackupLag(time.Duration(p.lagMS)*time.Millisecond), p.estimates)
	if !ok {
		return tracker.NodeInfo{}, false
	}
	return backups[slices.Index(ids, id)], true
}

// failedLocked reports whether id was lost as a parent within failedFor.
func (p *Peer) failedLocked(id string, now time.Time) bool {
	at, ok := p.failed[id]
	return ok && now.Sub(at) < failedFor
}

// reportLost tells the tracker about a lost parent and the switches made,
// and applies its answer.
func (p *Peer) reportLost(ctx context.Context, r lostReport) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	sent := time.Now()
	resp, err := p.tracker.ParentLost(rctx, p.cfg.Channel, tracker.ParentLostRequest{
		ID: string(p.ID()), Parent: string(r.parent), Switched: r.switched,
	})
	if err != nil {
		p.log.Warn("reporting a lost parent", "parent", r.parent, "err", err)
		return // the next heartbeat brings the assignment
	}
	p.applyStripes(resp.Stripes, resp.Parent, sent)
}

// applyStripes takes the tracker's assignment: per stripe a parent and
// ranked backups (a tracker that sends no stripes gives legacy as every
// stripe's parent). Only stripes whose parent changed are re-dialed. A
// parent lost after the request was sent (sent) is not taken back from
// its answer: the tracker did not know of the loss yet; nor is one lost
// repeatedly, until its holdOff has passed.
func (p *Peer) applyStripes(as []tracker.StripeAssignment, legacy tracker.NodeInfo, sent time.Time) {
	as, legacy = p.pinned(as, legacy)
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.channel.Stripes
	if p.driver == nil || k <= 0 {
		return
	}
	for id, at := range p.failed {
		if now.Sub(at) >= failedFor {
			delete(p.failed, id)
			delete(p.losses, id)
		}
	}
	if len(p.stripes) != k {
		p.stripes = make([]tracker.StripeAssignment, k)
	}
	next := make([]tracker.StripeAssignment, k)
	changed := false
	for s := range next {
		switch {
		case s < len(as):
			next[s] = tracker.StripeAssignment{Parent: as[s].Parent, Backups: slices.Clone(as[s].Backups)}
		case len(as) == 0:
			next[s].Parent = legacy
		}
		if next[s].Backups == nil {
			next[s].Backups = []tracker.NodeInfo{}
		}
		cur := p.stripes[s].Parent
		if w := next[s].Parent; w != cur && !w.IsZero() {
			at, lost := p.failed[w.ID]
			if lost && (at.After(sent) || now.Sub(at) < holdOff(p.losses[w.ID])) {
				next[s].Parent = cur
			}
		}
		changed = changed || next[s].Parent != cur
	}
	p.stripes = next
	p.driver.SetPartners(p.partnersLocked(next)) // the mesh (mesh.go)
	if !changed {
		return
	}
	peers := make([]transport.Peer, k)
	for s, a := range next {
		peers[s] = peerOf(a.Parent)
	}
	p.log.Info("stripe parents", "parents", parentIDs(next))
	p.driver.SetParents(peers)
}

func peerOf(n tracker.NodeInfo) transport.Peer {
	if n.IsZero() {
		return transport.Peer{}
	}
	return transport.Peer{ID: swarm.NodeID(n.ID), Addr: n.Addr}
}

// parentIDs lists each stripe's parent ID, "-" for none, for logs.
func parentIDs(as []tracker.StripeAssignment) []string {
	out := make([]string, len(as))
	for s, a := range as {
		out[s] = "-"
		if a.Parent.ID != "" {
			out[s] = a.Parent.ID
		}
	}
	return out
}

// Stripes returns, per stripe, the parent in use and the tracker's
// ranked backups (nil before the peer joined).
func (p *Peer) Stripes() []tracker.StripeAssignment {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]tracker.StripeAssignment, len(p.stripes))
	for s, a := range p.stripes {
		out[s] = tracker.StripeAssignment{Parent: a.Parent, Backups: slices.Clone(a.Backups)}
	}
	return out
}
