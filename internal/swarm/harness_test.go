package swarm

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// epoch is the test clock's start.
var epoch = time.Unix(1_700_000_000, 0)

const testChannel = "tv"

// testConfig is a viewer's config for stream st.
func testConfig(st *swarmtest.Stream) Config {
	return Config{
		Channel:     st.Channel,
		PublicKey:   st.Public(),
		Stripes:     st.Stripes,
		Origin:      "origin",
		MaxChildren: 4,
	}
}

func mustNew(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// msg is one chunk (or a Missing answer) in flight.
type msg struct {
	at       time.Time
	n        uint64 // tie-break: send order
	from, to NodeID
	raw      []byte
	missing  bool
	id       wire.ID
	mesh     meshMsg // a pull answer, buffer map or Alive (mesh_test.go)
}

// testNet is a tiny deterministic network: an origin node in source mode
// publishing st in real (fake) time, viewer nodes, and links that move
// Sends and Fetches between them.
type testNet struct {
	t     testing.TB
	now   time.Time
	st    *swarmtest.Stream
	nodes map[NodeID]*Node
	order []NodeID // sorted
	queue []msg
	nmsg  uint64
	// uncached nodes run playout at every step and the fetch scan over
	// every slice.
	uncached bool
	// outputs, when not nil, gets a line per Ready drained: when, which
	// node, what it held, its deadline and its fetch scan's.
	outputs *[]string
	next    uint64 // next slice the origin publishes
	stopAt  uint64 // the origin publishes slices below this (0 = no limit)

	// link decides the delivery of a pushed chunk: one delay per copy
	// delivered (none: dropped). nil delivers one copy at once.
	link func(from, to NodeID, id wire.ID) []time.Duration
	// answer: the origin answers fetches (from its window, or Missing).
	answer     bool
	fetchDelay time.Duration
	// fetchLink, when set, decides the delivery of fetch answers as link
	// does for pushes.
	fetchLink func(to NodeID, id wire.ID) []time.Duration

	// meshLink decides the delivery of pull answers, maps and Alives
	// from one node to another (false: dropped); nil delivers at once.
	meshLink func(from, to NodeID) (time.Duration, bool)
	// pullAnswer, when set, replaces the chunk a node answers a pull
	// with (nil: no answer at all).
	pullAnswer func(from NodeID, id wire.ID, raw []byte) []byte
	dropped    map[NodeID][]NodeID // Ready.DropPartners by node

	played  map[NodeID][]Slice
	lost    map[NodeID][]Lost
	cutoff  map[NodeID][]NodeID
	fetches map[NodeID][]wire.ID
}

func newTestNet(t testing.TB, k int) *testNet {
	st := swarmtest.NewStream(testChannel, k, epoch)
	tn := &testNet{
		t:       t,
		now:     epoch,
		st:      st,
		nodes:   map[NodeID]*Node{},
		answer:  true,
		played:  map[NodeID][]Slice{},
		lost:    map[NodeID][]Lost{},
		cutoff:  map[NodeID][]NodeID{},
		fetches: map[NodeID][]wire.ID{},
		dropped: map[NodeID][]NodeID{},
	}
	cfg := testConfig(st)
	cfg.Source = true
	cfg.MaxChildren = 16
	tn.add("origin", cfg)
	return tn
}

func (tn *testNet) add(id NodeID, cfg Config) *Node {
	n := mustNew(tn.t, cfg)
	n.uncached = tn.uncached
	n.Tick(tn.now) // start its clock, as the drivers do
	tn.nodes[id] = n
	i, _ := slices.BinarySearch(tn.order, id)
	tn.order = slices.Insert(tn.order, i, id)
	return n
}

// viewer adds a viewer node under parent for every stripe.
func (tn *testNet) viewer(id, parent NodeID, cfg Config) *Node {
	n := tn.add(id, cfg)
	tn.connect(id, parent)
	return n
}

// connect subscribes child to parent on every stripe.
func (tn *testNet) connect(child, parent NodeID) {
	tn.t.Helper()
	tn.nodes[child].SetParent(tn.now, -1, parent)
	if err := tn.nodes[parent].AddChild(tn.now, child, wire.Hello{Channel: testChannel, Stripes: 1<<tn.st.Stripes - 1}); err != nil {
		tn.t.Fatal(err)
	}
	tn.nodes[child].ParentUp(tn.now, parent)
	tn.pump()
}

func (tn *testNet) send(m msg) {
	m.n = tn.nmsg
	tn.nmsg++
	i, _ := slices.BinarySearchFunc(tn.queue, m, func(a, b msg) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return int(a.n) - int(b.n)
	})
	tn.queue = slices.Insert(tn.queue, i, m)
}

