package overlay

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("overlay: invalid configuration")

// ErrLookupTimeout is the error of a lookup no node answered in time,
// after its retries.
var ErrLookupTimeout = errors.New("overlay: lookup timed out")

// Config configures a Node. Zero fields take the defaults noted.
type Config struct {
	// Self is this node's ID and address. Draw the ID at random (for
	// example Rand.Uint64()); the address is whatever the driver needs.
	Self Peer
	// Rand is the node's own random source (required): gossip partners,
	// partner samples, retry choices. Derive it from the run's seed.
	Rand Source
	// Successors is the length of the successor list (default 8, at
	// least 2). A ring survives the simultaneous failure of fewer than
	// this many consecutive members.
	Successors int
	// Round is the stabilisation period: each round a node probes its
	// successor, notifies it, refreshes fingers and gossips (default 1s).
	Round time.Duration
	// FingersPerRound is how many fingers each round refreshes with a
	// lookup (default 2).
	FingersPerRound int
	// ProbeTimeout: a successor that does not answer GetPred within this
	// long is taken as failed; a predecessor not heard from for
	// 3×Round+ProbeTimeout is dropped (default 2s).
	ProbeTimeout time.Duration
	// LookupTimeout and LookupRetries: a lookup not answered within the
	// timeout is routed again, at most LookupRetries times, then fails
	// with ErrLookupTimeout (defaults 2s and 3).
	LookupTimeout time.Duration
	LookupRetries int
	// MergeFanout is the merge's cost parameter F: a node that learns of
	// another ring tells F members of its own ring, which probe and tell
	// F more (each at most once per MergeCooldown). Messages per node for
	// a merge are about F plus one lookup (≈ log2(N)/2 hops); the
	// rings are seeded in about log_{F+1}(N) rounds and stabilisation
	// zips the rest. 0 takes the default 2; negative disables spreading
	// (only the node that found the other ring probes, and stabilisation
	// zips the rings one node per round).
	MergeFanout int
	// MergeCooldown: a node probes another ring and spreads a hint at
	// most once per this long (default 10s).
	MergeCooldown time.Duration
	// ContactInterval: at most one queued contact (Contact, a remembered
	// member that answered, a passive contact) is probed per this long
	// (default 2s).
	ContactInterval time.Duration
	// RecheckInterval: one remembered failed member is pinged per this
	// long; one that answers is probed as a contact, which is how two
	// halves of a healed partition find each other without the tracker
	// (default 3s).
	RecheckInterval time.Duration
	// Remember and RememberFor bound the list of failed members kept for
	// rechecks (defaults 32 and 30 minutes).
	Remember    int
	RememberFor time.Duration
	// PassiveContacts queues the sender of any message that is not in
	// this node's tables as a contact to probe (rate-limited by
	// ContactInterval).
	PassiveContacts bool
	// EpochRounds is the length, in rounds, of a push-sum epoch of the
	// global estimates (default 30).
	EpochRounds int
	// Offers is how many offers of room (partner discovery, see
	// SetOffers) a node keeps per stripe (default 8); OffersRelayed how
	// many of them per stripe each gossip message passes on (default 2);
	// OfferTTL how old an offer may grow before it is dropped (default
	// 10s).
	Offers        int
	OffersRelayed int
	OfferTTL      time.Duration
}

// Defaults for the zero fields of Config.
const (
	DefaultSuccessors      = 8
	DefaultRound           = time.Second
	DefaultFingersPerRound = 2
	DefaultProbeTimeout    = 2 * time.Second
	DefaultLookupTimeout   = 2 * time.Second
	DefaultLookupRetries   = 3
	DefaultMergeFanout     = 2
	DefaultMergeCooldown   = 10 * time.Second
	DefaultContactInterval = 2 * time.Second
	DefaultRecheckInterval = 3 * time.Second
	DefaultRemember        = 32
	DefaultRememberFor     = 30 * time.Minute
	DefaultEpochRounds     = 30
	DefaultOffers          = 8
	DefaultOffersRelayed   = 2
	DefaultOfferTTL        = 10 * time.Second
)

func (c Config) withDefaults() Config {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setInt := func(i *int, def int) {
		if *i == 0 {
			*i = def
		}
	}
	setInt(&c.Successors, DefaultSuccessors)
	setDur(&c.Round, DefaultRound)
	setInt(&c.FingersPerRound, DefaultFingersPerRound)
	setDur(&c.ProbeTimeout, DefaultProbeTimeout)
	setDur(&c.LookupTimeout, DefaultLookupTimeout)
	setInt(&c.LookupRetries, DefaultLookupRetries)
	setInt(&c.MergeFanout, DefaultMergeFanout)
	setDur(&c.MergeCooldown, DefaultMergeCooldown)
	setDur(&c.ContactInterval, DefaultContactInterval)
	setDur(&c.RecheckInterval, DefaultRecheckInterval)
	setInt(&c.Remember, DefaultRemember)
	setDur(&c.RememberFor, DefaultRememberFor)
	setInt(&c.EpochRounds, DefaultEpochRounds)
	setInt(&c.Offers, DefaultOffers)
	setInt(&c.OffersRelayed, DefaultOffersRelayed)
	setDur(&c.OfferTTL, DefaultOfferTTL)
	return c
}

func (c *Config) validate() error {
	switch {
	case c.Rand == nil:
		return fmt.Errorf("%w: Rand is required (a math/rand/v2 source derived from the run's seed)", ErrConfig)
	case c.Successors < 2:
		return fmt.Errorf("%w: Successors must be at least 2, got %d", ErrConfig, c.Successors)
	case c.Round <= 0 || c.ProbeTimeout <= 0 || c.LookupTimeout <= 0 || c.MergeCooldown <= 0 ||
		c.ContactInterval <= 0 || c.RecheckInterval <= 0 || c.RememberFor <= 0 || c.OfferTTL <= 0:
		return fmt.Errorf("%w: durations must be positive", ErrConfig)
	case c.FingersPerRound < 0 || c.LookupRetries < 0 || c.Remember < 0 || c.EpochRounds < 1 ||
		c.Offers < 1 || c.OffersRelayed < 0:
		return fmt.Errorf("%w: negative count", ErrConfig)
	}
	return nil
}
