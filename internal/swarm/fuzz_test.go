package swarm

import (
	"slices"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// FuzzHandleChunk: arbitrary bytes from a peer never panic the node and
// are either taken (a valid chunk) or rejected with the sender cut off.
func FuzzHandleChunk(f *testing.F) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	for seq := uint64(0); seq < 3; seq++ {
		_, raws := st.Slice(seq)
		for _, raw := range raws {
			f.Add(raw)
			b := slices.Clone(raw)
			b[len(b)/2] ^= 0x40
			f.Add(b)
			f.Add(raw[:len(raw)-wire.SignatureSize])
		}
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 2, 't', 'v'})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := mustNew(t, testConfig(st))
		n.SetParent(epoch, -1, "P")
		if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 0xffff}); err != nil {
			t.Fatal(err)
		}
		feed(t, n, st, epoch, "Q", 0, 0, 1)
		n.Ready()
		err := n.HandleChunk(epoch.Add(time.Millisecond), "P", data)
		n.Tick(epoch.Add(time.Minute))
		r := n.Ready()
		if err != nil && !slices.Contains(r.CutOff, "P") {
			t.Fatalf("rejected (%v) without cutting the sender off", err)
		}
		if err == nil && len(r.CutOff) != 0 {
			t.Fatalf("accepted and cut off %v", r.CutOff)
		}
	})
}

// FuzzNode reads data as a script of operations — chunks of a valid
// stream arriving in any order, duplicates, clock jumps, parent and
// child changes — and checks the playout invariants after each.
func FuzzNode(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 3, 1, 50, 1, 200, 2, 0, 1, 255})
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 1, 255, 1, 255, 3, 1, 4, 0, 1, 255})
	f.Add([]byte{5, 9, 0, 40, 0, 41, 0, 42, 0, 43, 1, 100, 0, 44, 1, 255, 1, 255, 1, 255, 6, 0})
	st := swarmtest.NewStream(testChannel, 4, epoch)
	const slicesN = 64
	raws := make([][]byte, 0, slicesN*4)
	for seq := uint64(0); seq < slicesN; seq++ {
		_, r := st.Slice(seq)
		raws = append(raws, r...)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := testConfig(st)
		cfg.Window = 3 * time.Second
		cfg.StallLimit = 500 * time.Millisecond
		n := mustNew(t, cfg)
		n.SetParent(epoch, -1, "P")
		now := epoch
		var played []Slice
		for i := 0; i+1 < len(data); i += 2 {
			op, arg := data[i]%8, data[i+1]
			switch op {
			case 0, 5: // a chunk arrives: slice arg/4 (+ 40 for op 5)
				idx := int(arg) % len(raws)
				if op == 5 {
					idx = (idx + 160) % len(raws)
				}
				if err := n.HandleChunk(now, "P", raws[idx]); err != nil {
					t.Fatalf("valid chunk rejected: %v", err)
				}
			case 1: // time passes
				now = now.Add(time.Duration(arg) * 10 * time.Millisecond)
				n.Tick(now)
			case 2:
				n.SetParent(now, int(arg%6)-1, NodeID([]string{"", "P", "Q"}[arg%3]))
			case 3:
				_ = n.AddChild(now, NodeID([]string{"C", "D", "E"}[arg%3]), wire.Hello{Channel: testChannel, Stripes: uint16(arg), From: uint64(arg % 7)})
			case 4:
				n.NodeGone(now, NodeID([]string{"P", "C", "Q"}[arg%3]))
			case 6:
				n.HandleMissing(now, "origin", wire.ID{Seq: uint64(arg), Stripe: arg % 4})
			case 7:
				if dl := n.NextDeadline(); !dl.IsZero() {
					if dl.Before(now) {
						t.Fatalf("deadline %v before now %v", dl, now)
					}
					now = dl
					n.Tick(now)
				}
			}
			r := n.Ready()
			for _, s := range r.Sends {
				if raw, ok := n.Lookup(s.ID); ok && string(raw) != string(s.Chunk) {
					t.Fatalf("send %v carries other bytes", s.ID)
				}
			}
			played = append(played, r.Play...)
			if len(n.win) > n.maxSlots() || len(n.fetching) > n.cfg.MaxFetches {
				t.Fatalf("unbounded: %d slots, %d fetches", len(n.win), len(n.fetching))
			}
			checkWindow(t, n)
		}
		checkPlayed(t, st, played)
		s := n.Stats()
		if uint64(len(played)) != s.PlayedSlices+s.LateSlices {
			t.Fatalf("%d emitted, stats %+v", len(played), s)
		}
		if len(played) > 0 && n.play.next-played[0].Seq != s.PlayedSlices+s.LateSlices+s.LostSlices {
			t.Fatalf("passed %d slices from %d, stats %+v", n.play.next-played[0].Seq, played[0].Seq, s)
		}
	})
}

// BenchmarkForward measures taking one new chunk (verify, store) and
// forwarding it to 4 children.
func BenchmarkForward(b *testing.B) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	const slicesN = 100 // within the default window
	var raws [][]byte
	for seq := uint64(0); seq < slicesN; seq++ {
		_, r := st.Slice(seq)
		raws = append(raws, r...)
	}
	var n *Node
	fresh := func() {
		n = mustNew(b, testConfig(st))
		n.SetParent(epoch, -1, "P")
		for _, c := range []NodeID{"c1", "c2", "c3", "c4"} {
			if err := n.AddChild(epoch, c, wire.Hello{Channel: testChannel, Stripes: 0xf}); err != nil {
				b.Fatal(err)
			}
		}
	}
	fresh()
	b.ReportAllocs()
	b.SetBytes(int64(len(raws[0])))
	b.ResetTimer()
	for i := range b.N {
		j := i % len(raws)
		if j == 0 && i > 0 {
			b.StopTimer()
			fresh()
			b.StartTimer()
		}
		if err := n.HandleChunk(epoch.Add(time.Duration(j/4)*st.SliceDuration), "P", raws[j]); err != nil {
			b.Fatal(err)
		}
		if r := n.Ready(); len(r.Sends) != 4 {
			b.Fatalf("%d sends", len(r.Sends))
		}
	}
}

// checkWindow checks that the window's index (seqs, held) matches its
// slots and is in ascending order.
func checkWindow(t *testing.T, n *Node) {
	t.Helper()
	if len(n.idx) != len(n.win) {
		t.Fatalf("window: %d slots, %d index entries", len(n.win), len(n.idx))
	}
	for i, sl := range n.win {
		var mask uint16
		for s, c := range sl.chunks {
			if c != nil {
				mask |= 1 << s
			}
		}
		e := n.idx[i]
		if e.seq != sl.seq || e.held != mask || e.captureTime() != sl.capture || e.done != sl.doneAt || (i > 0 && n.idx[i-1].seq >= sl.seq) {
			t.Fatalf("window entry %d: %+v, slot seq %d mask %b capture %v", i, e, sl.seq, mask, sl.capture)
		}
	}
}
