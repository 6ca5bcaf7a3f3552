package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
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

// draw returns a number in [0,1) from p's own stream, as
// rand.Rand.Float64 draws it.
func (p *peer) draw() float64 { return float64(p.rng.Uint64()<<11>>11) / (1 << 53) }

// peer is one simulated node: its swarm core, its place in the network
// and the driver state around the core. Index 0 is the origin.
type peer struct {
	// What a chunk sent to the peer or arriving at it reads comes first,
	// in the first 256 bytes (TestPeerLayout), with the per-stripe state
	// for up to inlineStripes stripes inline: at 10,000 peers and more
	// every chunk event touches a peer that is not in the cache, and
	// neighbouring lines come in together.
	idx      int32
	isp      int32 // -1 for the origin's hosting network
	region   int32
	alive    bool
	access   int64   // last-mile one-way delay, ns
	downNs   float64 // ns per byte of download
	downFree int64   // when the download link is next idle
	node     *swarm.Node
	timerAt  int64 // armed Tick time; -1 none
	timerGen int64
	id       swarm.NodeID
	conns    []upConn // upload: the busy connections (pruned when drained)
	upNs     float64  // ns per byte of upload
	rng      rand.PCG // this peer's own stream: jitter, loss (draw); inline, not a pointer to chase
	// The per-stripe state causeOf reads and its storage
	// for up to inlineStripes stripes. since is, per stripe, the first
	// slice the origin had not yet published when the stripe's parent was
	// set: a chunk of an older slice from that parent is catch-up (the
	// backlog a new edge sends, or a lagging parent's first chunks).
	// viaBackup marks a parent chosen by the peer's own repair switch.
	parents      []int32 // per stripe: the parent, noPeer for none
	since        []uint64
	parentsBuf   [inlineStripes]int32
	viaBackup    []bool
	sinceBuf     [inlineStripes]uint64
	viaBackupBuf [inlineStripes]bool
	// dueFetches counts the fetches in fetching asked with a due (state
	// fetchDue): an arriving chunk looks its fetch up to cancel it only
	// while there are any (the map is a cache miss of its own at 10,000
	// peers, and most peers have none).
	dueFetches uint16

	// What a chunk the peer sends reads of its upload, in the next 64
	// bytes (TestPeerLayout): connsDrain is when the first of conns
	// drains (pruneConns); connsBuf holds conns while it fits (a viewer's
	// busy connections are one to three at a time).
	connsDrain int64
	connsBuf   [3]upConn

	// Network.
	nat      *nat
	capacity int // children (stripe feeds) it accepts
	// connAt, the origin's only, holds by destination peer 1 + its
	// connection's index in conns (0: none): the origin feeds a hundred
	// seeds and more.
	connAt []int32
	ratio  float64 // upload ÷ stream rate

	// Driver.
	// timerSlot is the armed Tick's queue slot (queue.cancel); -1: none
	// or not cancelable.
	timerSlot int32
	backups   [][]int32 // per stripe: ranked backups from the tracker
	links     []plink   // connections to its parents
	// relayedKids are the children whose links run through a relay, as
	// their hellos said.
	relayedKids []int32
	hellos      []helloMark // the last hello number taken from each child
	hellosSent  uint8       // hellos it sent (their numbers)
	gone        []goneEntry
	idsBuf      []string
	// answer is the tracker's latest assignment for it, applied when the
	// answer arrives; lost queues the parent-lost reports in flight.
	answer    []tracker.StripeAssignment
	lost      []lostReport
	joined    bool // the tracker knows it
	beating   bool // the heartbeat timer runs
	alivePos  int  // index in Sim.alive while alive
	joinAt    int64
	joinedAt  int64 // the tracker's first answer; 0 before
	leftAt    int64
	collected bool
	// fetching holds the fetches sent and not yet answered: like the real
	// driver's fetcher, a chunk is not asked for twice at once.
	fetching map[wire.ID]fetchState

	// Playout accounting (checked against the core's counters).
	played    uint64 // slices handed to the player
	gapLost   uint64 // slices skipped between two played ones
	lastSeq   uint64
	firstPlay int64 // -1 until the first slice plays
	// steadyBase is its core's counters when the steady phase began
	// (Sim.beginSteady); nil: it joined later, or the phase has not
	// begun.
	steadyBase *swarm.Stats

	// Placement accounting (with since and viaBackup above). backupLag is, per stripe, each backup's lag as the tracker
	// reported it with the assignment (parallel to backups).
	backupLag [][]time.Duration
	lagMS     int64 // the latest slice's capture-to-playout lag, as heartbeats report it

	// The partner mesh (mesh.go): the partners it pulls from, nodes that
	// refused it or that it could not reach (not asked again until
	// until), and a buffer for choosing them.
	partners  []int32
	noPartner []goneEntry
	wantBuf   []int32

	// The upload's backlog queue (backlog.go): chunks of new
	// subscriptions' backlogs waiting for the live chunks to go out, the
	// armed evBulk time (-1: none) and when the backlog chunk on the
	// wire is out.
	bulk    []bulkSend
	bulkAt  int64
	bulkEnd int64
}

