package tracker

import (
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"
)

// Limits of the API. Requests outside them are rejected with 400.
const (
	MaxChannelNameLen = 64    // bytes of a channel name (the chunk format's limit)
	MaxStripes        = 16    // stripes of a channel
	MaxSliceMS        = 10000 // slice duration, milliseconds
	MaxOriginCapacity = 4096  // children the origin feeds directly
	MaxPeerCapacity   = 64    // children one peer accepts
	MaxUploadBPS      = 100e9 // a peer's reported upload, bit/s
	MaxCandidates     = 8     // hole-punching candidates per peer
	maxLabelLen       = 64    // region and ISP names
	maxAddrLen        = 300
	maxSDPLen         = 32 << 10
)

// AcceptLimit is how many subscriptions a node that the tracker deals
// capacity stripe feeds accepts: a few more than capacity, because a
// child the tracker moved away says bye only after it applied its new
// assignment, which may come after the child placed in its slot
// arrived. The tracker itself never assigns more than capacity, so the
// surplus lasts about a heartbeat.
func AcceptLimit(capacity int) int {
	if capacity <= 0 {
		return 0
	}
	return capacity + capacity/2 + 1
}

// NodeInfo names one node of a channel's tree.
type NodeInfo struct {
	// ID is the node's identity: lowercase hex of the first 16 bytes of
	// the SHA-256 of its TLS public key (see [ValidNodeID]).
	ID string `json:"id"`
	// Addr is the host:port of the node's QUIC/UDP socket.
	Addr string `json:"addr"`
	// LagMS is, for a backup in a [StripeAssignment], how far behind
	// live it played at its latest heartbeat (PeerStats.LagMS); 0
	// unknown. A peer repairing a lost parent skips backups further
	// behind live than itself (chandelier.Repair).
	LagMS int64 `json:"lag_ms,omitempty"`
}

// IsZero reports whether n names no node (an empty parent: the peer waits
// for a free slot).
func (n NodeInfo) IsZero() bool { return n.ID == "" && n.Addr == "" }

// ChannelInfo describes a channel as its origin registered it.
type ChannelInfo struct {
	Name      string   `json:"name"`
	SDP       string   `json:"sdp"`
	PublicKey string   `json:"public_key"` // base64 (std) of the 32-byte Ed25519 key that signs chunks
	Origin    NodeInfo `json:"origin"`
	Stripes   int      `json:"stripes"`  // 1..MaxStripes
	SliceMS   int      `json:"slice_ms"` // 1..MaxSliceMS
	// StreamBPS is the stream's bit rate as the origin measured or was
	// told it; 0 means unknown (the tracker assumes DefaultStreamBPS).
	// The placement turns measured uploads into stripe feeds with it.
	StreamBPS int64 `json:"stream_bps,omitempty"`
}

// RegisterRequest registers a channel, or re-registers it after an origin
// restart (same name and public key; the origin's address, SDP and
// capacity are replaced).
type RegisterRequest struct {
	Channel  ChannelInfo `json:"channel"`
	Capacity int         `json:"capacity"` // children the origin feeds directly, 1..MaxOriginCapacity
	// HeartbeatMS, when not 0, is how often the origin promises an
	// [OriginHeartbeatRequest] (MinHeartbeatInterval..MaxHeartbeatInterval);
	// the tracker drops the channel after ExpiryIntervals of them pass in
	// silence. 0: the channel stays until the tracker stops.
	HeartbeatMS int `json:"heartbeat_ms,omitempty"`
}

// OriginHeartbeatRequest keeps a channel alive and carries what its
// origin measured.
type OriginHeartbeatRequest struct {
	// Origin is the origin's node ID; it must be the registered one.
	Origin string `json:"origin"`
	// StreamBPS is the stream's bit rate measured over the last seconds
	// (0: not measured yet). The tracker re-plans with it when it differs
	// from the rate it plans with by more than StreamRateTolerance.
	StreamBPS int64 `json:"stream_bps,omitempty"`
	// Children are the node IDs the origin has subscriptions from now
	// (at most MaxOriginCapacity × MaxStripes).
	Children []string `json:"children,omitempty"`
}

