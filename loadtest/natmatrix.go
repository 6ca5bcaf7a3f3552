package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/loadtest/netlab"
	"github.com/swarmtv/swarmtv/nat/core"
	"github.com/swarmtv/swarmtv/tracker"
)

// NATMatrixConfig configures RunNATMatrix.
type NATMatrixConfig struct {
	// Binary is the swarmtv binary the processes run. Required.
	Binary string
	// Parallel is how many pairs run at once; default 4.
	Parallel int
	// NoBounce skips the WAN bounce scenario.
	NoBounce bool
	// PairTimeout bounds one pair, from its origin's start to the
	// child's playback; default 45 s.
	PairTimeout time.Duration
	// Progress receives a line per finished pair (may be nil).
	Progress io.Writer
	// LossPct makes every NAT router drop this share of the packets it
	// forwards (0..50).
	LossPct int
	// Delay and Jitter make every NAT router hold the packets it
	// forwards for Delay ± Jitter (netlab.SetDelay).
	Delay, Jitter time.Duration
}

// Pair is one pair's result: B (the child) connected to A (its parent),
// through the tracker's rendezvous.
type Pair struct {
	A         string `json:"a"` // parent's site, e.g. fullcone#0
	B         string `json:"b"` // child's site
	Outcome   string `json:"outcome"`
	ConnectMS int64  `json:"connect_ms"`
	// Expected is what the pairing rule predicts: direct or relayed.
	Expected string `json:"expected"`
	// Played: the child played the stream, with chunks from its parent.
	Played bool   `json:"played"`
	Note   string `json:"note,omitempty"`

	stats [2]tracker.PeerStats // parent, child at the end
}

// Bounce is the WAN bounce scenario's result: a child behind a symmetric
// NAT whose uplink is taken down and up mid-stream.
type Bounce struct {
	Site string `json:"site"`
	// Noticed: the child saw its mapped address change.
	Noticed bool `json:"noticed"`
	// Reconnected: a new connection to the parent was reported after
	// the bounce (a connection QUIC kept alive through the new mapping
	// counts as no reconnect but still as continued playback).
	Reconnected bool `json:"reconnected"`
	// Reprobed: after the change the child classified its NAT again
	// (and reported what it found).
	Reprobed bool `json:"reprobed"`
	// PlayedBefore and PlayedAfter are slices played at the bounce and at
	// the end; playback continued if PlayedAfter grew.
	PlayedBefore int64 `json:"played_before"`
	PlayedAfter  int64 `json:"played_after"`
	Continued    bool  `json:"continued"`
	// NoticedMS and ReconnectMS are the times from the bounce to the
	// child's log of the new mapping and to its report of a new
	// connection (100 ms polling; 0 if it did not happen).
	NoticedMS   int64  `json:"noticed_ms"`
	ReconnectMS int64  `json:"reconnect_ms"`
	Note        string `json:"note,omitempty"`
}

// NATMatrixReport is swarmtv.report/v1 with the pairs and the bounce.
type NATMatrixReport struct {
	*report.Report
	Pairs  []Pair  `json:"pairs"`
	Bounce *Bounce `json:"bounce"`
	// NATCheck is the class `swarmtv peer --nat-check` printed behind
	// each NAT, by site ("" if it failed).
	NATCheck map[string]string `json:"nat_check"`

	// LabPrefix names the lab's namespaces (all removed by the time
	// RunNATMatrix returns).
	LabPrefix string `json:"-"`
}

// pairSpec is a pair to run.
type pairSpec struct {
	a, b   siteRef
	lan    bool
	expect string
}

type siteRef struct {
	site *netlab.Site
	name string
	host *netlab.Host
}

const (
	labNice    = 10
	pubTracker = "203.0.113.2:7000"
	clipKbps   = 1100
)