// nodeID returns the node ID of peer index i: 32 hex digits, which sort
// like the indexes.
func nodeID(i int32) swarm.NodeID {
	return swarm.NodeID(fmt.Sprintf("%032x", i))
}

// inlineStripes is how many stripes' state a peer holds inline.
const inlineStripes = 4

// idBlock is how many node IDs one string of Sim.idBlocks holds.
const idBlock = 2048

// idOf returns nodeID(i) as a slice of one long string holding the IDs
// of idBlock consecutive peers: the cores compare IDs on every chunk,
// and IDs side by side stay in the cache, where IDs allocated one by one
// would each cost a miss at 10,000 peers and more.
func (s *Sim) idOf(i int32) swarm.NodeID {
	b, j := int(i)/idBlock, int(i)%idBlock
	for len(s.idBlocks) <= b {
		base := int32(len(s.idBlocks) * idBlock)
		var sb strings.Builder
		sb.Grow(idBlock * 32)
		for k := range int32(idBlock) {
			sb.WriteString(string(nodeID(base + k)))
		}
		s.idBlocks = append(s.idBlocks, sb.String())
	}
	return swarm.NodeID(s.idBlocks[b][j*32 : (j+1)*32])
}

// index returns the peer index of a node ID, or noPeer. Every send
// runs it (in send, and in warmSends before a node's sends), so it reads
// the ID in words: the first 24 hex digits of a peer's ID are zeros (an
// index fits in the last eight), and the last eight are read at once
// (hex8).
func (s *Sim) index(id swarm.NodeID) int32 {
	if len(id) != 32 {
		return noPeer
	}
	const zeros = 0x3030303030303030 // "00000000"
	if word(id, 0) != zeros || word(id, 8) != zeros || word(id, 16) != zeros {
		return noPeer
	}
	n, ok := hex8(word(id, 24))
	if !ok || uint64(n) >= uint64(len(s.peers)) {
		return noPeer
	}
	return int32(n)
}

// hex8 returns the value of the 8 hex digits (either case) in w, the
// first, most significant, in its low byte (word's order); ok is false
// when a byte is not a hex digit. It works on all eight bytes at once:
// for a byte x below 0x80, x + (0x80-a) has its top bit set when x >= a,
// and x + (0x7f-b) when x > b, with no carry into the next byte.
func hex8(w uint64) (uint32, bool) {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	if w&tops != 0 {
		return 0, false
	}
	digit := (w + ones*(0x80-'0')) &^ (w + ones*(0x7f-'9')) & tops
	l := w | ones*0x20 // lower case
	letter := (l + ones*(0x80-'a')) &^ (l + ones*(0x7f-'f')) & tops
	if digit|letter != tops {
		return 0, false
	}
	v := w&(ones*0x0f) + letter>>7*9 // each byte its digit's value
	// Pack the nibbles, the first byte's most significant: pairs into
	// bytes, bytes into 16-bit halves, halves into the result.
	v = (v&0x000f000f000f000f)<<4 | (v>>8)&0x000f000f000f000f
	v = (v&0x000000ff000000ff)<<8 | (v>>16)&0x000000ff000000ff
	v = (v&0xffff)<<16 | (v>>32)&0xffff
	return uint32(v), true
}

// word returns the 8 bytes of id from i on as a little-endian word.
func word(id swarm.NodeID, i int) uint64 {
	_ = id[i+7]
	return uint64(id[i]) | uint64(id[i+1])<<8 | uint64(id[i+2])<<16 | uint64(id[i+3])<<24 |
		uint64(id[i+4])<<32 | uint64(id[i+5])<<40 | uint64(id[i+6])<<48 | uint64(id[i+7])<<56
}
