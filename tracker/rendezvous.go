package tracker

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/nat/core"
)

// Rendezvous bounds and defaults.
const (
	// PunchTimeoutMS is how long both sides of a punch try before the
	// dialer asks for a relay.
	PunchTimeoutMS = 3000
	// MaxOffersWait bounds an offers long-poll.
	MaxOffersWait = 30 * time.Second
	// DefaultOffersWait is an offers long-poll's wait without wait_ms.
	DefaultOffersWait = 20 * time.Second
	maxOffersQueued   = 16
	// MaxRelaySessions bounds the relay's open sessions; beyond it pairs
	// that cannot punch try anyway.
	MaxRelaySessions = 1024
	// ConnectBurst and ConnectRate bound a peer's connect requests
	// (token bucket: a burst, then one per ConnectRate).
	ConnectBurst      = 8
	ConnectRate       = time.Second
	maxConnectionsLog = 1024
	// rdvForget drops a peer the rendezvous has not heard of (join,
	// heartbeat, poll) for this long.
	rdvForget = 2 * time.Minute
)

// RendezvousConfig configures a [Rendezvous]. Every field may be zero.
type RendezvousConfig struct {
	// STUN is the tracker's STUN service, advertised at GET /v1/nat;
	// nil when it runs none (peers then report no NAT class and every
	// dial is direct).
	STUN *STUNServer
	// Relay allocates sessions for pairs that cannot punch; nil: none
	// (such pairs punch anyway, as the best there is).
	Relay *nat.Relay
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Rendezvous brings a child and the parent it must dial together
// (RFC 5128 section 3.3, with the tracker as the rendezvous server).
//
// It learns each peer's NAT class and candidates from the join and
// heartbeat requests passing through the handler it wraps (and the
// address the tracker sees them from). Before a dial, the dialer POSTs
// /connect naming its target; the answer is direct (the target is the
// origin or has no NAT, or either side reported no class), punch (the
// target's candidates and a token) or relay (a session address and a
// token, when core.CanPunchPredicting says the pair cannot punch, or the dialer
// says punching failed). For punch and relay the target gets an [Offer]
// at once through its offers long-poll (GET /offers, which every peer
// keeps open), so both sides start within a round trip of each other
// and punch simultaneously, following the addresses they actually see.
// The dialer reports the outcome (POST /connect-result): counted in
// /metrics (swarmtv_nat_connections_total) and listed at GET
// /v1/nat/connections.
//
// A long-poll was chosen over a UDP notification from the STUN socket:
// it needs no second wire format and no authentication of UDP
// notifications, reaches peers behind any NAT over the HTTP connection
// they already use, and costs one idle request per peer.
type Rendezvous struct {
	t     *Tracker
	cfg   RendezvousConfig
	log   *slog.Logger
	now   func() time.Time
	token func() uint64

	mu      sync.Mutex
	peers   map[string]*rdvPeer // by channel+" "+id; guarded by mu
	swept   time.Time           // guarded by mu
	conns   []Connection        // guarded by mu; newest last, bounded
	counts  map[string]int64    // guarded by mu; by outcome
	decided map[string]int64    // guarded by mu; by mode
}

type rdvPeer struct {
	nat    string
	cands  []string
	seen   time.Time
	offers []Offer
	wake   chan struct{} // closed when offers arrive, then replaced

	tokens   float64 // connect requests it may make now
	tokensAt time.Time
}

// errTooManyConnects: a peer asks to connect faster than ConnectRate.
var errTooManyConnects = errors.New("tracker: too many connect requests from this peer; retry in a second")

// NewRendezvous returns the rendezvous service of t. Serve it with
// [Rendezvous.Wrap] around t's API handler.
func NewRendezvous(t *Tracker, cfg RendezvousConfig) *Rendezvous {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Rendezvous{
		t: t, cfg: cfg, log: cfg.Logger.With("svc", "rendezvous"), now: cfg.Now,
		token: func() uint64 {
			var b [8]byte
			rand.Read(b[:])
			return binary.BigEndian.Uint64(b[:]) | 1
		},
		peers: map[string]*rdvPeer{}, counts: map[string]int64{}, decided: map[string]int64{},
	}
}

// Info is what GET /v1/nat says.
func (rv *Rendezvous) Info() NATInfo {
	var in NATInfo
	if rv.cfg.STUN != nil {
		in.STUN = rv.cfg.STUN.Addr().String()
		in.Other = rv.cfg.STUN.OtherAddr().String()
	}
	in.Relay = rv.cfg.Relay != nil
	return in
}

// Wrap returns h with the rendezvous routes added, and join, heartbeat
// and leave requests observed on their way to h.
func (rv *Rendezvous) Wrap(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /v1/nat", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, rv.Info()) })
	mux.HandleFunc("GET /v1/nat/connections", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, rv.Connections())
	})
	for _, action := range []string{"join", "heartbeat", "leave"} {
		mux.HandleFunc("POST /v1/channels/{name}/"+action, func(w http.ResponseWriter, r *http.Request) {
			rv.observe(w, r, h, action)
		})
	}
	mux.HandleFunc("POST /v1/channels/{name}/connect", func(w http.ResponseWriter, r *http.Request) {
		var req ConnectRequest
		if err := decode(limitBody(w, r), &req); err != nil {
			writeError(w, err)
			return
		}
		resp, err := rv.Connect(r.PathValue("name"), req, remoteIP(r))
		if errors.Is(err, errTooManyConnects) {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, ErrorBody{Error: CodeTooManyReports, Message: err.Error()})
			return
		}
		reply(w, resp, err)
	})
	mux.HandleFunc("POST /v1/channels/{name}/connect-result", func(w http.ResponseWriter, r *http.Request) {
		var req ConnectResult
		if err := decode(limitBody(w, r), &req); err != nil {
			writeError(w, err)
			return
		}
		if err := rv.Result(r.PathValue("name"), req); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /v1/channels/{name}/offers", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		wait := DefaultOffersWait
		if s := r.URL.Query().Get("wait_ms"); s != "" {
			ms, err := strconv.Atoi(s)
			if err != nil || ms < 0 {
				writeError(w, badRequest("wait_ms %q is not a number of milliseconds", truncate(s)))
				return
			}
			wait = min(time.Duration(ms)*time.Millisecond, MaxOffersWait)
		}
		offers, err := rv.Poll(r, r.PathValue("name"), id, wait)
		reply(w, Offers{Offers: offers}, err)
	})
	return mux
}