// RunNATMatrix builds a lab with two NAT routers of each type, a tracker
// (with STUN on two addresses and a relay) on the public host, and runs
// real `swarmtv peer` processes: for every pair of NAT types one peer
// behind each, the child placed under the parent (each pair has its own
// channel and origin, whose capacity of one forces that), plus two hosts
// behind one NAT (they must meet over their LAN addresses). A pair passes
// when the child plays the stream with chunks from its parent; its
// outcome (direct or relayed) and connect time come from the child's
// report to the tracker. Then, unless NoBounce, a child behind a
// symmetric NAT has its router's uplink bounced mid-stream.
//
// Everything (namespaces, processes) is torn down before it returns,
// also on failure. It needs root.
func RunNATMatrix(ctx context.Context, cfg NATMatrixConfig) (*NATMatrixReport, error) {
	if cfg.Binary == "" {
		return nil, errors.New("loadtest: natmatrix needs the swarmtv binary")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.PairTimeout <= 0 {
		cfg.PairTimeout = 45 * time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.LossPct < 0 || cfg.LossPct > 50 {
		return nil, fmt.Errorf("loadtest: loss %d%% out of range 0..50", cfg.LossPct)
	}
	start := time.Now()
	var nats []netlab.NAT
	for _, n := range append(slices.Clone(netlab.AllNATs), netlab.SymmetricSequential) {
		nats = append(nats, n, n)
	}
	lab, err := netlab.New(ctx, netlab.Config{NATs: nats, HostsPerNAT: 5})
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	for _, s := range lab.Sites {
		if cfg.LossPct > 0 {
			if err := lab.SetLoss(ctx, s, cfg.LossPct); err != nil {
				return nil, err
			}
		}
		if cfg.Delay > 0 {
			if err := lab.SetDelay(ctx, s, cfg.Delay, cfg.Jitter); err != nil {
				return nil, err
			}
		}
	}
	tmp, err := os.MkdirTemp("", "swarmtv-natmatrix-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	m := &matrix{cfg: cfg, lab: lab, tmp: tmp, used: map[*netlab.Site]int{}}
	defer m.stopAll()
	ht := &http.Transport{DialContext: lab.Public.DialContext}
	defer ht.CloseIdleConnections()
	m.http = &http.Client{Timeout: 10 * time.Second, Transport: ht}
	m.tc = &tracker.Client{BaseURL: "http://" + pubTracker, HTTP: m.http}
	if _, err := m.start(ctx, lab.Public, "tracker", "tracker", "--listen", pubTracker,
		"--stun", "203.0.113.2:3478", "--stun-alt-ip", "203.0.113.3", "--stun-alt-port", "3479", "--heartbeat", "1s"); err != nil {
		return nil, err
	}
	if err := waitUntil(ctx, 10*time.Second, func() bool {
		_, err := m.tc.NAT(ctx)
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("loadtest: the tracker did not come up: %w\n%s", err, m.logs())
	}

	specs, err := m.pairs()
	if err != nil {
		return nil, err
	}
	results := make([]Pair, len(specs))
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for i, sp := range specs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Pair{A: sp.a.name, B: sp.b.name, Expected: sp.expect, Outcome: tracker.OutcomeFailed, Note: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			results[i] = m.runPair(ctx, i, sp)
			r := results[i]
			fmt.Fprintf(cfg.Progress, "%-18s ↔ %-18s %-8s (expected %-7s) %5d ms  played=%v %s\n", r.A, r.B, r.Outcome, r.Expected, r.ConnectMS, r.Played, r.Note)
		})
	}
	wg.Wait()

	rep := &NATMatrixReport{Report: report.New("loadtest", "natmatrix"), Pairs: results, LabPrefix: lab.Prefix, NATCheck: m.natChecks(ctx)}
	if !cfg.NoBounce {
		rep.Bounce = m.runBounce(ctx)
	}
	n := &report.NAT{}
	for _, r := range results {
		switch r.Outcome {
		case tracker.OutcomeDirect:
			n.Direct++
		case tracker.OutcomeRelayed:
			n.Relayed++
		default:
			n.Failed++
		}
		for _, st := range r.stats {
			rep.PlayerBytes += st.PlayerBytes
			rep.P2PBytes += st.P2PBytesIn
			rep.OriginEgressBytes += st.OriginBytesIn
			rep.Stalls += st.Stalls
		}
	}
	rep.NAT = n
	rep.Peers = 2 * len(results)
	rep.StreamKbps = clipKbps
	rep.Savings = report.Savings(rep.OriginEgressBytes, rep.PlayerBytes)
	rep.WallS = time.Since(start).Seconds()
	rep.DurationS = rep.WallS
	return rep, nil
}

// ConnectPercentiles summarises the connect times of the pairs that
// connected.
func (r *NATMatrixReport) ConnectPercentiles() *report.Percentiles {
	var ms []float64
	for _, p := range r.Pairs {
		if p.Outcome != tracker.OutcomeFailed {
			ms = append(ms, float64(p.ConnectMS))
		}
	}
	return report.Of(ms)
}

// Table formats the pairs as a table.
func (r *NATMatrixReport) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s %-18s %-8s %-8s %10s  %s\n", "parent", "child", "outcome", "expected", "connect", "played")
	for _, p := range r.Pairs {
		played := "yes"
		if !p.Played {
			played = "NO"
		}
		fmt.Fprintf(&b, "%-18s %-18s %-8s %-8s %7d ms  %s %s\n", p.A, p.B, p.Outcome, p.Expected, p.ConnectMS, played, p.Note)
	}
	if r.NAT != nil {
		fmt.Fprintf(&b, "direct %d, relayed %d, failed %d", r.NAT.Direct, r.NAT.Relayed, r.NAT.Failed)
		if p := r.ConnectPercentiles(); p != nil {
			fmt.Fprintf(&b, "; connect p50 %.0f ms, p95 %.0f ms", p.P50, p.P95)
		}
		b.WriteString("\n")
	}
	if len(r.NATCheck) > 0 {
		b.WriteString("nat-check:")
		for _, k := range slices.Sorted(maps.Keys(r.NATCheck)) {
			fmt.Fprintf(&b, " %s=%s", k, r.NATCheck[k])
		}
		b.WriteString("\n")
	}
	if bo := r.Bounce; bo != nil {
		fmt.Fprintf(&b, "WAN bounce (%s): noticed=%v after %d ms, re-probed=%v, reconnected=%v after %d ms, played %d → %d slices, continued=%v %s\n",
			bo.Site, bo.Noticed, bo.NoticedMS, bo.Reprobed, bo.Reconnected, bo.ReconnectMS, bo.PlayedBefore, bo.PlayedAfter, bo.Continued, bo.Note)
	}
	return b.String()
}

// matrix is one run's state.
type matrix struct {
	cfg  NATMatrixConfig
	lab  *netlab.Lab
	tmp  string
	http *http.Client
	tc   *tracker.Client

	mu    sync.Mutex
	used  map[*netlab.Site]int // hosts handed out per site; guarded by mu
	procs []*proc              // guarded by mu
}

// host hands out the next unused host of site s.
func (m *matrix) host(s *netlab.Site) (*netlab.Host, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.used[s]
	if i >= len(s.Hosts) {
		return nil, fmt.Errorf("loadtest: no free host behind %s", s.Router.Name)
	}
	m.used[s] = i + 1
	return s.Hosts[i], nil
}

func siteName(lab *netlab.Lab, s *netlab.Site) string {
	n := 0
	for _, o := range lab.Sites {
		if o == s {
			break
		}
		if o.NAT == s.NAT {
			n++
		}
	}
	return fmt.Sprintf("%s#%d", s.NAT, n)
}

// pairs lists every unordered pair of NAT types (the parent is the
// easier NAT; same types use two routers), plus two hosts behind one
// port-restricted NAT.
func (m *matrix) pairs() ([]pairSpec, error) {
	byType := map[netlab.NAT][]*netlab.Site{}
	for _, s := range m.lab.Sites {
		byType[s.NAT] = append(byType[s.NAT], s)
	}
	ref := func(s *netlab.Site) (siteRef, error) {
		h, err := m.host(s)
		return siteRef{site: s, name: siteName(m.lab, s), host: h}, err
	}
	var specs []pairSpec
	all := netlab.AllNATs
	for i, x := range all {
		for _, y := range all[i:] {
			sb := byType[y][0]
			if x == y {
				sb = byType[y][1]
			}
			a, err := ref(byType[x][0])
			if err != nil {
				return nil, err
			}
			b, err := ref(sb)
			if err != nil {
				return nil, err
			}
			specs = append(specs, pairSpec{a: a, b: b, expect: expected(x, y)})
		}
	}
	// Port prediction: a symmetric NAT with sequential ports as the
	// child of a port-restricted cone (punchable only by predicting its
	// ports) and as the parent of a random symmetric NAT (not at all).
	seq := byType[netlab.SymmetricSequential]
	for _, pr := range [][2]*netlab.Site{{byType[netlab.PortRestricted][0], seq[0]}, {seq[1], byType[netlab.Symmetric][0]}} {
		a, err := ref(pr[0])
		if err != nil {
			return nil, err
		}
		b, err := ref(pr[1])
		if err != nil {
			return nil, err
		}
		specs = append(specs, pairSpec{a: a, b: b, expect: expected(pr[0].NAT, pr[1].NAT)})
	}
	lanSite := byType[netlab.PortRestricted][1]
	a, err := ref(lanSite)
	if err != nil {
		return nil, err
	}
	b, err := ref(lanSite)
	if err != nil {
		return nil, err
	}
	a.name += "/lan"
	b.name += "/lan"
	specs = append(specs, pairSpec{a: a, b: b, lan: true, expect: tracker.OutcomeDirect})
	return specs, nil
}

// expected is the pairing rule's prediction for two NAT types.
func expected(x, y netlab.NAT) string {
	typ := func(n netlab.NAT) (core.Result, bool) {
		if n == netlab.SymmetricSequential {
			return core.Typical(core.TypeSymmetric), true
		}
		t, _ := core.ParseType(string(n))
		return core.Typical(t), false
	}
	tx, px := typ(x)
	ty, py := typ(y)
	if core.CanPunchPredicting(tx, ty, px, py) {
		return tracker.OutcomeDirect
	}
	return tracker.OutcomeRelayed
}

// session is one channel: its origin and its peers.
type session struct {
	channel string
	origin  string // origin's node ID
	procs   []*proc
}

// startChannel starts an origin for a new channel on the public host,
// with room for one child.
func (m *matrix) startChannel(ctx context.Context, name string) (*session, error) {
	s := &session{channel: name}
	o, err := m.start(ctx, m.lab.Public, "origin "+name, "origin", "--channel", name, "--tracker", "http://"+pubTracker,
		"--quic", "203.0.113.2:0", "--key", filepath.Join(m.tmp, name+".key"), "--capacity", "1", "--source", "testclip")
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, o)
	err = waitUntil(ctx, 20*time.Second, func() bool {
		info, err := m.tc.Channel(ctx, name)
		if err == nil {
			s.origin = info.Origin.ID
		}
		return err == nil && o.running()
	})
	if err != nil {
		return s, fmt.Errorf("origin of %s did not register: %w\n%s", name, err, o.output())
	}
	return s, nil
}

