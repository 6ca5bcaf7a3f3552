package chandelier

import (
	"strconv"
	"time"
)

// NAT is a peer's NAT class as the NAT prober reports it (nat/core's Type
// names; the simulator's order).
type NAT uint8

// NAT classes. NATUnknown (not yet probed) is treated as NATSymmetric, the
// most restrictive.
const (
	NATOpen           NAT = iota // public address, no filtering
	NATFullCone                  // endpoint-independent mapping and filtering
	NATRestricted                // EIM, address-dependent filtering
	NATPortRestricted            // EIM, address-and-port-dependent filtering
	NATSymmetric                 // address(-and-port)-dependent mapping
	NATUnknown                   // not probed yet; handled as symmetric
	numNAT
)

var natNames = [numNAT]string{"open", "fullcone", "restricted", "portrestricted", "symmetric", "unknown"}

func (n NAT) String() string {
	if n < numNAT {
		return natNames[n]
	}
	return "nat(" + strconv.Itoa(int(n)) + ")"
}

// class folds unknown (and out-of-range) classes into symmetric.
func (n NAT) class() NAT {
	if n >= NATSymmetric {
		return NATSymmetric
	}
	return n
}

// Direct is the default reachability rule: whether peers behind NAT
// classes a and b can open a direct connection (by hole punching when
// needed). It is symmetric. Symmetric↔symmetric and
// symmetric↔port-restricted pairs cannot (nat/core.CanPunch: when one side
// maps per destination, the other must accept a packet from an unknown
// port); every other pair can.
func Direct(a, b NAT) bool {
	a, b = a.class(), b.class()
	if a == NATSymmetric {
		return b != NATSymmetric && b != NATPortRestricted
	}
	if b == NATSymmetric {
		return a != NATPortRestricted
	}
	return true
}

// restrictiveness orders parent classes from the most widely usable (0)
// to the least: a child that can use any parent takes the scarcer kind
// first, leaving open parents to children that need them.
func restrictiveness(n NAT) int {
	switch n.class() {
	case NATSymmetric:
		return 2
	case NATPortRestricted:
		return 1
	}
	return 0
}

// Origin is the parent ID that names the channel's origin in an
// [Assignment]. No peer may use it as its ID.
const Origin = "origin"

// Peer is what the tracker knows about one viewer.
type Peer struct {
	ID     string // node ID; not "" nor [Origin]
	Upload int64  // measured upload capacity, bits/s
	ISP    string // ISP or ASN (from the prefix table); "" is one unknown ISP
	Region string // coarse location; used to rank backups
	NAT    NAT    // NAT class from the prober
	// Joined is when the session began; with now it gives the session
	// age (long-lived peers are placed higher).
	Joined time.Time
}

// Feeds is the number of stripe feeds (children in its interior stripe) a
// peer with this upload can serve: the usable share of the upload divided
// by one stripe's rate, capped at MaxFeeds. The config must be valid.
func (c *Config) Feeds(upload int64) int {
	if upload <= 0 {
		return 0
	}
	f := int(float64(upload) * c.Usable / (float64(c.StreamRate) / float64(c.Stripes)))
	return max(0, min(f, c.MaxFeeds))
}
