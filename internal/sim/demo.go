package sim

import (
	"fmt"
	"time"
)

// The demo's setup, as `swarmtv demo` runs it (internal/demo).
const (
	// DemoStreamKbps is the bundled clip's rate as RTP packets (H.264
	// 720p30 and AAC; testclip.Clip.BitRate), rounded.
	DemoStreamKbps = 1130
	// demoPeerStreams and demoOriginStreams are the demo's capacities
	// in whole streams (demo.Config.PeerCapacity, OriginCapacity).
	demoPeerStreams   = 2
	demoOriginStreams = 1
	// demoJoinEach is about how long the demo takes to start a peer
	// (until it plays) on a 2-core machine: its peers join one after
	// another.
	demoJoinEach = 1100 * time.Millisecond
)

// LikeDemo returns the configuration that models `swarmtv demo --peers
// peers --duration d` (scenarios/demo-3.yaml and demo-10.yaml are two of
// them): the clip's rate and keyframes, K = min(4, peers) stripes, an
// origin feeding one stream's worth of stripe feeds and peers forwarding
// up to two streams' worth, one ISP, no NATs, no loss, loopback-like
// delays and ample capacity, and the peers joining one after another,
// each once the one before has played. The demo's d counts after the
// joins; the simulated duration adds them.
func LikeDemo(peers int, d time.Duration) (Config, error) {
	if peers < 1 || peers > 200 {
		return Config{}, fmt.Errorf("%w: like-demo peers must be 1..200 (as the demo's), got %d", ErrConfig, peers)
	}
	c := DefaultConfig()
	k := min(4, peers)
	c.Scenario = fmt.Sprintf("demo-%d", peers)
	c.Peers = peers
	c.Duration = (d + time.Duration(peers)*demoJoinEach).Round(time.Second)
	c.StreamKbps = DemoStreamKbps
	c.Slice = 100 * time.Millisecond
	c.Stripes = k
	c.Keyframe = time.Second
	c.KeyframeFirst = true
	c.Warmup = 0 // the demo starts its peers right after its origin
	// Loopback: the capacities limit, not the upload. The origin's
	// pushes go out at Headroom × the stream rate (the rest of its
	// upload is the fetch budget): at the default 1.25 a keyframe slice
	// leaves it in about 240 ms, which the real origin on loopback sends
	// at once (lag p50 1.21 s against the demo's 1.11 s).
	c.UploadRatio = 50 // the most addPeer draws
	c.UploadSigma = 0
	c.Headroom = 10
	c.PeerFeeds = demoPeerStreams * k
	c.DownloadRatio = 100
	c.ISPs, c.Regions = 1, 1
	c.NATMix = NATMix{}
	c.NATMix[NATOpen] = 1
	c.Loss = 0
	c.OriginCapacity = demoOriginStreams
	c.OriginUploadMul = 100
	c.FlashCrowd = 0
	c.JoinSequential = true
	c.DelayScale = 0.02
	c.Heartbeat = time.Second
	c.ParentTimeout = 600 * time.Millisecond // the real peer's (the core's default)
	return c, c.Validate()
}
