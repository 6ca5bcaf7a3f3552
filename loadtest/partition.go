package loadtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmtv/swarmtv/internal/report"
	"github.com/swarmtv/swarmtv/loadtest/netlab"
	"github.com/swarmtv/swarmtv/proxy"
	"github.com/swarmtv/swarmtv/tracker"
)

// PartitionConfig configures RunPartition.
type PartitionConfig struct {
	// Binary is the swarmtv binary the processes run. Required.
	Binary string
	// Cut is how long the internet stays cut between the two groups;
	// default 30 s.
	Cut time.Duration
	// HostsPerSite is the number of peers behind each of the four NAT
	// routers (two on each side of the cut); default 2.
	HostsPerSite int
	// Resume bounds, after the heal, the wait for the cut-off side to
	// play again and for one ring; default 60 s.
	Resume time.Duration
	// Progress receives a line per phase (may be nil).
	Progress io.Writer
	// LogDir, when set, receives every process's whole log at the end
	// (one file per process).
	LogDir string
}

// PartitionPeer is one peer's figures in the partition scenario.
type PartitionPeer struct {
	Site string `json:"site"` // its NAT router, e.g. fullcone#0
	ID   string `json:"id"`
	// Side is "origin" (it still reaches the origin and tracker during
	// the cut) or "cut" (it does not).
	Side string `json:"side"`
	// Played, Due and Stalls count slices played on time, slices due
	// (played + late + lost) and stalls over the cut, from the peer's
	// own counters; Continuity = Played / Due (1 when nothing was due).
	Played     uint64  `json:"played"`
	Due        uint64  `json:"due"`
	Stalls     uint64  `json:"stalls"`
	Continuity float64 `json:"continuity"`
	// ResumeMS is, for a cut-off peer, the time from the heal until it
	// had played 2 s more (0: it did not within the bound).
	ResumeMS int64 `json:"resume_ms"`
}

// PartitionReport is swarmtv.report/v1 with the partition's figures.
type PartitionReport struct {
	*report.Report
	CutS float64 `json:"cut_s"`
	// SplitMS is the time from the cut until the origin's side formed
	// its own consistent ring and no ring spanned the cut, and MergeMS from the heal until all peers formed
	// one again (0: not within the bound).
	SplitMS int64 `json:"split_ms"`
	MergeMS int64 `json:"merge_ms"`
	// OriginSideContinuity is played / due over the cut on the side that
	// still reaches the origin, over all its peers.
	OriginSideContinuity float64 `json:"origin_side_continuity"`
	// ResumedMS is the time from the heal until every cut-off peer
	// played again (0: not all did within the bound).
	ResumedMS int64           `json:"resumed_ms"`
	PeerList  []PartitionPeer `json:"peer_list"`
	Note      string          `json:"note,omitempty"`

	// LabPrefix names the lab's namespaces (all removed by the time
	// RunPartition returns).
	LabPrefix string `json:"-"`
}

// statusAddr is where every lab peer serves its status page, on its own
// namespace's loopback.
const statusAddr = "127.0.0.1:9100"

// partPeer is a peer process of the partition scenario.
type partPeer struct {
	PartitionPeer
	host *netlab.Host
	proc *proc
	http *http.Client
}

