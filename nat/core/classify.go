package core

import (
	"strconv"
)

// Addr is a transport address: an IP in canonical text form (as
// netip.Addr.String gives it) and a UDP port. The zero Addr means "no
// answer".
type Addr struct {
	IP   string
	Port uint16
}

// Valid reports whether a is a real address (a test got an answer).
func (a Addr) Valid() bool { return a.IP != "" }

func (a Addr) String() string {
	if !a.Valid() {
		return "none"
	}
	ip := a.IP
	for i := 0; i < len(ip); i++ {
		if ip[i] == ':' {
			ip = "[" + ip + "]"
			break
		}
	}
	return ip + ":" + strconv.Itoa(int(a.Port))
}

// Behaviour is an RFC 4787 mapping (section 4.1) or filtering (section 5)
// behaviour, as RFC 5780 section 4.3 and 4.4 discover it.
type Behaviour uint8

// Behaviours.
const (
	Unknown                 Behaviour = iota // not tested, or the tests could not tell
	EndpointIndependent                      // one mapping / any remote may send
	AddressDependent                         // per remote IP
	AddressAndPortDependent                  // per remote IP and port
)

var behaviourNames = [...]string{"unknown", "endpoint-independent", "address-dependent", "address-and-port-dependent"}

func (b Behaviour) String() string {
	if int(b) < len(behaviourNames) {
		return behaviourNames[b]
	}
	return "behaviour(" + strconv.Itoa(int(b)) + ")"
}

// Type is the classic name of a NAT, derived from its mapping and
// filtering behaviour. The names match the simulator's NAT types.
type Type uint8

// Types.
const (
	TypeUnknown        Type = iota // the tests did not complete
	TypeBlocked                    // no answer from the STUN server at all: UDP is blocked
	TypeOpen                       // no NAT and no filtering: reachable at the local address
	TypeFullCone                   // EIM, endpoint-independent filtering
	TypeRestricted                 // EIM, address-dependent filtering
	TypePortRestricted             // EIM, address-and-port-dependent filtering
	TypeSymmetric                  // address- or address-and-port-dependent mapping
)

var typeNames = [...]string{"unknown", "blocked", "open", "fullcone", "restricted", "portrestricted", "symmetric"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Observations are the answers of the RFC 5780 tests, run from one local
// socket against a server with primary address A1:P1 and alternate
// address A2:P2 (its OTHER-ADDRESS). A zero Addr means the request was
// not answered (or not sent).
type Observations struct {
	// Local is the socket's local address (the host's own address and
	// port, not a wildcard).
	Local Addr
	// Primary is the server address test I was sent to (A1:P1).
	Primary Addr
	// Other is the OTHER-ADDRESS of test I's answer (A2:P2). If its IP
	// equals Primary's, the server has one address and two ports.
	Other Addr

	// Mapped1 is the XOR-MAPPED-ADDRESS of test I (sent to A1:P1,
	// section 4.3 and 4.4).
	Mapped1 Addr
	// Mapped2 is the XOR-MAPPED-ADDRESS of mapping test II (sent to
	// A2:P1, section 4.3). Unused when the server has one address.
	Mapped2 Addr
	// Mapped3 is the XOR-MAPPED-ADDRESS of mapping test III (sent to
	// A2:P2, section 4.3; to A1:P2 when the server has one address).
	Mapped3 Addr

	// FilterChangeIPPort: the answer to filtering test II (a request to
	// A1:P1 with CHANGE-REQUEST change-IP and change-port, answered from
	// A2:P2) arrived (section 4.4).
	FilterChangeIPPort bool
	// FilterChangePort: the answer to filtering test III (change-port
	// only, answered from A1:P2) arrived (section 4.4).
	FilterChangePort bool
	// FilterTested: the filtering tests were run (the server supports
	// CHANGE-REQUEST); if false, filtering is Unknown.
	FilterTested bool
}

// Result is what the tests say about the NAT in front of a socket.
type Result struct {
	// Mapped is the reflexive (public) address test I saw: the candidate
	// to give a remote peer.
	Mapped Addr
	// NAT: the mapped address differs from the local one (RFC 5780
	// section 4.3: "If the XOR-MAPPED-ADDRESS is equal to the local
	// address, then there is no NAT").
	NAT       bool
	Mapping   Behaviour
	Filtering Behaviour
	// PortPreserved: the NAT kept the local port (RFC 4787 section 4.1,
	// "port preservation"); with a symmetric NAT it makes port prediction
	// plausible.
	PortPreserved bool
	// SingleAddress: the server had one address, so address-dependent
	// mapping could not be told from endpoint-independent mapping.
	SingleAddress bool
	// PortStep is the constant step between the ports of the mapping
	// tests' three mappings, 0 if none (see PortStep): a symmetric NAT
	// with a step is a candidate for port prediction.
	PortStep int
	Type     Type
}

// Classify applies RFC 5780 sections 4.3 (mapping) and 4.4 (filtering)
// to the observations.
func Classify(o Observations) Result {
	r := Result{Mapped: o.Mapped1}
	if !o.Mapped1.Valid() {
		r.Type = TypeBlocked
		return r
	}
	r.NAT = o.Mapped1 != o.Local
	r.PortPreserved = o.Mapped1.Port == o.Local.Port
	r.SingleAddress = o.Other.Valid() && o.Other.IP == o.Primary.IP
	r.Mapping = classifyMapping(o, r)
	if o.FilterTested {
		switch {
		case o.FilterChangeIPPort:
			r.Filtering = EndpointIndependent
		case o.FilterChangePort:
			r.Filtering = AddressDependent
		default:
			r.Filtering = AddressAndPortDependent
		}
	}
	r.PortStep = PortStep(o)
	r.Type = typeOf(r)
	return r
}

// classifyMapping is RFC 5780 section 4.3.
func classifyMapping(o Observations, r Result) Behaviour {
	if !r.NAT {
		return EndpointIndependent
	}
	if r.SingleAddress {
		// Only A1:P2 was tried: the same mapping means endpoint- or
		// address-dependent (indistinguishable), another one means
		// address-and-port-dependent.
		switch {
		case !o.Mapped3.Valid():
			return Unknown
		case o.Mapped3 == o.Mapped1:
			return EndpointIndependent
		default:
			return AddressAndPortDependent
		}
	}
	if !o.Mapped2.Valid() {
		return Unknown
	}
	if o.Mapped2 == o.Mapped1 {
		return EndpointIndependent
	}
	switch {
	case !o.Mapped3.Valid():
		return Unknown
	case o.Mapped3 == o.Mapped2:
		return AddressDependent
	default:
		return AddressAndPortDependent
	}
}

func typeOf(r Result) Type {
	switch r.Mapping {
	case Unknown:
		return TypeUnknown
	case AddressDependent, AddressAndPortDependent:
		return TypeSymmetric
	}
	switch r.Filtering {
	case EndpointIndependent:
		if !r.NAT {
			return TypeOpen
		}
		return TypeFullCone
	case AddressDependent:
		return TypeRestricted
	case AddressAndPortDependent:
		return TypePortRestricted
	}
	return TypeUnknown
}