// pump delivers everything due by now and drains every node's Ready
// until the network is quiet.
func (tn *testNet) pump() {
	tn.t.Helper()
	for range 100000 {
		busy := false
		for len(tn.queue) > 0 && !tn.queue[0].at.After(tn.now) {
			m := tn.queue[0]
			tn.queue = tn.queue[1:]
			busy = true
			to := tn.nodes[m.to]
			if to == nil {
				continue
			}
			if m.missing {
				to.HandleMissing(tn.now, m.from, m.id)
				continue
			}
			if tn.meshIn(to, m) {
				continue
			}
			// Errors are visible through CutOff and stats.
			_ = to.HandleChunk(tn.now, m.from, m.raw)
		}
		for _, id := range tn.order {
			n := tn.nodes[id]
			if !n.HasReady() {
				continue
			}
			busy = true
			r := n.Ready()
			if tn.outputs != nil {
				line := fmt.Sprintf("%v %s fetches %v play %v lost %v cutoff %v deadline %v scan %v sends", tn.now.Sub(epoch), id, r.Fetches, seqsOf(r.Play), r.Lost, r.CutOff, n.NextDeadline().Sub(epoch), n.scanNext.Time().Sub(epoch))
				for _, s := range r.Sends {
					line += fmt.Sprintf(" %s:%v", s.To, s.ID)
				}
				*tn.outputs = append(*tn.outputs, line)
			}
			for _, s := range r.Sends {
				delays := []time.Duration{0}
				if tn.link != nil {
					delays = tn.link(id, s.To, s.ID)
				}
				for _, d := range delays {
					tn.send(msg{at: tn.now.Add(d), from: id, to: s.To, raw: s.Chunk, id: s.ID})
				}
			}
			for _, f := range r.Fetches {
				tn.fetches[id] = append(tn.fetches[id], f)
				if !tn.answer {
					continue
				}
				raw, ok := tn.nodes["origin"].Lookup(serveID(tn.nodes["origin"], f))
				delays := []time.Duration{tn.fetchDelay}
				if tn.fetchLink != nil {
					delays = tn.fetchLink(id, f)
				}
				for _, d := range delays {
					tn.send(msg{at: tn.now.Add(d), from: "origin", to: id, raw: raw, missing: !ok, id: f})
				}
			}
			for _, sl := range r.Play {
				if sl.PlayAt.After(tn.now) {
					tn.t.Fatalf("%s: slice %d played at %v before it is due at %v", id, sl.Seq, tn.now.Sub(epoch), sl.PlayAt.Sub(epoch))
				}
			}
			tn.meshOut(id, r)
			tn.played[id] = append(tn.played[id], r.Play...)
			tn.lost[id] = append(tn.lost[id], r.Lost...)
			tn.cutoff[id] = append(tn.cutoff[id], r.CutOff...)
		}
		if !busy {
			return
		}
	}
	tn.t.Fatal("network never went quiet")
}

// publish has the origin publish every slice captured by now.
func (tn *testNet) publish() {
	o := tn.nodes["origin"]
	for !tn.st.Capture(tn.next).After(tn.now) && (tn.stopAt == 0 || tn.next < tn.stopAt) {
		chunks, raws := cachedSlice(tn.st, tn.next)
		for i := range chunks {
			o.Publish(tn.now, chunks[i], raws[i])
		}
		tn.next++
	}
}

