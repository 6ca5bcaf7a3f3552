package main

// End-to-end tests: the real binary in real processes on loopback, real
// ffmpeg as the player and the broadcaster. They check issue #2's
// acceptance: a chain origin → A → B with players on B over TCP and UDP,
// publishing with ffmpeg, a parent killed mid-stream, and bad input.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/porttest"
	"github.com/swarmtv/swarmtv/proxy"
	"github.com/swarmtv/swarmtv/tracker"
)

var binary string // path of the swarmtv binary built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "swarmtv-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "swarmtv")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building swarmtv: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needTool fails the test when a real tool it drives is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed; bash .ci/run installs it", name)
	}
}

// freePort returns a loopback TCP port that was free a moment ago, with
// the 15 after it (a demo serves peer i on port + i).
func freePort(t *testing.T) int { return porttest.Block(t, 16) }

// proc is a swarmtv process started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// start runs the swarmtv binary with args; the process is killed (by its
// pid) when the test ends, and its output is logged if the test failed.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout = p
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, p.output())
		}
	})
	return p
}

// stop ends the process gracefully, then forcibly.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// mustRun fails the test at once if the process has exited.
func (p *proc) mustRun(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.output())
	default:
	}
}

// kill ends the process at once, as a crash would.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// swarm is a tracker and an origin with the bundled clip.
type swarm struct {
	trackerURL string
	channel    string
	client     *tracker.Client
}

