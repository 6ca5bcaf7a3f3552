package core

import (
	"encoding/binary"
	"slices"
	"time"
)

// Hole punching (RFC 5128 section 3.3, simultaneous UDP): both peers
// learn each other's candidates (LAN and mapped addresses) through the
// tracker and start a Puncher at about the same time. Each sends a probe
// to every candidate every Interval; a probe that arrives is answered with
// an ack to the address it came from, and that address — the
// peer-reflexive candidate, which is what a symmetric NAT really hands
// out — joins the targets. The first ack proves a two-way path: the
// Puncher is Direct on the address the ack came from. With no ack before
// Timeout it has Failed and the caller falls back to a relay.
//
// # Wire format
//
// A punch packet is 13 bytes: the magic 0x03 's' 't' 'p' (the first byte
// has the QUIC fixed bit 0x40 clear, so quic-go hands it to
// ReadNonQUICPacket; it is not STUN, whose first byte is 0 or 1), a kind
// byte (1 probe, 2 ack) and the session token (big-endian uint64) the
// tracker gave both peers.

// PunchKind is a punch packet's kind.
type PunchKind uint8

// Punch packet kinds.
const (
	PunchProbe PunchKind = 1
	PunchAck   PunchKind = 2
)

// PunchPacketLen is the length of every punch packet.
const PunchPacketLen = 13

var punchMagic = [4]byte{0x03, 's', 't', 'p'}

// AppendPunch appends a punch packet to b.
func AppendPunch(b []byte, kind PunchKind, token uint64) []byte {
	b = append(b, punchMagic[:]...)
	b = append(b, byte(kind))
	return binary.BigEndian.AppendUint64(b, token)
}

// ParsePunch decodes a punch packet. ok is false for anything else.
func ParsePunch(b []byte) (kind PunchKind, token uint64, ok bool) {
	if len(b) != PunchPacketLen || [4]byte(b[:4]) != punchMagic {
		return 0, 0, false
	}
	kind = PunchKind(b[4])
	if kind != PunchProbe && kind != PunchAck {
		return 0, 0, false
	}
	return kind, binary.BigEndian.Uint64(b[5:]), true
}

// PunchState is where a Puncher is.
type PunchState uint8

// Punch states.
const (
	Punching PunchState = iota
	Direct              // a two-way path is proven; see Path
	Failed              // Timeout passed without an ack: use a relay
)

var punchStateNames = [...]string{"punching", "direct", "failed"}

func (s PunchState) String() string {
	if int(s) < len(punchStateNames) {
		return punchStateNames[s]
	}
	return "state?"
}

// PunchConfig configures a Puncher.
type PunchConfig struct {
	// Token identifies the session; packets with another token are
	// ignored. The tracker picks it and gives it to both peers.
	Token uint64
	// Interval between probe rounds; default 50 ms.
	Interval time.Duration
	// Timeout after which an unanswered attempt fails; default 3 s.
	Timeout time.Duration
	// MaxTargets bounds how many addresses are probed (candidates plus
	// peer-reflexive ones learned); default 8.
	MaxTargets int
}

func (c *PunchConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = 50 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.MaxTargets <= 0 {
		c.MaxTargets = 8
	}
}

// Packet is a punch packet to send.
type Packet struct {
	To   Addr
	Data []byte
}

// Puncher is one side of one punching attempt. It is a pure state
// machine: the caller feeds it received packets and the time, sends what
// Ready returns and calls Tick at Deadline. Not safe for concurrent use.
type Puncher struct {
	cfg      PunchConfig
	targets  []Addr // candidates in the order given, then learned ones
	start    time.Time
	nextSend time.Time
	state    PunchState
	path     Addr
	out      []Packet
	rounds   int
	probesIn int
}

// NewPuncher starts an attempt at now towards the remote's candidates
// (duplicates and invalid addresses are dropped). The first probe round
// is ready at once.
func NewPuncher(cfg PunchConfig, candidates []Addr, now time.Time) *Puncher {
	cfg.defaults()
	p := &Puncher{cfg: cfg, start: now, nextSend: now}
	for _, c := range candidates {
		p.addTarget(c)
	}
	p.Tick(now)
	return p
}

func (p *Puncher) addTarget(a Addr) {
	if a.Valid() && !slices.Contains(p.targets, a) && len(p.targets) < p.cfg.MaxTargets {
		p.targets = append(p.targets, a)
	}
}

// Tick advances the attempt to now: sends a probe round when one is due
// and fails the attempt after Timeout.
func (p *Puncher) Tick(now time.Time) {
	if p.state != Punching {
		return
	}
	if !now.Before(p.start.Add(p.cfg.Timeout)) {
		p.state = Failed
		return
	}
	if now.Before(p.nextSend) {
		return
	}
	for _, t := range p.targets {
		p.out = append(p.out, Packet{To: t, Data: AppendPunch(nil, PunchProbe, p.cfg.Token)})
	}
	p.rounds++
	p.nextSend = now.Add(p.cfg.Interval)
}

// Receive feeds a packet that arrived from the given address. It returns
// false if the packet is not a punch packet of this session (the caller
// passes it on). Probes are answered even after the attempt ended, so
// the remote side can finish too.
func (p *Puncher) Receive(now time.Time, from Addr, b []byte) bool {
	kind, token, ok := ParsePunch(b)
	if !ok || token != p.cfg.Token {
		return false
	}
	switch kind {
	case PunchProbe:
		p.probesIn++
		p.out = append(p.out, Packet{To: from, Data: AppendPunch(nil, PunchAck, p.cfg.Token)})
		if p.state == Punching {
			p.addTarget(from) // peer-reflexive: follow what we actually see
		}
	case PunchAck:
		if p.state == Punching && now.Before(p.start.Add(p.cfg.Timeout)) {
			p.state = Direct
			p.path = from
		}
	}
	return true
}

// Ready returns the packets to send now and forgets them.
func (p *Puncher) Ready() []Packet {
	out := p.out
	p.out = nil
	return out
}

// Deadline is when Tick must next be called; zero once the attempt ended.
func (p *Puncher) Deadline() time.Time {
	if p.state != Punching {
		return time.Time{}
	}
	return minTime(p.nextSend, p.start.Add(p.cfg.Timeout))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// State returns the attempt's state.
func (p *Puncher) State() PunchState { return p.state }

// Path returns the remote address the path was proven to (zero unless
// Direct).
func (p *Puncher) Path() Addr { return p.path }

// Targets returns the addresses being probed: the candidates, then the
// peer-reflexive addresses learned.
func (p *Puncher) Targets() []Addr { return slices.Clone(p.targets) }

// Elapsed returns how long the attempt has run at now (for connect-time
// figures).
func (p *Puncher) Elapsed(now time.Time) time.Duration { return now.Sub(p.start) }
