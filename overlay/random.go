package overlay

import "math/bits"

// Source is the node's random source: a math/rand/v2 Source such as
// rand.NewPCG(seed, stream), or a *rand.Rand, derived from the run's
// seed. (The core takes the interface, so it imports no rand package.)
type Source interface{ Uint64() uint64 }

// intN returns a uniform integer in [0, n), n > 0 (the high word of a
// 64×64-bit product; its bias is n/2^64, nothing at these sizes).
func intN(src Source, n int) int {
	hi, _ := bits.Mul64(src.Uint64(), uint64(n))
	return int(hi)
}

// shuffle permutes ps in place (Fisher–Yates).
func shuffle(src Source, ps []Peer) {
	for i := len(ps) - 1; i > 0; i-- {
		j := intN(src, i+1)
		ps[i], ps[j] = ps[j], ps[i]
	}
}
