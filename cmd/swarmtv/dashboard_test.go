package main

// Operator-surface tests (issue #7): every role's /metrics scraped while
// real processes stream, the demo's dashboard API and event stream, and
// the dashboard and a peer's status page driven in headless Chromium.
//
// Screenshots go to $SWARMTV_ARTIFACTS when it is set (kept), else to the
// test's temporary folder (removed); the test logs their paths.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmtv/swarmtv/tracker"
	"github.com/swarmtv/swarmtv/web"
)

// scrape returns the samples of a Prometheus text exposition, keyed by
// the series as written (name{labels}).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scraping %s: %s, Content-Type %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("%s: bad sample line %q", url, line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// need fails unless every series is present.
func need(t *testing.T, role string, m map[string]float64, series ...string) {
	t.Helper()
	for _, s := range series {
		if _, ok := m[s]; !ok {
			t.Errorf("%s /metrics lacks %s", role, s)
		}
	}
}

// grows fails unless series grew between two scrapes.
func grows(t *testing.T, role string, before, after map[string]float64, series ...string) {
	t.Helper()
	for _, s := range series {
		if !(after[s] > before[s]) {
			t.Errorf("%s: %s did not grow: %v then %v", role, s, before[s], after[s])
		}
	}
}

func TestMetricsOfEveryRole(t *testing.T) {
	s := startTracker(t)
	originMetrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.startOrigin(t, "--metrics", originMetrics)
	var peers []*peer
	for i := range 3 {
		peers = append(peers, s.startPeer(t, fmt.Sprintf("peer%d", i), 2))
	}
	trackerURL := s.trackerURL + "/metrics"
	originURL := "http://" + originMetrics + "/metrics"
	peerURL := func(p *peer) string { return strings.TrimSuffix(p.status, "/status") + "/metrics" }

	// The tracker samples once a second and peers heartbeat every 500 ms:
	// wait until it counts all three viewers and some bytes played.
	ch := `{channel="e2e"}`
	waitFor(t, 20*time.Second, "tracker telemetry of 3 playing viewers", func() bool {
		m := scrape(t, trackerURL)
		return m["swarmtv_viewers"+ch] == 3 && m["swarmtv_startup_seconds_count"+ch] == 3 && m["swarmtv_lag_seconds_count"+ch] >= 3
	})
	tr1, or1 := scrape(t, trackerURL), scrape(t, originURL)
	var pe1 []map[string]float64
	for _, p := range peers {
		pe1 = append(pe1, scrape(t, peerURL(p)))
	}
	time.Sleep(3 * time.Second)
	tr2, or2 := scrape(t, trackerURL), scrape(t, originURL)

	need(t, "tracker", tr2,
		"swarmtv_player_bytes_total"+ch, "swarmtv_p2p_bytes_total"+ch,
		`swarmtv_origin_egress_bytes_total{channel="e2e",reason="seed"}`,
		`swarmtv_origin_egress_bytes_total{channel="e2e",reason="fallback"}`,
		"swarmtv_savings_ratio"+ch, "swarmtv_viewers"+ch,
		`swarmtv_tracker_events_total{event="join"}`, `swarmtv_tracker_events_total{event="leave"}`,
		`swarmtv_slices_total{channel="e2e",state="late"}`, `swarmtv_slices_total{channel="e2e",state="lost"}`,
		"swarmtv_stalls_total"+ch, "swarmtv_bad_chunks_total"+ch,
		"swarmtv_startup_seconds_count"+ch, `swarmtv_lag_seconds_bucket{channel="e2e",le="+Inf"}`,
		`swarmtv_nat_peers{nat="unknown"}`, "swarmtv_relayed_connections", `swarmtv_nat_connections_total{outcome="direct"}`,
		"go_goroutines")
	// The tracker runs its STUN service on loopback: every peer probed
	// its NAT (none here: open) and dialed its parents directly.
	if n := tr2[`swarmtv_nat_peers{nat="open"}`]; n != 3 {
		t.Errorf("swarmtv_nat_peers{nat=\"open\"} %v, want 3 (every peer probed on loopback)", n)
	}
	if n := tr2[`swarmtv_nat_connections_total{outcome="direct"}`]; n < 2 {
		t.Errorf("direct connections reported %v, want >= 2", n)
	}
	grows(t, "tracker", tr1, tr2, "swarmtv_player_bytes_total"+ch, "swarmtv_p2p_bytes_total"+ch,
		`swarmtv_origin_egress_bytes_total{channel="e2e",reason="seed"}`, `swarmtv_slices_total{channel="e2e",state="played"}`,
		"swarmtv_lag_seconds_count"+ch)
	if sv := tr2["swarmtv_savings_ratio"+ch]; sv <= 0 || sv >= 1 {
		t.Errorf("tracker savings ratio %v, want in (0, 1): the origin feeds one peer of three", sv)
	}
	if n := tr2[`swarmtv_tracker_events_total{event="join"}`]; n < 3 {
		t.Errorf("joins %v, want >= 3", n)
	}
	if n := tr2["swarmtv_startup_seconds_count"+ch]; n != 3 {
		t.Errorf("startup observations %v, want one per peer (3)", n)
	}
	// No per-peer labels at the tracker.
	for key := range tr2 {
		for _, p := range peers {
			if id := string(p.mustStatus(t).ID); strings.Contains(key, id) {
				t.Errorf("tracker series %s names a peer", key)
			}
		}
	}

	need(t, "origin", or2, `swarmtv_origin_chunks_total{channel="e2e"}`,
		`swarmtv_origin_sent_bytes_total{channel="e2e",reason="seed"}`,
		`swarmtv_origin_sent_bytes_total{channel="e2e",reason="fallback"}`, `swarmtv_origin_children{channel="e2e"}`)
	grows(t, "origin", or1, or2, `swarmtv_origin_chunks_total{channel="e2e"}`,
		`swarmtv_origin_sent_bytes_total{channel="e2e",reason="seed"}`)
	// The tracker's figure (from the peers' reports) trails the origin's
	// own count of what it sent.
	derived := tr2[`swarmtv_origin_egress_bytes_total{channel="e2e",reason="seed"}`] +
		tr2[`swarmtv_origin_egress_bytes_total{channel="e2e",reason="fallback"}`]
	sent := or2[`swarmtv_origin_sent_bytes_total{channel="e2e",reason="seed"}`] +
		or2[`swarmtv_origin_sent_bytes_total{channel="e2e",reason="fallback"}`]
	if derived > sent*1.05 || derived < sent/3 {
		t.Errorf("tracker's origin egress %v far from the origin's own count %v", derived, sent)
	}

	fromPeers := 0.0
	for i, p := range peers {
		m := scrape(t, peerURL(p))
		role := fmt.Sprintf("peer %d", i)
		need(t, role, m, "swarmtv_peer_player_bytes_total", `swarmtv_peer_received_bytes_total{source="peer"}`,
			`swarmtv_peer_received_bytes_total{source="origin"}`, "swarmtv_peer_forwarded_bytes_total",
			`swarmtv_peer_slices_total{state="played"}`, "swarmtv_peer_stalls_total", "swarmtv_peer_bad_chunks_total",
			"swarmtv_peer_lag_seconds", "swarmtv_peer_startup_seconds", "swarmtv_peer_parent_connected")
		grows(t, role, pe1[i], m, "swarmtv_peer_player_bytes_total", `swarmtv_peer_slices_total{state="played"}`)
		fromPeers += m[`swarmtv_peer_received_bytes_total{source="peer"}`]
	}
	if fromPeers == 0 {
		t.Error("no peer received anything from another peer")
	}
}

