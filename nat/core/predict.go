package core

// Port prediction (RFC 5128 section 3.6 calls it "port number
// prediction"): a NAT whose mapping depends on the remote but hands out
// ports in a fixed step (many home routers allocate sequentially) will
// most likely give the socket's next mapping — the one towards the peer —
// the next port in that step. Listing those ports as candidates lets a
// port-restricted peer open its filter for them, so such a pair can punch
// although CanPunch, which assumes nothing about allocation, says it
// cannot. A NAT that allocates at random (Linux masquerade
// fully-random) shows no step and gets no prediction.

// maxPortStep is the largest step taken as sequential allocation.
const maxPortStep = 16

// PortStep returns the constant step between the ports of the three
// mappings RFC 5780's mapping tests saw (tests I, II and III), or 0 when
// there is none: the mapping is endpoint-independent, an answer is
// missing, the public IP changed, or the steps differ.
func PortStep(o Observations) int {
	m1, m2, m3 := o.Mapped1, o.Mapped2, o.Mapped3
	if !m1.Valid() || !m2.Valid() || !m3.Valid() || m1.IP != m2.IP || m2.IP != m3.IP {
		return 0
	}
	d1 := int(m2.Port) - int(m1.Port)
	d2 := int(m3.Port) - int(m2.Port)
	if d1 != d2 || d1 == 0 || d1 > maxPortStep || d1 < -maxPortStep {
		return 0
	}
	return d1
}

// PredictPorts returns the next n addresses a NAT with a constant port
// step will likely allocate after its last observed mapping, or nil if it
// shows no step.
func PredictPorts(o Observations, n int) []Addr {
	step := PortStep(o)
	if step == 0 {
		return nil
	}
	var out []Addr
	p := int(o.Mapped3.Port)
	for range n {
		p += step
		if p < 1024 || p > 65535 {
			break
		}
		out = append(out, Addr{IP: o.Mapped3.IP, Port: uint16(p)})
	}
	return out
}
