package swarm

import (
	"flag"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

var seedFlag = flag.Uint64("swarm.seed", 0, "run TestRandomNetwork with this seed only")

// TestRandomNetwork drives a small tree (origin → A → B, origin → C → D)
// over links that drop, delay (so reorder) and duplicate chunks, with
// fetch answers that are slow or lost, and checks the playout
// invariants: every emitted slice is complete and correct, slices are
// emitted in order and each at most once, and every slice playout passed
// is counted exactly once as played, late or lost. Replay one seed with
// -swarm.seed=N.
func TestRandomNetwork(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	if raceEnabled {
		seeds = seeds[:2]
	}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	var trouble Stats
	for _, harsh := range []bool{false, true} {
		for _, seed := range seeds {
			if t.Failed() {
				return
			}
			s, _ := randomNetwork(t, seed, harsh, false)
			trouble.LateSlices += s.LateSlices
			trouble.LostSlices += s.LostSlices
			trouble.Stalls += s.Stalls
		}
	}
	// The harsh runs must have exercised stalls, late and skipped slices.
	if *seedFlag == 0 && (trouble.LateSlices == 0 || trouble.LostSlices == 0 || trouble.Stalls == 0) {
		t.Fatalf("the harsh network caused no trouble: %+v", trouble)
	}
}

// randomNetwork runs one network and returns the viewers' summed stats
// and the network. A harsh network loses far more, answers fetches late
// or not at all, and its viewers keep a short playout delay and stall
// limit. uncached nodes run playout at every step.
func randomNetwork(t *testing.T, seed uint64, harsh, uncached bool) (sum Stats, tn *testNet) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	drop, fetchDrop, fetchSlow := 0.04, 0.05, 40
	if harsh {
		drop, fetchDrop, fetchSlow = 0.25, 0.4, 400
	}
	tn = newTestNet(t, 4)
	tn.uncached = uncached
	tn.outputs = new([]string)
	type key struct {
		from, to NodeID
		id       wire.ID
	}
	sent := map[key]bool{}
	tn.link = func(from, to NodeID, id wire.ID) []time.Duration {
		k := key{from, to, id}
		if sent[k] {
			t.Fatalf("seed %d: %s sent %v to %s twice", seed, from, id, to)
		}
		sent[k] = true
		switch x := r.Float64(); {
		case x < drop:
			return nil
		case x < drop+0.04: // duplicated
			return []time.Duration{time.Duration(r.IntN(60)) * time.Millisecond, time.Duration(r.IntN(300)) * time.Millisecond}
		}
		return []time.Duration{time.Duration(r.IntN(60)) * time.Millisecond}
	}
	tn.fetchLink = func(to NodeID, id wire.ID) []time.Duration {
		if r.Float64() < fetchDrop {
			return nil
		}
		return []time.Duration{time.Duration(10+r.IntN(fetchSlow)) * time.Millisecond}
	}
	cfg := testConfig(tn.st)
	if harsh {
		cfg.PlayoutDelay = 400 * time.Millisecond
		cfg.FetchMargin = 200 * time.Millisecond
		cfg.StallLimit = 500 * time.Millisecond
		cfg.StartMargin = 150 * time.Millisecond // a start at once, converging
	}
	tn.viewer("A", "origin", cfg)
	tn.viewer("C", "origin", cfg)
	// B and D join late, from their parent's backlog.
	tn.run(1500*time.Millisecond, 10*time.Millisecond)
	tn.viewer("B", "A", cfg)
	tn.viewer("D", "C", cfg)
	tn.run(12*time.Second, 10*time.Millisecond)

	for _, id := range []NodeID{"A", "B", "C", "D"} {
		n := tn.nodes[id]
		played := tn.played[id]
		checkPlayed(t, tn.st, played)
		s := n.Stats()
		if len(played) < 40 || (!harsh && len(played) < 90) {
			t.Fatalf("seed %d harsh %v: %s played only %v", seed, harsh, id, seqsOf(played))
		}
		if uint64(len(played)) != s.PlayedSlices+s.LateSlices {
			t.Fatalf("seed %d harsh %v: %s emitted %d slices, counted %d played + %d late", seed, harsh, id, len(played), s.PlayedSlices, s.LateSlices)
		}
		passed := n.play.next - played[0].Seq
		if passed != s.PlayedSlices+s.LateSlices+s.LostSlices {
			t.Fatalf("seed %d harsh %v: %s passed %d slices, counted %+v", seed, harsh, id, passed, s)
		}
		for i := 1; i < len(played); i++ {
			if played[i].PlayAt.Before(played[i-1].PlayAt) {
				t.Fatalf("seed %d harsh %v: %s slice %d due before its predecessor", seed, harsh, id, played[i].Seq)
			}
		}
		// Fetches are answered (after retries), so nothing is skipped.
		if !harsh && s.LostSlices != 0 {
			t.Fatalf("seed %d: %s skipped %d slices: %+v", seed, id, s.LostSlices, s)
		}
		if len(tn.cutoff[id]) != 0 || s.BadChunks != 0 {
			t.Fatalf("seed %d harsh %v: %s cut off %v", seed, harsh, id, tn.cutoff[id])
		}
		sum.LateSlices += s.LateSlices
		sum.LostSlices += s.LostSlices
		sum.Stalls += s.Stalls
		t.Logf("seed %d harsh %v %s: played %d late %d lost %d stalls %d fetches %d dup %d lost parents %d",
			seed, harsh, id, s.PlayedSlices, s.LateSlices, s.LostSlices, s.Stalls, s.Fetches, s.Duplicates, len(tn.lost[id]))
	}
	return sum, tn
}

