// Package nat is the socket shell around nat/core: a STUN client that
// runs RFC 5780 NAT behaviour discovery over a socket it does not own.
//
// Like tailscale's netcheck, a [Client] owns no socket: it is given a
// Send func that writes a packet from the peer's one UDP socket (the
// same socket that carries QUIC, e.g. transport.Endpoint.WriteTo) and is
// fed the STUN packets that arrive there through [Client.Receive] (e.g.
// from transport.Endpoint.HandleNonQUIC). [Attach] wires a Client to a
// transport-style endpoint; [ConnClient] runs one over a plain
// net.PacketConn.
//
// The same dispatcher feeds a [PunchSession], which drives a
// core.Puncher (simultaneous hole punching towards the remote's
// candidates) on the same socket, and [Client.Watch], which notices a
// changed mapping. [Relay] is the fallback for pairs that cannot punch:
// a session port per pair that forwards between exactly two bound
// addresses, so QUIC runs through it unchanged.
//
// Concurrency: a Client's methods are safe for concurrent use; several
// binding transactions may be outstanding at once.
package nat