// startPeer starts a peer on h in s's channel, with its parent pinned
// to parent when that is not zero.
func (m *matrix) startPeer(ctx context.Context, s *session, h *netlab.Host, name string, parent tracker.TreeNode) (*proc, error) {
	args := []string{"peer", "--channel", s.channel, "--tracker", "http://" + pubTracker,
		"--quic", netip.AddrPortFrom(h.IPs[0], 0).String(), "--rtsp", "127.0.0.1:8554", "--nat-watch", "1s", "--log-level", "info", "--state-dir", ""}
	if parent.ID != "" {
		// The tracker's placement avoids pairs that need a relay; the
		// matrix makes every pair, so it pins the child's parent.
		args = append(args, "--parent", parent.ID+"@"+parent.Addr)
	}
	p, err := m.start(ctx, h, name, args...)
	if err == nil {
		s.procs = append(s.procs, p)
	}
	return p, err
}

// node finds the peer at ip in the channel's tree.
func (m *matrix) node(ctx context.Context, channel string, ip netip.Addr) (tracker.TreeNode, bool) {
	view, err := m.tc.Tree(ctx, channel)
	if err != nil {
		return tracker.TreeNode{}, false
	}
	for _, n := range view.Nodes {
		if ap, err := netip.ParseAddrPort(n.Addr); err == nil && ap.Addr() == ip {
			return n, true
		}
	}
	return tracker.TreeNode{}, false
}

