package tracker

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
)

// freshAnswer computes the heartbeat answer of a member from the edges
// and the members as they stand, with neither the children index nor
// the cache of resolved members that Heartbeat answers from.
func freshAnswer(ch *channel, m *member) HeartbeatResponse {
	member := func(id string) (NodeInfo, int64, bool) {
		if id == chandelier.Origin {
			return ch.info.Origin, 0, !ch.info.Origin.IsZero()
		}
		if p, ok := ch.peers[id]; ok {
			return NodeInfo{ID: p.id, Addr: p.addr}, p.stats.LagMS, true
		}
		return NodeInfo{}, 0, false
	}
	var resp HeartbeatResponse
	for _, a := range m.stripes {
		parent, _, _ := member(a.Parent)
		st := StripeAssignment{Parent: parent, Backups: []NodeInfo{}, Relayed: a.Relayed}
		for _, b := range a.Backups {
			if info, lag, ok := member(b); ok {
				info.LagMS = lag
				st.Backups = append(st.Backups, info)
			}
		}
		resp.Stripes = append(resp.Stripes, st)
	}
	resp.Parent = resp.Stripes[0].Parent
	resp.Children = []NodeInfo{}
	for _, id := range ch.sortedIDs() {
		c := ch.peers[id]
		if slices.ContainsFunc(c.stripes, func(a chandelier.Assignment) bool { return a.Parent == m.id }) {
			resp.Children = append(resp.Children, NodeInfo{ID: c.id, Addr: c.addr})
		}
	}
	return resp
}

// TestAnswersMatchFresh: after joins, rejoins at a new address, leaves,
// parent-lost reports with switches, rounds, expiries and an origin
// restart that re-places every stripe, every peer's heartbeat answer (in
// JSON, as the API sends it) equals one computed afresh from the edges:
// the children index and the cached members never go stale.
func TestAnswersMatchFresh(t *testing.T) {
	tr, c := newCore(t, 2, PlacerChandelier)
	rng := rand.New(rand.NewPCG(5, 6))
	reg := RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1), Capacity: 2}
	encode := func(r HeartbeatResponse) string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const ids = 60
	for step := range 1500 {
		i := 1 + rng.IntN(ids)
		switch op := rng.IntN(20); {
		case op < 6: // a join, or a rejoin at another address
			req := JoinRequest{ID: nid(i), Addr: fmt.Sprintf("127.0.0.1:%d", 10000+rng.IntN(50000)), Capacity: rng.IntN(6)}
			req.NAT = NATClasses[rng.IntN(len(NATClasses))]
			if _, err := tr.Join("live", req); err != nil {
				t.Fatal(err)
			}
		case op < 12: // beats carrying a new lag
			_, _ = tr.Heartbeat("live", HeartbeatRequest{ID: nid(i), Stats: PeerStats{LagMS: rng.Int64N(3000)}})
		case op < 15:
			hb, err := tr.Heartbeat("live", HeartbeatRequest{ID: nid(i)})
			if err != nil {
				break
			}
			s := rng.IntN(len(hb.Stripes))
			a := hb.Stripes[s]
			if a.Parent.IsZero() || a.Parent.ID == reg.Channel.Origin.ID {
				break
			}
			req := ParentLostRequest{ID: nid(i), Parent: a.Parent.ID}
			if len(a.Backups) > 0 && a.Backups[0].ID != reg.Channel.Origin.ID && rng.IntN(2) == 0 {
				req.Switched = []StripeSwitch{{Stripe: s, Parent: a.Backups[0].ID}}
			}
			if _, err := tr.ParentLost("live", req); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		case op < 17:
			if err := tr.Leave("live", LeaveRequest{ID: nid(i)}); err != nil {
				t.Fatal(err)
			}
		case op < 19: // time passes: the silent expire
			c.Advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
			tr.Round()
		default: // an origin restart with another capacity re-places every stripe
			reg.Capacity = 1 + rng.IntN(3)
			reg.Channel.Origin.Addr = fmt.Sprintf("127.0.0.1:%d", 9000+step)
			if _, err := tr.Register(reg); err != nil {
				t.Fatal(err)
			}
		}
		tr.mu.Lock()
		ch := tr.channels["live"]
		for _, id := range ch.sortedIDs() {
			m := ch.peers[id]
			as := ch.assignments(m)
			got := encode(HeartbeatResponse{Parent: as[0].Parent, Stripes: as, Children: ch.children(id)})
			if want := encode(freshAnswer(ch, m)); got != want {
				tr.mu.Unlock()
				t.Fatalf("step %d: peer %s answers\n%s\nafresh\n%s", step, id, got, want)
			}
		}
		tr.mu.Unlock()
	}
	// The run went through the cases the caches must follow.
	ps, err := tr.Placement("live")
	if err != nil || ps.Rounds < 300 || tr.events[eventExpire] == 0 || tr.events[eventLeave] == 0 {
		t.Fatalf("placement %+v (%v), events %v", ps, err, tr.events)
	}
}