func startTracker(t *testing.T) *swarm {
	t.Helper()
	port := freePort(t)
	s := &swarm{trackerURL: fmt.Sprintf("http://127.0.0.1:%d", port), channel: "e2e"}
	s.client = &tracker.Client{BaseURL: s.trackerURL}
	start(t, "tracker", "tracker", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--heartbeat", "1s")
	waitFor(t, 10*time.Second, "tracker up", func() bool {
		resp, err := http.Get(s.trackerURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

func (s *swarm) startOrigin(t *testing.T, extra ...string) *proc {
	t.Helper()
	args := append([]string{"origin", "--channel", s.channel, "--tracker", s.trackerURL,
		"--quic", "127.0.0.1:0", "--key", filepath.Join(t.TempDir(), "channel.key"), "--capacity", "1",
		"--source", "testclip"}, extra...)
	o := start(t, "origin", args...)
	waitFor(t, 15*time.Second, "channel registered", func() bool {
		o.mustRun(t)
		_, err := s.client.Channel(context.Background(), s.channel)
		return err == nil
	})
	return o
}

// peer is a running peer process with its status endpoint.
type peer struct {
	*proc
	rtsp   string
	status string
}

func (s *swarm) startPeer(t *testing.T, name string, capacity int) *peer {
	t.Helper()
	rtspPort, statusPort := freePort(t), freePort(t)
	p := &peer{
		rtsp:   fmt.Sprintf("rtsp://127.0.0.1:%d/%s", rtspPort, s.channel),
		status: fmt.Sprintf("http://127.0.0.1:%d/status", statusPort),
	}
	p.proc = start(t, name, "peer", "--channel", s.channel, "--tracker", s.trackerURL,
		"--rtsp", fmt.Sprintf("127.0.0.1:%d", rtspPort), "--status", fmt.Sprintf("127.0.0.1:%d", statusPort),
		"--capacity", strconv.Itoa(capacity), "--log-level", "debug")
	waitFor(t, 15*time.Second, name+" playing", func() bool {
		p.mustRun(t)
		st, err := p.getStatus()
		return err == nil && st.Swarm.PlayedSlices > 0
	})
	return p
}

func (p *peer) getStatus() (proxy.Status, error) {
	var st proxy.Status
	resp, err := http.Get(p.status)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

func (p *peer) mustStatus(t *testing.T) proxy.Status {
	t.Helper()
	st, err := p.getStatus()
	if err != nil {
		t.Fatalf("%s status: %v", p.name, err)
	}
	return st
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// decode plays url with ffmpeg for the given media seconds and returns the
// number of video frames decoded and ffmpeg's error output.
func decode(t *testing.T, url, transport string, seconds int) (frames int, errs string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+20)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport,
		"-i", url, "-t", strconv.Itoa(seconds), "-map", "0:v", "-f", "framemd5", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg %s %s: %v\n%s", transport, url, err, stderr.String())
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			frames++
		}
	}
	return frames, stderr.String()
}

func TestChainPlaysThroughPeers(t *testing.T) {
	needTool(t, "ffmpeg")
	s := startTracker(t)
	originMetrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.startOrigin(t, "--metrics", originMetrics)
	a := s.startPeer(t, "A", 2)
	b := s.startPeer(t, "B", 2)
	c := s.startPeer(t, "C", 2)

	sa, sb, sc := a.mustStatus(t), b.mustStatus(t), c.mustStatus(t)
	tv, err := s.client.Tree(context.Background(), s.channel)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Parent.ID != tv.Origin.ID {
		t.Fatalf("A's parent is %s, want the origin %s", sa.Parent.ID, tv.Origin.ID)
	}
	if sb.Parent.ID != string(sa.ID) {
		t.Fatalf("B's parent is %s, want A %s", sb.Parent.ID, sa.ID)
	}
	if sc.Parent.ID != string(sa.ID) && sc.Parent.ID != string(sb.ID) {
		t.Fatalf("C's parent is %s, want A or B", sc.Parent.ID)
	}

	for _, transport := range []string{"tcp", "udp"} {
		// 6 s of player time: while B's playout still slows down to its
		// delay (it starts at once) its RTP timestamps run up to a
		// quarter slower than the stream, so fewer frames fit.
		frames, errs := decode(t, b.rtsp, transport, 6)
		if frames < 135 {
			t.Errorf("ffmpeg over %s decoded %d frames from B, want at least 135 (6 s at 30 fps, up to a quarter slower)", transport, frames)
		}
		if strings.TrimSpace(errs) != "" {
			t.Errorf("ffmpeg over %s reported errors:\n%s", transport, errs)
		}
	}
	sb = b.mustStatus(t)
	if sb.Swarm.OriginBytesIn != 0 {
		t.Errorf("B received %d bytes from the origin while its parent A was alive: %+v", sb.Swarm.OriginBytesIn, sb.Swarm)
	}
	if sb.Swarm.P2PBytesIn == 0 || sb.Swarm.BadChunks != 0 {
		t.Errorf("B: p2p in %d, bad chunks %d", sb.Swarm.P2PBytesIn, sb.Swarm.BadChunks)
	}
	// The clip's keyframe slices are ~1.7 times the mean: the origin's
	// default size cap cut them (a keyframe a second), and the pieces
	// went down the chain and decoded above.
	if n := scrape(t, "http://"+originMetrics+"/metrics")[`swarmtv_origin_capped_slices_total{channel="e2e"}`]; n < 3 {
		t.Errorf("origin closed %v slices at its size cap, want a keyframe's every second", n)
	}
}

// frameLog runs ffmpeg on url until ctx ends and records, for every video
// frame decoded, when it was decoded and its presentation time.
type frameLog struct {
	mu     sync.Mutex
	at     []time.Time
	pts    []float64
	stderr strings.Builder
}

var ptsRE = regexp.MustCompile(`pts_time:\s*(-?[0-9.]+)`)

func watch(ctx context.Context, t *testing.T, url string) (*frameLog, <-chan error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-rtsp_transport", "tcp", "-i", url,
		"-map", "0:v", "-vf", "showinfo", "-f", "null", "-")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fl := &frameLog{}
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			now := time.Now()
			fl.mu.Lock()
			if m := ptsRE.FindStringSubmatch(line); m != nil && strings.Contains(line, "Parsed_showinfo") {
				v, _ := strconv.ParseFloat(m[1], 64)
				fl.at = append(fl.at, now)
				fl.pts = append(fl.pts, v)
			} else if fl.stderr.Len() < 1<<16 {
				fl.stderr.WriteString(line + "\n")
			}
			fl.mu.Unlock()
		}
		done <- cmd.Wait()
	}()
	return fl, done
}

func (fl *frameLog) gaps() (frames int, maxWall time.Duration, maxPTS float64) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for i := 1; i < len(fl.at); i++ {
		maxWall = max(maxWall, fl.at[i].Sub(fl.at[i-1]))
		maxPTS = max(maxPTS, fl.pts[i]-fl.pts[i-1])
	}
	return len(fl.at), maxWall, maxPTS
}