// runPair runs one pair: A joins under the origin, B under A.
func (m *matrix) runPair(ctx context.Context, i int, sp pairSpec) Pair {
	r := Pair{A: sp.a.name, B: sp.b.name, Expected: sp.expect, Outcome: tracker.OutcomeFailed}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PairTimeout)
	defer cancel()
	s, err := m.startChannel(ctx, fmt.Sprintf("pair%d", i))
	if s != nil {
		defer m.stop(s.procs...)
	}
	if err != nil {
		r.Note = err.Error()
		return r
	}
	pa, err := m.startPeer(ctx, s, sp.a.host, s.channel+" parent "+sp.a.name, tracker.TreeNode{})
	if err != nil {
		r.Note = err.Error()
		return r
	}
	var a, b tracker.TreeNode
	if err := waitUntil(ctx, 20*time.Second, func() bool {
		var ok bool
		a, ok = m.node(ctx, s.channel, sp.a.host.IPs[0])
		return ok && a.Parent == s.origin && pa.running()
	}); err != nil {
		r.Note = "parent not placed under the origin: " + err.Error()
		return r
	}
	pb, err := m.startPeer(ctx, s, sp.b.host, s.channel+" child "+sp.b.name, a)
	if err != nil {
		r.Note = err.Error()
		return r
	}
	var conn tracker.Connection
	err = waitUntil(ctx, m.cfg.PairTimeout, func() bool {
		var ok bool
		if b, ok = m.node(ctx, s.channel, sp.b.host.IPs[0]); !ok || !pb.running() {
			return false
		}
		if conn.Outcome == "" {
			cs, err := m.tc.NATConnections(ctx)
			if err == nil {
				for _, c := range cs.Connections {
					if c.Channel == s.channel && c.From == b.ID && c.Target == a.ID {
						conn = c
						break
					}
				}
			}
		}
		return conn.Outcome != "" && b.Stats.PlayedSlices > 0 && b.Stats.P2PBytesIn > 0
	})
	if n, ok := m.node(ctx, s.channel, sp.a.host.IPs[0]); ok {
		a = n
	}
	r.stats = [2]tracker.PeerStats{a.Stats, b.Stats}
	if conn.Outcome != "" {
		r.Outcome, r.ConnectMS = conn.Outcome, conn.ConnectMS
	}
	r.Played = b.Stats.PlayedSlices > 0 && b.Stats.P2PBytesIn > 0
	if err != nil {
		r.Note = fmt.Sprintf("child: played %d slices, %d bytes from its parent %s, connection %q",
			b.Stats.PlayedSlices, b.Stats.P2PBytesIn, a.ID, conn.Outcome)
		if !r.Played {
			r.Outcome = tracker.OutcomeFailed
		}
		r.Note += "\n" + pb.tail(20)
	}
	return r
}

