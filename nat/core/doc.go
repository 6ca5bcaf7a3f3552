// Package core is swarmtv's pure NAT logic: the RFC 5780 behaviour
// classifier (mapping, filtering, port preservation), mapping change
// detection, and the pairing rule that says which two NATs can be punched
// through directly.
//
// It owns no socket, clock or goroutine. The shell (package nat) runs the
// RFC 5780 tests with a STUN client over a peer's one UDP socket, fills an
// Observations value and hands it to Classify; the simulator uses the same
// Type and CanPunch rules for its NAT models.
//
// Addresses are plain values (Addr: an IP in its text form and a port) so
// this package needs no import of net or net/netip; the shell converts.
package core
