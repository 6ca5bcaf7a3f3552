package sim

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// small returns a configuration small enough for the suite: a few dozen
// peers, a light stream (chunks are verified with real Ed25519).
func small(peers int, d time.Duration, seed uint64) Config {
	c := DefaultConfig()
	c.Scenario = "test"
	c.Peers = peers
	c.Duration = d
	c.Seed = seed
	c.StreamKbps = 800
	c.Slice = 200 * time.Millisecond
	c.Stripes = 2
	c.FlashCrowd = 3 * time.Second
	// The stream starts with the run, as when these tests' bounds were
	// set (TestStartLevers runs with a warm-up).
	c.Warmup = 0
	// The core's defaults: its ParentTimeout (600 ms) runs from ParentUp,
	// so the dial no longer counts against it.
	return c
}

func run(t *testing.T, c Config) (*report.Report, *Sim) {
	t.Helper()
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

func reportJSON(t *testing.T, r *report.Report) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Issue 3, acceptance: same flags and seed, identical trace_hash and
// report (wall_s is the caller's); another seed, another hash.
func TestDeterministic(t *testing.T) {
	c := small(30, 20*time.Second, 7)
	c.Churn = 0.2
	c.Loss = 0.01
	a, _ := run(t, c)
	b, _ := run(t, c)
	if *a.TraceHash != *b.TraceHash {
		t.Fatalf("same seed, different trace hashes: %s vs %s", *a.TraceHash, *b.TraceHash)
	}
	if ja, jb := reportJSON(t, a), reportJSON(t, b); ja != jb {
		t.Fatalf("same seed, different reports:\n%s\n%s", ja, jb)
	}
	c.Seed = 8
	d, _ := run(t, c)
	if *d.TraceHash == *a.TraceHash {
		t.Fatalf("seeds 7 and 8 gave the same trace hash %s", *a.TraceHash)
	}
}

// A steady swarm: everyone plays nearly everything, the peers carry most
// of the traffic, and the report is complete.
func TestSteadySwarm(t *testing.T) {
	r, s := run(t, small(60, 30*time.Second, 1))
	if r.Schema != report.Schema || r.Kind != "sim" || r.Peers != 60 {
		t.Fatalf("report header: %+v", r)
	}
	if r.Continuity == nil || *r.Continuity < 0.98 {
		t.Errorf("continuity %v, want >= 0.98", ptr(r.Continuity))
	}
	// 8 origin slots for 60 peers: the ideal is 1 - 8/60 = 0.87; joins
	// and fallback fetches cost some.
	if r.Savings == nil || *r.Savings < 0.7 {
		t.Errorf("savings %v, want >= 0.7", ptr(r.Savings))
	}
	if r.PlayerBytes <= 0 || r.P2PBytes <= 0 || r.OriginEgressBytes <= 0 {
		t.Errorf("bytes: player %d p2p %d origin %d", r.PlayerBytes, r.P2PBytes, r.OriginEgressBytes)
	}
	if r.StartupMs == nil || r.LagMs == nil || r.TreeDepth == nil || r.NAT == nil || r.ControlOverhead == nil {
		t.Fatalf("missing figures: %s", reportJSON(t, r))
	}
	if r.TreeDepth.Max < 2 || r.TreeDepth.Mean < 1 {
		t.Errorf("tree depth %+v: 60 peers under 8 origin slots need depth >= 2", *r.TreeDepth)
	}
	if n := r.NAT; n.Direct == 0 || n.Direct+n.Relayed+n.Failed < 60 {
		t.Errorf("connections %+v: want one per peer at least", *n)
	}
	if r.LagMs.P50 < 1000 || r.LagMs.P99 > 10000 {
		t.Errorf("lag %+v ms: want about the playout delay plus depth", *r.LagMs)
	}
	if s.m.neverPlayed != 0 {
		t.Errorf("%d peers never played", s.m.neverPlayed)
	}
	if s.m.badChunks != 0 {
		t.Errorf("%d bad chunks among honest peers", s.m.badChunks)
	}
}

// Heavy churn: parents vanish (half without a word); the children repair
// and the swarm keeps playing.
func TestChurnRepairs(t *testing.T) {
	c := small(50, 40*time.Second, 3)
	c.Churn = 0.5
	r, s := run(t, c)
	if s.m.viewers <= 50 {
		t.Errorf("%d viewers over the run, want more than 50 with churn", s.m.viewers)
	}
	if r.RepairMs == nil {
		t.Fatalf("no repairs measured under churn")
	}
	// Half the swarm replaced per minute, half of it crashing: 0.999
	// continuity and 0.80 savings measured.
	if r.Continuity == nil || *r.Continuity < 0.95 {
		t.Errorf("continuity %v under churn, want >= 0.95", ptr(r.Continuity))
	}
	if r.Savings == nil || *r.Savings < 0.6 {
		t.Errorf("savings %v under churn, want >= 0.6", ptr(r.Savings))
	}
}

// Scarce upload (mean 0.9 × the stream): fewer forwarders, more origin.
func TestScarceUploadCostsOrigin(t *testing.T) {
	rich, _ := run(t, small(40, 20*time.Second, 5))
	c := small(40, 20*time.Second, 5)
	c.UploadRatio = 0.9
	poor, _ := run(t, c)
	if *poor.Savings >= *rich.Savings {
		t.Errorf("savings with scarce upload %.3f, with ample %.3f: want lower", *poor.Savings, *rich.Savings)
	}
}

// A tracker that dies and restarts empty: peers keep streaming over their
// links, then join the new tracker again.
func TestTrackerRestart(t *testing.T) {
	c := small(30, 30*time.Second, 4)
	c.KillTrackerAt = 10 * time.Second
	c.RestartTrackerAt = 15 * time.Second
	c.Churn = 0.2
	r, s := run(t, c)
	if r.Continuity == nil || *r.Continuity < 0.9 {
		t.Errorf("continuity %v across a tracker restart", ptr(r.Continuity))
	}
	view, err := s.tr.Tree(channelName)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(view.Nodes); got < len(s.alive)-2 {
		t.Errorf("the restarted tracker knows %d peers, %d are alive", got, len(s.alive))
	}
}

// An invariant violation stops the run with the seed and a replay command.
func TestInvariantErrorReplays(t *testing.T) {
	c := small(10, 5*time.Second, 99)
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	s.fail("made up for the test")
	var ie *InvariantError
	if err := s.err; !errors.As(err, &ie) {
		t.Fatalf("err %v, want *InvariantError", err)
	}
	if ie.Seed != 99 || !strings.Contains(ie.Error(), "--seed=99") || !strings.HasPrefix(ie.Replay, "swarmtv sim ") {
		t.Errorf("error %q does not carry the seed and the replay command", ie.Error())
	}
	// The replay command's flags give back the same configuration.
	back := DefaultConfig()
	for _, a := range strings.Fields(strings.TrimPrefix(ie.Replay, "swarmtv sim ")) {
		name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if err := back.Set(name, val); err != nil {
			t.Fatal(err)
		}
	}
	if back != c {
		t.Errorf("replay flags give %+v, want %+v", back, c)
	}
}

func ptr(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Every scenario file in the repository parses and validates.
func TestScenarioFiles(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d scenario files, want the six of issue 3", len(files))
	}
	for _, f := range files {
		c, err := LoadScenario(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".yaml"); c.Scenario != want {
			t.Errorf("%s: name %q, want %q", f, c.Scenario, want)
		}
	}
}

// Bad scenario files fail with errors that say what is wrong.
func TestScenarioErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"peers: many", "peers: want an integer"},
		{"pears: 10", `unknown option "pears"`},
		{"nat-mix: open=0.5", "sum to 0.500"},
		{"duration: 10", "want a duration"},
		{"- 1\n- 2", "a mapping of option: value"},
		{"peers: [1, 2]", "single value"},
		{"peers: 0", "peers must be"},
		{"workers: 3", "workers must be 1 or 2"},
		{"workers: -1", "workers must be 1 or 2"},
		{"restart-tracker-at: 10s", "needs an earlier kill-tracker-at"},
		{"peers: 10\n\tbad", "yaml"},
	} {
		_, err := ParseScenario([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig) {
			t.Errorf("%q: error %v, want one containing %q wrapping ErrConfig", tc.yaml, err, tc.want)
		}
	}
	c, err := ParseScenario([]byte("# comment only\n"))
	if err != nil || c != DefaultConfig() {
		t.Errorf("empty scenario: %v, %+v", err, c)
	}
}

