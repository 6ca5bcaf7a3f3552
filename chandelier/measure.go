package chandelier

// Figures are the invariants and quality figures of a set of assignments
// (DESIGN.md, "The shared report": tree_depth, cross_isp_*). The first
// group must be zero for a correct placement.
type Figures struct {
	OverCapacity  int // parents (the origin included) with more children than their feeds
	MultiInterior int // peers with children in more than one stripe
	Unreachable   int // edges between NAT classes that cannot connect directly, not marked relayed
	Cycles        int // (peer, stripe) pairs whose parent chain loops
	BadBackups    int // backups that are unknown, the peer, its parent, below either, or unreachable

	Peers     int
	Pairs     int     // peers × stripes
	Deficit   int     // pairs without a parent chain to the origin: the origin's fallback covers them
	DepthMean float64 // over the pairs that reach the origin; the origin's children are at 1
	DepthMax  int
	Interior  int // peers with children
	// CrossISP counts peer-to-peer edges whose parent is in another ISP;
	// ISPEntries counts the edges into an ISP's part of a stripe tree
	// from outside it (another ISP or the origin); ISPLowerBound is one
	// such feed per ISP per stripe.
	CrossISP      int
	ISPEntries    int
	ISPLowerBound int
	OriginFeeds   int // the origin's children, all stripes
	Relayed       int // edges marked relayed (Assignment.Relayed)
}

// Measure checks as (one assignment per peer and stripe, as
// [Placer.Assignments] returns them) against peers and cfg, and computes
// the figures. It does not trust the placer: depths, cycles and
// capacities are recomputed from the edges.
func Measure(cfg Config, peers []Peer, as []Assignment) Figures {
	cfg.setDefaults()
	K := cfg.Stripes
	n := len(peers)
	idx := make(map[string]int, n)
	for k, p := range peers {
		idx[p.ID] = k
	}
	const none, origin = -1, -2
	parent := make([]int, n*K)
	for k := range parent {
		parent[k] = none
	}
	backups := make([][]string, n*K)
	relayed := make([]bool, n*K)
	for _, a := range as {
		k, ok := idx[a.Peer]
		if !ok || a.Stripe < 0 || a.Stripe >= K {
			continue
		}
		switch p, ok := idx[a.Parent]; {
		case a.Parent == Origin:
			parent[k*K+a.Stripe] = origin
		case ok:
			parent[k*K+a.Stripe] = p
		}
		backups[k*K+a.Stripe] = a.Backups
		relayed[k*K+a.Stripe] = a.Relayed
	}
	connect := cfg.Connect
	f := Figures{Peers: n, Pairs: n * K}
	children := make([]int, n)
	stripesFed := make([]uint64, n)
	isps := map[string]struct{}{}
	for _, p := range peers {
		isps[p.ISP] = struct{}{}
	}
	f.ISPLowerBound = len(isps) * K
	depth := make([]int, n*K) // 0 unknown, -1 in progress, -2 no chain, >0 depth
	var depthSum int
	for k := range n {
		for s := range K {
			p := parent[k*K+s]
			switch {
			case p == origin:
				f.OriginFeeds++
				f.ISPEntries++
			case p >= 0:
				children[p]++
				stripesFed[p] |= 1 << s
				switch {
				case relayed[k*K+s]:
					f.Relayed++
				case !connect(peers[p].NAT.class(), peers[k].NAT.class()):
					f.Unreachable++
				}
				if peers[p].ISP != peers[k].ISP {
					f.CrossISP++
					f.ISPEntries++
				}
			}
			d := resolveDepth(parent, depth, k, s, K, &f)
			if d > 0 {
				depthSum += d
				f.DepthMax = max(f.DepthMax, d)
			} else {
				f.Deficit++
			}
		}
	}
	if reached := f.Pairs - f.Deficit; reached > 0 {
		f.DepthMean = float64(depthSum) / float64(reached)
	}
	if f.OriginFeeds > cfg.OriginFeeds {
		f.OverCapacity++
	}
	for k, p := range peers {
		if children[k] > cfg.Feeds(p.Upload) {
			f.OverCapacity++
		}
		if children[k] > 0 {
			f.Interior++
		}
		if stripesFed[k]&(stripesFed[k]-1) != 0 {
			f.MultiInterior++
		}
	}
	// Backups: known, not the peer or its parent, not below either (a
	// switch would loop or fail with the parent), reachable.
	for k := range n {
		for s := range K {
			for _, b := range backups[k*K+s] {
				j, ok := idx[b]
				p := parent[k*K+s]
				if !ok || j == k || j == p || below(parent, j, k, s, K) ||
					p >= 0 && below(parent, j, p, s, K) || !connect(peers[j].NAT.class(), peers[k].NAT.class()) {
					f.BadBackups++
				}
			}
		}
	}
	return f
}

// resolveDepth returns the depth of peer k in stripe s (memoized in
// depth: 0 unknown, -1 on the current walk, -2 no chain to the origin),
// or -2 when its chain does not reach the origin; loops count in
// f.Cycles.
func resolveDepth(parent, depth []int, k, s, K int, f *Figures) int {
	var path []int
	base := 0 // depth of where the walk stopped (0: the origin), or -2
	for j := k; ; {
		v := depth[j*K+s]
		if v > 0 || v == -2 {
			base = v
			break
		}
		if v == -1 {
			f.Cycles++
			base = -2
			break
		}
		path = append(path, j)
		depth[j*K+s] = -1
		p := parent[j*K+s]
		if p == -2 {
			break
		}
		if p == -1 {
			base = -2
			break
		}
		j = p
	}
	d := base
	for x := len(path) - 1; x >= 0; x-- {
		if d >= 0 {
			d++
			depth[path[x]*K+s] = d
		} else {
			depth[path[x]*K+s] = -2
		}
	}
	return depth[k*K+s]
}

// below reports whether j is in the subtree of a in stripe s.
func below(parent []int, j, a, s, K int) bool {
	for steps := 0; j >= 0 && steps <= len(parent); steps++ {
		if j == a {
			return true
		}
		j = parent[j*K+s]
	}
	return false
}
