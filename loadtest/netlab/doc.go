// Package netlab builds a small emulated internet out of Linux network
// namespaces: an "internet" namespace holding one bridge, a public host
// with two addresses on it (for RFC 5780 STUN), and NAT routers of the
// four classic types (full cone, restricted cone, port-restricted cone,
// symmetric) built with nftables, each with hosts on its LAN behind it.
//
// Layout (addresses are documentation ranges; nothing is routed out of
// the machine, and the root namespace's links, routes and firewall are
// never touched):
//
//	public host  pub  eth0 203.0.113.2/24, 203.0.113.3/24
//	router i     r<i> wan  203.0.113.(10+i)/24, lan 10.(i+1).0.1/24
//	host j of i  h<i>x<j> eth0 10.(i+1).0.(j+2)/24, default via the router
//
// Every namespace is named with a random per-lab prefix, so labs of
// concurrent test processes do not meet. [Lab.Close] deletes all of them
// (sockets opened inside keep a namespace alive until they are closed).
//
// Go code reaches inside with [Host.Do], which runs a function on an OS
// thread switched into the host's namespace (sockets opened there stay in
// it), and commands with [Host.Command] (nsenter, ~9 ms, not the ~300 ms
// of `ip netns exec`).
//
// The NAT rules follow ../shared/LAB.md (measured with RFC 5780 tests):
// port-restricted is plain masquerade; symmetric is masquerade
// fully-random; full and restricted cone add an nftables dynamic map,
// learned in postrouting from conntrack, that DNATs inbound UDP (keyed on
// the remote address too for restricted cone). Every router drops
// unsolicited UDP to itself, as a home router does.
//
// Impairments: [Lab.SetLoss] drops a share of a router's forwarded
// packets; [Lab.Partition] cuts the internet bridge between two groups of
// sites and [Lab.Heal] mends it; [Lab.BounceWAN] takes a router's uplink
// down and up, losing its mappings; [Lab.SetDelay] holds a router's
// forwarded packets for a delay ± jitter (no netem in this kernel: an
// iptables NFQUEUE rule hands them to a netfilter netlink socket this
// process serves in the router's namespace).
//
// NAT types beyond the classic four: [SymmetricSequential] allocates the
// ports of new flows in sequence, so its mappings can be predicted.
//
// It needs root, iproute2, nftables and nsenter (and iptables for
// SetDelay).
package netlab
