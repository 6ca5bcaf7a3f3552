package core

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

func TestPunchPacketCodec(t *testing.T) {
	b := AppendPunch(nil, PunchAck, 0xdeadbeef01)
	if len(b) != PunchPacketLen || b[0]&0x40 != 0 {
		t.Fatalf("packet %x: wrong length or QUIC fixed bit set", b)
	}
	k, tok, ok := ParsePunch(b)
	if !ok || k != PunchAck || tok != 0xdeadbeef01 {
		t.Fatalf("parsed %v %x %v", k, tok, ok)
	}
	for _, bad := range [][]byte{nil, b[:12], append(b, 0), AppendPunch(nil, 9, 1), []byte("\x00\x01\x00\x00!\x12\xa4B0123456789ab")} {
		if _, _, ok := ParsePunch(bad); ok {
			t.Errorf("accepted %x", bad)
		}
	}
}

func FuzzParsePunch(f *testing.F) {
	f.Add(AppendPunch(nil, PunchProbe, 7))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, tok, ok := ParsePunch(b)
		if ok && string(AppendPunch(nil, k, tok)) != string(b) {
			t.Fatalf("%x does not round-trip", b)
		}
	})
}

// The schedule: a round to every candidate at once, then every Interval;
// failure exactly at Timeout; Deadline names the next event.
func TestPuncherScheduleAndTimeout(t *testing.T) {
	c1, c2 := Addr{"10.0.0.2", 1}, Addr{"198.51.100.1", 2}
	p := NewPuncher(PunchConfig{Token: 1, Interval: 100 * time.Millisecond, Timeout: time.Second}, []Addr{c1, c2, c1, {}}, t0)
	if got := p.Ready(); len(got) != 2 || got[0].To != c1 || got[1].To != c2 {
		t.Fatalf("first round %+v", got)
	}
	if d := p.Deadline(); !d.Equal(t0.Add(100 * time.Millisecond)) {
		t.Fatalf("deadline %v", d.Sub(t0))
	}
	p.Tick(t0.Add(50 * time.Millisecond))
	if got := p.Ready(); len(got) != 0 {
		t.Fatalf("sent early: %+v", got)
	}
	p.Tick(t0.Add(100 * time.Millisecond))
	if got := p.Ready(); len(got) != 2 {
		t.Fatalf("second round %+v", got)
	}
	p.Tick(t0.Add(999 * time.Millisecond))
	if p.State() != Punching {
		t.Fatal("failed early")
	}
	p.Ready()
	p.Tick(t0.Add(time.Second))
	if p.State() != Failed || !p.Deadline().IsZero() {
		t.Fatalf("state %v deadline %v", p.State(), p.Deadline())
	}
	// A late ack does not resurrect it; a late probe is still answered.
	p.Receive(t0.Add(2*time.Second), c2, AppendPunch(nil, PunchAck, 1))
	p.Receive(t0.Add(2*time.Second), c2, AppendPunch(nil, PunchProbe, 1))
	if got := p.Ready(); p.State() != Failed || len(got) != 1 || got[0].To != c2 {
		t.Fatalf("state %v out %+v", p.State(), got)
	}
}

// A probe from an unknown address is acked there and the address is
// probed from then on (peer-reflexive); an ack makes the path Direct on
// the address it came from; other sessions' packets are not consumed.
func TestPuncherFollowsPeerReflexiveAddress(t *testing.T) {
	cand := Addr{"198.51.100.1", 4000}
	seen := Addr{"198.51.100.1", 61234} // the symmetric NAT's real port
	p := NewPuncher(PunchConfig{Token: 42}, []Addr{cand}, t0)
	p.Ready()
	if p.Receive(t0, seen, AppendPunch(nil, PunchProbe, 41)) {
		t.Fatal("consumed another session's probe")
	}
	if !p.Receive(t0, seen, AppendPunch(nil, PunchProbe, 42)) {
		t.Fatal("ignored its own session's probe")
	}
	out := p.Ready()
	if len(out) != 1 || out[0].To != seen {
		t.Fatalf("ack %+v", out)
	}
	if k, _, _ := ParsePunch(out[0].Data); k != PunchAck {
		t.Fatalf("answered a probe with %v", k)
	}
	if tg := p.Targets(); len(tg) != 2 || tg[1] != seen {
		t.Fatalf("targets %v", tg)
	}
	p.Receive(t0.Add(70*time.Millisecond), seen, AppendPunch(nil, PunchAck, 42))
	if p.State() != Direct || p.Path() != seen {
		t.Fatalf("state %v path %v", p.State(), p.Path())
	}
}

