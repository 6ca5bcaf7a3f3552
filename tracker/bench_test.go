package tracker

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// Benchmarks of the tracker's placement work at scale. A join runs a
// round at once (startup: the answer carries parents), so a join's cost
// is one incremental round; Round is the periodic one; Heartbeat is the
// per-peer steady-state cost; ChurnRound is a round in which 0.5 % of
// the peers left and as many joined (1 % churn). The channel's peers
// heartbeat once a minute here, so none expires while the clock runs.
// Figures on a shared 2-core machine are noisy.

func benchChannel(b *testing.B, n int) (*Tracker, *clock, *rand.Rand) {
	b.Helper()
	c := &clock{now: t0}
	tr, err := New(Config{Now: c.Now, HeartbeatInterval: MaxHeartbeatInterval, RejoinWindow: -1})
	if err != nil {
		b.Fatal(err)
	}
	ch := channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1)
	ch.StreamBPS = 4_000_000
	if _, err := tr.Register(RegisterRequest{Channel: ch, Capacity: 32}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]JoinRequest, n)
	for i := range reqs {
		reqs[i] = benchJoin(rng, i+1)
	}
	if _, errs := tr.JoinBatch("live", reqs); errs[0] != nil {
		b.Fatal(errs[0])
	}
	c.Advance(time.Second)
	tr.Round()
	return tr, c, rng
}

func benchJoin(rng *rand.Rand, i int) JoinRequest {
	return JoinRequest{
		ID: nid(i), Addr: fmt.Sprintf("10.%d.%d.%d:4242", i>>16&255, i>>8&255, i&255),
		Capacity: 64, UploadBPS: int64(rng.Float64() * 16_000_000),
		NAT: NATClasses[rng.IntN(len(NATClasses))], ISP: fmt.Sprintf("isp%d", rng.IntN(8)),
	}
}

func BenchmarkJoin1k(b *testing.B)   { benchJoinRound(b, 1_000) }
func BenchmarkJoin10k(b *testing.B)  { benchJoinRound(b, 10_000) }
func BenchmarkJoin100k(b *testing.B) { benchJoinRound(b, 100_000) }

// benchJoinRound: one peer leaves and one joins (a round at once).
func benchJoinRound(b *testing.B, n int) {
	tr, c, rng := benchChannel(b, n)
	next := n + 1
	for b.Loop() {
		c.Advance(10 * time.Millisecond)
		if err := tr.Leave("live", LeaveRequest{ID: nid(next - n)}); err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Join("live", benchJoin(rng, next)); err != nil {
			b.Fatal(err)
		}
		next++
	}
}

func BenchmarkRound1k(b *testing.B)   { benchRound(b, 1_000) }
func BenchmarkRound10k(b *testing.B)  { benchRound(b, 10_000) }
func BenchmarkRound100k(b *testing.B) { benchRound(b, 100_000) }

// benchRound: a periodic round with nothing new.
func benchRound(b *testing.B, n int) {
	tr, c, _ := benchChannel(b, n)
	for b.Loop() {
		c.Advance(10 * time.Millisecond)
		tr.Round()
	}
}

func BenchmarkChurnRound1k(b *testing.B)   { benchChurnRound(b, 1_000) }
func BenchmarkChurnRound10k(b *testing.B)  { benchChurnRound(b, 10_000) }
func BenchmarkChurnRound100k(b *testing.B) { benchChurnRound(b, 100_000) }

// benchChurnRound: n/200 peers leave and n/200 join in one batch (whose
// round places them), once per simulated second.
func benchChurnRound(b *testing.B, n int) {
	tr, c, rng := benchChannel(b, n)
	next := n + 1
	k := max(1, n/200)
	reqs := make([]JoinRequest, k)
	for b.Loop() {
		b.StopTimer()
		c.Advance(time.Second)
		for j := range k {
			if err := tr.Leave("live", LeaveRequest{ID: nid(next - n + j)}); err != nil {
				b.Fatal(err)
			}
			reqs[j] = benchJoin(rng, next+j)
		}
		next += k
		b.StartTimer()
		if _, errs := tr.JoinBatch("live", reqs); errs[0] != nil {
			b.Fatal(errs[0])
		}
	}
}