// TestPlayoutCacheChangesNothing runs random networks twice, with nodes that
// skip playout while its inputs are unchanged (as they always do) and
// with nodes that run it at every step: every node must put out exactly
// the same at the same times, with the same deadlines, and count the
// same.
func TestPlayoutCacheChangesNothing(t *testing.T) {
	seeds := []uint64{11, 12, 13}
	if raceEnabled {
		seeds = seeds[:1]
	}
	for _, harsh := range []bool{false, true} {
		for _, seed := range seeds {
			_, cached := randomNetwork(t, seed, harsh, false)
			_, plain := randomNetwork(t, seed, harsh, true)
			if t.Failed() {
				return
			}
			// Every output, when it came out.
			co, po := *cached.outputs, *plain.outputs
			for i := range min(len(co), len(po)) {
				if co[i] != po[i] {
					t.Fatalf("seed %d harsh %v: output %d differs:\ncached   %s\nuncached %s", seed, harsh, i, co[i], po[i])
				}
			}
			if len(co) != len(po) {
				t.Fatalf("seed %d harsh %v: %d outputs cached, %d uncached", seed, harsh, len(co), len(po))
			}
			for _, id := range []NodeID{"A", "B", "C", "D"} {
				a, b := cached.nodes[id], plain.nodes[id]
				if !reflect.DeepEqual(a.Stats(), b.Stats()) {
					t.Fatalf("seed %d harsh %v %s: stats %+v cached, %+v uncached", seed, harsh, id, a.Stats(), b.Stats())
				}
				if !reflect.DeepEqual(cached.played[id], plain.played[id]) {
					t.Fatalf("seed %d harsh %v %s: played %v cached, %v uncached", seed, harsh, id, seqsOf(cached.played[id]), seqsOf(plain.played[id]))
				}
				if !slices.Equal(cached.fetches[id], plain.fetches[id]) || !slices.Equal(cached.lost[id], plain.lost[id]) {
					t.Fatalf("seed %d harsh %v %s: fetches or lost parents differ", seed, harsh, id)
				}
				if !a.NextDeadline().Equal(b.NextDeadline()) {
					t.Fatalf("seed %d harsh %v %s: deadline %v cached, %v uncached", seed, harsh, id, a.NextDeadline(), b.NextDeadline())
				}
			}
		}
	}
}
