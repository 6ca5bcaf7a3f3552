package chandelier

import (
	"slices"
	"testing"
	"time"
)

// TestHeadsFollowNodes checks that Optimizer.heads, the copies of the
// nodes' heads that a round reads, stay equal to the nodes' own, and
// that the slabs hold the nodes' parents and backup lists (noRef after
// each list's end), through joins, leaves (slots reused), interior
// changes, and updates of upload, ISP and NAT.
func TestHeadsFollowNodes(t *testing.T) {
	w := newWorld(3, 1.2, 4)
	o := newOpt(t, testConfig(8))
	now := t0
	o.Round(now, Changes{Join: w.joinN(500, now)})
	for r := range 30 {
		now = now.Add(time.Second)
		ch := Changes{Leave: w.leaveN(10), Join: w.joinN(10, now)}
		for k, p := range w.list()[:20] {
			switch (r + k) % 4 {
			case 0:
				p.Upload = p.Upload*2 + testRate // more feeds: may become interior
			case 1:
				p.Upload = 0 // a leaf everywhere
			case 2:
				p.ISP = w.isp()
			case 3:
				p.NAT = w.nat()
			}
			w.peers[p.ID] = p
			ch.Update = append(ch.Update, p)
		}
		o.Round(now, ch)
		if len(o.heads) != len(o.nodes) {
			t.Fatalf("round %d: %d heads for %d nodes", r, len(o.heads), len(o.nodes))
		}
		for i := range o.nodes {
			if o.heads[i] != o.nodes[i].head {
				t.Fatalf("round %d: node %d: head copy %+v, node's %+v", r, i, o.heads[i], o.nodes[i].head)
			}
			if i == 0 || !o.nodes[i].alive {
				continue
			}
			for s := range o.cfg.Stripes {
				x := &o.nodes[i]
				room := o.backupRoom(int32(i), s)
				if o.parentOf(int32(i), s) != x.parent[s] || o.relayedOf(int32(i), s) != x.relayed[s] ||
					!slices.Equal(room[:len(x.backups[s])], x.backups[s]) || &room[0] != &x.backups[s][:1][0] ||
					slices.ContainsFunc(room[len(x.backups[s]):], func(b ref) bool { return b != noRef }) {
					t.Fatalf("round %d: node %d stripe %d: slab parent %d relayed %v room %v; node's %d %v %v",
						r, i, s, o.parentOf(int32(i), s), o.relayedOf(int32(i), s), room, x.parent[s], x.relayed[s], x.backups[s])
				}
			}
		}
	}
}
