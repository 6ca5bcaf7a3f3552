package chandelier

import (
	"testing"
	"time"
)

// TestHeadsFollowNodes checks that Optimizer.heads, the copies of the
// nodes' heads that a round reads, stay equal to the nodes' own through
// joins, leaves (slots reused), interior changes, and updates of upload,
// ISP and NAT.
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
		}
	}
}
