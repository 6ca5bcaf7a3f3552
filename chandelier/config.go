package chandelier

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of [Config].
const (
	DefaultStripes   = 4
	DefaultUsable    = 0.9
	DefaultMaxFeeds  = 64
	DefaultBackups   = 3
	DefaultMatureAge = 2 * time.Minute
	DefaultISPSlack  = -1
	DefaultMoves     = 5
	// DefaultRelayAfter is Config.RelayAfter's default.
	DefaultRelayAfter = 3 * time.Second
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("chandelier: bad config")

// Config configures a [Placer]. Zero fields take the defaults.
type Config struct {
	// Stripes is K, the number of stripe trees. Default DefaultStripes.
	Stripes int
	// StreamRate is the stream's bit rate (all stripes). Required.
	StreamRate int64
	// OriginFeeds is how many stripe feeds the origin serves directly,
	// dealt evenly over the stripes; at least Stripes. Required.
	OriginFeeds int
	// Usable is the share of a peer's measured upload given to feeds; the
	// rest is headroom, which keeps the per-hop store-and-forward delay
	// near one slice (DESIGN.md, "Latency budget"). Default DefaultUsable.
	Usable float64
	// MaxFeeds caps one peer's feeds. Default DefaultMaxFeeds.
	MaxFeeds int
	// Backups is how many ranked backups each assignment carries, 0..8.
	// Default DefaultBackups.
	Backups int
	// MatureAge is the session age from which a peer ranks at its full
	// capacity; a younger peer ranks at down to half of it. Default
	// DefaultMatureAge.
	MatureAge time.Duration
	// ISPSlack is how many levels deeper a parent in the child's own ISP
	// may be than the shallowest parent elsewhere and still be preferred.
	// Negative: always stay inside the ISP when it has a free slot (and
	// the round's moves bring a peer fed across a border home at any
	// depth). Default DefaultISPSlack, strict: at 10,000 peers it cut
	// cross-ISP bytes by a fifth against a slack of 2 (sim, steady,
	// 60 s) with depth unchanged (mean 4.42, max 9) and lag lower.
	ISPSlack int
	// Moves is the budget of improving moves per stripe and round, per
	// thousand peers (rounded up): edges changed beyond the repairs churn
	// forces, to bring depth and ISP locality back towards a fresh build.
	// Default DefaultMoves; negative disables.
	Moves int
	// Connect reports whether a parent behind NAT class parent can feed a
	// child behind class child directly. Nil means [Direct]. It must be
	// pure.
	Connect func(parent, child NAT) bool
	// Relay reports that the peers can reach a relay (the tracker's):
	// a peer that no free slot can reach directly, even after the NAT
	// swaps, is then placed under a parent it reaches only through the
	// relay ([Assignment.Relayed]), rather than left to the origin's
	// fallback. A last resort: each round moves such a peer to a direct
	// slot when one frees up.
	Relay bool
	// RelayAfter is how long a peer must have gone without a direct
	// parent in a stripe before a relayed one is placed (joins and
	// repairs usually find a direct slot within a round or two).
	// Default DefaultRelayAfter.
	RelayAfter time.Duration
	// RTT, if not nil, estimates the round-trip time between two peers
	// (ok false when unknown); it ranks backups. It must be pure.
	RTT func(a, b string) (rtt time.Duration, ok bool)
}

func (c *Config) setDefaults() {
	if c.Stripes == 0 {
		c.Stripes = DefaultStripes
	}
	if c.Usable == 0 {
		c.Usable = DefaultUsable
	}
	if c.MaxFeeds == 0 {
		c.MaxFeeds = DefaultMaxFeeds
	}
	if c.Backups == 0 {
		c.Backups = DefaultBackups
	}
	if c.MatureAge == 0 {
		c.MatureAge = DefaultMatureAge
	}
	if c.ISPSlack == 0 {
		c.ISPSlack = DefaultISPSlack
	}
	if c.Moves == 0 {
		c.Moves = DefaultMoves
	}
	if c.RelayAfter == 0 {
		c.RelayAfter = DefaultRelayAfter
	}
	if c.Moves < 0 {
		c.Moves = 0
	}
	if c.Connect == nil {
		c.Connect = Direct
	}
}

func (c *Config) validate() error {
	switch {
	case c.Stripes < 1 || c.Stripes > 64:
		return fmt.Errorf("%w: stripes %d out of range 1..64", ErrConfig, c.Stripes)
	case c.StreamRate <= 0:
		return fmt.Errorf("%w: stream rate %d bit/s must be positive", ErrConfig, c.StreamRate)
	case c.OriginFeeds < c.Stripes:
		return fmt.Errorf("%w: origin feeds %d below the stripe count %d: every stripe needs one", ErrConfig, c.OriginFeeds, c.Stripes)
	case c.Usable <= 0 || c.Usable > 1:
		return fmt.Errorf("%w: usable share %v out of range (0, 1]", ErrConfig, c.Usable)
	case c.MaxFeeds < 1:
		return fmt.Errorf("%w: max feeds %d must be at least 1", ErrConfig, c.MaxFeeds)
	case c.Backups < 0 || c.Backups > 8:
		return fmt.Errorf("%w: backups %d out of range 0..8", ErrConfig, c.Backups)
	case c.MatureAge < 0:
		return fmt.Errorf("%w: negative mature age %v", ErrConfig, c.MatureAge)
	}
	return nil
}

// originSlots is the origin's share of feeds for stripe s.
func (c *Config) originSlots(s int) int {
	n := c.OriginFeeds / c.Stripes
	if s < c.OriginFeeds%c.Stripes {
		n++
	}
	return n
}
