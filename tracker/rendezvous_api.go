package tracker

// The rendezvous API: how two peers that must connect (a child and the
// parent it was given) learn each other's candidates and punch at the
// same time, or meet at a relay. See [Rendezvous].

// Rendezvous modes: how a dialer reaches its target.
const (
	ModeDirect = "direct" // dial the target's address as given (no NAT work needed or possible)
	ModePunch  = "punch"  // both sides punch towards each other's candidates with Token, then dial the punched path
	ModeRelay  = "relay"  // both sides bind to Relay with Token, then dial Relay
)

// Connection outcomes a dialer reports.
const (
	OutcomeDirect  = "direct"
	OutcomeRelayed = "relayed"
	OutcomeFailed  = "failed"
)

// NATInfo is the body of GET /v1/nat: where peers learn their NAT.
type NATInfo struct {
	// STUN is the primary address of the tracker's STUN service
	// (host:port); "" when the tracker runs none.
	STUN string `json:"stun"`
	// Other is the STUN service's OTHER-ADDRESS (second IP and port, or
	// the second port on one IP).
	Other string `json:"other,omitempty"`
	// Relay says the tracker allocates relay sessions for pairs that
	// cannot punch.
	Relay bool `json:"relay"`
}

// ConnectRequest (POST /v1/channels/{name}/connect) says that peer ID is
// about to dial Target (its parent). The answer says how; when it is
// punch or relay, the target hears of it through its offers long-poll.
type ConnectRequest struct {
	ID     string `json:"id"`
	Target string `json:"target"`
	// Candidates are the dialer's current candidates (replacing what its
	// last join or heartbeat said); optional.
	Candidates []string `json:"candidates,omitempty"`
	// Relay asks for a relay even if the NATs look punchable: punching
	// was tried and failed.
	Relay bool `json:"relay,omitempty"`
}

// ConnectResponse tells the dialer how to reach its target.
type ConnectResponse struct {
	Mode string `json:"mode"`
	// Token identifies the punch or relay session (both sides use it).
	Token uint64 `json:"token,omitempty"`
	// Candidates are the target's addresses to punch towards (punch).
	Candidates []string `json:"candidates,omitempty"`
	// Relay is the relay session's address (relay).
	Relay string `json:"relay,omitempty"`
	// TimeoutMS bounds the punch; after it the dialer asks again with
	// Relay set.
	TimeoutMS int `json:"timeout_ms,omitempty"`
}

// Offer is a connection attempt towards a peer, as its offers long-poll
// hands it over: punch towards Candidates (or bind to Relay) with Token
// now, so the dialer's QUIC handshake gets through.
type Offer struct {
	From       string   `json:"from"`
	Mode       string   `json:"mode"`
	Token      uint64   `json:"token"`
	Candidates []string `json:"candidates,omitempty"`
	Relay      string   `json:"relay,omitempty"`
	TimeoutMS  int      `json:"timeout_ms"`
}

// Offers is the body of GET /v1/channels/{name}/offers?id=ID: the offers
// waiting for the peer (empty when the wait ran out).
type Offers struct {
	Offers []Offer `json:"offers"`
}

// ConnectResult (POST /v1/channels/{name}/connect-result) reports how a
// dial that went through the rendezvous ended.
type ConnectResult struct {
	ID        string `json:"id"`
	Target    string `json:"target"`
	Outcome   string `json:"outcome"` // OutcomeDirect, OutcomeRelayed or OutcomeFailed
	ConnectMS int64  `json:"connect_ms"`
}

// Connection is one reported result, as GET /v1/nat/connections lists
// them (newest last).
type Connection struct {
	Channel   string `json:"channel"`
	From      string `json:"from"`
	FromNAT   string `json:"from_nat"`
	Target    string `json:"target"`
	TargetNAT string `json:"target_nat"`
	Outcome   string `json:"outcome"`
	ConnectMS int64  `json:"connect_ms"`
	UnixMS    int64  `json:"unix_ms"`
}

// Connections is the body of GET /v1/nat/connections.
type Connections struct {
	Direct      int64        `json:"direct"`
	Relayed     int64        `json:"relayed"`
	Failed      int64        `json:"failed"`
	Connections []Connection `json:"connections"`
}
