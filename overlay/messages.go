package overlay

// Messages between overlay nodes. They are plain Go values; a driver
// encodes them for the wire (internal/wire will get a codec) or, in the
// simulator, passes them as they are. A driver hands every message it
// receives to Node.Step with the sender's Peer.

// Message is one of the message types below.
type Message interface{ isMessage() }

// Kind says why a FindSuccessor was started; the origin uses it to route
// the answer back to the right state.
type Kind uint8

// Lookup kinds.
const (
	KindLookup  Kind = iota // Node.Lookup by the user of the core
	KindJoin                // finding the joining node's successor
	KindFinger              // refreshing a finger
	KindMerge               // probing another ring for our place in it
	KindPartner             // a random key, for partner discovery

	// kindPing marks a pending recheck Ping; never in a FindSuccessor.
	kindPing Kind = 255
)

var kindNames = [...]string{"lookup", "join", "finger", "merge", "partner"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// FindSuccessor is routed recursively towards the node preceding Key; the
// node that knows Key's successor answers Origin directly with Found.
type FindSuccessor struct {
	Req    uint64 // origin's request number
	Key    ID
	Origin Peer
	Kind   Kind
	Hops   int // forwards so far
}

// Found answers a FindSuccessor: Succ is Key's successor, Pred the node
// just before it (the node that answered, or one of its successors).
type Found struct {
	Req  uint64
	Key  ID
	Kind Kind
	Pred Peer
	Succ Peer
	Hops int
	// Succs, in the answer to a join, are the successors after Succ, so
	// that a joining node starts with a full successor list.
	Succs []Peer
}

// GetPred is the stabilisation probe a node sends its successor.
type GetPred struct{ Req uint64 }

// PredReply answers GetPred with the successor's predecessor (if HasPred)
// and its successor list.
type PredReply struct {
	Req     uint64
	Pred    Peer
	HasPred bool
	Succs   []Peer
}

// Notify tells the receiver that the sender believes it is its
// predecessor.
type Notify struct{}

// SuccHint tells the receiver of a node that may lie between it and its
// successor: the relaxed ring's "new predecessor" message to the old
// predecessor, and the merge's way of pointing a node of one ring at a
// node of the other.
type SuccHint struct{ Cand Peer }

// Ping asks a remembered (suspected) member whether it is alive.
type Ping struct{ Req uint64 }

// Pong answers Ping.
type Pong struct{ Req uint64 }

// MergeHint spreads, through one ring, a member of another ring (Contact)
// so that each node that hears it probes that ring for its own place.
type MergeHint struct{ Contact Peer }

// Gossip carries push-sum mass for the global estimates (see Estimates)
// and offers of room for partner discovery (see SetOffers; at most
// MaxOffersPerMessage, more are ignored).
type Gossip struct {
	Epoch  uint64
	Sum    [numEstimates]float64
	Weight float64
	Offers []Offer
}

func (*FindSuccessor) isMessage() {}
func (*Found) isMessage()         {}
func (*GetPred) isMessage()       {}
func (*PredReply) isMessage()     {}
func (*Notify) isMessage()        {}
func (*SuccHint) isMessage()      {}
func (*Ping) isMessage()          {}
func (*Pong) isMessage()          {}
func (*MergeHint) isMessage()     {}
func (*Gossip) isMessage()        {}
