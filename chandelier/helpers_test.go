package chandelier

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

const testRate = 2_000_000 // 2 Mbit/s stream

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// world generates peers the way the scenarios describe them:
// 4 ISPs of uneven size, a realistic NAT mix, heterogeneous upload with a
// chosen mean ratio to the stream rate, staggered session ages.
type world struct {
	rng   *rand.Rand
	ratio float64 // mean upload ÷ stream rate
	isps  int
	next  int
	peers map[string]Peer
	order []string // live IDs, in join order (map order never used)
}

func newWorld(seed uint64, ratio float64, isps int) *world {
	return &world{rng: rand.New(rand.NewPCG(seed, 0x5eed)), ratio: ratio, isps: isps, peers: map[string]Peer{}}
}

// upload draws from a spread whose mean is 1.5 × the rate, scaled to
// w.ratio: many weak uplinks, a few strong ones.
func (w *world) upload() int64 {
	levels := []struct {
		p, r float64
	}{{0.3, 0.3}, {0.3, 0.8}, {0.2, 1.5}, {0.1, 3}, {0.1, 5.7}} // mean 1.5
	u := w.rng.Float64()
	for _, l := range levels {
		if u < l.p {
			return int64(l.r / 1.5 * w.ratio * testRate)
		}
		u -= l.p
	}
	return int64(w.ratio * testRate)
}

func (w *world) nat() NAT {
	// open 15 %, full cone 20 %, restricted 20 %, port-restricted 30 %, symmetric 15 %.
	u := w.rng.Float64()
	for n, p := range []float64{0.15, 0.2, 0.2, 0.3, 0.15} {
		if u < p {
			return NAT(n)
		}
		u -= p
	}
	return NATSymmetric
}

func (w *world) isp() string {
	// Uneven: 40 / 30 / 20 / 10 % for 4 ISPs.
	weights := []float64{0.4, 0.3, 0.2, 0.1}
	if w.isps != 4 {
		return fmt.Sprintf("isp%d", w.rng.IntN(w.isps))
	}
	u := w.rng.Float64()
	for k, p := range weights {
		if u < p {
			return fmt.Sprintf("isp%d", k)
		}
		u -= p
	}
	return "isp3"
}

func (w *world) join(now time.Time) Peer {
	w.next++
	p := Peer{
		ID:     fmt.Sprintf("p%06d", w.next),
		Upload: w.upload(),
		ISP:    w.isp(),
		Region: fmt.Sprintf("r%d", w.rng.IntN(3)),
		NAT:    w.nat(),
		Joined: now.Add(-time.Duration(w.rng.IntN(600)) * time.Second),
	}
	w.peers[p.ID] = p
	w.order = append(w.order, p.ID)
	return p
}

func (w *world) joinN(n int, now time.Time) []Peer {
	out := make([]Peer, n)
	for k := range out {
		out[k] = w.join(now)
	}
	return out
}

// leaveN removes n random live peers.
func (w *world) leaveN(n int) []string {
	var out []string
	for range n {
		if len(w.order) == 0 {
			break
		}
		k := w.rng.IntN(len(w.order))
		id := w.order[k]
		w.order[k] = w.order[len(w.order)-1]
		w.order = w.order[:len(w.order)-1]
		delete(w.peers, id)
		out = append(out, id)
	}
	return out
}

// list returns the live peers in join order.
func (w *world) list() []Peer {
	out := make([]Peer, len(w.order))
	for k, id := range w.order {
		out[k] = w.peers[id]
	}
	return out
}

func testConfig(originFeeds int) Config {
	return Config{StreamRate: testRate, OriginFeeds: originFeeds}
}

// checkInvariants fails t when the placement breaks a hard rule.
func checkInvariants(t *testing.T, label string, f Figures) {
	t.Helper()
	if f.OverCapacity+f.MultiInterior+f.Unreachable+f.Cycles+f.BadBackups != 0 {
		t.Fatalf("%s: invariants broken: %+v", label, f)
	}
}

func newOpt(t testing.TB, cfg Config) *Optimizer {
	t.Helper()
	o, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func newBase(t testing.TB, cfg Config, seed uint64) *Baseline {
	t.Helper()
	b, err := NewBaseline(cfg, rand.NewPCG(seed, 1))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simPeers draws n peers the way the simulator does (internal/sim): a
// log-normal upload ratio (sigma 0.7) around ratio, capacity in whole
// stripe feeds at 1.25 × headroom (the tracker plans with exactly that
// upload), 4 equal ISPs, the simulator's NAT mix (port-restricted 40 %,
// symmetric 20 %). Its supply is tighter than world's: an ISP's stripe
// has only a few percent more feeds than peers.
func simPeers(n int, seed uint64, ratio float64, now time.Time) []Peer {
	r := rand.New(rand.NewPCG(seed, 7))
	const rate, stripes = 4_000_000, 4
	out := make([]Peer, n)
	for k := range out {
		x := min(max(ratio*math.Exp(0.7*r.NormFloat64()-0.245), 0.05), 50)
		feeds := int(x * stripes / 1.25)
		up := int64(0)
		if feeds > 0 {
			up = int64(math.Ceil(float64(feeds)*rate/stripes/DefaultUsable)) + 1
		}
		nat := []NAT{NATOpen, NATOpen, NATFullCone, NATRestricted, NATPortRestricted,
			NATPortRestricted, NATPortRestricted, NATPortRestricted, NATSymmetric, NATSymmetric}[r.IntN(10)]
		out[k] = Peer{ID: fmt.Sprintf("s%06d", k), Upload: up, ISP: fmt.Sprintf("isp%d", r.IntN(4)), NAT: nat, Joined: now}
	}
	return out
}