func TestParentKilledMidStream(t *testing.T) {
	needTool(t, "ffmpeg")
	s := startTracker(t)
	s.startOrigin(t)
	a := s.startPeer(t, "A", 2)
	b := s.startPeer(t, "B", 2)
	aID := string(a.mustStatus(t).ID)
	if st := b.mustStatus(t); st.Parent.ID != aID {
		t.Fatalf("B's parent is %s, want A %s", st.Parent.ID, aID)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fl, done := watch(ctx, t, b.rtsp)
	waitFor(t, 15*time.Second, "ffmpeg decoding B", func() bool { n, _, _ := fl.gaps(); return n > 60 })
	before, _, _ := fl.gaps()
	a.kill()
	time.Sleep(8 * time.Second)
	frames, maxWall, maxPTS := fl.gaps()
	cancel()
	<-done

	st := b.mustStatus(t)
	t.Logf("frames %d (%d after the kill), largest gap %v wall / %.3fs media; B's parent now %s, origin bytes %d, lost slices %d, repairs %d",
		frames, frames-before, maxWall, maxPTS, st.Parent.ID, st.Swarm.OriginBytesIn, st.Swarm.LostSlices, st.Swarm.Repairs)
	if frames-before < 7*30*8/10 {
		t.Errorf("only %d frames decoded in the 8 s after the parent died", frames-before)
	}
	if maxWall > time.Second || maxPTS > 1 {
		t.Errorf("gap in played frames: %v wall, %.3f s media (want under 1 s)", maxWall, maxPTS)
	}
	if st.Parent.ID == aID || st.Parent.ID == "" {
		t.Errorf("B did not get a new parent: %q", st.Parent.ID)
	}
}

func TestPublishWithFFmpeg(t *testing.T) {
	needTool(t, "ffmpeg")
	s := startTracker(t)
	pub := freePort(t)
	clip := filepath.Join("..", "..", "origin", "testclip", "testdata", "clip.ts")
	if _, err := os.Stat(clip); err != nil {
		t.Fatalf("bundled clip: %v", err)
	}
	start(t, "origin", "origin", "--channel", s.channel, "--tracker", s.trackerURL,
		"--quic", "127.0.0.1:0", "--key", filepath.Join(t.TempDir(), "k"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", pub))
	// The broadcaster: ffmpeg publishing the clip in a loop.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ff := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", clip,
		"-c:v", "copy", "-c:a", "aac", "-pkt_size", "1600", "-f", "rtsp", "-rtsp_transport", "tcp", fmt.Sprintf("rtsp://127.0.0.1:%d/%s", pub, s.channel))
	var fferr bytes.Buffer
	ff.Stderr = &fferr
	waitFor(t, 10*time.Second, "origin accepting publishers", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", pub))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); ff.Wait() }()
	waitFor(t, 15*time.Second, "channel registered", func() bool {
		_, err := s.client.Channel(context.Background(), s.channel)
		return err == nil
	})
	p := s.startPeer(t, "P", 2)
	frames, errs := decode(t, p.rtsp, "tcp", 4)
	if frames < 4*30*8/10 || strings.TrimSpace(errs) != "" {
		t.Fatalf("playing back the published stream: %d frames, errors:\n%s\nffmpeg publisher: %s", frames, errs, fferr.String())
	}
	// The publisher sends RTP packets up to 1600 bytes, more than an RTSP
	// server may send (1472): the origin fragments the H.264 ones and
	// splits aggregated AAC ones, so the peer serves every packet it
	// plays (without that, ffmpeg got no picture at all).
	if st := p.mustStatus(t); st.RTSP.PacketsUnusable != 0 || st.RTSP.PacketsServed == 0 {
		t.Fatalf("peer served %d packets, %d unusable", st.RTSP.PacketsServed, st.RTSP.PacketsUnusable)
	}
}

func TestBadInput(t *testing.T) {
	run := func(args ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"origin", "--source", "http://example.invalid/x", "--key", filepath.Join(t.TempDir(), "k")}, "want testclip or an rtsp:// URL"},
		{[]string{"origin", "--source", "rtsp://", "--key", filepath.Join(t.TempDir(), "k")}, "bad RTSP URL"},
		{[]string{"origin"}, "no stream"},
		{[]string{"peer", "--stripes"}, "flag provided but not defined"},
		{[]string{"tracker", "--listen", "127.0.0.1:0", "--rejoin-window", "5m"}, "rejoin window 5m0s is too long"},
		{[]string{"nosuch"}, "unknown command"},
	} {
		code, out := run(c.args...)
		if code == 0 || !strings.Contains(out, c.want) || strings.Contains(out, "panic") {
			t.Errorf("swarmtv %s: exit %d, output %q; want a non-zero exit and %q", strings.Join(c.args, " "), code, out, c.want)
		}
	}
	for _, cmd := range []string{"origin", "tracker", "peer", "demo"} {
		code, out := run(cmd, "--help")
		if code != 0 || !strings.Contains(out, "Usage: swarmtv "+cmd) {
			t.Errorf("swarmtv %s --help: exit %d\n%s", cmd, code, out)
		}
	}
	if _, out := run("tracker", "--help"); !strings.Contains(out, "-rejoin-window duration") {
		t.Errorf("swarmtv tracker --help does not show --rejoin-window:\n%s", out)
	}

	// A peer for an unknown channel says so and exits.
	s := startTracker(t)
	code, out := run("peer", "--channel", "nosuch", "--tracker", s.trackerURL, "--rtsp", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	if code == 0 || !strings.Contains(out, "does not know this channel") {
		t.Errorf("peer for an unknown channel: exit %d, %q", code, out)
	}
	// Garbage HTTP to the tracker gets an error and the tracker lives on.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.trackerURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("\x00\x01garbage\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(conn)
	conn.Close()
	if !bytes.Contains(reply, []byte("400")) {
		t.Errorf("garbage request: reply %q, want a 400", reply)
	}
	resp, err := http.Post(s.trackerURL+"/v1/channels", "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed JSON: status %d, want 400", resp.StatusCode)
	}
	if _, err := s.client.Channels(context.Background()); err != nil {
		t.Errorf("tracker unhealthy after garbage: %v", err)
	}
}

func TestDemoReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "demo", "--peers", "3", "--duration", "20s",
		"--rtsp-port", strconv.Itoa(port), "--report", path).CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(fmt.Sprintf("rtsp://127.0.0.1:%d/demo", port+2))) || !bytes.Contains(out, []byte("savings")) {
		t.Errorf("demo output lacks the URLs or a status line:\n%s", out)
	}
	if !regexp.MustCompile(`p[12]<-\S*p0`).Match(out) { // some stripe of p1 or p2 from p0
		t.Errorf("no peer fed by another peer in the status lines:\n%s", out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"schema", "kind", "peers", "player_bytes", "origin_egress_bytes", "p2p_bytes",
		"savings", "continuity", "startup_ms", "lag_ms", "tree_depth", "nat", "control_overhead", "wall_s"} {
		if _, ok := r[f]; !ok {
			t.Errorf("report lacks %s", f)
		}
	}
	if r["schema"] != "swarmtv.report/v1" || r["peers"] != 3.0 {
		t.Errorf("report: %s", b)
	}
	// Savings count from the origin's first byte: the origin sends a
	// whole stream from the first join on while the viewers join one
	// after another, so a short run stays below the steady 2/3 (the
	// simulator's demo-3 agrees: internal/demo TestDemoMatchesSim).
	if sv, _ := r["savings"].(float64); sv < 0.5 {
		t.Errorf("savings %v with 3 peers, want over 0.5 (the origin feeds one of three)", r["savings"])
	}
	if c, _ := r["continuity"].(float64); c < 0.95 {
		t.Errorf("continuity %v", r["continuity"])
	}
	t.Logf("demo report: savings %v continuity %v startup %v lag %v depth %v", r["savings"], r["continuity"], r["startup_ms"], r["lag_ms"], r["tree_depth"])
}

