package core

// CanPunch reports whether two sockets behind NATs with results a and b
// can reach each other directly by simultaneous hole punching, each side
// sending to the address it actually sees the other come from
// (peer-reflexive), without port prediction.
//
// The rule (RFC 4787 sections 4.1 and 5, measured on real Linux NATs in
// the lab): if both map endpoint-independently, each side's reflexive
// address is the one the other reaches it at, and both punches open the
// right filters. If one side's mapping depends on the remote, the other
// side learns its real port only from its first packet, so it must accept
// that packet: its filtering may depend on the address but not the port.
// If both depend on the remote, neither knows where to send: a relay is
// needed.
func CanPunch(a, b Result) bool {
	if a.Type == TypeBlocked || b.Type == TypeBlocked || a.Mapping == Unknown || b.Mapping == Unknown {
		return false
	}
	aEIM, bEIM := a.Mapping == EndpointIndependent, b.Mapping == EndpointIndependent
	switch {
	case aEIM && bEIM:
		return true
	case aEIM:
		return accepts(a.Filtering)
	case bEIM:
		return accepts(b.Filtering)
	}
	return false
}

// accepts: a NAT with filtering f lets in a packet from a port it has not
// sent to, on an address it has sent to.
func accepts(f Behaviour) bool {
	return f == EndpointIndependent || f == AddressDependent
}

// ParseType returns the Type named s (as Type.String gives it). ok is
// false for any other string.
func ParseType(s string) (t Type, ok bool) {
	for i, n := range typeNames {
		if n == s {
			return Type(i), true
		}
	}
	return TypeUnknown, false
}

// Typical returns the behaviour a NAT of type t has (RFC 4787 sections
// 4.1 and 5), for when only its type is known, e.g. at the tracker,
// which hears peers' NAT classes by name. A symmetric NAT is taken to
// filter by address and port, the stricter case.
func Typical(t Type) Result {
	r := Result{Type: t, NAT: t != TypeOpen, Mapping: EndpointIndependent}
	switch t {
	case TypeOpen, TypeFullCone:
		r.Filtering = EndpointIndependent
	case TypeRestricted:
		r.Filtering = AddressDependent
	case TypePortRestricted:
		r.Filtering = AddressAndPortDependent
	case TypeSymmetric:
		r.Mapping, r.Filtering = AddressAndPortDependent, AddressAndPortDependent
	default:
		r.Mapping = Unknown
	}
	return r
}

// Class names the NAT in front of a socket for the tracker: r's Type,
// or, where the tests could not tell the type but could tell the
// mapping (a STUN server with one address cannot tell endpoint-
// independent from address-dependent filtering), the stricter type that
// fits what was seen: portrestricted if no change-port answer came,
// restricted if one did. A socket with no NAT in front is open. ok is
// false when nothing useful is known (no answer, unknown mapping).
func Class(r Result, o Observations) (t Type, ok bool) {
	switch r.Type {
	case TypeUnknown, TypeBlocked:
	default:
		return r.Type, true
	}
	if r.Type == TypeBlocked || r.Mapping != EndpointIndependent {
		return TypeUnknown, false
	}
	switch {
	case !r.NAT:
		return TypeOpen, true
	case o.FilterChangePort:
		return TypeRestricted, true
	default:
		return TypePortRestricted, true
	}
}

// CanPunchPredicting is CanPunch with port prediction (RFC 5128 section
// 3.6): a side whose mapping depends on the remote but whose NAT hands
// out ports in a fixed step lists its predicted next mappings among its
// candidates (aPredicts, bPredicts). A remote with endpoint-independent
// mapping probes those ports, which opens its own filter for them
// whatever its filtering, and the predicting side's first probe towards
// the remote's reflexive address gets one of them: such a pair can
// punch. Two sides that both depend on the remote still cannot.
func CanPunchPredicting(a, b Result, aPredicts, bPredicts bool) bool {
	if CanPunch(a, b) {
		return true
	}
	if a.Type == TypeBlocked || b.Type == TypeBlocked || a.Mapping == Unknown || b.Mapping == Unknown {
		return false
	}
	aEIM, bEIM := a.Mapping == EndpointIndependent, b.Mapping == EndpointIndependent
	return aEIM && bPredicts || bEIM && aPredicts
}