// view reads the peer's status page.
func (p *partPeer) view(ctx context.Context) (proxy.View, error) {
	var v proxy.View
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+statusAddr+"/api/v1/peer", nil)
	if err != nil {
		return v, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("status page: %s", resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// RunPartition builds a lab of four NAT routers (full cone, restricted,
// port-restricted, full cone; every pair can punch) with HostsPerSite
// hosts each, a tracker and an origin (the bundled clip, 4 stripes) on
// the public host, and one real `swarmtv peer` per host. Once every
// peer plays and the peers form one overlay ring, the internet is cut
// for Cut between the first two sites with the public host and the last
// two: the first side keeps the origin and the tracker, the other
// neither. It measures each side's playback over the cut (from each
// peer's status page, reached inside its namespace), the rings
// splitting at the cut, and after the heal the time until the cut-off peers play
// again and all peers form one ring again.
//
// Everything (namespaces, processes) is torn down before it returns,
// also on failure. It needs root.
func RunPartition(ctx context.Context, cfg PartitionConfig) (*PartitionReport, error) {
	if cfg.Binary == "" {
		return nil, errors.New("loadtest: partition needs the swarmtv binary")
	}
	if cfg.Cut <= 0 {
		cfg.Cut = 30 * time.Second
	}
	if cfg.HostsPerSite <= 0 {
		cfg.HostsPerSite = 2
	}
	if cfg.HostsPerSite > 10 {
		return nil, fmt.Errorf("loadtest: at most 10 hosts per site, not %d", cfg.HostsPerSite)
	}
	if cfg.Resume <= 0 {
		cfg.Resume = 60 * time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	start := time.Now()
	lab, err := netlab.New(ctx, netlab.Config{
		NATs:        []netlab.NAT{netlab.FullCone, netlab.Restricted, netlab.PortRestricted, netlab.FullCone},
		HostsPerNAT: cfg.HostsPerSite,
	})
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	tmp, err := os.MkdirTemp("", "swarmtv-partition-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	m := &matrix{cfg: NATMatrixConfig{Binary: cfg.Binary}, lab: lab, tmp: tmp, used: map[*netlab.Site]int{}}
	defer func() {
		m.stopAll()
		if cfg.LogDir != "" {
			m.saveLogs(cfg.LogDir)
		}
	}()
	ht := &http.Transport{DialContext: lab.Public.DialContext, DisableKeepAlives: true}
	m.http = &http.Client{Timeout: 5 * time.Second, Transport: ht}

	rep := &PartitionReport{Report: report.New("loadtest", "partition"), CutS: cfg.Cut.Seconds(), LabPrefix: lab.Prefix}
	if _, err := m.start(ctx, lab.Public, "tracker", "tracker", "--listen", pubTracker,
		"--stun", "203.0.113.2:3478", "--stun-alt-ip", "203.0.113.3", "--stun-alt-port", "3479", "--heartbeat", "1s"); err != nil {
		return nil, err
	}
	if _, err := m.start(ctx, lab.Public, "origin", "origin", "--channel", "part", "--tracker", "http://"+pubTracker,
		"--quic", "203.0.113.2:7001", "--key", filepath.Join(tmp, "part.key"), "--stripes", "4", "--capacity", "2", "--source", "testclip"); err != nil {
		return nil, err
	}
	var peers []*partPeer
	for i, s := range lab.Sites {
		side := "origin"
		if i >= 2 {
			side = "cut"
		}
		for _, h := range s.Hosts {
			p := &partPeer{host: h, PartitionPeer: PartitionPeer{Site: siteName(lab, s), Side: side}}
			p.http = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}}
			peers = append(peers, p)
		}
	}
	// The origin registers first, so the peers find the channel.
	m.tc = &tracker.Client{BaseURL: "http://" + pubTracker, HTTP: m.http}
	if err := waitUntil(ctx, 20*time.Second, func() bool {
		_, err := m.tc.Channel(ctx, "part")
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("loadtest: the origin did not register: %w\n%s", err, m.logs())
	}
	for i, p := range peers {
		p.proc, err = m.start(ctx, p.host, fmt.Sprintf("peer %d (%s)", i, p.Site), "peer", "--channel", "part",
			"--tracker", "http://"+pubTracker, "--quic", netip.AddrPortFrom(p.host.IPs[0], 0).String(),
			"--rtsp", "127.0.0.1:8554", "--status", statusAddr, "--log-level", "info",
			"--state-dir", filepath.Join(tmp, fmt.Sprintf("peer%d", i)))
		if err != nil {
			return nil, err
		}
	}

	views := func() map[*partPeer]proxy.View {
		out := make(map[*partPeer]proxy.View, len(peers))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, p := range peers {
			wg.Go(func() {
				v, err := p.view(ctx)
				if err == nil {
					mu.Lock()
					out[p] = v
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return out
	}
	side := func(s string) []*partPeer {
		return slices.DeleteFunc(slices.Clone(peers), func(p *partPeer) bool { return p.Side != s })
	}

	// Everyone plays, on one ring.
	var vs map[*partPeer]proxy.View
	why := ""
	err = waitUntil(ctx, 60*time.Second, func() bool {
		vs = views()
		for _, p := range peers {
			if v, ok := vs[p]; !ok || v.PlayedSlices < 30 {
				why = fmt.Sprintf("%s has not played 3 s yet (%d slices)", p.Site, v.PlayedSlices)
				return false
			}
		}
		var ok bool
		ok, why = oneRing(vs, peers)
		return ok
	})
	if err != nil {
		return nil, fmt.Errorf("loadtest: before the cut: %w: %s\n%s", err, why, m.logs())
	}
	for _, p := range peers {
		p.ID = vs[p].ID
	}
	fmt.Fprintf(cfg.Progress, "%d peers play on one ring; cutting the internet for %v\n", len(peers), cfg.Cut)

	before := vs
	if err := lab.Partition(ctx, lab.Sites[:2], lab.Sites[2:], true); err != nil {
		return nil, err
	}
	cut := time.Now()
	// The origin's side (with the tracker's rendezvous) forms one ring.
	// The cut-off side has no rendezvous: a peer behind a filtering NAT
	// there can be dialled only by a peer it dialled first, so the side
	// may form one ring or several; what matters is that no ring spans
	// the cut.
	err = waitUntil(ctx, cfg.Cut, func() bool {
		vs = views()
		okA, whyA := oneRing(vs, side("origin"))
		okB, whyB := confined(vs, side("cut"))
		why = whyA + whyB
		return okA && okB
	})
	if err == nil {
		rep.SplitMS = time.Since(cut).Milliseconds()
		fmt.Fprintf(cfg.Progress, "rings split at the cut after %d ms\n", rep.SplitMS)
		if ok, whyB := oneRing(vs, side("cut")); !ok {
			rep.Note += fmt.Sprintf("the cut-off side formed more than one ring (%s); ", whyB)
		}
	} else {
		rep.Note += fmt.Sprintf("the rings did not split at the cut: %s; ", why)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Cut - time.Since(cut)):
	}
	during := views()
	var played, due uint64
	for _, p := range peers {
		b, e := before[p], during[p]
		p.Played = e.PlayedSlices - b.PlayedSlices
		p.Due = p.Played + (e.LateSlices - b.LateSlices) + (e.LostSlices - b.LostSlices)
		p.Stalls = e.Stalls - b.Stalls
		p.Continuity = 1
		if p.Due > 0 {
			p.Continuity = float64(p.Played) / float64(p.Due)
		}
		if p.Side == "origin" {
			played += p.Played
			due += p.Due
		}
	}
	rep.OriginSideContinuity = 1
	if due > 0 {
		rep.OriginSideContinuity = float64(played) / float64(due)
	}
	fmt.Fprintf(cfg.Progress, "healing after %v; the origin's side played %d of %d slices due\n", time.Since(cut).Round(time.Millisecond), played, due)

	if err := lab.Heal(ctx); err != nil {
		return nil, err
	}
	healed := time.Now()
	err = waitUntil(ctx, cfg.Resume, func() bool {
		vs = views()
		done := true
		for _, p := range side("cut") {
			if p.ResumeMS == 0 && vs[p].PlayedSlices >= during[p].PlayedSlices+20 {
				p.ResumeMS = max(time.Since(healed).Milliseconds(), 1)
			}
			done = done && p.ResumeMS > 0
		}
		if rep.MergeMS == 0 {
			if ok, w := oneRing(vs, peers); ok {
				rep.MergeMS = max(time.Since(healed).Milliseconds(), 1)
			} else {
				why = w
			}
		}
		return done && rep.MergeMS > 0
	})
	if err != nil {
		rep.Note += fmt.Sprintf("after the heal: %v (ring: %s); ", err, why)
	} else {
		for _, p := range side("cut") {
			rep.ResumedMS = max(rep.ResumedMS, p.ResumeMS)
		}
	}
	fmt.Fprintf(cfg.Progress, "after the heal: one ring after %d ms, cut-off side playing after %d ms\n", rep.MergeMS, rep.ResumedMS)

	end := views()
	for _, p := range peers {
		rep.PeerList = append(rep.PeerList, p.PartitionPeer)
		v := end[p]
		rep.PlayerBytes += int64(v.PlayerBytes)
		rep.P2PBytes += int64(v.BytesDownP2P)
		rep.OriginEgressBytes += int64(v.BytesDownOrig)
		rep.Stalls += int64(v.Stalls)
	}
	if rep.Note != "" {
		rep.Note += "\n" + m.logs()
	}
	rep.Peers = len(peers)
	rep.StreamKbps = clipKbps
	rep.Savings = report.Savings(rep.OriginEgressBytes, rep.PlayerBytes)
	rep.WallS = time.Since(start).Seconds()
	rep.DurationS = rep.WallS
	return rep, nil
}

// oneRing reports whether the peers' status pages show one consistent
// overlay ring of exactly those peers, in ring-ID order, and says what is
// out of place if not.
func oneRing(vs map[*partPeer]proxy.View, peers []*partPeer) (bool, string) {
	type member struct{ ring, id string }
	var ms []member
	for _, p := range peers {
		v, why := onRing(vs, p)
		if why != "" {
			return false, why
		}
		ms = append(ms, member{v.Overlay.RingID, v.ID})
	}
	// Ring IDs are fixed-width hex: string order is ring order.
	slices.SortFunc(ms, func(a, b member) int { return cmp.Compare(a.ring, b.ring) })
	for i, mb := range ms {
		var v proxy.View
		for _, p := range peers {
			if vs[p].ID == mb.id {
				v = vs[p]
			}
		}
		next, prev := ms[(i+1)%len(ms)].id, ms[(i+len(ms)-1)%len(ms)].id
		if len(ms) == 1 {
			next, prev = "", ""
		}
		succ := successor(v)
		if succ != next || v.Overlay.Predecessor != prev {
			return false, fmt.Sprintf("%s: successor %q, predecessor %q; want %q and %q", short(mb.id), short(succ), short(v.Overlay.Predecessor), short(next), short(prev))
		}
	}
	return true, ""
}

// confined reports whether every one of peers is on a ring whose
// successor and predecessor are among peers (no ring spans a cut), and
// says which is not if not.
func confined(vs map[*partPeer]proxy.View, peers []*partPeer) (bool, string) {
	in := make(map[string]bool, len(peers))
	for _, p := range peers {
		in[vs[p].ID] = true
	}
	for _, p := range peers {
		v, why := onRing(vs, p)
		if why != "" {
			return false, why
		}
		for _, n := range []string{successor(v), v.Overlay.Predecessor} {
			if n != "" && !in[n] {
				return false, fmt.Sprintf("%s: ring neighbour %s across the cut", short(v.ID), short(n))
			}
		}
	}
	return true, ""
}

// onRing returns p's status and, if p shows no ring, why.
func onRing(vs map[*partPeer]proxy.View, p *partPeer) (proxy.View, string) {
	v, ok := vs[p]
	switch {
	case !ok:
		return v, p.Site + ": no status page"
	case !v.Overlay.Joined || v.Overlay.RingID == "":
		return v, p.Site + ": not on a ring"
	}
	return v, ""
}

// successor returns the first successor a status shows, or "".
func successor(v proxy.View) string {
	if len(v.Overlay.Successors) == 0 {
		return ""
	}
	return v.Overlay.Successors[0]
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Table formats the report for people.
func (r *PartitionReport) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %-6s %-8s %8s %8s %7s %10s %10s\n", "site", "side", "id", "played", "due", "stalls", "continuity", "resume")
	for _, p := range r.PeerList {
		fmt.Fprintf(&b, "%-16s %-6s %-8s %8d %8d %7d %10.4f %7d ms\n", p.Site, p.Side, short(p.ID), p.Played, p.Due, p.Stalls, p.Continuity, p.ResumeMS)
	}
	fmt.Fprintf(&b, "cut %.0f s: rings split after %d ms; origin's side continuity %.4f over the cut; after the heal one ring after %d ms, the cut-off side playing after %d ms\n",
		r.CutS, r.SplitMS, r.OriginSideContinuity, r.MergeMS, r.ResumedMS)
	if r.Note != "" {
		b.WriteString("note: " + r.Note + "\n")
	}
	return b.String()
}

// saveLogs writes every process's output to dir, one file each.
func (m *matrix) saveLogs(dir string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range m.procs {
		name := fmt.Sprintf("%02d-%s.log", i, strings.NewReplacer(" ", "_", "/", "_", "(", "", ")", "", "#", "").Replace(p.name))
		os.WriteFile(filepath.Join(dir, name), []byte(p.output()), 0o644)
	}
}