// The fast verifier stands in for Ed25519 and still rejects tampered
// chunks: a copy with one byte changed, and even a byte-identical copy
// (only the origin's own encodings pass). With --verify ed25519 the
// signature decides.
func TestFastVerifyRejectsTampered(t *testing.T) {
	for _, mode := range []string{VerifyFast, VerifyEd25519} {
		t.Run(mode, func(t *testing.T) {
			c := small(2, time.Second, 1)
			c.Verify = mode
			s, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			if (s.verifyOf() != nil) != (mode == VerifyFast) {
				t.Fatalf("verify hook set %v in mode %s", s.verifyOf() != nil, mode)
			}
			node, err := swarm.New(s.nodeConfig(false, 0))
			if err != nil {
				t.Fatal(err)
			}
			_, raws, err := s.stream.make(1)
			if err != nil {
				t.Fatal(err)
			}
			tampered := slices.Clone(raws[1])
			tampered[len(tampered)-wire.SignatureSize-1] ^= 1 // a payload byte
			if err := node.HandleChunk(epoch, "peer", tampered); !errors.Is(err, swarm.ErrBadChunk) {
				t.Fatalf("tampered chunk: %v, want ErrBadChunk", err)
			}
			// An intact copy is not the origin's buffer: the fast
			// verifier checks it with Ed25519 and it passes.
			copied := slices.Clone(raws[1])
			if err := node.HandleChunk(epoch, "peer", copied); err != nil {
				t.Fatalf("an intact copy failed: %v", err)
			}
			if err := node.HandleChunk(epoch, "origin", raws[0]); err != nil {
				t.Fatalf("the origin's own chunk: %v", err)
			}
			if st := node.Stats(); st.BadChunks != 1 {
				t.Fatalf("bad chunks %d", st.BadChunks)
			}
		})
	}
}