// OriginHeartbeatResponse tells the origin which of its children the
// tracker no longer places under it, so that it can let go of a child
// that is gone before its connection times out (its slot is wanted).
type OriginHeartbeatResponse struct {
	// Gone are the request's children that are no longer peers of the
	// channel (they left or fell silent), sorted; never null.
	Gone []string `json:"gone"`
	// Moved are the request's children that are peers of the channel
	// but not placed under the origin on any stripe, sorted; never null.
	// A child the tracker just moved leaves by itself soon.
	Moved []string `json:"moved"`
	// StreamBPS is the rate the placement plans with.
	StreamBPS int64 `json:"stream_bps"`
}

// JoinRequest asks for a place in a channel's stripe trees. Joining again
// with an ID the tracker knows replaces the old entry.
type JoinRequest struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Capacity int    `json:"capacity"` // children this peer accepts, 0..MaxPeerCapacity; 0 makes it a leaf
	// UploadBPS is the peer's measured upload capacity in bit/s; 0 means
	// not measured yet (the tracker then assumes Capacity stripe feeds).
	UploadBPS int64 `json:"upload_bps,omitempty"`
	// NAT is the peer's NAT class as its prober named it: one of
	// NATClasses; "" means not probed yet (placed as port-restricted:
	// never paired with a symmetric NAT).
	NAT string `json:"nat,omitempty"`
	// Candidates are the peer's addresses for hole punching (LAN and
	// mapped, host:port), best first; Addr need not be among them.
	Candidates []string `json:"candidates,omitempty"`
	// Region is a coarse location (operator-defined), used to rank backups.
	Region string `json:"region,omitempty"`
	// ISP names the peer's ISP or ASN. The HTTP API overwrites it from the
	// tracker's IP-prefix table (a peer's claim is not trusted); the
	// simulator, calling the Tracker directly, sets it.
	ISP string `json:"isp,omitempty"`
	// Current, set by a rejoining peer (its tracker restarted or expired
	// it), is the place the peer holds in the stripe trees now: the
	// tracker keeps every reported link that is still valid and places
	// only what is missing. Nil (a newcomer, or an older peer) is placed
	// afresh.
	Current *CurrentPlace `json:"current,omitempty"`
}

// PlaceVersion is the version of [CurrentPlace] this build writes and
// reads. A tracker ignores a report of a later version (the peer is
// placed afresh), so peers and trackers can be upgraded in any order.
const PlaceVersion = 1

// MaxDepth bounds the depths a peer reports.
const MaxDepth = 1 << 16

// CurrentPlace is a rejoining peer's place in the stripe trees.
type CurrentPlace struct {
	// Version is PlaceVersion of the peer that wrote it (1..).
	Version int `json:"v"`
	// Stripes holds one entry per stripe of the channel, by stripe; a
	// report of another length is ignored.
	Stripes []CurrentStripe `json:"stripes"`
}

// CurrentStripe is the peer's parent and depth in one stripe tree.
type CurrentStripe struct {
	// Parent is the node that feeds the stripe now (the origin's ID for
	// the origin); zero when none does.
	Parent NodeInfo `json:"parent"`
	// Depth is the peer's own depth (1 under the origin) as its parent
	// advertised it plus one; 0 unknown.
	Depth int `json:"depth,omitempty"`
}

// NATClasses are the values of JoinRequest.NAT and HeartbeatRequest.NAT.
var NATClasses = []string{"open", "fullcone", "restricted", "portrestricted", "symmetric"}

// StripeAssignment is a peer's place in one stripe tree.
type StripeAssignment struct {
	// Parent feeds the stripe; zero when no peer could (the origin's
	// fallback covers the stripe until a round places it).
	Parent NodeInfo `json:"parent"`
	// Backups are ranked alternatives to switch to at once when Parent
	// fails or lags (never null).
	Backups []NodeInfo `json:"backups"`
	// Relayed marks a parent the peer's NAT pair lets it reach only
	// through the relay: the placement found no direct one (a last
	// resort; the rendezvous answers relay for this pair).
	Relayed bool `json:"relayed,omitempty"`
}

