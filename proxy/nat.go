package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/transport"
	"github.com/swarmtv/swarmtv/nat"
	"github.com/swarmtv/swarmtv/nat/core"
	"github.com/swarmtv/swarmtv/tracker"
)

// NAT traversal on the peer's side. At start the peer asks the tracker
// where its STUN service is (GET /v1/nat) and runs RFC 5780 behaviour
// discovery on its one UDP socket, the same one that carries its QUIC.
// It reports the NAT class and its candidates (LAN and mapped address)
// with every join and heartbeat, and keeps asking the STUN server for
// its mapped address (which keeps the mapping alive) to notice when the
// NAT hands it a new one; the next heartbeat carries the new candidates.
//
// Before every dial to another peer the transport asks the rendezvous
// (POST /connect) how to reach it: directly, by punching towards its
// candidates with a token (the remote punches back at the same time; it
// hears of the attempt through its offers long-poll), or through a relay
// session when the pair cannot punch or punching failed. QUIC then dials
// the address the punch proved (or the relay's), and the outcome is
// reported to the tracker.

// NATConfig tunes a peer's NAT traversal. Zero values take the defaults.
type NATConfig struct {
	// Off disables it: no probe, no rendezvous; every dial goes to the
	// address the tracker gave (fine on one host or a LAN).
	Off bool
	// STUN overrides the STUN server the tracker advertises (host:port).
	STUN string
	// Watch is how often the peer re-asks its mapped address; default 5s.
	Watch time.Duration
	// ProbeWait bounds each RFC 5780 test; default 1s.
	ProbeWait time.Duration
}

// NATReport is what a probe learned, in a form for people and the
// tracker.
type NATReport struct {
	nat.Report
	// Class is the NAT class reported to the tracker (one of
	// tracker.NATClasses), "" when the probe could not tell.
	Class string
	// Candidates are the addresses other peers may reach this socket at:
	// the local (LAN) address, then the mapped one if it differs.
	Candidates []string
}

// String formats the report in the manner of `tailscale netcheck`.
func (r NATReport) String() string {
	var b strings.Builder
	b.WriteString(r.Report.String())
	class := r.Class
	if class == "" {
		class = "unknown (not reported)"
	}
	fmt.Fprintf(&b, "class:          %s\n", class)
	fmt.Fprintf(&b, "candidates:     %s\n", strings.Join(r.Candidates, " "))
	if t, ok := core.ParseType(r.Class); ok {
		var direct, relayed []string
		for _, c := range tracker.NATClasses {
			o, _ := core.ParseType(c)
			if o == core.TypeOpen || core.CanPunch(core.Typical(t), core.Typical(o)) {
				direct = append(direct, c)
			} else {
				relayed = append(relayed, c)
			}
		}
		fmt.Fprintf(&b, "direct with:    %s\n", strings.Join(direct, " "))
		if len(relayed) > 0 {
			fmt.Fprintf(&b, "relayed with:   %s\n", strings.Join(relayed, " "))
		}
	}
	return b.String()
}

// ProbeNAT runs behaviour discovery from c (attached to the socket at
// local) against the STUN server.
func ProbeNAT(ctx context.Context, c *nat.Client, server netip.AddrPort, local netip.AddrPort, wait time.Duration) (NATReport, error) {
	local, err := specificLocal(local, server)
	if err != nil {
		return NATReport{}, err
	}
	rep, err := c.Probe(ctx, server, nat.ProbeConfig{Local: local, Wait: wait})
	r := NATReport{Report: rep, Candidates: []string{local.String()}}
	if err != nil {
		return r, err
	}
	if t, ok := core.Class(rep.Result, rep.Obs); ok {
		r.Class = t.String()
	}
	if m, err := netip.ParseAddrPort(rep.Mapped.String()); err == nil && m != local {
		r.Candidates = append(r.Candidates, m.String())
	}
	// A symmetric NAT with a port step: its next mappings, for the
	// remote to probe (port prediction; the rendezvous sees two
	// candidates on one IP and lets such a peer punch).
	for _, p := range core.PredictPorts(rep.Obs, predictedPorts) {
		r.Candidates = append(r.Candidates, p.String())
	}
	return r, nil
}

