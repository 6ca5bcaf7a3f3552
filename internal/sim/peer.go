package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/tracker"
)

// lostReport is a parent-lost report on its way to the tracker.
type lostReport struct {
	parent   int32
	switched []tracker.StripeSwitch
}

// originIdx is the origin's index in Sim.peers.
const originIdx = 0

// noPeer is an absent peer index.
const noPeer = -1

// peer is one simulated node: its swarm core, its place in the network
// and the driver state around the core. Index 0 is the origin.
type peer struct {
	idx   int32
	id    swarm.NodeID
	node  *swarm.Node
	rng   *rand.Rand // this peer's own stream: jitter, loss
	alive bool

	// Network.
	isp      int // -1 for the origin's hosting network
	region   int
	nat      *nat
	access   int64    // last-mile one-way delay, ns
	upNs     float64  // ns per byte of upload
	downNs   float64  // ns per byte of download
	conns    []upConn // upload: the busy connections (pruned when drained)
	downFree int64    // when the download link is next idle
	capacity int      // children (stripe feeds) it accepts
	ratio    float64  // upload ÷ stream rate

	// Driver.
	parents []int32   // per stripe: the parent, noPeer for none
	backups [][]int32 // per stripe: ranked backups from the tracker
	links   []plink   // connections to its parents
	gone    []goneEntry
	idsBuf  []string
	// answer is the tracker's latest assignment for it, applied when the
	// answer arrives; lost queues the parent-lost reports in flight.
	answer    []tracker.StripeAssignment
	lost      []lostReport
	joined    bool  // the tracker knows it
	beating   bool  // the heartbeat timer runs
	timerAt   int64 // armed Tick time; -1 none
	timerGen  int64
	alivePos  int // index in Sim.alive while alive
	joinAt    int64
	joinedAt  int64 // the tracker's first answer; 0 before
	leftAt    int64
	collected bool
	// fetching holds the fetches sent and not yet answered: like the real
	// driver's fetcher, a chunk is not asked for twice at once.
	fetching map[wire.ID]struct{}

	// Playout accounting (checked against the core's counters).
	played    uint64 // slices handed to the player
	gapLost   uint64 // slices skipped between two played ones
	lastSeq   uint64
	firstPlay int64 // -1 until the first slice plays

	// Placement accounting. since is, per stripe, the first slice the
	// origin had not yet published when the stripe's parent was set: a
	// chunk of an older slice from that parent is catch-up (the backlog
	// a new edge sends, or a lagging parent's first chunks). viaBackup
	// marks a parent chosen by the peer's own repair switch.
	since     []uint64
	viaBackup []bool
	// backupLag is, per stripe, each backup's lag as the tracker
	// reported it with the assignment (parallel to backups).
	backupLag [][]time.Duration
	lagMS     int64 // the latest slice's capture-to-playout lag, as heartbeats report it

	// The partner mesh (mesh.go): the partners it pulls from, nodes that
	// refused it or that it could not reach (not asked again until
	// until), and a buffer for choosing them.
	partners  []int32
	noPartner []goneEntry
	wantBuf   []int32
}

// nodeID returns the node ID of peer index i: 32 hex digits, which sort
// like the indexes.
func nodeID(i int32) swarm.NodeID {
	return swarm.NodeID(fmt.Sprintf("%032x", i))
}

// index returns the peer index of a node ID, or noPeer.
func (s *Sim) index(id swarm.NodeID) int32 {
	if len(id) != 32 || id[:16] != "0000000000000000" {
		return noPeer
	}
	var n uint64
	for i := 16; i < 32; i++ {
		c := id[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return noPeer
		}
		n = n<<4 | uint64(c)
	}
	if n >= uint64(len(s.peers)) {
		return noPeer
	}
	return int32(n)
}