// natModel is a small RFC 4787 NAT for driving two Punchers: a mapping
// behaviour, a filtering behaviour, and the filter state its outgoing
// packets open.
type natModel struct {
	ip        string
	mapping   Behaviour
	filtering Behaviour
	nextPort  uint16
	maps      map[string]uint16 // mapping key → public port
	sentTo    map[Addr]bool     // remote addresses sent to
}

func newNATModel(ip string, r Result) *natModel {
	return &natModel{ip: ip, mapping: r.Mapping, filtering: r.Filtering, nextPort: 20000, maps: map[string]uint16{}, sentTo: map[Addr]bool{}}
}

func (n *natModel) out(to Addr) Addr {
	key := ""
	switch n.mapping {
	case AddressDependent:
		key = to.IP
	case AddressAndPortDependent:
		key = to.String()
	}
	port, ok := n.maps[key]
	if !ok {
		port = n.nextPort
		n.nextPort += 7
		n.maps[key] = port
	}
	n.sentTo[to] = true
	return Addr{n.ip, port}
}

func (n *natModel) in(from Addr, to Addr) bool {
	mapped := false
	for _, p := range n.maps {
		mapped = mapped || p == to.Port
	}
	if !mapped {
		return false
	}
	switch n.filtering {
	case EndpointIndependent:
		return true
	case AddressDependent:
		for a := range n.sentTo {
			if a.IP == from.IP {
				return true
			}
		}
		return false
	}
	return n.sentTo[from]
}

// Two Punchers behind model NATs of every type pair end Direct exactly
// when CanPunch says so (each side knows the other's STUN-mapped
// address, as the tracker would tell it), and Failed otherwise.
func TestPuncherAcrossNATModelsAgreesWithCanPunch(t *testing.T) {
	types := []Type{TypeFullCone, TypeRestricted, TypePortRestricted, TypeSymmetric}
	stun := Addr{"203.0.113.2", 3478}
	for _, ta := range types {
		for _, tb := range types {
			t.Run(fmt.Sprintf("%v-%v", ta, tb), func(t *testing.T) {
				ra, rb := result(ta), result(tb)

				na, nb := newNATModel("198.51.100.1", ra), newNATModel("198.51.100.2", rb)
				ma, mb := na.out(stun), nb.out(stun) // what STUN told each
				cfg := PunchConfig{Token: 9, Interval: 50 * time.Millisecond, Timeout: 2 * time.Second}
				pa := NewPuncher(cfg, []Addr{mb}, t0)
				pb := NewPuncher(cfg, []Addr{ma}, t0.Add(20*time.Millisecond)) // not quite simultaneous
				type side struct {
					p    *Puncher
					self *natModel
				}
				sides := []side{{pa, na}, {pb, nb}}
				for now := t0; now.Before(t0.Add(3 * time.Second)); now = now.Add(10 * time.Millisecond) {
					for i, s := range sides {
						if now.Before(t0.Add(20*time.Millisecond)) && i == 1 {
							continue
						}
						s.p.Tick(now)
						other := sides[1-i]
						for _, pkt := range s.p.Ready() {
							src := s.self.out(pkt.To)
							if pkt.To.IP != other.self.ip || !other.self.in(src, pkt.To) {
								continue // dropped by the far NAT's filter
							}
							other.p.Receive(now, src, pkt.Data)
						}
					}
				}
				want := CanPunch(ra, rb)
				for i, s := range sides {
					if got := s.p.State() == Direct; got != want {
						t.Errorf("side %d: state %v, CanPunch %v", i, s.p.State(), want)
					}
					if want && s.p.Path().IP != sides[1-i].self.ip {
						t.Errorf("side %d: path %v", i, s.p.Path())
					}
					if !want && s.p.State() != Failed {
						t.Errorf("side %d: state %v, want failed", i, s.p.State())
					}
				}
			})
		}
	}
}
