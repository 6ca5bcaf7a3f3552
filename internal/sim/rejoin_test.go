package sim

import (
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/tracker"
)

// Issue 6: a restarted tracker rebuilds its whole state from the peers.
// The rejoining peers report their current parents; the seed round keeps
// the valid links, so a few seconds after the restart the tracker's trees
// equal the parents the peers actually hold, and the restart moved few
// edges. Rejoining afresh (as older peers do) re-places the stripes.
func TestRestartKeepsTrees(t *testing.T) {
	moved := map[bool]uint64{}
	for _, afresh := range []bool{false, true} {
		c := small(80, 36*time.Second, 21)
		c.KillTrackerAt = 20 * time.Second
		c.RestartTrackerAt = 30 * time.Second
		c.Overlay = true
		c.RejoinAfresh = afresh
		_, s := run(t, c)
		ps, err := s.tr.Placement(channelName)
		if err != nil {
			t.Fatal(err)
		}
		moved[afresh] = ps.EdgesChanged
		if afresh {
			if ps.RejoinLinks != 0 {
				t.Errorf("afresh: %d links reported", ps.RejoinLinks)
			}
			continue
		}
		if ps.RejoinLinks < c.Peers*c.Stripes*9/10 || ps.RejoinKept < ps.RejoinLinks*95/100 {
			t.Errorf("%d links reported, %d kept (%d peers × %d stripes)", ps.RejoinLinks, ps.RejoinKept, c.Peers, c.Stripes)
		}
		v, err := s.tr.Tree(channelName)
		if err != nil {
			t.Fatal(err)
		}
		if n := treeMismatch(t, s, v); n > 0 {
			t.Errorf("%d stripes: the tracker's tree differs from the parents the peers hold", n)
		}
		t.Logf("rejoin: %d of %d links kept, seed round %.2f ms, %d edges changed after the restart", ps.RejoinKept, ps.RejoinLinks, 1000*ps.SeedSeconds, ps.EdgesChanged)
	}
	t.Logf("edges changed after the restart: %d with reported places, %d afresh", moved[false], moved[true])
	if moved[false]*2 > moved[true] {
		t.Errorf("the restart moved %d edges with reported places, %d afresh: want far fewer", moved[false], moved[true])
	}
}

// treeMismatch counts the (peer, stripe) pairs whose parent in the
// tracker's view is not the parent the peer holds.
func treeMismatch(t *testing.T, s *Sim, v tracker.TreeView) int {
	t.Helper()
	byID := make(map[string]tracker.TreeNode, len(v.Nodes))
	for _, n := range v.Nodes {
		byID[n.ID] = n
	}
	bad := 0
	for _, i := range s.aliveAll() {
		p := s.peers[i]
		n, ok := byID[string(p.id)]
		if !ok {
			t.Errorf("peer %d is unknown to the tracker", p.idx)
			bad++
			continue
		}
		for st, q := range p.parents {
			want := ""
			if q != noPeer {
				want = string(s.peers[q].id)
			}
			if n.Stripes[st].Parent != want {
				bad++
				t.Logf("peer %d stripe %d: tracker %q, peer holds %q", p.idx, st, short(n.Stripes[st].Parent), short(want))
			}
		}
	}
	return bad
}

func short(id string) string { return id[:min(len(id), 8)] }