// The fast verifier and Ed25519 run the same simulation: same trace, same
// report.
func TestFastVerifySameRun(t *testing.T) {
	c := small(20, 10*time.Second, 2)
	fast, _ := run(t, c)
	c.Verify = VerifyEd25519
	slow, _ := run(t, c)
	if ja, jb := reportJSON(t, fast), reportJSON(t, slow); ja != jb {
		t.Fatalf("fast and Ed25519 verification differ:\n%s\n%s", ja, jb)
	}
}

// Warming the next events' state (Sim.warm) changes nothing: the same
// trace and report as a run without it.
func TestWarmSameRun(t *testing.T) {
	c := small(40, 10*time.Second, 5)
	c.Churn = 0.2
	warm, ws := run(t, c)
	if ws.warmed == 0 {
		t.Fatal("warm read nothing")
	}
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	s.cold = true
	cold, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if s.warmed != 0 {
		t.Fatalf("a cold run warmed %d", s.warmed)
	}
	if ja, jb := reportJSON(t, warm), reportJSON(t, cold); ja != jb {
		t.Fatalf("warm and cold runs differ:\n%s\n%s", ja, jb)
	}
}

// Canceling the Ticks a new arm replaces (Sim.disarm) changes nothing:
// the same trace and report as a run that leaves them to pop and skips
// them.
func TestCanceledTicksSameRun(t *testing.T) {
	c := small(40, 10*time.Second, 5)
	c.Churn = 0.2
	fast, fs := run(t, c)
	if fs.canceled() == 0 {
		t.Fatal("no Tick was canceled")
	}
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	s.keepStale = true
	slow, err := s.Run()
	if err != nil {
		t.Fatal(err)
	}
	if n := s.canceled(); n != 0 {
		t.Fatalf("a run keeping stale Ticks canceled %d", n)
	}
	if ja, jb := reportJSON(t, fast), reportJSON(t, slow); ja != jb {
		t.Fatalf("runs with and without canceled Ticks differ:\n%s\n%s", ja, jb)
	}
}

// Peers the tracker cannot place (no upload to offer, the origin's slots
// taken) are detached: they ask the origin for its newest keyframe slice
// after the connect grace and play from the origin.
func TestDetachedPeersPlay(t *testing.T) {
	c := small(6, 20*time.Second, 3)
	c.OriginCapacity = 2
	c.UploadRatio = 0.1 // capacity 0: nobody forwards
	c.UploadSigma = 0
	c.OriginUploadMul = 4 // room for the fetches
	r, s := run(t, c)
	if s.m.neverPlayed != 0 {
		t.Fatalf("%d detached peers never played", s.m.neverPlayed)
	}
	if r.Continuity == nil || *r.Continuity < 0.95 {
		t.Fatalf("continuity %v", ptr(r.Continuity))
	}
	detached := 0
	for _, p := range s.peers[1:] {
		if slices.Contains(p.parents, noPeer) {
			detached++
			if st := p.node.Stats(); st.OriginBytesIn == 0 || st.PlayedSlices == 0 {
				t.Fatalf("detached peer %d: %+v", p.idx, st)
			}
		}
	}
	if detached < 3 {
		t.Fatalf("%d peers with a detached stripe, want the 4 the origin has no slot for per stripe", detached)
	}
}

// An intact chunk older than the fast verifier remembers (a node cut off
// from every source for minutes still holds and forwards it) passes, by
// Ed25519; a tampered old one fails. A 10-minute run of 10,000 peers
// broke the invariant check on one such chunk.
func TestFastVerifyOldChunk(t *testing.T) {
	c := small(2, time.Second, 1)
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	s.stream.keep = 3 * c.Slice // remember 3 slices
	_, old, err := s.stream.make(1)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(2); seq < 10; seq++ {
		if _, _, err := s.stream.make(seq); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.stream.lookup(old[0]); ok {
		t.Fatal("slice 1 still remembered: the test checks nothing")
	}
	if err := s.stream.verify(old[0]); err != nil {
		t.Fatalf("an intact old chunk failed: %v", err)
	}
	tampered := slices.Clone(old[0])
	tampered[len(tampered)-wire.SignatureSize-1] ^= 1
	if err := s.stream.verify(tampered); err == nil {
		t.Fatal("a tampered old chunk passed")
	}
}
