package chandelier

import (
	"testing"
	"time"
)

// Issue 6: on the cut-off side of a partition every candidate starves
// alike; switching between them is pointless. A starved stripe switches
// only to a candidate holding something newer; a stripe that is fed (its
// parent just left) switches to any.
func TestPointless(t *testing.T) {
	for _, c := range []struct {
		own       uint64
		age       time.Duration
		cand      uint64
		known     bool
		pointless bool
	}{
		{100, 10 * time.Second, 100, true, true},  // as starved as the peer
		{100, 10 * time.Second, 98, true, true},   // further behind
		{100, 10 * time.Second, 101, true, false}, // holds a newer chunk
		{100, 10 * time.Second, 0, false, false},  // not known: worth a try
		{100, time.Second, 100, true, false},      // the stripe is fed: any will do
		{100, Starved, 100, true, false},          // not older than Starved
	} {
		if got := Pointless(c.own, c.age, c.cand, c.known); got != c.pointless {
			t.Errorf("Pointless(%d, %v, %d, %v) = %v, want %v", c.own, c.age, c.cand, c.known, got, c.pointless)
		}
	}
	// Repair and the ring rule skip stale candidates.
	status := map[string]Status{"a": {Stale: true}, "b": {}}
	if next, ok := Repair([]string{"a", "b"}, func(id string) Status { return status[id] }, time.Hour); !ok || next != "b" {
		t.Errorf("Repair took %q, %v; want b (a is stale)", next, ok)
	}
	if _, ok := Repair([]string{"a"}, func(id string) Status { return status[id] }, time.Hour); ok {
		t.Error("Repair took a stale backup")
	}
	self := RingRank{Depth: 5, ID: 50}
	cands := []RingCandidate{
		{Rank: RingRank{Depth: 1, ID: 1}, Spare: true, Stale: true},
		{Rank: RingRank{Depth: 3, ID: 2}, Spare: true},
	}
	if i, ok := RingParent(self, cands); !ok || i != 1 {
		t.Errorf("RingParent took %d, %v; want 1 (the shallower one is stale)", i, ok)
	}
	if _, ok := RingParent(self, cands[:1]); ok {
		t.Error("RingParent took a stale candidate")
	}
}

// Issue 6: the peer side of Chandelier reads the gossip estimates: a
// full backup is taken last, and not at all while the swarm's mean upload
// (the overlay's estimate) leaves room elsewhere.
func TestRepairFullBackup(t *testing.T) {
	status := map[string]Status{"full": {Full: true}, "room": {Lag: 3 * time.Second}, "gone": {Failed: true}}
	st := func(id string) Status { return status[id] }
	spare := Estimates{Peers: 300, UploadRatio: 2.4}
	scarce := Estimates{Peers: 300, UploadRatio: 1.05}
	if next, ok := RepairWith([]string{"full", "room"}, st, time.Second, spare); !ok || next != "room" {
		t.Errorf("took %q, %v; want room (behind, but not full) before full", next, ok)
	}
	if _, ok := RepairWith([]string{"full", "gone"}, st, time.Second, spare); ok {
		t.Error("took a full backup while the swarm has upload to spare")
	}
	if next, ok := RepairWith([]string{"full", "gone"}, st, time.Second, scarce); !ok || next != "full" {
		t.Errorf("took %q, %v with scarce upload; want full (nothing better anywhere)", next, ok)
	}
	if next, ok := Repair([]string{"full", "gone"}, st, time.Second); !ok || next != "full" {
		t.Errorf("Repair without estimates took %q, %v; want full", next, ok)
	}
	if (Estimates{}).SpareUpload() || !spare.SpareUpload() || scarce.SpareUpload() {
		t.Error("SpareUpload: unknown and scarce figures must say no, 2.4 yes")
	}
}