func limitBody(w http.ResponseWriter, r *http.Request) *http.Request {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	return r
}

func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// observe peeks at a join, heartbeat or leave request and passes it on.
func (rv *Rendezvous) observe(w http.ResponseWriter, r *http.Request, h http.Handler, action string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	r.Body.Close()
	if err != nil {
		writeError(w, badRequest("reading the body: %v", err))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var peek struct {
		ID         string   `json:"id"`
		NAT        string   `json:"nat"`
		Candidates []string `json:"candidates"`
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	h.ServeHTTP(rec, r)
	if rec.status >= 300 || json.Unmarshal(body, &peek) != nil || !ValidNodeID(peek.ID) {
		return
	}
	name := r.PathValue("name")
	if action == "leave" {
		rv.mu.Lock()
		delete(rv.peers, name+" "+peek.ID)
		rv.mu.Unlock()
		return
	}
	if validateMeasurements(0, peek.NAT, peek.Candidates) != nil {
		return
	}
	rv.mu.Lock()
	p := rv.peerLocked(name, peek.ID)
	p.nat = peek.NAT
	if peek.Candidates != nil {
		p.cands = slices.Clone(peek.Candidates)
	}
	rv.mu.Unlock()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// knownLocked returns the entry of a peer that joined, marked seen, or
// ErrUnknownPeer.
func (rv *Rendezvous) knownLocked(channel, id string) (*rdvPeer, error) {
	p := rv.peers[channel+" "+id]
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPeer, id)
	}
	p.seen = rv.now()
	return p, nil
}

// peerLocked returns the entry of a peer, making it if needed, and
// marks it seen.
func (rv *Rendezvous) peerLocked(channel, id string) *rdvPeer {
	now := rv.now()
	if now.Sub(rv.swept) > rdvForget/2 {
		for k, p := range rv.peers {
			if now.Sub(p.seen) > rdvForget {
				delete(rv.peers, k)
			}
		}
		rv.swept = now
	}
	key := channel + " " + id
	p := rv.peers[key]
	if p == nil {
		p = &rdvPeer{wake: make(chan struct{})}
		rv.peers[key] = p
	}
	p.seen = now
	return p
}

// Connect decides how peer req.ID reaches req.Target, and hands the
// target an offer when both must act. from is the address the request
// came from (invalid if unknown; for logs).
func (rv *Rendezvous) Connect(channel string, req ConnectRequest, from netip.Addr) (ConnectResponse, error) {
	if err := validateID("id", req.ID); err != nil {
		return ConnectResponse{}, err
	}
	if err := validateID("target", req.Target); err != nil {
		return ConnectResponse{}, err
	}
	if req.ID == req.Target {
		return ConnectResponse{}, badRequest("target is the dialing peer itself")
	}
	if err := validateMeasurements(0, "", req.Candidates); err != nil {
		return ConnectResponse{}, err
	}
	info, err := rv.t.Channel(channel)
	if err != nil {
		return ConnectResponse{}, err
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	d, err := rv.knownLocked(channel, req.ID)
	if err != nil {
		return ConnectResponse{}, err
	}
	now := rv.now()
	if d.tokensAt.IsZero() {
		d.tokens = ConnectBurst
	} else if dt := now.Sub(d.tokensAt); dt > 0 {
		d.tokens = min(ConnectBurst, d.tokens+float64(dt)/float64(ConnectRate))
	}
	d.tokensAt = now
	if d.tokens < 1 {
		return ConnectResponse{}, errTooManyConnects
	}
	d.tokens--
	if req.Candidates != nil {
		d.cands = slices.Clone(req.Candidates)
	}
	t := rv.peers[channel+" "+req.Target]
	mode := rv.decide(d, t, req.Target == info.Origin.ID, req.Relay)
	rv.decided[mode]++
	resp := ConnectResponse{Mode: mode}
	if mode == ModeDirect {
		return resp, nil
	}
	resp.Token = rv.token()
	resp.TimeoutMS = PunchTimeoutMS
	offer := Offer{From: req.ID, Mode: mode, Token: resp.Token, TimeoutMS: PunchTimeoutMS}
	if mode == ModeRelay {
		addr, err := rv.cfg.Relay.Allocate(resp.Token)
		if err != nil {
			rv.log.Warn("relay allocation failed; dialing directly", "err", err)
			return ConnectResponse{Mode: ModeDirect}, nil
		}
		resp.Relay = addr.String()
		offer.Relay = resp.Relay
	} else {
		resp.Candidates = slices.Clone(t.cands)
		offer.Candidates = slices.Clone(d.cands)
	}
	if len(t.offers) >= maxOffersQueued {
		t.offers = t.offers[1:]
	}
	t.offers = append(t.offers, offer)
	close(t.wake)
	t.wake = make(chan struct{})
	rv.log.Debug("rendezvous", "dialer_ip", from, "channel", channel, "from", req.ID, "from_nat", d.nat, "target", req.Target, "target_nat", t.nat, "mode", mode)
	return resp, nil
}

// decide is the rendezvous rule. t is nil for a target the rendezvous
// has not heard of.
func (rv *Rendezvous) decide(d, t *rdvPeer, origin, forceRelay bool) string {
	if origin || t == nil {
		return ModeDirect
	}
	dt, ok1 := core.ParseType(d.nat)
	tt, ok2 := core.ParseType(t.nat)
	if !ok1 || !ok2 || tt == core.TypeOpen {
		return ModeDirect
	}
	relay := rv.cfg.Relay != nil && rv.cfg.Relay.Sessions() < MaxRelaySessions
	switch {
	case forceRelay && relay:
		return ModeRelay
	case shareIP(d.cands, t.cands):
		return ModePunch // behind one NAT (one mapped IP): the LAN candidates meet
	case core.CanPunchPredicting(core.Typical(dt), core.Typical(tt), predicts(d.cands), predicts(t.cands)):
		return ModePunch
	case relay:
		return ModeRelay
	}
	return ModePunch
}

// shareIP reports whether two candidate lists name a common IP address
// (two peers behind one NAT share its public address).
func shareIP(a, b []string) bool {
	for _, x := range a {
		hx, _, err := net.SplitHostPort(x)
		if err != nil {
			continue
		}
		for _, y := range b {
			if hy, _, err := net.SplitHostPort(y); err == nil && hx == hy {
				return true
			}
		}
	}
	return false
}

// predicts reports whether a peer lists predicted ports: two or more
// candidates on one IP (its mapped address and the next mappings its
// NAT will likely hand out; see core.PredictPorts).
func predicts(cands []string) bool {
	seen := map[string]bool{}
	for _, c := range cands {
		h, _, err := net.SplitHostPort(c)
		if err != nil {
			continue
		}
		if seen[h] {
			return true
		}
		seen[h] = true
	}
	return false
}

// Poll returns the offers waiting for peer id, waiting up to wait for
// one to arrive. It returns early with none when r's context ends.
func (rv *Rendezvous) Poll(r *http.Request, channel, id string, wait time.Duration) ([]Offer, error) {
	if err := validateID("id", id); err != nil {
		return nil, err
	}
	if _, err := rv.t.Channel(channel); err != nil {
		return nil, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		rv.mu.Lock()
		p, err := rv.knownLocked(channel, id)
		if err != nil {
			rv.mu.Unlock()
			return nil, err
		}
		offers := p.offers
		p.offers = nil
		wake := p.wake
		rv.mu.Unlock()
		if len(offers) > 0 {
			return offers, nil
		}
		select {
		case <-wake:
		case <-timer.C:
			return []Offer{}, nil
		case <-r.Context().Done():
			return []Offer{}, nil
		}
	}
}

// Result records how a dial ended.
func (rv *Rendezvous) Result(channel string, req ConnectResult) error {
	if err := validateID("id", req.ID); err != nil {
		return err
	}
	if err := validateID("target", req.Target); err != nil {
		return err
	}
	switch req.Outcome {
	case OutcomeDirect, OutcomeRelayed, OutcomeFailed:
	default:
		return badRequest("outcome %q is not one of direct, relayed, failed", truncate(req.Outcome))
	}
	if req.ConnectMS < 0 || req.ConnectMS > 3600_000 {
		return badRequest("connect_ms %d out of range 0..3600000", req.ConnectMS)
	}
	if _, err := rv.t.Channel(channel); err != nil {
		return err
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	c := Connection{Channel: channel, From: req.ID, Target: req.Target, Outcome: req.Outcome, ConnectMS: req.ConnectMS, UnixMS: rv.now().UnixMilli()}
	if p := rv.peers[channel+" "+req.ID]; p != nil {
		c.FromNAT = p.nat
	}
	if p := rv.peers[channel+" "+req.Target]; p != nil {
		c.TargetNAT = p.nat
	}
	if len(rv.conns) >= maxConnectionsLog {
		rv.conns = slices.Delete(rv.conns, 0, len(rv.conns)-maxConnectionsLog+1)
	}
	rv.conns = append(rv.conns, c)
	rv.counts[req.Outcome]++
	return nil
}

// Connections returns the counts of reported outcomes and the latest
// connections, oldest first.
func (rv *Rendezvous) Connections() Connections {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return Connections{
		Direct: rv.counts[OutcomeDirect], Relayed: rv.counts[OutcomeRelayed], Failed: rv.counts[OutcomeFailed],
		Connections: append([]Connection{}, rv.conns...),
	}
}

var (
	descNATConns = prometheus.NewDesc("swarmtv_nat_connections_total",
		"Peer-to-peer dials through the rendezvous, by outcome (direct, relayed, failed).", []string{"outcome"}, nil)
	descNATModes = prometheus.NewDesc("swarmtv_nat_rendezvous_total",
		"Rendezvous decisions, by mode (direct, punch, relay).", []string{"mode"}, nil)
	descNATPeers = prometheus.NewDesc("swarmtv_rendezvous_peers",
		"Peers known to the rendezvous, by reported NAT class (\"unknown\" when not probed).", []string{"nat"}, nil)
	descRelaySessions = prometheus.NewDesc("swarmtv_relay_sessions",
		"Open relay sessions.", nil, nil)
	descRelayBytes = prometheus.NewDesc("swarmtv_relay_forwarded_bytes_total",
		"Bytes the relay forwarded.", nil, nil)
)

// Describe implements [prometheus.Collector].
func (rv *Rendezvous) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNATConns, descNATModes, descNATPeers, descRelaySessions, descRelayBytes} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (rv *Rendezvous) Collect(ch chan<- prometheus.Metric) {
	rv.mu.Lock()
	byNAT := map[string]int{}
	for _, p := range rv.peers {
		byNAT[p.nat]++
	}
	for _, o := range []string{OutcomeDirect, OutcomeRelayed, OutcomeFailed} {
		ch <- prometheus.MustNewConstMetric(descNATConns, prometheus.CounterValue, float64(rv.counts[o]), o)
	}
	for _, m := range []string{ModeDirect, ModePunch, ModeRelay} {
		ch <- prometheus.MustNewConstMetric(descNATModes, prometheus.CounterValue, float64(rv.decided[m]), m)
	}
	rv.mu.Unlock()
	for _, c := range append([]string{""}, NATClasses...) {
		label := c
		if c == "" {
			label = "unknown"
		}
		ch <- prometheus.MustNewConstMetric(descNATPeers, prometheus.GaugeValue, float64(byNAT[c]), label)
	}
	if r := rv.cfg.Relay; r != nil {
		ch <- prometheus.MustNewConstMetric(descRelaySessions, prometheus.GaugeValue, float64(r.Sessions()))
		ch <- prometheus.MustNewConstMetric(descRelayBytes, prometheus.CounterValue, float64(r.Forwarded()))
	}
}

var errNoRendezvous = errors.New("tracker: no rendezvous service at this tracker")