// demoProc is a `swarmtv demo` process and its dashboard URL.
type demoProc struct {
	*proc
	url string
}

// demoISP names the ISP of 127.0.0.0/8 in the demos' prefix table.
const demoISP = "AS64500 Loopback"

func startDemo(t *testing.T, peers int) *demoProc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := &demoProc{url: "http://" + addr}
	table := filepath.Join(t.TempDir(), "isp.csv")
	if err := os.WriteFile(table, []byte("# the demo's peers are all on loopback\n127.0.0.0/8,"+demoISP+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.proc = start(t, "demo", "demo", "--peers", strconv.Itoa(peers), "--rtsp-port", strconv.Itoa(freePort(t)),
		"--dashboard-addr", addr, "--duration", "5m", "--isp-table", table)
	waitFor(t, 90*time.Second, "the demo's dashboard URL printed", func() bool {
		d.mustRun(t)
		return strings.Contains(d.output(), "dashboard: "+d.url+"/")
	})
	waitFor(t, 20*time.Second, fmt.Sprintf("dashboard state with %d viewers", peers), func() bool {
		st, err := dashboardState(d.url)
		return err == nil && st.Viewers == peers && len(st.Channels) == 1 && len(st.Channels[0].History) >= 2
	})
	return d
}

func dashboardState(url string) (tracker.DashboardState, error) {
	var st tracker.DashboardState
	resp, err := http.Get(url + "/api/v1/dashboard")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("%s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

func TestDemoDashboardAPIAndMetrics(t *testing.T) {
	d := startDemo(t, 5)
	if !regexp.MustCompile(`peer 4: rtsp://\S+\s+status ` + regexp.QuoteMeta(d.url) + `/peers/4/`).MatchString(d.output()) {
		t.Errorf("demo output lacks peer 4's status URL:\n%s", d.output())
	}

	st, err := dashboardState(d.url)
	if err != nil {
		t.Fatal(err)
	}
	c := st.Channels[0]
	if st.Schema != "swarmtv.dashboard/v1" || c.Name != "demo" || c.Viewers != 5 {
		t.Errorf("state: schema %q channel %q viewers %d", st.Schema, c.Name, c.Viewers)
	}
	// One tree per stripe (4 with 5 peers): every peer has a parent in
	// each, so each stripe has 5 edges.
	perStripe := map[int]int{}
	for _, e := range c.Tree.Edges {
		perStripe[e.Stripe]++
	}
	if c.Tree.Stripes != 4 || len(c.Tree.Nodes) != 5 || c.Tree.Origin.ID == "" || len(perStripe) != 4 {
		t.Errorf("tree: %d stripes, %d nodes, edges per stripe %v, origin %q; want 4, 5, 5 each and the origin",
			c.Tree.Stripes, len(c.Tree.Nodes), perStripe, c.Tree.Origin.ID)
	}
	for s, n := range perStripe {
		if n != 5 {
			t.Errorf("stripe %d has %d edges, want 5", s, n)
		}
	}
	// The NAT mix, the connections and the ISP matrix are real figures.
	if !st.NAT.Known || st.NAT.Counts["open"] != 5 {
		t.Errorf("NAT mix %+v, want 5 open peers (loopback)", st.NAT)
	}
	if !st.Connections.Known || st.Connections.Direct < 4 || st.Connections.Relayed != 0 {
		t.Errorf("connections %+v, want >= 4 direct, none relayed", st.Connections)
	}
	if !st.ISP.Known || len(st.ISP.ISPs) == 0 || st.ISP.ISPs[0] != demoISP || st.ISP.Bytes[0][0] <= 0 {
		t.Errorf("ISP matrix %+v, want %s → %s > 0", st.ISP, demoISP, demoISP)
	}
	for _, n := range c.Tree.Nodes {
		if n.ISP != demoISP || n.NAT != "open" || len(n.Depths) != 4 {
			t.Errorf("node %s: ISP %q NAT %q depths %v", n.ID, n.ISP, n.NAT, n.Depths)
		}
	}

	// The event stream delivers fresh states.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", d.url+"/api/v1/dashboard/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	var seqs []uint64
	for len(seqs) < 3 && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ev tracker.DashboardState
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatalf("event: %v", err)
			}
			seqs = append(seqs, ev.Seq)
		}
	}
	if len(seqs) < 3 || seqs[2] <= seqs[0] {
		t.Errorf("event stream sequence numbers %v, want growing (err %v)", seqs, sc.Err())
	}

	m1 := scrape(t, d.url+"/metrics")
	p1 := scrape(t, d.url+"/peers/3/metrics")
	time.Sleep(2500 * time.Millisecond)
	m2 := scrape(t, d.url+"/metrics")
	p2 := scrape(t, d.url+"/peers/3/metrics")
	ch := `{channel="demo"}`
	need(t, "demo", m2, "swarmtv_viewers"+ch, "swarmtv_savings_ratio"+ch, `swarmtv_origin_sent_bytes_total{channel="demo",reason="seed"}`)
	if m2["swarmtv_viewers"+ch] != 5 {
		t.Errorf("viewers %v, want 5", m2["swarmtv_viewers"+ch])
	}
	if sv := m2["swarmtv_savings_ratio"+ch]; sv <= 0 || sv >= 1 {
		t.Errorf("savings %v, want in (0, 1)", sv)
	}
	// With the origin feeding one peer of five, savings approach 80%.
	waitFor(t, 40*time.Second, "savings over 50% at the tracker", func() bool {
		return scrape(t, d.url+"/metrics")["swarmtv_savings_ratio"+ch] > 0.5
	})
	grows(t, "demo", m1, m2, "swarmtv_player_bytes_total"+ch, `swarmtv_origin_chunks_total{channel="demo"}`,
		// Every demo peer is in the table's one ISP: P2P traffic stays inside it.
		`swarmtv_p2p_isp_bytes_total{channel="demo",path="same_isp"}`)
	if n := m2[`swarmtv_p2p_isp_bytes_total{channel="demo",path="cross_isp"}`]; n != 0 {
		t.Errorf("cross-ISP bytes %v in a one-ISP demo", n)
	}
	grows(t, "demo peer 3", p1, p2, "swarmtv_peer_player_bytes_total")

	// The Grafana board queries only series that exist.
	names := map[string]bool{}
	for key := range m2 {
		names[strings.SplitN(key, "{", 2)[0]] = true
	}
	board, err := os.ReadFile("../../deploy/grafana/swarmtv.json")
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	if err := json.Unmarshal(board, &parsed); err != nil {
		t.Fatalf("deploy/grafana/swarmtv.json: %v", err)
	}
	used := regexp.MustCompile(`swarmtv_[a-z0-9_]+`).FindAllString(string(board), -1)
	if len(used) < 15 {
		t.Errorf("the Grafana board queries only %d series", len(used))
	}
	for _, n := range used {
		if !names[n] {
			t.Errorf("deploy/grafana/swarmtv.json queries %s, which the demo's /metrics does not export", n)
		}
	}

	// The tracker's API shares the address and keeps its JSON errors.
	r2, err := http.Post(d.url+"/v1/channels/demo/heartbeat", "application/json", strings.NewReader(`{"id":`))
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 400 {
		t.Errorf("malformed heartbeat: %s, want 400", r2.Status)
	}
	// Telemetry a peer could forge is refused and changes nothing: an
	// unknown NAT class, negative counters, an oversized body.
	peerID := c.Tree.Nodes[0].ID
	for _, body := range []string{
		`{"id":"` + peerID + `","nat":"cgnat"}`,
		`{"id":"` + peerID + `","stats":{"p2p_bytes_in":-5}}`,
		`{"id":"` + peerID + `","candidates":["` + strings.Repeat("x", 70<<10) + `"]}`,
	} {
		r, err := http.Post(d.url+"/v1/channels/demo/heartbeat", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode < 400 || r.StatusCode > 499 {
			t.Errorf("heartbeat %.60s…: %s, want 4xx", body, r.Status)
		}
	}
	if st, err := dashboardState(d.url); err != nil || st.NAT.Counts["open"] != 5 || len(st.NAT.Counts) != 1 {
		t.Errorf("NAT mix after refused heartbeats %+v (%v), want 5 open", st.NAT, err)
	}
	for _, path := range []string{"/peers/9/", "/peers/x/metrics", "/nope"} {
		r, err := http.Get(d.url + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 404 {
			t.Errorf("GET %s: %s, want 404", path, r.Status)
		}
	}
}

// browser starts headless Chromium and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("chromium is not installed (apt-get install chromium); bash .ci/run installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, tcancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(tcancel)
	return ctx
}

// artifacts is where screenshots go.
func artifacts(t *testing.T) string {
	if dir := os.Getenv("SWARMTV_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitUpdates waits until the page's update counter (#updates) passes n.
func waitUpdates(t *testing.T, ctx context.Context, n int) int {
	t.Helper()
	var got int
	waitFor(t, 30*time.Second, fmt.Sprintf("more than %d live updates on the page", n), func() bool {
		got = eval[int](t, ctx, `+document.getElementById("updates").textContent`)
		return got > n
	})
	return got
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives a PNG, below a JPEG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

func TestDashboardInBrowser(t *testing.T) {
	ctx := browser(t)
	d := startDemo(t, 5)

	if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/"), chromedp.WaitVisible("#trees")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	first := waitUpdates(t, ctx, 0)
	waitUpdates(t, ctx, first) // a live update after the first state
	if conn := eval[string](t, ctx, `document.getElementById("conn").textContent`); conn != "live" {
		t.Errorf("connection badge %q, want live", conn)
	}
	if v := eval[string](t, ctx, `document.getElementById("viewers").textContent`); v != "5" {
		t.Errorf("viewers shown %q, want 5", v)
	}
	// With the origin feeding one peer of five, savings approach 80%;
	// the page follows them live.
	var sv string
	waitFor(t, 40*time.Second, "savings over 50% on the page", func() bool {
		sv = eval[string](t, ctx, `document.getElementById("savings").textContent`)
		pct, err := strconv.ParseFloat(strings.TrimSuffix(sv, "%"), 64)
		return err == nil && pct > 50 && pct < 100
	})
	t.Logf("savings shown: %s", sv)
	// One stripe tree at a time: 4 stripe buttons; pick stripe 2.
	if n := eval[int](t, ctx, `document.querySelectorAll("#trees button.stripe").length`); n != 4 {
		t.Errorf("%d stripe buttons, want 4", n)
	}
	// A DOM click (the page redraws every second, so no mouse coordinates).
	eval[bool](t, ctx, `(document.querySelector('#trees button.stripe[data-stripe="2"]').click(), true)`)
	// The choice survives the next live update.
	waitUpdates(t, ctx, waitUpdates(t, ctx, 0))
	tree := func(stripe int) (nodes, edges, origins, dangling, wrongStripe int) {
		sel := fmt.Sprintf(`#trees svg[data-stripe="%d"]`, stripe)
		nodes = eval[int](t, ctx, `document.querySelectorAll('`+sel+` g.node').length`)
		edges = eval[int](t, ctx, `document.querySelectorAll('`+sel+` line.edge').length`)
		origins = eval[int](t, ctx, `document.querySelectorAll('`+sel+` g.node.origin').length`)
		// Every edge joins two drawn nodes of that stripe's tree.
		dangling = eval[int](t, ctx, `[...document.querySelectorAll('`+sel+` line.edge')].filter(e =>
			!document.querySelector('`+sel+` g.node[data-id="' + e.dataset.from + '"]') ||
			!document.querySelector('`+sel+` g.node[data-id="' + e.dataset.to + '"]')).length`)
		wrongStripe = eval[int](t, ctx, `[...document.querySelectorAll("#trees line.edge")].filter(e => e.dataset.stripe !== "`+strconv.Itoa(stripe)+`").length`)
		return
	}
	nodes, edges, origins, dangling, wrong := tree(2)
	if nodes != 6 || edges != 5 || origins != 1 || dangling != 0 || wrong != 0 {
		t.Errorf("stripe 2 drawn with %d nodes (%d origin), %d edges (%d dangling, %d of another stripe); want 6 (1), 5 (0, 0)",
			nodes, origins, edges, dangling, wrong)
	}
	// The tree of stripe 2 is the tracker's: its edges are the state's.
	st, err := dashboardState(d.url)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, e := range st.Channels[0].Tree.Edges {
		if e.Stripe == 2 {
			want[e.From+">"+e.To] = true
		}
	}
	drawn := eval[[]string](t, ctx, `[...document.querySelectorAll('#trees svg[data-stripe="2"] line.edge')].map(e => e.dataset.from + ">" + e.dataset.to)`)
	matched := 0
	for _, e := range drawn {
		if want[e] {
			matched++
		}
	}
	if matched < 4 { // a round may move one edge between the two reads
		t.Errorf("drawn stripe-2 edges %v, the tracker's %v", drawn, want)
	}
	// Nodes coloured by ISP, with the table's name.
	if n := eval[int](t, ctx, `document.querySelectorAll('#trees g.node[data-isp="`+demoISP+`"]').length`); n != 6 {
		t.Errorf("%d nodes in ISP %s, want 6 (the origin and 5 peers on loopback)", n, demoISP)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#chart-viewers polyline").length`); n != 1 {
		t.Errorf("viewers chart has %d lines, want 1", n)
	}
	// NAT mix and connections from the peers' probes and dials.
	if nat := eval[string](t, ctx, `document.querySelector('#nat .bar div[data-nat="open"]')?.textContent || ""`); nat != "open: 5" {
		t.Errorf("NAT mix shows %q, want open: 5", nat)
	}
	if note := eval[string](t, ctx, `document.getElementById("nat-note").textContent`); strings.Contains(note, "Unknown") {
		t.Errorf("NAT mix says it is unknown: %q", note)
	}
	if n, err := strconv.Atoi(eval[string](t, ctx, `document.getElementById("conn-direct").textContent`)); err != nil || n < 4 {
		t.Errorf("direct connections shown %d (%v), want >= 4", n, err)
	}
	// The ISP matrix from real P2P bytes.
	cell := eval[string](t, ctx, `document.querySelector('#isp tr[data-isp="`+demoISP+`"] td[data-bytes]')?.dataset.bytes || ""`)
	if b, err := strconv.ParseInt(cell, 10, 64); err != nil || b <= 0 {
		t.Errorf("ISP matrix %s → %s shows %q bytes", demoISP, demoISP, cell)
	}
	if note := eval[string](t, ctx, `document.getElementById("isp-note").textContent`); !strings.Contains(note, "Approximation") {
		t.Errorf("ISP matrix note %q does not explain the approximation", note)
	}
	if row := eval[string](t, ctx, `document.querySelector('#channels tr[data-channel="demo"]').cells[1].textContent`); row != "5" {
		t.Errorf("channel table viewers %q", row)
	}
	screenshot(t, ctx, "dashboard-stripe2.png")
	// A DOM click (the page redraws every second, so no mouse coordinates).
	eval[bool](t, ctx, `(document.querySelector('#trees button.stripe[data-stripe="0"]').click(), true)`)
	if nodes, edges, origins, dangling, wrong := tree(0); nodes != 6 || edges != 5 || origins != 1 || dangling != 0 || wrong != 0 {
		t.Errorf("stripe 0 drawn with %d nodes (%d origin), %d edges (%d dangling, %d of another stripe)", nodes, origins, edges, dangling, wrong)
	}
	screenshot(t, ctx, "dashboard.png")

	// A peer's status page.
	if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/peers/1/"), chromedp.WaitVisible("#rtsp")); err != nil {
		t.Fatalf("opening peer 1's status page: %v", err)
	}
	first = waitUpdates(t, ctx, 0)
	waitUpdates(t, ctx, first)
	down := func() string { return eval[string](t, ctx, `document.getElementById("down-p2p").textContent`) }
	if u := eval[string](t, ctx, `document.getElementById("rtsp").textContent`); !regexp.MustCompile(`^rtsp://127\.0\.0\.1:\d+/demo$`).MatchString(u) {
		t.Errorf("RTSP URL shown %q", u)
	}
	if p := eval[string](t, ctx, `document.getElementById("parent").textContent`); !strings.HasPrefix(p, "peer ") {
		t.Errorf("peer 1's parent shown as %q, want another peer (the origin feeds peer 0 only)", p)
	}
	if s := eval[string](t, ctx, `document.getElementById("state").textContent`); s != "playing" {
		t.Errorf("state %q, want playing", s)
	}
	if dn := down(); dn == "0 B" || dn == "–" {
		t.Errorf("bytes down from peers shown %q", dn)
	}
	if c := eval[string](t, ctx, `document.getElementById("children").textContent`); c == "–" {
		t.Errorf("children not shown")
	}
	// Per-stripe parents and backups, overlay partners, NAT type.
	if n := eval[int](t, ctx, `document.querySelectorAll("#stripe-table tbody tr[data-stripe]").length`); n != 4 {
		t.Errorf("stripe table has %d rows, want 4", n)
	}
	if p := eval[string](t, ctx, `document.querySelector('#stripe-table tr[data-stripe="0"]').cells[1].textContent`); !strings.HasPrefix(p, "peer ") && !strings.HasPrefix(p, "origin ") {
		t.Errorf("stripe 0's parent shown as %q", p)
	}
	waitFor(t, 20*time.Second, "overlay partners on peer 1's page", func() bool {
		return eval[bool](t, ctx, `/^[0-9a-f]{8}/.test(document.getElementById("partners").textContent)`)
	})
	if nat := eval[string](t, ctx, `document.getElementById("nat").textContent`); !strings.HasPrefix(nat, "open, mapped 127.0.0.1:") {
		t.Errorf("NAT type shown %q, want open on loopback", nat)
	}
	screenshot(t, ctx, "peer-status.png")
}

// At 1,000 viewers (a real tracker placing in-process joins from two
// ISPs, some behind symmetric NATs) the page draws MaxDashboardNodes
// peers per stripe tree and says how many it left out.
func TestDashboardThousandViewersInBrowser(t *testing.T) {
	table, err := tracker.ParseISPTable(strings.NewReader("10.1.0.0/16,AS1 Alpha\n10.2.0.0/16,AS2 Beta\n"))
	if err != nil {
		t.Fatal(err)
	}
	// These viewers never heartbeat: a 20 s interval keeps them from
	// expiring (3 intervals) while a loaded machine starts the browser.
	tr, err := tracker.New(tracker.Config{ISPs: table, HeartbeatInterval: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pub := make([]byte, 32)
	origin := tracker.NodeInfo{ID: strings.Repeat("0", 32), Addr: "10.1.0.1:9000"}
	if _, err := tr.Register(tracker.RegisterRequest{Capacity: 4, Channel: tracker.ChannelInfo{
		Name: "big", SDP: "v=0\r\n", PublicKey: base64.StdEncoding.EncodeToString(pub),
		Origin: origin, Stripes: 4, SliceMS: 100}}); err != nil {
		t.Fatal(err)
	}
	reqs := make([]tracker.JoinRequest, 1000)
	for i := range reqs {
		addr := fmt.Sprintf("10.%d.%d.%d:4000", 1+i%2, i/250, 2+i%250)
		nat := "fullcone"
		if i%10 == 0 {
			nat = "symmetric"
		}
		reqs[i] = tracker.JoinRequest{ID: fmt.Sprintf("%032x", i+1), Addr: addr, Capacity: 8, NAT: nat,
			ISP: []string{"AS1 Alpha", "AS2 Beta"}[i%2]}
	}
	if _, errs := tr.JoinBatch("big", reqs); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	// One child reports that its link to its parent in some stripe went
	// through the relay.
	rv := tracker.NewRendezvous(tr, tracker.RendezvousConfig{})
	tel := tracker.NewTelemetry(tr, tracker.TelemetryConfig{Interval: 200 * time.Millisecond, Rendezvous: rv})
	tel.Sample(time.Now())
	var relayed tracker.TreeEdge
	for _, e := range tel.DashboardState().Channels[0].Tree.Edges {
		if e.From != origin.ID {
			relayed = e
			break
		}
	}
	if err := rv.Result("big", tracker.ConnectResult{ID: relayed.To, Target: relayed.From, Outcome: tracker.OutcomeRelayed}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.Dashboard(tel.DashboardState, 500*time.Millisecond))
	t.Cleanup(srv.Close)

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible("#trees")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	waitUpdates(t, ctx, 1)
	if v := eval[string](t, ctx, `document.getElementById("viewers").textContent`); v != "1000" {
		t.Errorf("viewers shown %q", v)
	}
	for _, s := range []int{0, 3} {
		eval[bool](t, ctx, fmt.Sprintf(`(document.querySelector('#trees button.stripe[data-stripe="%d"]').click(), true)`, s))
		sel := fmt.Sprintf(`#trees svg[data-stripe="%d"]`, s)
		// Peers drawn as nodes, plus leaf peers drawn inside bars: every
		// peer the state carries, and the origin.
		nodes := eval[int](t, ctx, `document.querySelectorAll('`+sel+` g.node').length`)
		inBars := eval[int](t, ctx, `[...document.querySelectorAll('`+sel+` g.agg')].reduce((a, g) => a + +g.dataset.count, 0)`)
		edges := eval[int](t, ctx, `document.querySelectorAll('`+sel+` line.edge').length`) +
			eval[int](t, ctx, `[...document.querySelectorAll('`+sel+` line.agg-edge')].reduce((a, l) => a + +l.dataset.count, 0)`)
		if nodes+inBars != tracker.MaxDashboardNodes+1 || inBars == 0 || edges < tracker.MaxDashboardNodes/2 || edges > tracker.MaxDashboardNodes {
			t.Errorf("stripe %d: %d nodes + %d in leaf bars, %d edges drawn; want %d (origin included) with some in bars, up to one edge each",
				s, nodes, inBars, edges, tracker.MaxDashboardNodes+1)
		}
		// Readable: the aggregated tree fits in a few screen widths.
		if w := eval[int](t, ctx, `+document.querySelector('`+sel+`').getAttribute("width")`); w > 4000 {
			t.Errorf("stripe %d tree is %d px wide", s, w)
		}
		// Both ISPs' colours appear.
		if n := eval[int](t, ctx, `new Set([...document.querySelectorAll('`+sel+` g.node circle, `+sel+` g.agg rect')].map(c => c.getAttribute("fill"))).size`); n < 2 {
			t.Errorf("stripe %d: %d node colours, want one per ISP", s, n)
		}
	}
	title := eval[string](t, ctx, `document.querySelector("#trees .tree-title").textContent`)
	if !strings.Contains(title, fmt.Sprintf("%d more not drawn", 1000-tracker.MaxDashboardNodes)) {
		t.Errorf("tree title %q does not say how many peers are left out", title)
	}
	if nat := eval[string](t, ctx, `document.querySelector('#nat .bar div[data-nat="symmetric"]')?.textContent || ""`); nat != "symmetric: 100" {
		t.Errorf("NAT mix shows %q, want symmetric: 100", nat)
	}
	// The relayed link is dashed in its stripe's tree (as an edge, or as
	// the link to a bar of leaves), and counted.
	eval[bool](t, ctx, fmt.Sprintf(`(document.querySelector('#trees button.stripe[data-stripe="%d"]').click(), true)`, relayed.Stripe))
	if n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll('#trees svg[data-stripe="%d"] line.relayed[data-from="%s"]').length`,
		relayed.Stripe, relayed.From)); n != 1 {
		t.Errorf("%d relayed lines from %s in stripe %d, want 1", n, relayed.From, relayed.Stripe)
	}
	if n := eval[string](t, ctx, `document.getElementById("conn-relayed_edges").textContent`); n != "1" {
		t.Errorf("tree links relayed now shown %q, want 1", n)
	}
	screenshot(t, ctx, "dashboard-1000.png")
}
