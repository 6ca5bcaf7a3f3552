package core

import (
	"testing"
	"time"
)

func TestPortStep(t *testing.T) {
	ip := "198.51.100.7"
	for _, tc := range []struct {
		ports []uint16
		want  int
	}{
		{[]uint16{20000, 20001, 20002}, 1},
		{[]uint16{20000, 20007, 20014}, 7},
		{[]uint16{20014, 20007, 20000}, -7},
		{[]uint16{20000, 20000, 20000}, 0}, // EIM
		{[]uint16{20000, 20001, 20003}, 0}, // not constant
		{[]uint16{20000, 41234, 62468}, 0}, // constant but far: random
	} {
		o := Observations{Mapped1: Addr{ip, tc.ports[0]}, Mapped2: Addr{ip, tc.ports[1]}, Mapped3: Addr{ip, tc.ports[2]}}
		if got := PortStep(o); got != tc.want {
			t.Errorf("ports %v: step %d, want %d", tc.ports, got, tc.want)
		}
	}
	o := Observations{Mapped1: Addr{ip, 1}, Mapped2: Addr{ip, 2}}
	if PortStep(o) != 0 {
		t.Error("step from two answers")
	}
	o = Observations{Mapped1: Addr{ip, 65530}, Mapped2: Addr{ip, 65532}, Mapped3: Addr{ip, 65534}}
	if got := PredictPorts(o, 4); len(got) != 0 {
		t.Errorf("predicted past port 65535: %v", got)
	}
	o.Mapped1.Port, o.Mapped2.Port, o.Mapped3.Port = 30000, 30002, 30004
	if got := PredictPorts(o, 2); len(got) != 2 || got[0] != (Addr{ip, 30006}) || got[1] != (Addr{ip, 30008}) {
		t.Errorf("predicted %v", got)
	}
}

// A port-restricted cone and a symmetric NAT that allocates ports in
// sequence: without prediction they cannot punch (CanPunch says so and
// the Punchers fail); with the symmetric side's predicted ports among the
// candidates both end Direct.
func TestPredictionPunchesSequentialSymmetric(t *testing.T) {
	a1p1, a2p1, a2p2 := Addr{"203.0.113.2", 3478}, Addr{"203.0.113.3", 3478}, Addr{"203.0.113.3", 3479}
	for _, predict := range []bool{false, true} {
		rs, rp := result(TypeSymmetric), result(TypePortRestricted)
		ns, np := newNATModel("198.51.100.1", rs), newNATModel("198.51.100.2", rp)
		obs := Observations{Mapped1: ns.out(a1p1), Mapped2: ns.out(a2p1), Mapped3: ns.out(a2p2)}
		mp := np.out(a1p1)
		candS := []Addr{obs.Mapped1}
		if predict {
			candS = append(candS, PredictPorts(obs, 4)...)
		}
		cfg := PunchConfig{Token: 3, Timeout: time.Second}
		sides := []struct {
			p    *Puncher
			self *natModel
		}{{NewPuncher(cfg, []Addr{mp}, t0), ns}, {NewPuncher(cfg, candS, t0), np}}
		for now := t0; now.Before(t0.Add(1500 * time.Millisecond)); now = now.Add(10 * time.Millisecond) {
			for i, s := range sides {
				s.p.Tick(now)
				other := sides[1-i]
				for _, pkt := range s.p.Ready() {
					src := s.self.out(pkt.To)
					if pkt.To.IP == other.self.ip && other.self.in(src, pkt.To) {
						other.p.Receive(now, src, pkt.Data)
					}
				}
			}
		}
		for i, s := range sides {
			if got := s.p.State() == Direct; got != predict {
				t.Errorf("predict=%v side %d: %v", predict, i, s.p.State())
			}
		}
	}
}
