// Package loadtest is swarmtv's real-process, real-network test harness.
// Its subpackage netlab builds an emulated internet of network
// namespaces with real Linux NAT routers of every classic type;
// [RunNATMatrix] (`swarmtv loadtest natmatrix`) runs real swarmtv
// processes in it: a tracker and origins on the public side, a pair of
// peers behind every combination of NAT types, and reports per pair
// whether the peers connected directly, through the relay, or not at
// all. [RunPartition] (`swarmtv loadtest partition`) cuts the internet
// between two groups of sites under real peers playing a stream, one side
// keeping the origin and the tracker, then heals it, and reports each
// side's playback, the overlay rings splitting and merging, and how soon
// the cut-off side plays again.
package loadtest