// natChecks runs `swarmtv peer --nat-check` behind the second router of
// every type and returns the class each printed.
func (m *matrix) natChecks(ctx context.Context) map[string]string {
	out := map[string]string{}
	seen := map[netlab.NAT]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range m.lab.Sites {
		if seen[s.NAT]++; seen[s.NAT] != 2 {
			continue
		}
		h, err := m.host(s)
		name := siteName(m.lab, s)
		if err != nil {
			out[name] = ""
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			b, err := h.Command(cctx, m.cfg.Binary, "peer", "--nat-check", "--tracker", "http://"+pubTracker,
				"--quic", netip.AddrPortFrom(h.IPs[0], 0).String()).CombinedOutput()
			class := ""
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "class:"); ok && err == nil {
					class = strings.TrimSpace(v)
				}
			}
			mu.Lock()
			out[name] = class
			mu.Unlock()
			fmt.Fprintf(m.cfg.Progress, "nat-check behind %s: %s\n", name, class)
		})
	}
	wg.Wait()
	return out
}

// runBounce bounces the uplink of a symmetric NAT under a child that
// plays from a parent behind a full cone.
func (m *matrix) runBounce(ctx context.Context) *Bounce {
	var fc, sym *netlab.Site
	for _, s := range m.lab.Sites {
		if s.NAT == netlab.FullCone && fc == nil {
			fc = s
		}
		if s.NAT == netlab.Symmetric {
			sym = s // the second one
		}
	}
	bo := &Bounce{Site: siteName(m.lab, sym)}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	ha, err := m.host(fc)
	if err != nil {
		bo.Note = err.Error()
		return bo
	}
	hb, err := m.host(sym)
	if err != nil {
		bo.Note = err.Error()
		return bo
	}
	s, err := m.startChannel(ctx, "bounce")
	if s != nil {
		defer m.stop(s.procs...)
	}
	if err != nil {
		bo.Note = err.Error()
		return bo
	}
	var a, b tracker.TreeNode
	if _, err := m.startPeer(ctx, s, ha, "bounce parent", tracker.TreeNode{}); err != nil {
		bo.Note = err.Error()
		return bo
	}
	if err := waitUntil(ctx, 20*time.Second, func() bool {
		var ok bool
		a, ok = m.node(ctx, s.channel, ha.IPs[0])
		return ok && a.Parent == s.origin
	}); err != nil {
		bo.Note = "parent not placed: " + err.Error()
		return bo
	}
	pb, err := m.startPeer(ctx, s, hb, "bounce child", a)
	if err != nil {
		bo.Note = err.Error()
		return bo
	}
	if err := waitUntil(ctx, 30*time.Second, func() bool {
		var ok bool
		b, ok = m.node(ctx, s.channel, hb.IPs[0])
		return ok && b.Stats.PlayedSlices > 20 && b.Stats.P2PBytesIn > 0
	}); err != nil {
		bo.Note = "child did not play before the bounce: " + err.Error() + "\n" + pb.tail(20)
		return bo
	}
	conns := func() int {
		cs, err := m.tc.NATConnections(ctx)
		n := 0
		if err == nil {
			for _, c := range cs.Connections {
				if c.Channel == s.channel && c.From == b.ID && c.Outcome != tracker.OutcomeFailed {
					n++
				}
			}
		}
		return n
	}
	before := conns()
	bo.PlayedBefore = b.Stats.PlayedSlices
	bounced := time.Now()
	if err := m.lab.BounceWAN(ctx, sym); err != nil {
		bo.Note = err.Error()
		return bo
	}
	// Playback must go on for 5 more seconds of slices (50 at 100 ms)
	// after the child noticed.
	err = waitUntil(ctx, 45*time.Second, func() bool {
		if !bo.Noticed && strings.Contains(pb.output(), "NAT mapping changed") {
			bo.Noticed, bo.NoticedMS = true, time.Since(bounced).Milliseconds()
		}
		bo.Reprobed = strings.Count(pb.output(), "msg=NAT ") >= 2
		if !bo.Reconnected && conns() > before {
			bo.Reconnected, bo.ReconnectMS = true, time.Since(bounced).Milliseconds()
		}
		if n, ok := m.node(ctx, s.channel, hb.IPs[0]); ok {
			bo.PlayedAfter = n.Stats.PlayedSlices
		}
		return bo.Noticed && bo.Reprobed && bo.PlayedAfter > bo.PlayedBefore+50 && (bo.Reconnected || time.Since(bounced) > 15*time.Second)
	})
	bo.Continued = bo.PlayedAfter > bo.PlayedBefore+50
	if err != nil {
		bo.Note = err.Error() + "\n" + pb.tail(30)
	}
	return bo
}