// run advances the clock to until in steps of step, publishing, ticking
// nodes whose deadline passed, and pumping.
func (tn *testNet) run(d, step time.Duration) {
	tn.t.Helper()
	until := tn.now.Add(d)
	for ; tn.now.Before(until); tn.now = tn.now.Add(step) {
		tn.publish()
		tn.pump()
		for _, id := range tn.order {
			n := tn.nodes[id]
			if dl := n.NextDeadline(); !dl.IsZero() && !dl.After(tn.now) {
				n.Tick(tn.now)
				if dl2 := n.NextDeadline(); !dl2.IsZero() && !dl2.After(tn.now) {
					tn.t.Fatalf("%s: deadline %v not after now %v after Tick", id, dl2.Sub(epoch), tn.now.Sub(epoch))
				}
			}
		}
		tn.pump()
	}
}

// checkPlayed asserts that slices were played in consecutive seq order
// (except after a Discontinuity), complete and with the stream's
// packets and parameter sets.
func checkPlayed(t testing.TB, st *swarmtest.Stream, played []Slice) {
	t.Helper()
	for i, sl := range played {
		if i > 0 {
			prev := played[i-1].Seq
			if sl.Seq <= prev || (sl.Seq != prev+1 && !sl.Discontinuity) {
				t.Fatalf("slice %d played after %d (discontinuity %v)", sl.Seq, prev, sl.Discontinuity)
			}
		}
		want := st.Packets(sl.Seq)
		merged, err := wire.AppendMerge(nil, sl.Chunks)
		if err != nil {
			t.Fatalf("slice %d: its chunks do not merge: %v", sl.Seq, err)
		}
		got := [][]wire.Packet{merged}
		if sl.Packets != nil { // nil with Config.NoMerge
			got = append(got, sl.Packets)
		}
		for _, pk := range got {
			if len(pk) != len(want) {
				t.Fatalf("slice %d: %d packets, want %d", sl.Seq, len(pk), len(want))
			}
			for j := range want {
				if !bytes.Equal(pk[j].RTP, want[j].RTP) || pk[j].Offset != want[j].Offset {
					t.Fatalf("slice %d packet %d: got %x, want %x", sl.Seq, j, pk[j].RTP, want[j].RTP)
				}
			}
		}
		if sl.Keyframe != st.Keyframe(sl.Seq) || sl.Keyframe != (len(sl.Params) == len(swarmtest.Params)) {
			t.Fatalf("slice %d: keyframe %v with %d params", sl.Seq, sl.Keyframe, len(sl.Params))
		}
		if !sl.Capture.Equal(st.Capture(sl.Seq)) || sl.Duration != st.SliceDuration {
			t.Fatalf("slice %d: capture %v duration %v", sl.Seq, sl.Capture, sl.Duration)
		}
	}
}

// seqs returns the seqs of played slices.
func seqsOf(played []Slice) []uint64 {
	out := make([]uint64, len(played))
	for i, sl := range played {
		out[i] = sl.Seq
	}
	return out
}

// signed caches the default test streams' signed slices: signing
// dominates the run time of the network tests under the race detector.
var signed = map[[2]uint64]struct {
	chunks []*wire.Chunk
	raws   [][]byte
}{}

// cachedSlice is st.Slice(seq), computed once per stripe count for the
// streams newTestNet makes.
func cachedSlice(st *swarmtest.Stream, seq uint64) ([]*wire.Chunk, [][]byte) {
	k := [2]uint64{uint64(st.Stripes), seq}
	if c, ok := signed[k]; ok {
		return c.chunks, c.raws
	}
	chunks, raws := st.Slice(seq)
	signed[k] = struct {
		chunks []*wire.Chunk
		raws   [][]byte
	}{chunks, raws}
	return chunks, raws
}

// serveID maps a fetch to the chunk the origin serves, as the drivers do:
// slice 0 names the newest keyframe slice.
func serveID(origin *Node, id wire.ID) wire.ID {
	if id.Seq == 0 {
		if seq, ok := origin.NewestKeyframe(); ok {
			id.Seq = seq
		}
	}
	return id
}
