package transport

import (
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// BenchmarkParentChildLink measures chunk throughput over one QUIC
// parent→child link: the origin's driver pushes 64 KiB chunks to one
// child, which verifies and stores each.
func BenchmarkParentChildLink(b *testing.B) {
	s := newStream(b, 1)
	s.packets, s.size = 64, 1024
	origin := startNode(b, s, nodeOpts{source: true, maxChildren: 1})
	child := startNode(b, s, nodeOpts{})
	child.drv.SetParent(origin.peer())
	waitChildren(b, origin, child)

	const batch = 256
	base := time.Now()
	var chunks []*wire.Chunk
	var raws [][]byte
	var size, sent int64
	b.ResetTimer()
	for seq := uint64(1); seq <= uint64(b.N); {
		b.StopTimer()
		chunks, raws = chunks[:0], raws[:0]
		for ; len(chunks) < batch && seq <= uint64(b.N); seq++ {
			cs, rs := s.chunks(b, seq, base.Add(time.Duration(seq)*s.slice), s.key)
			chunks, raws = append(chunks, cs[0]), append(raws, rs[0])
			sent += int64(len(rs[0]))
		}
		if size == 0 {
			size = int64(len(raws[0]))
			b.SetBytes(size)
		}
		b.StartTimer()
		for i := range chunks {
			origin.drv.Publish(chunks[i], raws[i])
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := child.drv.Stats()
			if int64(st.P2PBytesIn+st.OriginBytesIn) >= sent {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("child received %d of %d bytes", st.P2PBytesIn+st.OriginBytesIn, sent)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	b.StopTimer()
	if st := child.drv.Stats(); st.BadChunks != 0 {
		b.Fatalf("%d bad chunks", st.BadChunks)
	}
}