// JoinResponse tells a joined peer what it receives and from whom.
type JoinResponse struct {
	Channel ChannelInfo `json:"channel"`
	// Parent is Stripes[0].Parent, kept for clients that use one parent
	// for every stripe.
	Parent NodeInfo `json:"parent"`
	// Stripes holds one assignment per stripe of the channel.
	Stripes     []StripeAssignment `json:"stripes"`
	HeartbeatMS int                `json:"heartbeat_ms"` // send a heartbeat this often
	// StartAgeMS, when positive, is the start age the peer should use
	// (swarm.Config.StartAge): shorter while the channel has a flash
	// crowd (see Config.StartAge). 0: the peer keeps its own.
	StartAgeMS int64 `json:"start_age_ms,omitempty"`
}

// PeerStats are the counters a peer reports with each heartbeat: totals
// since it joined, except LagMS, which is the latest value. All are
// optional (absent means 0) and must not be negative.
type PeerStats struct {
	PlayedSlices   int64 `json:"played_slices"`
	LateSlices     int64 `json:"late_slices"`
	LostSlices     int64 `json:"lost_slices"`
	Stalls         int64 `json:"stalls"`
	StallMS        int64 `json:"stall_ms"`
	PlayerBytes    int64 `json:"player_bytes"`
	P2PBytesIn     int64 `json:"p2p_bytes_in"`
	OriginBytesIn  int64 `json:"origin_bytes_in"`
	BytesForwarded int64 `json:"bytes_forwarded"`
	BadChunks      int64 `json:"bad_chunks"`
	StartupMS      int64 `json:"startup_ms"`
	LagMS          int64 `json:"lag_ms"`
	Repairs        int64 `json:"repairs"`
}

