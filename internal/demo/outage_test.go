package demo

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/porttest"
	"github.com/swarmtv/swarmtv/overlay"
)

// lockedBuffer collects the demo's status lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// freePort returns a loopback TCP port that was free a moment ago, with
// the 15 after it (a demo serves peer i on port + i).
func freePort(t *testing.T) int { return porttest.Block(t, 16) }

// Issue 6, acceptance (the short version): the tracker is killed mid-
// stream and restarted empty. The viewers keep playing; a viewer that
// joins during the outage through a peer's address plays; after the
// restart the tracker's view is the swarm again; the peers form one
// overlay ring throughout.
func TestTrackerOutage(t *testing.T) {
	var out lockedBuffer
	var (
		known, peers int
		newcomer     struct {
			played  uint64
			startup time.Duration
		}
		ringOK   bool
		why      string
		mismatch []string
		kept     [2]int // links the rejoining peers reported, and kept
		stripes  int
		view     [4]float64 // peer 0's overlay view: members, est peers, est health, est upload
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := Run(ctx, Config{
		Peers:            3,
		Duration:         26 * time.Second,
		RTSPPort:         freePort(t),
		DashboardAddr:    "127.0.0.1:0",
		StatusEvery:      2 * time.Second,
		Out:              &out,
		KillTrackerAt:    6 * time.Second,
		RestartTrackerAt: 15 * time.Second,
		afterRun: func(d *Demo) {
			// The tracker's view converges within a heartbeat or two: a
			// peer a child reported silent is removed and joins again
			// at its next heartbeat.
			for end := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if known, peers = d.TrackerView(); known == peers || time.Now().After(end) {
					break
				}
			}
			// The rejoining peers reported their parents: the rebuilt
			// trees are the ones the peers use.
			for end := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if mismatch = d.TreeMismatch(); len(mismatch) == 0 || time.Now().After(end) {
					break
				}
			}
			if len(d.peers) > 3 {
				st := d.peers[3].Status()
				newcomer.played, newcomer.startup = st.Swarm.PlayedSlices, st.Startup
			}
			if ps, err := d.tracker.Placement(Channel); err == nil {
				kept = [2]int{ps.RejoinLinks, ps.RejoinKept}
			}
			if ci, err := d.tracker.Channel(Channel); err == nil {
				stripes = ci.Stripes
			}
			ringOK, why = ring(d)
			ov := d.peers[0].View().Overlay
			view = [4]float64{float64(len(ov.Successors)), ov.EstPeers, ov.EstHealth, ov.EstMeanUploadBPS}
		},
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Logf("status lines:\n%s", out.String())
	for _, want := range []string{"tracker killed", "joins through peer 0", "tracker restarted", "tracker DOWN"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the status lines", want)
		}
	}
	if peers != 4 || known != 4 {
		t.Errorf("after the restart the tracker knows %d of %d peers, want 4 of 4", known, peers)
	}
	if len(mismatch) > 0 {
		t.Errorf("after the restart the tracker's trees are not the peers' parents:\n%s", strings.Join(mismatch, "\n"))
	}
	t.Logf("the rejoining peers reported %d links; the restarted tracker kept %d", kept[0], kept[1])
	// The three first viewers' links are the old tracker's, all valid;
	// the newcomer's, all under its bootstrap member, are valid only in
	// the stripe that member forwards. (A peer that rejoins after the
	// tracker's rejoin window has its links kept as switches, not
	// counted here.)
	if stripes == 0 || kept[0] < stripes || kept[0]-kept[1] > stripes-1 {
		t.Errorf("the restarted tracker kept %d of %d reported links; only the newcomer's %d links outside its bootstrap member's stripe may be refused", kept[1], kept[0], stripes-1)
	}
	if newcomer.played == 0 || newcomer.startup <= 0 {
		t.Errorf("the viewer that joined during the outage played %d slices (startup %v)", newcomer.played, newcomer.startup)
	}
	if r.Continuity == nil || *r.Continuity < 0.99 {
		t.Errorf("continuity %v through the outage, want >= 0.99 (acceptance: 0.999)", r.Continuity)
	}
	if !ringOK {
		t.Errorf("the peers' overlay is not one consistent ring: %s", why)
	}
	// Gossip: the ring's size (4) and health (1) as peer 0 estimates them.
	if view[0] != 3 || view[1] < 3 || view[1] > 5 || view[2] < 0.9 || view[2] > 1.01 {
		t.Errorf("peer 0's overlay: %v successors, estimates: %.2f peers, health %.3f (want 3, about 4, about 1)", view[0], view[1], view[2])
	}
	t.Logf("peer 0 estimates: %.2f peers, health %.3f, mean upload %.0f bit/s", view[1], view[2], view[3])
	t.Logf("continuity %.5f, newcomer startup %v, savings %.3f", *r.Continuity, newcomer.startup, *r.Savings)
}

// ring checks that the peers' overlay successors and predecessors form
// one ring in ID order.
func ring(d *Demo) (bool, string) {
	type m struct {
		self  overlay.ID
		succ  overlay.ID
		pred  overlay.ID
		ok    bool
		joins bool
	}
	var ms []m
	for _, p := range d.peers {
		st := p.Overlay()
		x := m{self: st.Self.ID, pred: st.Pred.ID, ok: st.HasPred, joins: st.Joined}
		if len(st.Successors) > 0 {
			x.succ = st.Successors[0].ID
		}
		ms = append(ms, x)
	}
	slices.SortFunc(ms, func(a, b m) int {
		switch {
		case a.self < b.self:
			return -1
		case a.self > b.self:
			return 1
		}
		return 0
	})
	for i, x := range ms {
		next, prev := ms[(i+1)%len(ms)], ms[(i+len(ms)-1)%len(ms)]
		if !x.joins || x.succ != next.self || !x.ok || x.pred != prev.self {
			return false, x.self.String() + " is out of place"
		}
	}
	return true, ""
}
