package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// The account of missed slices (Config.Misses): whenever a viewer's
// playout stalls on a slice, each chunk of it the viewer lacks is
// recorded with the state that explains it — the stripe's parent (none,
// connecting, up and holding the chunk, up and lacking it), whether a
// partner held it, when the origin was asked and whether it refused,
// whether it was pulled — and then how and when it finally arrived. The
// notes sum the records up by cause. It reads the cores (Stalled, Due,
// Lookup, Parent) and changes nothing, so a run with it replays the same
// trace.

// missKey names one chunk at one peer.
type missKey struct {
	peer int32
	id   wire.ID
}

// missRec is one chunk a stalled viewer lacked.
type missRec struct {
	due        int64 // when its slice was due, virtual ns
	parent     int   // missParent*
	partnerHas bool  // a partner held it at the stall
	partners   int   // partners the viewer had
	lostAt     int64 // when the stripe last lost a parent (-1: never)
	fetchAt    int64 // first fetch of it from the origin (-1: none)
	refused    bool  // the origin answered a fetch of it "missing"
	pullAt     int64 // first pull of it (-1: none)
	arriveAt   int64 // when it arrived (-1: not yet)
	via        int   // missVia*
}

// A missed chunk's stripe parent at the stall.
const (
	missNoParent = iota
	missConnecting
	missParentHas   // up, holds the chunk: it is queued or on its way
	missParentLacks // up, does not hold it: starved upstream
	missParentDead  // up in the core, but gone (crashed, not detected yet)
)

var missParentNames = [...]string{"no parent", "parent connecting", "parent up, holds it", "parent up, lacks it", "parent dead, undetected"}

// How a missed chunk arrived.
const (
	missNever = iota
	missViaParent
	missViaOther // pushed by a node that is not its stripe's parent now
	missViaPull
	missViaFetch
)

var missViaNames = [...]string{"never", "parent push", "other push", "pull", "origin fetch"}

// misses holds the account.
type misses struct {
	fetchAt, pullAt map[missKey]int64
	fetchLast       map[missKey]int64 // the latest fetch of a chunk the origin was asked for
	refused         map[missKey]bool
	lostAt          map[[2]int32]int64 // (peer, stripe) → last parent loss
	stalled         map[int32]uint64   // peer → the slice its last recorded stall was on
	open            map[missKey]int    // index in recs, awaiting arrival
	recs            []missRec
	stalls          int
	fetchTook       []int64 // of missed chunks that came from the origin: last fetch sent to arrival
	// Every fetch answer and pull, and those that arrived at a peer that
	// held the chunk already; pulls a partner answered Missing for lack
	// of the chunk or of spare upload.
	fetched, fetchedDup, pulledN, pulledDup, pullNotHeld, pullBusy int
}

func newMisses() *misses {
	return &misses{
		fetchAt: map[missKey]int64{}, fetchLast: map[missKey]int64{}, pullAt: map[missKey]int64{}, refused: map[missKey]bool{},
		lostAt: map[[2]int32]int64{}, stalled: map[int32]uint64{}, open: map[missKey]int{},
	}
}

// ready notes p's fetches, pulls and lost parents as its core hands them
// out.
func (m *misses) ready(s *Sim, p *peer, rd *swarm.Ready) {
	for _, id := range rd.Fetches {
		k := missKey{p.idx, id}
		if _, ok := m.fetchAt[k]; !ok {
			m.fetchAt[k] = s.now
		}
		if _, dup := p.fetching[id]; !dup {
			m.fetchLast[k] = s.now // sent (the driver drops a fetch already in flight)
		}
	}
	for _, pl := range rd.Pulls {
		k := missKey{p.idx, pl.ID}
		if _, ok := m.pullAt[k]; !ok {
			m.pullAt[k] = s.now
		}
	}
	for _, l := range rd.Lost {
		m.lostAt[[2]int32{p.idx, int32(l.Stripe)}] = s.now
	}
}

// event notes arrivals of open chunks and the origin's refusals.
func (m *misses) event(s *Sim, e *event) {
	k := missKey{e.node, wire.ID{Seq: uint64(e.aux), Stripe: e.stripe}}
	switch e.kind {
	case evMissing:
		m.refused[k] = true
		return
	case evPull:
		if p := s.peers[e.node]; p.alive {
			if _, ok := p.node.Lookup(k.id); !ok {
				m.pullNotHeld++
			} else if s.uploadBusy(p, s.peers[e.from], 12500) {
				m.pullBusy++
			}
		}
		return
	case evFetched, evPulled:
		if p := s.peers[e.node]; p.alive {
			_, dup := p.node.Lookup(k.id)
			if e.kind == evFetched {
				m.fetched++
				if dup {
					m.fetchedDup++
				}
			} else {
				m.pulledN++
				if dup {
					m.pulledDup++
				}
			}
		}
	case evChunk:
	default:
		return
	}
	i, ok := m.open[k]
	if !ok || !s.peers[e.node].alive {
		return
	}
	delete(m.open, k)
	r := &m.recs[i]
	r.arriveAt = s.now
	if e.kind == evFetched {
		m.fetchTook = append(m.fetchTook, s.now-m.fetchLast[k])
	}
	switch p := s.peers[e.node]; {
	case e.kind == evFetched:
		r.via = missViaFetch
	case e.kind == evPulled:
		r.via = missViaPull
	case int(e.stripe) < len(p.parents) && p.parents[e.stripe] == e.from:
		r.via = missViaParent
	default:
		r.via = missViaOther
	}
}

