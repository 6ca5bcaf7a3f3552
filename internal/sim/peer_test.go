package sim

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"unsafe"

	"github.com/swarmtv/swarmtv/internal/swarm"
)

// The IDs idOf hands out side by side are the peers' node IDs, and index
// maps them back, across the blocks they are cut from.
func TestIDOf(t *testing.T) {
	s := &Sim{peers: make([]*peer, 3*idBlock+1)}
	for _, i := range []int32{0, 1, 2047, 2048, 2049, 5000, 3 * idBlock} {
		id := s.idOf(i)
		if id != nodeID(i) {
			t.Fatalf("idOf(%d) = %q, want %q", i, id, nodeID(i))
		}
		if got := s.index(id); got != i {
			t.Fatalf("index(idOf(%d)) = %d", i, got)
		}
	}
	if n := len(s.idBlocks); n != 4 {
		t.Fatalf("%d blocks for peers up to %d, want 4", n, 3*idBlock)
	}
}

// index takes IDs in either case and refuses anything that is not the ID
// of a peer of the run.
func TestIndexRefuses(t *testing.T) {
	s := &Sim{peers: make([]*peer, 300)}
	for id, want := range map[swarm.NodeID]int32{
		"0000000000000000000000000000012b": 299,
		"0000000000000000000000000000012B": 299,
		"0000000000000000000000000000012c": noPeer, // beyond the peers
		"1000000000000000000000000000000a": noPeer,
		"0000000000000000000000010000000a": noPeer, // index over 32 bits
		"0000000000000000000000000000000g": noPeer,
		"000000000000000000000000000000 a": noPeer,
		"000000000000000000000000000000a":  noPeer, // 31 digits
		"":                                 noPeer,
		"origin":                           noPeer,
	} {
		if got := s.index(id); got != want {
			t.Errorf("index(%q) = %d, want %d", id, got, want)
		}
	}
}

// TestHex8: hex8 agrees with strconv on 8-byte strings drawn from hex
// digits of both cases and the bytes around their ranges.
func TestHex8(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	alphabet := []byte("0123456789abcdefABCDEF/:@G`g \x00\x7f\x80\xb0\xe6")
	valid := 0
	for range 200000 {
		var b [8]byte
		for i := range b {
			if r.IntN(4) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = alphabet[r.IntN(22)]
			}
		}
		id := swarm.NodeID(b[:])
		got, ok := hex8(word(id, 0))
		want, err := strconv.ParseUint(string(b[:]), 16, 32)
		if ok != (err == nil) || (ok && uint64(got) != want) {
			t.Fatalf("hex8(%q) = %d, %v; strconv: %d, %v", b, got, ok, want, err)
		}
		if ok {
			valid++
		}
	}
	if valid == 0 {
		t.Fatal("no valid string drawn")
	}
}

// The fields a chunk event reads sit in a peer's first 256 bytes, and
// what its sends read of its upload in the next 64 (peerHot in all).
func TestPeerLayout(t *testing.T) {
	var p peer
	for name, end := range map[string]uintptr{
		"timerAt":      unsafe.Offsetof(p.timerAt) + unsafe.Sizeof(p.timerAt),
		"rng":          unsafe.Offsetof(p.rng) + unsafe.Sizeof(p.rng),
		"viaBackupBuf": unsafe.Offsetof(p.viaBackupBuf) + unsafe.Sizeof(p.viaBackupBuf),
		"dueFetches":   unsafe.Offsetof(p.dueFetches) + unsafe.Sizeof(p.dueFetches),
	} {
		if end > 256 {
			t.Errorf("peer.%s ends at byte %d, beyond the first 256", name, end)
		}
	}
	if off := unsafe.Offsetof(p.connsDrain); off < 256 || off+8+unsafe.Sizeof(p.connsBuf) > peerHot {
		t.Errorf("peer.connsDrain at byte %d and connsBuf after it: not in bytes 256-%d", off, peerHot)
	}
}