// proc is a swarmtv process in a lab namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	out bytes.Buffer // guarded by mu
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Len() > 4<<20 {
		return len(b), nil
	}
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimSpace(p.output()), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  [" + p.name + "]\n  " + strings.Join(lines, "\n  ")
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// start runs the binary in h's namespace.
func (m *matrix) start(ctx context.Context, h *netlab.Host, name string, args ...string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = h.Command(context.WithoutCancel(ctx), m.cfg.Binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: starting %s: %w", name, err)
	}
	// The lab's processes yield the CPU to everything else on the
	// machine (other tests run beside the matrix in CI): the matrix
	// checks connectivity, not speed.
	_ = unix.Setpriority(unix.PRIO_PROCESS, p.cmd.Process.Pid, labNice)
	m.procs = append(m.procs, p)
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends processes: SIGTERM, then SIGKILL after 3 s.
func (m *matrix) stop(ps ...*proc) {
	for _, p := range ps {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range slices.Backward(ps) {
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func (m *matrix) stopAll() {
	m.mu.Lock()
	ps := slices.Clone(m.procs)
	m.mu.Unlock()
	var live []*proc
	for _, p := range ps {
		if p.running() {
			live = append(live, p)
		}
	}
	m.stop(live...)
}

func (m *matrix) logs() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, p := range m.procs {
		b.WriteString(p.tail(20) + "\n")
	}
	return b.String()
}

// waitUntil polls ok every 100 ms until it is true, limit passes or ctx
// ends.
func waitUntil(ctx context.Context, limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for {
		if ok() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