// predictedPorts is how many predicted mappings a peer behind a NAT with
// sequential ports lists (LAN, mapped and these stay within
// tracker.MaxCandidates).
const predictedPorts = 5

// specificLocal replaces a wildcard IP by the one the host would send
// to server from.
func specificLocal(local, server netip.AddrPort) (netip.AddrPort, error) {
	if !local.Addr().IsUnspecified() {
		return netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), nil
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return local, fmt.Errorf("peer: no route to the STUN server %v: %w", server, err)
	}
	defer c.Close()
	ip := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	return netip.AddrPortFrom(ip, local.Port()), nil
}

// NATStatus is what the peer knows about its NAT and its connections.
type NATStatus struct {
	Class      string   // "" unknown
	Mapped     string   // mapped address; "" unknown
	Candidates []string // reported to the tracker
	Changes    int      // mapping changes noticed
	Direct     int      // dials over a direct (or punched) path
	Relayed    int      // dials through the relay
	Failed     int      // dials that failed after a rendezvous
}

// natAgent is a peer's NAT traversal shell. Its goroutines run until
// close.
type natAgent struct {
	cfg     NATConfig
	log     *slog.Logger
	ep      *transport.Endpoint
	client  *nat.Client
	tracker *tracker.Client
	channel string
	self    string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	enabled  bool                         // guarded by mu: a probe gave a class
	server   netip.AddrPort               // guarded by mu
	status   NATStatus                    // guarded by mu
	origin   string                       // guarded by mu: never needs a rendezvous
	sessions map[uint64]*nat.PunchSession // guarded by mu: by token
	// paths are the addresses dials to nodes last succeeded at (a
	// punched path, a LAN address), for dials while the rendezvous is
	// unreachable; bounded by maxPaths. rvDownUntil: until then dials
	// skip the rendezvous (it failed to answer lately). Both guarded by
	// mu.
	paths       map[swarm.NodeID]string
	rvDownUntil time.Time
}

// maxPaths bounds the remembered dial paths.
const maxPaths = 256

// rvBackoff is how long dials skip a rendezvous that did not answer.
const rvBackoff = 5 * time.Second

