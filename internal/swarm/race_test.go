//go:build race

package swarm

// raceEnabled: the race detector slows signature checks tenfold, so the
// randomized tests run fewer seeds.
const raceEnabled = true
