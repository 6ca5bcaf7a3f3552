package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// NATType is a peer's NAT as the simulator models it: an RFC 4787
// mapping behaviour and filtering behaviour (or none, for a public host).
type NATType uint8

// NAT types, in the order --nat-mix lists them.
const (
	NATOpen           NATType = iota // public address, no NAT
	NATFullCone                      // endpoint-independent mapping and filtering
	NATRestricted                    // EIM, address-dependent filtering
	NATPortRestricted                // EIM, address-and-port-dependent filtering
	NATSymmetric                     // address-and-port-dependent mapping and filtering
	numNATTypes
)

var natNames = [numNATTypes]string{"open", "fullcone", "restricted", "portrestricted", "symmetric"}

func (t NATType) String() string {
	if t < numNATTypes {
		return natNames[t]
	}
	return "nat(" + strconv.Itoa(int(t)) + ")"
}

// behaviour is one RFC 4787 mapping (section 4.1) or filtering (section
// 5) behaviour.
type behaviour uint8

const (
	endpointIndependent behaviour = iota
	addressDependent
	addressAndPortDependent
)

// mapping and filtering return t's RFC 4787 behaviours. Open hosts have
// none; callers check for NATOpen first.
func (t NATType) mapping() behaviour {
	if t == NATSymmetric {
		return addressAndPortDependent
	}
	return endpointIndependent
}

func (t NATType) filtering() behaviour {
	switch t {
	case NATFullCone:
		return endpointIndependent
	case NATRestricted:
		return addressDependent
	}
	return addressAndPortDependent
}

// NATMix is the share of peers behind each NAT type; the shares sum to 1.
type NATMix [numNATTypes]float64

// DefaultNATMix is a consumer mix close to published measurements.
var DefaultNATMix = NATMix{0.2, 0.1, 0.1, 0.4, 0.2}

// ParseNATMix parses "open=0.2,fullcone=0.1,...". Types left out get 0;
// the shares must be non-negative and sum to 1 (within 0.001).
func ParseNATMix(s string) (NATMix, error) {
	var m NATMix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("nat mix %q: %q is not type=share", s, part)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		i := slices.Index(natNames[:], name)
		if i < 0 {
			return m, fmt.Errorf("nat mix %q: unknown type %q (want %s)", s, name, strings.Join(natNames[:], ", "))
		}
		if seen[name] {
			return m, fmt.Errorf("nat mix %q: %s given twice", s, name)
		}
		seen[name] = true
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || v < 0 || v > 1 {
			return m, fmt.Errorf("nat mix %q: share of %s must be a number in [0,1], got %q", s, name, val)
		}
		m[i] = v
	}
	sum := 0.0
	for _, v := range m {
		sum += v
	}
	if sum < 0.999 || sum > 1.001 {
		return m, fmt.Errorf("nat mix %q: shares sum to %.3f, want 1", s, sum)
	}
	return m, nil
}

// String formats m as ParseNATMix reads it.
func (m NATMix) String() string {
	var b strings.Builder
	for i, v := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", natNames[i], strconv.FormatFloat(v, 'g', -1, 64))
	}
	return b.String()
}

// draw picks a type for a uniform number u in [0,1).
func (m NATMix) draw(u float64) NATType {
	acc := 0.0
	for i, v := range m {
		acc += v
		if u < acc {
			return NATType(i)
		}
	}
	for i := len(m) - 1; i >= 0; i-- { // rounding: the last type with a share
		if m[i] > 0 {
			return NATType(i)
		}
	}
	return NATOpen
}

// endpoint is a transport address: IPv4 address and UDP port.
type endpoint struct {
	addr uint32
	port uint16
}

// binding is one NAT mapping: an external port and when it expires.
type binding struct {
	ext     uint16
	expires int64
}

// nat is one NAT box (RFC 4787) with time passed in: mappings are created
// by outbound packets, refreshed by them, and expire after timeout. A
// public host (NATOpen) has no state.
type nat struct {
	typ     NATType
	public  uint32 // external address (the host's own when open)
	timeout int64  // binding lifetime in ns (RFC 4787 REQ-5: at least 2 min)
	next    uint16 // next external port to allocate

	maps    map[mapKey]binding  // by mapping key (depends on the mapping behaviour)
	permits map[permitKey]int64 // filtering state: → expiry
}

type mapKey struct {
	src uint16   // internal port
	dst endpoint // zeroed parts per the mapping behaviour
}

