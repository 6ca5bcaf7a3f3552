package chandelier

import (
	"cmp"
	"slices"
)

// rebalance keeps every ISP's stripes supplied. Churn and upload changes
// drain stripes unevenly; a stripe whose forwarders in an ISP offer fewer
// feeds than the ISP has peers (plus a margin for joiners) gets more: a
// leaf-only peer with upload becomes a forwarder of it (no edge changes),
// else a forwarder of a stripe with surplus switches over, the one with
// the fewest children first (its children are re-placed this round).
func (o *Optimizer) rebalance() {
	K := o.cfg.Stripes
	need := func(st *ispState) int { return st.peers + st.peers/20 + 1 }
	short := false
	for k := range o.isps {
		st := &o.isps[k]
		for s := range K {
			if st.peers > 0 && st.supply[s] < need(st) {
				short = true
			}
		}
	}
	n := len(o.byID)
	needAll := n + n/20 + 1 - o.cfg.OriginFeeds/K
	sum := 0
	for s := range K {
		sum += o.total[s]
	}
	// Across the swarm, only when the upload suffices for every stripe
	// (with scarce upload every stripe is short and moves cannot help).
	if sum >= K*needAll {
		for s := range K {
			if o.total[s] < needAll {
				short = true
				defer o.rebalanceGlobal(needAll)
				break
			}
		}
	}
	if !short {
		return
	}
	// Candidates per ISP: leaf-only peers with upload, then forwarders by
	// how many children they would orphan.
	spare := make([][]int32, len(o.isps))
	fwd := make([][]int32, len(o.isps))
	for i := int32(1); int(i) < len(o.nodes); i++ {
		x := &o.nodes[i]
		switch {
		case !x.alive || x.feeds == 0:
		case x.interior < 0:
			spare[x.isp] = append(spare[x.isp], i)
		default:
			fwd[x.isp] = append(fwd[x.isp], i)
		}
	}
	for k := range o.isps {
		st := &o.isps[k]
		slices.SortFunc(fwd[k], func(a, b int32) int {
			return cmp.Or(cmp.Compare(len(o.nodes[a].kids), len(o.nodes[b].kids)), cmp.Compare(a, b))
		})
		for s := range K {
			for st.peers > 0 && st.supply[s] < need(st) {
				if n := len(spare[k]); n > 0 {
					i := spare[k][n-1]
					spare[k] = spare[k][:n-1]
					o.setInterior(i, s)
					continue
				}
				moved := false
				for j, i := range fwd[k] {
					x := &o.nodes[i]
					t := int(x.interior)
					if t == s || t < 0 || st.supply[t]-int(x.feeds) < need(st) {
						continue
					}
					o.dropInterior(i)
					o.setInterior(i, s)
					fwd[k] = slices.Delete(fwd[k], j, j+1)
					moved = true
					break
				}
				if !moved {
					break
				}
			}
		}
	}
}

// setInterior makes leaf-only peer i a forwarder of stripe s. It leaves
// its parent in s, so this round places it again as a forwarder (above
// the leaves) rather than leaving its slots wherever it sat as a leaf.
func (o *Optimizer) setInterior(i int32, s int) {
	x := &o.nodes[i]
	o.unlink(i, s)
	o.stale[s] = true // its slots are new to the stripe
	x.interior = int16(s)
	o.setHead(i)
	st := &o.isps[x.isp]
	st.supply[s] += int(x.feeds)
	o.total[s] += int(x.feeds)
	st.interior[s]++
}

// rebalanceGlobal keeps every stripe supplied across the whole swarm
// when ISPs are too small to supply each of their stripes alone (many
// small ISPs): a stripe whose forwarders offer fewer than need feeds
// gets a leaf-only peer with upload, else a forwarder of a stripe with
// surplus (the one with the fewest children first), from any ISP.
func (o *Optimizer) rebalanceGlobal(need int) {
	K := o.cfg.Stripes
	var spare, fwd []int32
	for s := range K {
		if o.total[s] >= need {
			continue
		}
		if spare == nil && fwd == nil {
			for i := int32(1); int(i) < len(o.nodes); i++ {
				x := &o.nodes[i]
				switch {
				case !x.alive || x.feeds == 0:
				case x.interior < 0:
					spare = append(spare, i)
				default:
					fwd = append(fwd, i)
				}
			}
			slices.SortFunc(fwd, func(a, b int32) int {
				return cmp.Or(cmp.Compare(len(o.nodes[a].kids), len(o.nodes[b].kids)), cmp.Compare(a, b))
			})
		}
		for o.total[s] < need {
			if n := len(spare); n > 0 {
				i := spare[n-1]
				spare = spare[:n-1]
				o.setInterior(i, s)
				continue
			}
			moved := false
			for j, i := range fwd {
				x := &o.nodes[i]
				t := int(x.interior)
				if t == s || t < 0 || o.total[t]-int(x.feeds) < need {
					continue
				}
				o.dropInterior(i)
				o.setInterior(i, s)
				fwd = slices.Delete(fwd, j, j+1)
				moved = true
				break
			}
			if !moved {
				break
			}
		}
	}
}