// BenchmarkHeartbeat10k: heartbeats of a placed channel of 10,000 peers
// (4 stripes, 3 backups each) in a shuffled order, as their phases
// spread them; each carries stats. It reports the answers' mean backups
// and children. warm beats back to back, with the tracker's memory in
// the caches; cold evicts the caches every 50 beats (a 5 ms window's
// worth at 10,000 beats a second), as the rest of the work between
// them does in a busy tracker or the simulator.
func BenchmarkHeartbeat10k(b *testing.B) {
	const n = 10_000
	tr, _, rng := benchChannel(b, n)
	ids := make([]string, n)
	for k, i := range rng.Perm(n) {
		ids[k] = nid(1 + i)
	}
	for _, cold := range []bool{false, true} {
		for _, omit := range []bool{false, true} {
			name := "warm"
			var evict []byte
			if cold {
				name, evict = "cold", make([]byte, 64<<20) // beyond the caches of a core
			}
			if omit {
				name += "/omit-children" // as the simulator beats
			}
			benchBeats(b, name, tr, ids, evict, omit)
		}
	}
}

// benchBeats runs BenchmarkHeartbeat10k's beats, evicting the caches
// every 50 beats when evict is not nil.
func benchBeats(b *testing.B, name string, tr *Tracker, ids []string, evict []byte, omit bool) {
	n := len(ids)
	cold := evict != nil
	b.Run(name, func(b *testing.B) {
		var backups, children, beats int
		b.ReportAllocs()
		for b.Loop() {
			if cold && beats%50 == 0 {
				b.StopTimer()
				for k := 0; k < len(evict); k += 64 {
					evict[k]++
				}
				b.StartTimer()
			}
			req := HeartbeatRequest{ID: ids[beats%n], Stats: PeerStats{PlayedSlices: int64(beats), LagMS: int64(1000 + beats%700)}, OmitChildren: omit}
			resp, err := tr.Heartbeat("live", req)
			if err != nil {
				b.Fatal(err)
			}
			for _, a := range resp.Stripes {
				backups += len(a.Backups)
			}
			children += len(resp.Children)
			beats++
		}
		b.ReportMetric(float64(backups)/float64(beats), "backups/beat")
		b.ReportMetric(float64(children)/float64(beats), "children/beat")
	})
}

// Benchmarks of a restarted tracker rebuilding a channel of n peers from
// their rejoins (issue 6): every peer reports its parents
// (JoinRequest.Current); the joins are held in one batch and the seed
// round keeps the reported links. Compare BenchmarkJoin* (a full build
// is chandelier's BenchmarkRound*/full).
func BenchmarkRestart10k(b *testing.B)  { benchRestart(b, 10_000) }
func BenchmarkRestart100k(b *testing.B) { benchRestart(b, 100_000) }

func benchRestart(b *testing.B, n int) {
	tr, _, _ := benchChannel(b, n)
	v, err := tr.Tree("live")
	if err != nil {
		b.Fatal(err)
	}
	reg := RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1), Capacity: 32}
	reg.Channel.StreamBPS = 4_000_000
	places := placesOf(v)
	for _, afresh := range []bool{false, true} {
		name := "rejoin"
		if afresh {
			name = "afresh" // older peers: no Current, a full build
		}
		rng := rand.New(rand.NewPCG(1, 2))
		reqs := make([]JoinRequest, n)
		for i := range reqs {
			reqs[i] = benchJoin(rng, i+1)
			if !afresh {
				reqs[i].Current = places[reqs[i].ID]
			}
		}
		b.Run(name, func(b *testing.B) {
			var ps PlacementStats
			b.ReportAllocs()
			for b.Loop() {
				c := &clock{now: t0.Add(time.Hour)}
				tr, err := New(Config{Now: c.Now})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tr.Register(reg); err != nil {
					b.Fatal(err)
				}
				if _, errs := tr.JoinBatch("live", reqs); errs[0] != nil {
					b.Fatal(errs[0])
				}
				c.Advance(2*DefaultHeartbeatInterval + time.Millisecond) // the window closes
				tr.Round()
				ps, _ = tr.Placement("live")
			}
			b.ReportMetric(float64(ps.RejoinKept)/float64(max(ps.RejoinLinks, 1)), "kept")
			b.ReportMetric(ps.RoundSeconds, "rounds-s")
		})
	}
}