type permitKey struct {
	ext    uint16
	remote endpoint // zeroed parts per the filtering behaviour
}

// natTimeout is the binding lifetime (RFC 4787 REQ-5 minimum).
const natTimeout = 120e9

func newNAT(t NATType, public uint32) *nat {
	n := &nat{typ: t, public: public, timeout: natTimeout, next: 20000}
	if t != NATOpen {
		n.maps = map[mapKey]binding{}
		n.permits = map[permitKey]int64{}
	}
	return n
}

// outbound sends a packet from internal port src to dst at now and
// returns the external endpoint it leaves from.
func (n *nat) outbound(now int64, src uint16, dst endpoint) endpoint {
	if n.typ == NATOpen {
		return endpoint{n.public, src}
	}
	if len(n.maps) > 64 {
		n.gc(now)
	}
	k := mapKey{src: src}
	switch n.typ.mapping() {
	case addressDependent:
		k.dst = endpoint{addr: dst.addr}
	case addressAndPortDependent:
		k.dst = dst
	}
	b, ok := n.maps[k]
	if !ok || b.expires <= now {
		b.ext = n.next
		n.next++
		if n.next < 20000 {
			n.next = 20000
		}
	}
	b.expires = now + n.timeout
	n.maps[k] = b
	pk := permitKey{ext: b.ext}
	switch n.typ.filtering() {
	case addressDependent:
		pk.remote = endpoint{addr: dst.addr}
	case addressAndPortDependent:
		pk.remote = dst
	}
	n.permits[pk] = now + n.timeout
	return endpoint{n.public, b.ext}
}

// inbound reports whether a packet from remote to external port ext passes
// at now.
func (n *nat) inbound(now int64, remote endpoint, ext uint16) bool {
	if n.typ == NATOpen {
		return true
	}
	pk := permitKey{ext: ext}
	switch n.typ.filtering() {
	case addressDependent:
		pk.remote = endpoint{addr: remote.addr}
	case addressAndPortDependent:
		pk.remote = remote
	}
	exp, ok := n.permits[pk]
	return ok && exp > now
}

// gc drops expired bindings and permits (deletes only: map order does not
// matter).
func (n *nat) gc(now int64) {
	for k, b := range n.maps {
		if b.expires <= now {
			delete(n.maps, k)
		}
	}
	for k, exp := range n.permits {
		if exp <= now {
			delete(n.permits, k)
		}
	}
}

// stunServer is the tracker's STUN endpoint.
var stunServer = endpoint{addr: 0x0a000001, port: 3478}

// peerPort is the internal UDP port every peer's one socket uses.
const peerPort = 4242

// punch runs the rendezvous of DESIGN.md, "NAT traversal": both sides
// learn their server-reflexive endpoint from STUN, swap them through the
// tracker and send to each other at the same time, a few rounds. It
// reports whether a direct path opened: a packet got through and the
// answer to its observed source got back.
func punch(now int64, a, b *nat) bool {
	ra := a.outbound(now, peerPort, stunServer)
	rb := b.outbound(now, peerPort, stunServer)
	for range 3 {
		// Both send to the other's reflexive endpoint.
		fa := a.outbound(now, peerPort, rb)
		fb := b.outbound(now, peerPort, ra)
		if b.inbound(now, fa, rb.port) {
			// b answers a's packet at its observed source.
			back := b.outbound(now, peerPort, fa)
			if a.inbound(now, back, fa.port) {
				return true
			}
		}
		if a.inbound(now, fb, ra.port) {
			back := a.outbound(now, peerPort, fb)
			if b.inbound(now, back, fb.port) {
				return true
			}
		}
		now += 100e6 // next round after 100 ms
	}
	return false
}

// punchable is, by the NAT types of its two sides, whether a punch gets
// through (punch between fresh NATs of those types). A punch's outcome
// depends on the two NATs' behaviours only, not on the bindings earlier
// packets left (TestPunchTypeOnly), so the simulator looks it up here
// rather than running punch on the peers' NATs: a punch then writes no
// state of the node at the other end, which may run on another core.
var punchable = func() (t [numNATTypes][numNATTypes]bool) {
	for a := range numNATTypes {
		for b := range numNATTypes {
			t[a][b] = punch(0, newNAT(a, 0x64000001), newNAT(b, 0x65000001))
		}
	}
	return t
}()

// canPunch reports whether a punch between a and b gets through.
func canPunch(a, b *nat) bool { return punchable[a.typ][b.typ] }
