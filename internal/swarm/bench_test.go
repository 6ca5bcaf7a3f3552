package swarm

import (
	"errors"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// BenchmarkSteady measures viewers in steady state as the simulator runs
// them: chunks of a 4-stripe stream arrive from one parent about 50 ms
// after capture, each node forwards each to 4 children, plays out and is
// ticked at its deadlines. Signatures and parses are looked up
// (Config.Verify, Config.Parse), as in the simulator, so the figure is
// the core's own work per chunk. With 1,000 nodes fed in turn, as in
// the simulator, their state does not stay in the CPU's caches.
func BenchmarkSteady(b *testing.B)   { benchSteady(b, 1) }
func BenchmarkSteady1k(b *testing.B) { benchSteady(b, 1000) }

func benchSteady(b *testing.B, nodesN int) {
	const k, slicesN = 4, 1200 // 2 minutes of 100 ms slices
	st := swarmtest.NewStream(testChannel, k, epoch)
	type entry struct {
		c *wire.Chunk
		n int
	}
	known := map[*byte]entry{}
	var raws [][]byte
	for seq := uint64(1); seq <= slicesN; seq++ {
		cs, rs := st.Slice(seq)
		for i := range rs {
			known[&rs[i][0]] = entry{cs[i], len(rs[i])}
		}
		raws = append(raws, rs...)
	}
	errUnknown := errors.New("unknown chunk")
	cfg := testConfig(st)
	cfg.Verify = func(raw []byte) error {
		if e, ok := known[&raw[0]]; !ok || e.n != len(raw) {
			return errUnknown
		}
		return nil
	}
	cfg.Parse = func(raw []byte) (*wire.Chunk, error) {
		if e, ok := known[&raw[0]]; ok && e.n == len(raw) {
			return e.c, nil
		}
		return wire.ParseChunk(raw)
	}
	nodes := make([]*Node, nodesN)
	fresh := func() {
		for i := range nodes {
			n := mustNew(b, cfg)
			n.SetParent(epoch, -1, "P")
			for _, c := range []NodeID{"c1", "c2", "c3", "c4"} {
				if err := n.AddChild(epoch, c, wire.Hello{Channel: testChannel, Stripes: 0xf}); err != nil {
					b.Fatal(err)
				}
			}
			n.Ready()
			nodes[i] = n
		}
	}
	fresh()
	var sends, played int
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		n := nodes[i%nodesN]
		j := i / nodesN % len(raws)
		if j == 0 && i > 0 && i%nodesN == 0 {
			b.StopTimer()
			fresh()
			b.StartTimer()
		}
		seq := uint64(j/k) + 1
		at := st.Capture(seq).Add(50*time.Millisecond + time.Duration(j%k)*time.Millisecond)
		for dl := n.NextDeadline(); !dl.IsZero() && !dl.After(at); dl = n.NextDeadline() {
			n.Tick(dl)
			r := n.Ready()
			played += len(r.Play)
			n.Recycle(r)
		}
		if err := n.HandleChunk(at, "P", raws[j]); err != nil {
			b.Fatal(err)
		}
		r := n.Ready()
		sends += len(r.Sends)
		played += len(r.Play)
		n.Recycle(r)
	}
	b.StopTimer()
	// Once every node had 100 slices (10 s), it forwards every chunk to
	// its 4 children and has played.
	if b.N >= nodesN*k*100 && (sends < 3*b.N || played == 0) {
		b.Fatalf("%d chunks: %d sends, %d slices played", b.N, sends, played)
	}
}