// HeartbeatRequest keeps a peer alive and reports its stats.
type HeartbeatRequest struct {
	ID    string    `json:"id"`
	Stats PeerStats `json:"stats"`
	// UploadBPS and NAT update the join's measurements when not zero.
	UploadBPS  int64    `json:"upload_bps,omitempty"`
	NAT        string   `json:"nat,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
	// OmitChildren leaves Children out of the answer, for a peer that
	// does not read them: the simulator, whose thousands of beats a
	// second would each copy a list it drops.
	OmitChildren bool `json:"omit_children,omitempty"`
}

// HeartbeatResponse is the peer's current place in the stripe trees.
// Parent is zero while the peer waits for a free slot.
type HeartbeatResponse struct {
	// Parent is Stripes[0].Parent (see JoinResponse.Parent).
	Parent   NodeInfo           `json:"parent"`
	Stripes  []StripeAssignment `json:"stripes"`
	Children []NodeInfo         `json:"children"` // sorted by ID, never null unless the request omitted them
}

// LeaveRequest removes a peer from a channel.
type LeaveRequest struct {
	ID string `json:"id"`
}

// ParentLostRequest reports that a peer lost its parent on every stripe
// that parent fed, and the backups it switched to on its own.
type ParentLostRequest struct {
	ID     string `json:"id"`
	Parent string `json:"parent"` // ID of the lost parent
	// Switched lists, per stripe the lost parent fed, the backup the peer
	// now uses; the tracker keeps a valid switch (no cycle, capacity).
	Switched []StripeSwitch `json:"switched,omitempty"`
}

// StripeSwitch is a peer's own switch of one stripe to a backup parent.
type StripeSwitch struct {
	Stripe int    `json:"stripe"`
	Parent string `json:"parent"` // the backup's node ID
}

// ParentLostResponse carries the peer's new parent (the origin again if
// the lost parent was the origin) and its whole assignment.
type ParentLostResponse struct {
	// Parent is Stripes[0].Parent (see JoinResponse.Parent).
	Parent  NodeInfo           `json:"parent"`
	Stripes []StripeAssignment `json:"stripes"`
}

// ChannelSummary is one entry of the channel list.
type ChannelSummary struct {
	Name    string `json:"name"`
	Viewers int    `json:"viewers"`
}

// PlacementStats are a channel's placement counters since its placer
// was built (Tracker.Placement).
type PlacementStats struct {
	Placer string `json:"placer"`
	Rounds uint64 `json:"rounds"`
	// EdgesChanged sums the rounds' parent changes of peers present
	// before and after the round; MaxEdgesChanged is the largest round.
	EdgesChanged    uint64 `json:"edges_changed"`
	MaxEdgesChanged int    `json:"max_edges_changed"`
	// Relayed sums the edges placed as needing the relay (no direct
	// path between the pair's NATs), over all rounds; RelayedEdges are
	// those standing after the last round.
	Relayed      uint64 `json:"relayed"`
	RelayedEdges int    `json:"relayed_edges"`
	// Deficit is the last round's count of stripes with no parent.
	Deficit int `json:"deficit"`
	// RoundSeconds is the summed wall time of the rounds.
	RoundSeconds float64 `json:"round_seconds"`
	// RejoinLinks counts the links (parent per stripe) that rejoining
	// peers reported in the rejoin window (JoinRequest.Current,
	// Config.RejoinWindow); RejoinKept those the seed round kept.
	RejoinLinks int `json:"rejoin_links,omitempty"`
	RejoinKept  int `json:"rejoin_kept,omitempty"`
	// SeedSeconds is the wall time of the seed round.
	SeedSeconds float64 `json:"seed_seconds,omitempty"`
}

// ChannelList is the body of GET /v1/channels, sorted by name.
type ChannelList struct {
	Channels []ChannelSummary `json:"channels"`
}

// TreeView is a snapshot of a channel's stripe trees.
type TreeView struct {
	Channel        string     `json:"channel"`
	Origin         NodeInfo   `json:"origin"`
	OriginCapacity int        `json:"origin_capacity"`
	Nodes          []TreeNode `json:"nodes"` // by depth then ID; detached nodes (depth 0) last, by ID
}

// TreeNode is one peer in a [TreeView].
type TreeNode struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Parent string `json:"parent"` // parent's ID (the origin's for depth 1); "" for a detached subtree's root
	// Depth is 1 for the origin's children; 0 for a node not connected
	// to the origin (a detached subtree waiting for a free slot).
	Depth               int       `json:"depth"`
	Capacity            int       `json:"capacity"`
	Children            []string  `json:"children"` // IDs, sorted, never null
	JoinedUnixMS        int64     `json:"joined_unix_ms"`
	LastHeartbeatUnixMS int64     `json:"last_heartbeat_unix_ms"`
	Stats               PeerStats `json:"stats"`
	ISP                 string    `json:"isp,omitempty"`        // from the IP-prefix table ("" unknown)
	NAT                 string    `json:"nat,omitempty"`        // as the peer reported it ("" not probed)
	UploadBPS           int64     `json:"upload_bps,omitempty"` // as the peer measured it (0 unknown)
	// Stripes is the peer's place in each stripe tree; Parent and Depth
	// above are stripe 0's.
	Stripes []TreeStripe `json:"stripes"`
}

// TreeStripe is a peer's place in one stripe tree of a [TreeView].
type TreeStripe struct {
	Parent string `json:"parent"` // parent's ID (the origin's at depth 1); "" while it has none
	Depth  int    `json:"depth"`  // 1 under the origin; 0 when not connected to the origin
}

// ValidNodeID reports whether id is a well-formed node ID: 32 lowercase
// hex digits (the first 16 bytes of a SHA-256 fingerprint).
func ValidNodeID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ValidChannelName reports whether name can name a channel: 1 to
// MaxChannelNameLen ASCII letters, digits, '-', '_' or '.', not starting
// with '.'. Names appear in URLs and RTSP paths as they are.
func ValidChannelName(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelNameLen || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, args...)...)
}

func validateID(field, id string) error {
	if !ValidNodeID(id) {
		return badRequest("%s %q is not a node ID (32 lowercase hex digits)", field, truncate(id))
	}
	return nil
}

func validateAddr(field, addr string) error {
	if len(addr) > maxAddrLen {
		return badRequest("%s is longer than %d bytes", field, maxAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return badRequest("%s %q is not host:port", field, truncate(addr))
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return badRequest("%s %q has no valid port (1..65535)", field, truncate(addr))
	}
	return nil
}

func (n NodeInfo) validate(field string) error {
	if err := validateID(field+".id", n.ID); err != nil {
		return err
	}
	return validateAddr(field+".addr", n.Addr)
}

// publicKey decodes the channel's Ed25519 public key.
func (c ChannelInfo) publicKey() ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(c.PublicKey)
	if err != nil || len(k) != 32 {
		return nil, badRequest("channel.public_key must be the base64 (standard) of a 32-byte Ed25519 public key")
	}
	return k, nil
}

func (c ChannelInfo) validate() error {
	if !ValidChannelName(c.Name) {
		return badRequest("channel.name %q is not a valid name (1..%d of A-Z a-z 0-9 - _ .)", truncate(c.Name), MaxChannelNameLen)
	}
	if c.SDP == "" || len(c.SDP) > maxSDPLen {
		return badRequest("channel.sdp must be a session description of 1..%d bytes", maxSDPLen)
	}
	if _, err := c.publicKey(); err != nil {
		return err
	}
	if err := c.Origin.validate("channel.origin"); err != nil {
		return err
	}
	if c.Stripes < 1 || c.Stripes > MaxStripes {
		return badRequest("channel.stripes %d out of range 1..%d", c.Stripes, MaxStripes)
	}
	if c.SliceMS < 1 || c.SliceMS > MaxSliceMS {
		return badRequest("channel.slice_ms %d out of range 1..%d", c.SliceMS, MaxSliceMS)
	}
	if c.StreamBPS < 0 || c.StreamBPS > MaxUploadBPS {
		return badRequest("channel.stream_bps %d out of range 0..%d", c.StreamBPS, int64(MaxUploadBPS))
	}
	return nil
}

func (r RegisterRequest) validate() error {
	if err := r.Channel.validate(); err != nil {
		return err
	}
	if r.Capacity < 1 || r.Capacity > MaxOriginCapacity {
		return badRequest("capacity %d out of range 1..%d", r.Capacity, MaxOriginCapacity)
	}
	if hb := time.Duration(r.HeartbeatMS) * time.Millisecond; r.HeartbeatMS != 0 && (hb < MinHeartbeatInterval || hb > MaxHeartbeatInterval) {
		return badRequest("heartbeat_ms %d out of range %d..%d (or 0)", r.HeartbeatMS, MinHeartbeatInterval.Milliseconds(), MaxHeartbeatInterval.Milliseconds())
	}
	return nil
}

func (r OriginHeartbeatRequest) validate() error {
	if err := validateID("origin", r.Origin); err != nil {
		return err
	}
	if r.StreamBPS < 0 || r.StreamBPS > MaxUploadBPS {
		return badRequest("stream_bps %d out of range 0..%d", r.StreamBPS, int64(MaxUploadBPS))
	}
	if len(r.Children) > MaxOriginCapacity*MaxStripes {
		return badRequest("%d children; at most %d", len(r.Children), MaxOriginCapacity*MaxStripes)
	}
	for i, id := range r.Children {
		if err := validateID(fmt.Sprintf("children[%d]", i), id); err != nil {
			return err
		}
	}
	return nil
}

func (r JoinRequest) validate() error {
	if err := validateID("id", r.ID); err != nil {
		return err
	}
	if err := validateAddr("addr", r.Addr); err != nil {
		return err
	}
	if r.Capacity < 0 || r.Capacity > MaxPeerCapacity {
		return badRequest("capacity %d out of range 0..%d", r.Capacity, MaxPeerCapacity)
	}
	if len(r.Region) > maxLabelLen || len(r.ISP) > maxLabelLen {
		return badRequest("region and isp must be at most %d bytes", maxLabelLen)
	}
	if err := r.Current.validate(r.ID); err != nil {
		return err
	}
	return validateMeasurements(r.UploadBPS, r.NAT, r.Candidates)
}

// validate checks a rejoining peer's report of its place (nil is valid;
// a later version is not checked: the tracker ignores it).
func (c *CurrentPlace) validate(self string) error {
	if c == nil || c.Version > PlaceVersion {
		return nil
	}
	if c.Version < 1 {
		return badRequest("current.v %d: the first version is 1", c.Version)
	}
	if len(c.Stripes) > MaxStripes {
		return badRequest("current.stripes: %d entries; at most %d", len(c.Stripes), MaxStripes)
	}
	for s, st := range c.Stripes {
		if st.Depth < 0 || st.Depth > MaxDepth {
			return badRequest("current.stripes[%d].depth %d out of range 0..%d", s, st.Depth, MaxDepth)
		}
		if st.Parent.IsZero() {
			continue
		}
		if err := st.Parent.validate(fmt.Sprintf("current.stripes[%d].parent", s)); err != nil {
			return err
		}
		if st.Parent.ID == self {
			return badRequest("current.stripes[%d].parent is the peer itself", s)
		}
	}
	return nil
}

// usable reports whether the tracker reads c for a channel of k stripes.
func (c *CurrentPlace) usable(k int) bool {
	return c != nil && c.Version >= 1 && c.Version <= PlaceVersion && len(c.Stripes) == k
}

// validateMeasurements checks what a peer measured about itself.
func validateMeasurements(upload int64, nat string, cands []string) error {
	if upload < 0 || upload > MaxUploadBPS {
		return badRequest("upload_bps %d out of range 0..%d", upload, int64(MaxUploadBPS))
	}
	if nat != "" && !slices.Contains(NATClasses, nat) {
		return badRequest("nat %q is not one of %v", truncate(nat), NATClasses)
	}
	if len(cands) > MaxCandidates {
		return badRequest("%d candidates; at most %d", len(cands), MaxCandidates)
	}
	for i, c := range cands {
		if err := validateAddr(fmt.Sprintf("candidates[%d]", i), c); err != nil {
			return err
		}
	}
	return nil
}

func (s PeerStats) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"played_slices", s.PlayedSlices}, {"late_slices", s.LateSlices},
		{"lost_slices", s.LostSlices}, {"stalls", s.Stalls}, {"stall_ms", s.StallMS},
		{"player_bytes", s.PlayerBytes}, {"p2p_bytes_in", s.P2PBytesIn},
		{"origin_bytes_in", s.OriginBytesIn}, {"bytes_forwarded", s.BytesForwarded},
		{"bad_chunks", s.BadChunks}, {"startup_ms", s.StartupMS}, {"lag_ms", s.LagMS},
		{"repairs", s.Repairs},
	} {
		if f.v < 0 {
			return badRequest("stats.%s is negative (%d)", f.name, f.v)
		}
	}
	return nil
}

func (r HeartbeatRequest) validate() error {
	if err := validateID("id", r.ID); err != nil {
		return err
	}
	if err := validateMeasurements(r.UploadBPS, r.NAT, r.Candidates); err != nil {
		return err
	}
	return r.Stats.validate()
}

func (r LeaveRequest) validate() error { return validateID("id", r.ID) }

func (r ParentLostRequest) validate() error {
	if err := validateID("id", r.ID); err != nil {
		return err
	}
	if err := validateID("parent", r.Parent); err != nil {
		return err
	}
	if r.ID == r.Parent {
		return badRequest("parent is the reporting peer itself")
	}
	if len(r.Switched) > MaxStripes {
		return badRequest("%d switches; at most %d", len(r.Switched), MaxStripes)
	}
	for i, sw := range r.Switched {
		if sw.Stripe < 0 || sw.Stripe >= MaxStripes {
			return badRequest("switched[%d].stripe %d out of range 0..%d", i, sw.Stripe, MaxStripes-1)
		}
		if err := validateID(fmt.Sprintf("switched[%d].parent", i), sw.Parent); err != nil {
			return err
		}
		if sw.Parent == r.ID || sw.Parent == r.Parent {
			return badRequest("switched[%d].parent is the peer itself or the lost parent", i)
		}
	}
	return nil
}

// truncate keeps echoed user input short in error messages.
func truncate(s string) string {
	const max = 48
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