// check records the chunks p lacks when its playout stalls on a slice
// not recorded yet.
func (m *misses) check(s *Sim, p *peer) {
	seq, held, ok := p.node.Stalled()
	if !ok || p.idx == originIdx {
		return
	}
	if last, seen := m.stalled[p.idx]; seen && last == seq {
		return
	}
	m.stalled[p.idx] = seq
	m.stalls++
	dueT, _ := p.node.Due(seq)
	due := int64(dueT.Sub(epoch))
	for st := range s.cfg.Stripes {
		if held&(1<<st) != 0 {
			continue
		}
		id := wire.ID{Seq: seq, Stripe: uint8(st)}
		k := missKey{p.idx, id}
		r := missRec{due: due, lostAt: -1, fetchAt: -1, pullAt: -1, arriveAt: -1, partners: len(p.partners)}
		switch q := p.parents[st]; {
		case q == noPeer:
			r.parent = missNoParent
		case !p.node.ParentIsUp(st):
			r.parent = missConnecting
		case !s.peers[q].alive:
			r.parent = missParentDead
		default:
			r.parent = missParentLacks
			if _, has := s.peers[q].node.Lookup(id); has {
				r.parent = missParentHas
			}
		}
		for _, q := range p.partners {
			if _, has := s.peers[q].node.Lookup(id); has && s.peers[q].alive {
				r.partnerHas = true
			}
		}
		if t, ok := m.lostAt[[2]int32{p.idx, int32(st)}]; ok {
			r.lostAt = t
		}
		if t, ok := m.fetchAt[k]; ok {
			r.fetchAt = t
		}
		if t, ok := m.pullAt[k]; ok {
			r.pullAt = t
		}
		r.refused = m.refused[k]
		m.open[k] = len(m.recs)
		m.recs = append(m.recs, r)
	}
}

// notes sums the records up.
func (m *misses) notes() []string {
	// Fetch and pull times are only final once the chunk arrived; take
	// them from the maps again.
	out := []string{fmt.Sprintf("misses: %d stalls, %d chunks lacked at them; origin fetch answers %d (%d duplicates), pull answers %d (%d duplicates), pulls answered missing: not held %d, no spare upload ~%d",
		m.stalls, len(m.recs), m.fetched, m.fetchedDup, m.pulledN, m.pulledDup, m.pullNotHeld, m.pullBusy)}
	if len(m.recs) == 0 {
		return out
	}
	ms := func(d int64) string { return fmt.Sprintf("%.0f", float64(d)/1e6) }
	type group struct {
		name string
		n    int
		late []int64
	}
	add := func(gs map[string]*group, name string, r *missRec) {
		g := gs[name]
		if g == nil {
			g = &group{name: name}
			gs[name] = g
		}
		g.n++
		if r.arriveAt >= 0 {
			g.late = append(g.late, r.arriveAt-r.due)
		}
	}
	show := func(title string, gs map[string]*group, top int) {
		var list []*group
		for _, g := range gs {
			list = append(list, g)
		}
		slices.SortFunc(list, func(a, b *group) int {
			if c := cmp.Compare(b.n, a.n); c != 0 {
				return c
			}
			return cmp.Compare(a.name, b.name)
		})
		for i, g := range list {
			if i >= top {
				break
			}
			p50, p95 := "-", "-"
			if len(g.late) > 0 {
				slices.Sort(g.late)
				p50, p95 = ms(g.late[len(g.late)/2]), ms(g.late[len(g.late)*95/100])
			}
			out = append(out, fmt.Sprintf("misses: %s: %-70s %6d (%.3f)  arrived after due ms p50 %s p95 %s",
				title, g.name, g.n, float64(g.n)/float64(len(m.recs)), p50, p95))
		}
	}
	byParent, byPartner, byOrigin, byVia, byAll := map[string]*group{}, map[string]*group{}, map[string]*group{}, map[string]*group{}, map[string]*group{}
	for i := range m.recs {
		r := &m.recs[i]
		partner := "no partner holds it"
		switch {
		case r.partners == 0:
			partner = "no partners"
		case r.partnerHas:
			partner = "a partner holds it"
		}
		if r.pullAt >= 0 {
			partner += ", pulled " + ms(r.pullAt-r.due)
		}
		origin := "not fetched"
		switch {
		case r.fetchAt >= 0 && r.refused:
			origin = "fetched, refused"
		case r.fetchAt >= 0:
			origin = fmt.Sprintf("fetched at due%+d00ms", (r.fetchAt-r.due)/int64(100*time.Millisecond))
		}
		lost := ""
		if r.lostAt >= 0 && r.due-r.lostAt < int64(5*time.Second) {
			lost = fmt.Sprintf(" (lost %ds before)", (r.due-r.lostAt)/int64(time.Second))
		}
		add(byParent, missParentNames[r.parent]+lost, r)
		add(byPartner, partner, r)
		add(byOrigin, origin, r)
		add(byVia, missViaNames[r.via], r)
		add(byAll, missParentNames[r.parent]+" | "+map[bool]string{true: "partner has", false: "no partner has"}[r.partnerHas]+" | "+origin+" | "+missViaNames[r.via], r)
	}
	if t := m.fetchTook; len(t) > 0 {
		slices.Sort(t)
		out = append(out, fmt.Sprintf("misses: origin fetch to arrival ms (missed chunks the origin sent): p50 %s p95 %s max %s", ms(t[len(t)/2]), ms(t[len(t)*95/100]), ms(t[len(t)-1])))
	}
	show("parent", byParent, 8)
	show("partner", byPartner, 6)
	show("origin", byOrigin, 8)
	show("arrived via", byVia, 5)
	show("all", byAll, 12)
	return out
}