// Four stripe trees: some peer gets its stripes from two parents or more,
// at least one of them a peer; that peer is killed mid-stream and ffmpeg,
// playing the child, sees no gap while the stripes move elsewhere.
func TestStripesFromDifferentParents(t *testing.T) {
	needTool(t, "ffmpeg")
	s := startTracker(t)
	s.startOrigin(t, "--stripes", "4")
	peers := []*peer{s.startPeer(t, "A", 8), s.startPeer(t, "B", 8), s.startPeer(t, "C", 8)}
	byID := map[string]*peer{}
	for _, p := range peers {
		byID[string(p.mustStatus(t).ID)] = p
	}
	var child, parent *peer
	var parentID string
	waitFor(t, 20*time.Second, "a peer fed by two parents, one of them a peer", func() bool {
		for _, p := range peers {
			st := p.mustStatus(t)
			distinct := map[string]bool{}
			for _, a := range st.Stripes {
				distinct[a.Parent.ID] = true
			}
			if len(st.Stripes) != 4 || len(distinct) < 2 || distinct[""] {
				continue
			}
			for _, a := range st.Stripes {
				if q := byID[a.Parent.ID]; q != nil {
					child, parent, parentID = p, q, a.Parent.ID
					t.Logf("%s's stripes: %v", p.name, parentIDs(st))
					return true
				}
			}
		}
		return false
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fl, done := watch(ctx, t, child.rtsp)
	waitFor(t, 15*time.Second, "ffmpeg decoding "+child.name, func() bool { n, _, _ := fl.gaps(); return n > 60 })
	before, _, _ := fl.gaps()
	parent.kill()
	time.Sleep(8 * time.Second)
	frames, maxWall, maxPTS := fl.gaps()
	cancel()
	<-done

	st := child.mustStatus(t)
	t.Logf("killed %s (parent of some of %s's stripes): %d frames after, largest gap %v wall / %.3fs media; stripes now %v; repairs %d, lost slices %d",
		parent.name, child.name, frames-before, maxWall, maxPTS, parentIDs(st), st.Swarm.Repairs, st.Swarm.LostSlices)
	if frames-before < 7*30*8/10 {
		t.Errorf("only %d frames decoded in the 8 s after the parent died", frames-before)
	}
	if maxWall > time.Second || maxPTS > 1 {
		t.Errorf("gap in played frames: %v wall, %.3f s media (want under 1 s)", maxWall, maxPTS)
	}
	for s, a := range st.Stripes {
		if a.Parent.ID == parentID {
			t.Errorf("stripe %d still names the killed parent", s)
		}
	}
}

// parentIDs lists a peer's stripe parents (short IDs, "-" for none).
func parentIDs(st proxy.Status) []string {
	out := make([]string, len(st.Stripes))
	for s, a := range st.Stripes {
		out[s] = "-"
		if a.Parent.ID != "" {
			out[s] = a.Parent.ID[:8]
		}
	}
	return out
}
