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
