package overlay

import (
	"fmt"
	"math/bits"
)

// ID is a position on the ring of 2^64 identifiers. A node draws its ID at
// random (from the source in its Config); a key is any ID.
type ID uint64

// String prints an ID as 16 hex digits.
func (id ID) String() string { return fmt.Sprintf("%016x", uint64(id)) }

// Peer names a ring member: its ID and the address a driver reaches it at
// (opaque to the core: a host:port, a NodeID fingerprint, a simulator
// handle).
type Peer struct {
	ID   ID
	Addr string
}

func (p Peer) String() string {
	if p.Addr == "" {
		return p.ID.String()
	}
	return p.Addr
}

// dist is the clockwise distance from a to b.
func dist(a, b ID) uint64 { return uint64(b - a) }

// between reports whether x lies strictly inside the clockwise interval
// (a, b). When a == b the interval is the whole ring but a.
func between(a, x, b ID) bool {
	if a == b {
		return x != a
	}
	return dist(a, x) > 0 && dist(a, x) < dist(a, b)
}

// betweenIncl reports whether x lies in (a, b].
func betweenIncl(a, x, b ID) bool { return x == b || between(a, x, b) }

// fingerStart is the key finger i points at: self + 2^i.
func fingerStart(self ID, i int) ID { return self + ID(uint64(1)<<uint(i)) }

// lowestUsefulFinger is the smallest finger index whose start lies beyond
// the successor; fingers below it all point at the successor.
func lowestUsefulFinger(self, succ ID) int {
	d := dist(self, succ)
	if d == 0 {
		return 0
	}
	return bits.Len64(d) - 1
}
