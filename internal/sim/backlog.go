package sim

import (
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// A peer's upload sends live chunks ahead of backlog (swarm.Send.Backlog,
// the chunks a new subscription gets from before it): backlog waits in
// the peer's bulk queue and goes out, one chunk at a time at the full
// upload rate, only while no connection has a live chunk to send. So a
// new child's backlog delays neither the other children's live chunks
// nor its own; a backlog chunk already on the wire shares the upload
// with the live chunks that come meanwhile (see transmit). The origin
// sends its backlogs in line with its live chunks (see Sim.send). Children's
// backlogs take turns: the queue sends the chunk with the lowest place
// in its child's backlog first (a start keyframe before anyone's
// second chunk), then in order.

// bulkSend is a backlog chunk waiting in a peer's bulk queue.
type bulkSend struct {
	to   int32
	rank int32 // its place in its child's backlog (0: the first)
	id   wire.ID
	raw  []byte
}

// sendBacklog queues a backlog chunk for child c of p.
func (s *Sim) sendBacklog(p, c *peer, snd *swarm.Send) {
	rank := int32(0)
	for i := range p.bulk {
		if p.bulk[i].to == c.idx {
			rank++
		}
	}
	p.bulk = append(p.bulk, bulkSend{to: c.idx, rank: rank, id: snd.ID, raw: snd.Chunk})
	if p.bulkAt < 0 {
		p.bulkAt = s.now
		s.push(event{at: s.now, kind: evBulk, node: p.idx, aux: s.now})
	}
}

// bulk sends p's next backlog chunk once its live chunks are out.
func (s *Sim) bulk(e *event) {
	p := s.peers[e.node]
	if e.aux != p.bulkAt {
		return // superseded
	}
	p.bulkAt = -1
	if !p.alive {
		p.bulk = p.bulk[:0]
		return
	}
	idle := s.now
	for _, c := range p.conns {
		idle = max(idle, c.free)
	}
	idle = max(idle, p.bulkEnd)
	if idle > s.now && len(p.bulk) > 0 {
		p.bulkAt = idle
		s.push(event{at: idle, kind: evBulk, node: p.idx, aux: idle})
		return
	}
	for len(p.bulk) > 0 {
		best := 0
		for i := range p.bulk {
			if p.bulk[i].rank < p.bulk[best].rank {
				best = i
			}
		}
		b := p.bulk[best]
		p.bulk = append(p.bulk[:best], p.bulk[best+1:]...)
		for i := range p.bulk {
			if p.bulk[i].to == b.to {
				p.bulk[i].rank--
			}
		}
		c := s.peers[b.to]
		// A child that left, or unsubscribed from the stripe, closed
		// the stream its backlog was queued on.
		if !s.up(c.idx) || s.severed(p, c) || p.node.ChildStripes(c.id)&(1<<b.id.Stripe) == 0 {
			continue
		}
		done := s.now + int64(float64(len(b.raw))*p.upNs) // the upload is free
		p.bulkEnd = done
		arrive := s.deliver(p, c, len(b.raw), done, p.relaysTo(c.idx))
		s.m.sent(p, c, b.id, len(b.raw))
		s.push(event{at: arrive, kind: evChunk, node: c.idx, from: p.idx, raw: b.raw, aux: int64(b.id.Seq), stripe: b.id.Stripe, cross: p.isp != c.isp})
		if len(p.bulk) > 0 {
			p.bulkAt = done
			s.push(event{at: done, kind: evBulk, node: p.idx, aux: done})
		}
		return
	}
}
