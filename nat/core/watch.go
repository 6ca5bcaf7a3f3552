package core

// MappingWatch notices when a NAT hands a socket a new public address,
// e.g. after the NAT rebooted or its WAN link bounced (RFC 4787 section
// 4.3: a mapping that expires or is lost comes back elsewhere). Feed it
// every XOR-MAPPED-ADDRESS seen from the same server; the zero value is
// ready.
type MappingWatch struct {
	last Addr
	n    int // changes seen
}

// Observe records a mapped address and reports whether it differs from
// the previous one. The first address is not a change; a zero Addr (no
// answer) is ignored.
func (w *MappingWatch) Observe(mapped Addr) (changed bool, prev Addr) {
	if !mapped.Valid() {
		return false, Addr{}
	}
	prev = w.last
	w.last = mapped
	if prev.Valid() && prev != mapped {
		w.n++
		return true, prev
	}
	return false, prev
}

// Current returns the latest mapped address (zero before the first).
func (w *MappingWatch) Current() Addr { return w.last }

// Changes returns how many times the mapping changed.
func (w *MappingWatch) Changes() int { return w.n }
