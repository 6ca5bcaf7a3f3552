package netlab

import (
	"fmt"
	"strings"
)

// seqPorts is how many ports a SymmetricSequential router cycles through.
const seqPorts = 1024

// Ruleset returns the nftables ruleset of a router of the given type. It
// starts by deleting the lab's table, so applying it again resets the
// router's NAT state kept in nftables (the cone maps).
//
// The router's interfaces are "wan" (public) and "lan".
func Ruleset(n NAT) string {
	masq := "masquerade"
	switch n {
	case Symmetric:
		masq = "masquerade fully-random"
	case SymmetricSequential:
		// A new port for every new UDP flow, counting up from 40000 (the
		// counter is per rule, so per router; a map gives the port, as a
		// numgen value would be taken in the wrong byte order); other
		// traffic is masqueraded.
		var ports strings.Builder
		for i := range seqPorts {
			if i > 0 {
				ports.WriteString(", ")
			}
			fmt.Fprintf(&ports, "%d : %d", i, 40000+i)
		}
		masq = fmt.Sprintf("meta l4proto udp masquerade to :numgen inc mod %d map { %s }\n\t\toifname \"wan\" masquerade", seqPorts, ports.String())
	}
	var maps, pre, learn string
	switch n {
	case FullCone:
		// public port → LAN address and port, learned from every
		// outgoing UDP packet's conntrack entry after SNAT.
		maps = "map cone { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout 5m; }"
		pre = `iifname "wan" meta l4proto udp dnat ip to udp dport map @cone`
		learn = `oifname "wan" meta l4proto udp update @cone { ct reply proto-dst : ct original ip saddr . ct original proto-src }`
	case Restricted:
		// (remote address, public port) → LAN address and port.
		maps = "map cone { type ipv4_addr . inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout 5m; }"
		pre = `iifname "wan" meta l4proto udp dnat ip to ip saddr . udp dport map @cone`
		learn = `oifname "wan" meta l4proto udp update @cone { ip daddr . ct reply proto-dst : ct original ip saddr . ct original proto-src }`
	}
	return fmt.Sprintf(`table ip swarmtvlab
delete table ip swarmtvlab
table ip swarmtvlab {
	%s
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		%s
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" %s
	}
	chain learn {
		type filter hook postrouting priority srcnat + 1; policy accept;
		%s
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" meta l4proto udp drop
	}
}
`, maps, pre, masq, learn)
}
