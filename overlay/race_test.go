//go:build race

package overlay

// raceEnabled: the race detector slows the mini network, so the large
// test runs fewer nodes.
const raceEnabled = true