func newNATAgent(cfg NATConfig, ep *transport.Endpoint, tc *tracker.Client, channel string, log *slog.Logger) *natAgent {
	if cfg.Watch <= 0 {
		cfg.Watch = 5 * time.Second
	}
	if cfg.ProbeWait <= 0 {
		cfg.ProbeWait = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &natAgent{cfg: cfg, log: log.With("svc", "nat"), ep: ep, tracker: tc, channel: channel, self: string(ep.ID()),
		ctx: ctx, cancel: cancel, sessions: map[uint64]*nat.PunchSession{}, paths: map[swarm.NodeID]string{}}
	a.client = nat.Attach(ep, a.onPacket)
	return a
}

// onPacket routes a non-STUN packet of the socket to its punch session.
func (a *natAgent) onPacket(b []byte, from net.Addr) {
	_, token, ok := core.ParsePunch(b)
	ua, isUDP := from.(*net.UDPAddr)
	if !ok || !isUDP {
		return
	}
	a.mu.Lock()
	s := a.sessions[token]
	a.mu.Unlock()
	if s != nil {
		s.Receive(b, ua.AddrPort())
	}
}

// start probes the NAT (when the tracker runs STUN) and starts the
// watch and the offers long-poll. A failed probe leaves NAT traversal
// off: dials go where the tracker says.
func (a *natAgent) start(ctx context.Context) {
	if a.cfg.Off {
		return
	}
	server, err := a.stunServer(ctx)
	if err != nil {
		a.log.Info("no NAT traversal", "reason", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	rep, err := ProbeNAT(pctx, a.client, server, a.ep.Addr().AddrPort(), a.cfg.ProbeWait)
	cancel()
	if err != nil || rep.Class == "" {
		a.log.Warn("NAT probe failed; dialing peers at the addresses the tracker gives", "stun", server, "err", err)
		return
	}
	a.log.Info("NAT", "class", rep.Class, "mapped", rep.Mapped, "mapping", rep.Mapping, "filtering", rep.Filtering, "candidates", rep.Candidates)
	a.mu.Lock()
	a.enabled = true
	a.server = server
	a.status.Class = rep.Class
	a.status.Mapped = rep.Mapped.String()
	a.status.Candidates = rep.Candidates
	a.mu.Unlock()
	a.ep.SetDialHook(a.beforeDial)
	a.wg.Go(func() { a.watch(server) })
	a.wg.Go(a.pollOffers)
}

func (a *natAgent) stunServer(ctx context.Context) (netip.AddrPort, error) {
	s := a.cfg.STUN
	if s == "" {
		ictx, cancel := context.WithTimeout(ctx, 3*time.Second)
		in, err := a.tracker.NAT(ictx)
		cancel()
		if err != nil {
			return netip.AddrPort{}, err
		}
		if in.STUN == "" {
			return netip.AddrPort{}, errors.New("the tracker runs no STUN service")
		}
		s = in.STUN
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", s)
		if rerr != nil {
			return netip.AddrPort{}, fmt.Errorf("STUN server %q: %w", s, rerr)
		}
		ap = ua.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// close stops the agent's goroutines and waits for them.
func (a *natAgent) close() {
	a.cancel()
	a.wg.Wait()
}

// report returns the class and candidates for a join or heartbeat.
func (a *natAgent) report() (class string, cands []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status.Class, append([]string(nil), a.status.Candidates...)
}

// Status returns what the agent knows.
func (a *natAgent) Status() NATStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.status
	st.Candidates = append([]string(nil), st.Candidates...)
	return st
}

func (a *natAgent) setOrigin(id string) {
	a.mu.Lock()
	a.origin = id
	a.mu.Unlock()
}

// watch keeps the mapping alive and replaces the mapped candidate when
// it changes.
func (a *natAgent) watch(server netip.AddrPort) {
	a.client.Watch(a.ctx, server, a.cfg.Watch, func(c nat.MappingChange) {
		a.log.Warn("NAT mapping changed", "prev", c.Prev, "now", c.Now)
		a.mu.Lock()
		a.status.Changes++
		a.status.Mapped = c.Now.String()
		cands := a.status.Candidates[:1:1]
		if c.Now.String() != cands[0] {
			cands = append(cands, c.Now.String())
		}
		a.status.Candidates = cands
		a.mu.Unlock()
		// The NAT lost its state (it rebooted, or its uplink changed):
		// its filters hold nothing towards the STUN server's other
		// addresses now, so the RFC 5780 tests are valid again — run
		// them, as the NAT (or the network) may be another one, and
		// predicted ports start from the new mappings.
		ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
		rep, err := ProbeNAT(ctx, a.client, server, a.ep.Addr().AddrPort(), a.cfg.ProbeWait)
		cancel()
		if err != nil || rep.Class == "" {
			a.log.Info("re-probing the NAT after a mapping change", "err", err)
			return
		}
		a.log.Info("NAT", "class", rep.Class, "mapped", rep.Mapped, "candidates", rep.Candidates)
		a.mu.Lock()
		a.status.Class = rep.Class
		a.status.Mapped = rep.Mapped.String()
		a.status.Candidates = rep.Candidates
		a.mu.Unlock()
	})
}

// pollOffers keeps a long-poll open at the tracker and answers every
// offer by punching back (or binding to the relay) at once.
func (a *natAgent) pollOffers() {
	for a.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(a.ctx, tracker.DefaultOffersWait+5*time.Second)
		offers, err := a.tracker.Offers(ctx, a.channel, a.self, tracker.DefaultOffersWait)
		cancel()
		if err != nil {
			if a.ctx.Err() == nil {
				// Before the join has reached the tracker the peer is
				// unknown there: ask again soon, or an early offer waits.
				wait := time.Second
				if errors.Is(err, tracker.ErrUnknownPeer) {
					wait = 100 * time.Millisecond
				}
				a.log.Debug("offers long-poll", "err", err)
				select {
				case <-a.ctx.Done():
				case <-time.After(wait):
				}
			}
			continue
		}
		for _, o := range offers {
			a.wg.Go(func() { a.answer(o) })
		}
	}
}

// maxPunchSessions bounds the punch sessions a peer runs (and keeps
// answering) at once; offers beyond it are dropped.
const maxPunchSessions = 16

// answer is the target's side of a rendezvous.
func (a *natAgent) answer(o tracker.Offer) {
	var targets []netip.AddrPort
	switch o.Mode {
	case tracker.ModeRelay:
		targets = parseAddrs([]string{o.Relay})
	case tracker.ModePunch:
		targets = parseAddrs(o.Candidates)
	}
	a.mu.Lock()
	busy := len(a.sessions) >= maxPunchSessions
	a.mu.Unlock()
	if len(targets) == 0 || busy {
		return
	}
	_, err := a.punch(a.ctx, o.Token, o.TimeoutMS, targets)
	a.log.Debug("answered a rendezvous", "from", o.From, "mode", o.Mode, "err", err)
}

// punch runs a punch session (towards a peer's candidates, or a relay
// session's address) and keeps answering its probes for a while after.
func (a *natAgent) punch(ctx context.Context, token uint64, timeoutMS int, targets []netip.AddrPort) (nat.PunchResult, error) {
	timeout := time.Duration(timeoutMS) * time.Millisecond
	if timeout <= 0 || timeout > 10*time.Second {
		timeout = tracker.PunchTimeoutMS * time.Millisecond
	}
	s := nat.NewPunchSession(core.PunchConfig{Token: token, Timeout: timeout, MaxTargets: 2 * tracker.MaxCandidates}, targets, func(b []byte, to netip.AddrPort) error {
		_, err := a.ep.WriteTo(b, net.UDPAddrFromAddrPort(to))
		return err
	})
	a.mu.Lock()
	a.sessions[token] = s
	a.mu.Unlock()
	res, err := s.Run(ctx)
	time.AfterFunc(2*timeout, func() {
		a.mu.Lock()
		if a.sessions[token] == s {
			delete(a.sessions, token)
		}
		a.mu.Unlock()
	})
	return res, err
}

func parseAddrs(ss []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return out
}

// beforeDial is the dialer's side of a rendezvous: the transport calls it
// before dialing node id advertised at addr. It returns the address to
// dial and a func the transport calls with the dial's result.
func (a *natAgent) beforeDial(ctx context.Context, addr string, id swarm.NodeID) (string, func(error)) {
	a.mu.Lock()
	skip := !a.enabled || string(id) == a.origin
	a.mu.Unlock()
	if skip {
		return addr, nil
	}
	start := time.Now()
	a.mu.Lock()
	down := start.Before(a.rvDownUntil)
	a.mu.Unlock()
	if down {
		// The tracker is away (an outage, a partition): dial where this
		// node was last reached, else where it is advertised.
		path := a.pathTo(id, addr)
		return path, a.remember(id, path)
	}
	_, cands := a.report()
	req := tracker.ConnectRequest{ID: a.self, Target: string(id), Candidates: cands}
	resp, err := a.connect(ctx, req)
	if err != nil {
		a.log.Debug("rendezvous unavailable; dialing directly", "target", id, "err", err)
		a.mu.Lock()
		a.rvDownUntil = time.Now().Add(rvBackoff)
		a.mu.Unlock()
		path := a.pathTo(id, addr)
		return path, a.remember(id, path)
	}
	outcome := tracker.OutcomeDirect
	switch resp.Mode {
	case tracker.ModePunch:
		res, err := a.punch(ctx, resp.Token, resp.TimeoutMS, parseAddrs(resp.Candidates))
		if err == nil {
			a.log.Info("punched", "target", id, "path", res.Path, "in", res.Elapsed.Round(time.Millisecond))
			addr = res.Path.String()
			break
		}
		a.log.Info("punching failed; asking for a relay", "target", id, "err", err)
		req.Relay = true
		if resp, err = a.connect(ctx, req); err != nil || resp.Mode != tracker.ModeRelay {
			a.log.Warn("no relay for a pair that cannot punch", "target", id, "err", err)
			return addr, a.done(id, addr, tracker.OutcomeFailed, start)
		}
		fallthrough
	case tracker.ModeRelay:
		relay := parseAddrs([]string{resp.Relay})
		if len(relay) == 0 {
			return addr, a.done(id, addr, tracker.OutcomeFailed, start)
		}
		if _, err := a.punch(ctx, resp.Token, resp.TimeoutMS, relay); err != nil {
			a.log.Warn("binding to the relay failed", "relay", resp.Relay, "err", err)
			return addr, a.done(id, addr, tracker.OutcomeFailed, start)
		}
		a.log.Info("relayed", "target", id, "relay", resp.Relay)
		addr, outcome = relay[0].String(), tracker.OutcomeRelayed
	}
	return addr, a.done(id, addr, outcome, start)
}

// pathTo returns where to dial id without the rendezvous: the path a
// dial to it last succeeded at, else addr.
func (a *natAgent) pathTo(id swarm.NodeID, addr string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.paths[id]; ok {
		return p
	}
	return addr
}

// remember returns the func that records the path of a dial made without
// the rendezvous (nothing is reported: the tracker is away).
func (a *natAgent) remember(id swarm.NodeID, path string) func(error) {
	return func(err error) {
		if err == nil {
			a.setPath(id, path)
		}
	}
}

// setPath records the path a dial to id succeeded at.
func (a *natAgent) setPath(id swarm.NodeID, path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.paths[id]; !ok && len(a.paths) >= maxPaths {
		for k := range a.paths { // any one: the map is a cache
			delete(a.paths, k)
			break
		}
	}
	a.paths[id] = path
}

func (a *natAgent) connect(ctx context.Context, req tracker.ConnectRequest) (tracker.ConnectResponse, error) {
	// Half the dial's time at most: a tracker that does not answer must
	// leave the direct dial time to succeed.
	limit := 3 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl)/2)
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return a.tracker.Connect(cctx, a.channel, req)
}

// done returns the func that counts a dial's outcome, reports it to the
// tracker and remembers a direct path that worked.
func (a *natAgent) done(id swarm.NodeID, path, outcome string, start time.Time) func(error) {
	return func(err error) {
		if err != nil {
			outcome = tracker.OutcomeFailed
		} else if outcome == tracker.OutcomeDirect {
			a.setPath(id, path) // a relay's session does not outlive the tracker
		}
		ms := time.Since(start).Milliseconds()
		a.mu.Lock()
		switch outcome {
		case tracker.OutcomeDirect:
			a.status.Direct++
		case tracker.OutcomeRelayed:
			a.status.Relayed++
		default:
			a.status.Failed++
		}
		a.mu.Unlock()
		a.log.Info("peer connection", "target", id, "outcome", outcome, "connect_ms", ms)
		a.wg.Go(func() {
			ctx, cancel := context.WithTimeout(a.ctx, 3*time.Second)
			defer cancel()
			if err := a.tracker.ConnectResult(ctx, a.channel, tracker.ConnectResult{ID: a.self, Target: string(id), Outcome: outcome, ConnectMS: ms}); err != nil {
				a.log.Debug("reporting a connection", "err", err)
			}
		})
	}
}

// NAT returns what the peer knows about its NAT and its connections.
func (p *Peer) NAT() NATStatus { return p.nat.Status() }

// natSummary is the status page's one-line NAT description.
func (p *Peer) natSummary() string {
	st := p.NAT()
	if st.Class == "" {
		return "unknown (not probed: the tracker runs no STUN service, or the probe failed)"
	}
	return fmt.Sprintf("%s, mapped %s; connections: %d direct, %d relayed, %d failed", st.Class, st.Mapped, st.Direct, st.Relayed, st.Failed)
}

// pinned replaces the tracker's assignments by the pinned parent
// (PeerConfig.Parent), if any.
func (p *Peer) pinned(as []tracker.StripeAssignment, legacy tracker.NodeInfo) ([]tracker.StripeAssignment, tracker.NodeInfo) {
	if p.cfg.Parent.IsZero() {
		return as, legacy
	}
	out := make([]tracker.StripeAssignment, len(as))
	for s := range out {
		out[s] = tracker.StripeAssignment{Parent: p.cfg.Parent, Backups: []tracker.NodeInfo{}}
	}
	return out, p.cfg.Parent
}
