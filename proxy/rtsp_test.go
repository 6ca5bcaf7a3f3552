package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTestServer starts a server for channel "ch" on a free loopback port;
// it is closed at cleanup.
func newTestServer(t *testing.T, mod func(*RTSPConfig)) *RTSPServer {
	t.Helper()
	cfg := RTSPConfig{
		Addr:    "127.0.0.1:0",
		Channel: "ch",
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewRTSPServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// ffResult is what a real ffmpeg reader saw.
type ffResult struct {
	frames   int      // video frames decoded
	firstKey bool     // the first decoded video frame is a keyframe
	problems []string // decoder or transport complaints
	stderr   string
}

var (
	ffFrameRE   = regexp.MustCompile(`(?m)^frame=(\d+)`)
	ffShowRE    = regexp.MustCompile(`Parsed_showinfo.*\bn:\s*(\d+).*\biskey:(\d)`)
	ffProblemRE = regexp.MustCompile(`(?i)error|non-existing|no frame|concealing|corrupt|missed \d+ packets|invalid data|could not find codec`)
)

// runFFmpeg plays url with the real ffmpeg over transport for the given
// media duration and decodes audio and video. If ffmpeg runs longer than
// timeout it is killed and that is a problem.
func runFFmpeg(t *testing.T, url, transport string, seconds float64, timeout time.Duration) ffResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-v", "info",
		"-rtsp_transport", transport, "-i", url,
		"-t", strconv.FormatFloat(seconds, 'f', -1, 64),
		"-map", "0:v:0", "-map", "0:a:0", "-vf", "showinfo",
		"-f", "null", "-", "-progress", "pipe:1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := ffResult{stderr: stderr.String()}
	if ctx.Err() != nil {
		res.problems = append(res.problems, "ffmpeg did not finish within "+timeout.String())
	} else if err != nil {
		res.problems = append(res.problems, "ffmpeg exit: "+err.Error())
	}
	if m := ffFrameRE.FindAllStringSubmatch(stdout.String(), -1); len(m) > 0 {
		res.frames, _ = strconv.Atoi(m[len(m)-1][1])
	}
	for line := range strings.SplitSeq(res.stderr, "\n") {
		if m := ffShowRE.FindStringSubmatch(line); m != nil && m[1] == "0" {
			res.firstKey = m[2] == "1"
		}
		if !strings.Contains(line, "Parsed_showinfo") && ffProblemRE.MatchString(line) {
			res.problems = append(res.problems, line)
		}
	}
	return res
}

// TestRTSPPlayFFmpeg: two real ffmpeg players, over TCP and UDP at the
// same time, join a live stream mid-GOP, decode from their first frame
// without a complaint, and the server's stats account for them.
func TestRTSPPlayFFmpeg(t *testing.T) {
	c := loadClip(t)
	s := newTestServer(t, nil)
	if err := s.SetDescription(c.sdp); err != nil {
		t.Fatal(err)
	}
	startFeeder(t, s, c, feedOptions{})
	time.Sleep(1500 * time.Millisecond) // join half way through a GOP

	const seconds = 3
	results := make(map[string]ffResult)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, tr := range []string{"tcp", "udp"} {
		wg.Go(func() {
			r := runFFmpeg(t, s.URL(), tr, seconds, 15*time.Second)
			mu.Lock()
			results[tr] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	for tr, r := range results {
		if r.frames < seconds*30-10 || !r.firstKey || len(r.problems) > 0 {
			t.Errorf("%s: %d frames (want ≥ %d), first frame key %v, problems %q\n%s",
				tr, r.frames, seconds*30-10, r.firstKey, r.problems, r.stderr)
		}
	}

	st := s.Stats()
	if st.ReadersTotal != 2 || len(st.StartupMS) != 2 || st.BytesServed == 0 || st.ReadersDropped != 0 {
		t.Errorf("stats %+v: want 2 readers total, 2 startup samples, bytes served, none dropped", st)
	}
	for _, ms := range st.StartupMS {
		if ms < 0 || ms > 100 {
			t.Errorf("startup %.1f ms: a held GOP should start a player at once", ms)
		}
	}
	waitFor(t, 5*time.Second, "players gone", func() bool { return s.Stats().Readers == 0 })
}

// TestRTSPLateJoinParams: with an SDP that carries no parameter sets, a
// late joiner decodes from its first frame only because the server
// inserts the slice's SPS/PPS before the IDR. The control feeds keyframe
// slices without Params and shows that ffmpeg then does complain.
func TestRTSPLateJoinParams(t *testing.T) {
	c := loadClip(t)
	sdp := c.sdpWithoutParams()
	if bytes.Contains(sdp, []byte("sprop-parameter-sets")) {
		t.Fatalf("SDP still has parameter sets:\n%s", sdp)
	}
	for _, tc := range []struct {
		name     string
		noParams bool
	}{{"params", false}, {"control-no-params", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, func(c *RTSPConfig) { c.DisableUDP = true })
			if err := s.SetDescription(sdp); err != nil {
				t.Fatal(err)
			}
			startFeeder(t, s, c, feedOptions{noParams: tc.noParams})
			time.Sleep(1300 * time.Millisecond)
			timeout := 15 * time.Second
			if tc.noParams {
				timeout = 5 * time.Second // it cannot start; don't wait for it
			}
			r := runFFmpeg(t, s.URL(), "tcp", 2, timeout)
			ok := r.frames >= 50 && r.firstKey && len(r.problems) == 0
			if ok == tc.noParams {
				t.Errorf("decoded cleanly = %v, want %v: %d frames, first key %v, problems %q\n%s",
					ok, !tc.noParams, r.frames, r.firstKey, r.problems, r.stderr)
			}
		})
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type mediaTS struct {
	media int
	ts    uint32
}

// TestRTSPContinuity reads with a gortsplib client across a slice the
// playout skipped: sequence numbers stay continuous per media, SSRCs
// stable, timestamps are the broadcaster's, the first video packet is the
// inserted STAP-A, nothing between the gap and the next keyframe is sent,
// and RTCP sender reports map timestamps to capture times.
func TestRTSPContinuity(t *testing.T) {
	c := loadClip(t)
	s := newTestServer(t, nil)
	if err := s.SetDescription(c.sdp); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	sent := map[mediaTS]time.Time{} // every written packet → capture time
	banned := map[mediaTS]bool{}    // written after the gap, before the next keyframe
	skipSeq := uint64(0)
	inGap := false
	opt := feedOptions{
		skip: func(seq uint64, cs *clipSlice) bool {
			mu.Lock()
			defer mu.Unlock()
			if skipSeq == 0 && seq > 15 && !cs.keyframe {
				skipSeq = seq
				return true
			}
			return false
		},
		onSlice: func(sl swarm.Slice) {
			mu.Lock()
			defer mu.Unlock()
			if sl.Discontinuity {
				inGap = true
			}
			if sl.Keyframe {
				inGap = false
			}
			for _, p := range sl.Packets {
				var pkt rtp.Packet
				if err := pkt.Unmarshal(p.RTP); err != nil {
					continue
				}
				k := mediaTS{int(p.Media), pkt.Timestamp}
				sent[k] = sl.Capture.Add(time.Duration(p.Offset) * time.Microsecond)
				if inGap {
					banned[k] = true
				}
			}
		},
	}
	startFeeder(t, s, c, opt)
	time.Sleep(700 * time.Millisecond)

	type got struct {
		media int
		pkt   rtp.Packet
		ntp   time.Time
		ntpOK bool
	}
	var gotMu sync.Mutex
	var recv []got
	lost := uint64(0)

	u, err := base.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	proto := gortsplib.ProtocolTCP
	cl := &gortsplib.Client{
		Scheme: u.Scheme, Host: u.Host, Protocol: &proto,
		OnPacketsLost: func(n uint64) { gotMu.Lock(); lost += n; gotMu.Unlock() },
	}
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	desc, _, err := cl.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	cl.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		ntp, ok := cl.PacketNTP(m, pkt)
		gotMu.Lock()
		defer gotMu.Unlock()
		recv = append(recv, got{media: indexOf(desc.Medias, m), pkt: *pkt, ntp: ntp, ntpOK: ok})
	})
	if _, err := cl.Play(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the gap and the next keyframe", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return skipSeq != 0 && !inGap && len(banned) > 0
	})
	time.Sleep(1200 * time.Millisecond)
	cl.Close()

	gotMu.Lock()
	defer gotMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if len(recv) < 100 || lost != 0 {
		t.Fatalf("%d packets received, %d lost", len(recv), lost)
	}
	if len(banned) == 0 {
		t.Fatal("test stream has no packets between the gap and the next keyframe")
	}

	// The first video packet: the inserted SPS+PPS STAP-A, at the IDR's timestamp.
	firstVideo := -1
	for i, r := range recv {
		if r.media == c.video {
			firstVideo = i
			break
		}
	}
	if firstVideo < 0 {
		t.Fatal("no video received")
	}
	stap := recv[firstVideo].pkt
	var units [][]byte
	forEachNALU(codecH264, stap.Payload, func(n []byte) bool { units = append(units, n); return true })
	if stap.Payload[0]&0x1f != h264STAPA || len(units) != 2 ||
		!bytes.Equal(units[0], c.params[0]) || !bytes.Equal(units[1], c.params[1]) {
		t.Errorf("first video packet %x is not a STAP-A of the SPS and PPS", stap.Payload[:min(16, len(stap.Payload))])
	}

	nextSeq := map[int]uint16{}
	ssrc := map[int]uint32{}
	ntpChecked := 0
	for i, r := range recv {
		if n, ok := nextSeq[r.media]; ok && r.pkt.SequenceNumber != n {
			t.Fatalf("packet %d media %d: sequence number %d, want %d", i, r.media, r.pkt.SequenceNumber, n)
		}
		nextSeq[r.media] = r.pkt.SequenceNumber + 1
		if v, ok := ssrc[r.media]; ok && v != r.pkt.SSRC {
			t.Fatalf("media %d: SSRC changed from %x to %x", r.media, v, r.pkt.SSRC)
		}
		ssrc[r.media] = r.pkt.SSRC
		k := mediaTS{r.media, r.pkt.Timestamp}
		capture, ok := sent[k]
		if !ok {
			t.Fatalf("packet %d media %d: timestamp %d was never sent", i, r.media, r.pkt.Timestamp)
		}
		if banned[k] {
			t.Fatalf("packet %d media %d: timestamp %d is between the gap and the next keyframe", i, r.media, r.pkt.Timestamp)
		}
		if r.ntpOK {
			if d := r.ntp.Sub(capture).Abs(); d > 5*time.Millisecond {
				t.Errorf("packet %d media %d: NTP %v is %v from capture time %v", i, r.media, r.ntp, d, capture)
			}
			ntpChecked++
		}
	}
	if ssrc[0] == ssrc[1] {
		t.Errorf("medias share SSRC %x", ssrc[0])
	}
	// A sender report follows each media's first packet: every later
	// packet maps to its capture time.
	if ntpChecked < len(recv)-len(desc.Medias) {
		perMedia := map[int][2]int{}
		for _, r := range recv {
			v := perMedia[r.media]
			v[0]++
			if r.ntpOK {
				v[1]++
			}
			perMedia[r.media] = v
		}
		t.Errorf("only %d of %d packets had an NTP time from sender reports (media: [packets, with NTP]: %v)", ntpChecked, len(recv), perMedia)
	}
}

func indexOf(ms []*description.Media, m *description.Media) int {
	for i, x := range ms {
		if x == m {
			return i
		}
	}
	return -1
}

// rawConn is a hand-driven RTSP connection, for what players must not do.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	cseq int
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends a request and returns the response (nil if the server closed
// the connection).
func (r *rawConn) do(method, url string, hdr base.Header, body []byte) *base.Response {
	r.t.Helper()
	r.cseq++
	if hdr == nil {
		hdr = base.Header{}
	}
	hdr["CSeq"] = base.HeaderValue{strconv.Itoa(r.cseq)}
	u, err := base.ParseURL(url)
	if err != nil {
		r.t.Fatal(err)
	}
	req := base.Request{Method: base.Method(method), URL: u, Header: hdr, Body: body}
	b, err := req.Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	r.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		return nil
	}
	var res base.Response
	if err := res.Unmarshal(r.br); err != nil {
		return nil
	}
	return &res
}

func statusOf(res *base.Response) int {
	if res == nil {
		return -1
	}
	return int(res.StatusCode)
}

// TestRTSPRefusals: no description yet, wrong paths, publishing and
// garbage are refused with clear answers; the server keeps serving.
func TestRTSPRefusals(t *testing.T) {
	c := loadClip(t)
	s := newTestServer(t, nil)
	url, addr := s.URL(), s.Addr()
	root := "rtsp://" + addr

	rc := dialRaw(t, addr)
	if res := rc.do("DESCRIBE", url, nil, nil); statusOf(res) != 503 || !strings.Contains(res.StatusMessage, "not on air") {
		t.Errorf("DESCRIBE before the SDP: %d %q, want 503 with a reason", statusOf(res), res.StatusMessage)
	}
	if err := s.SetDescription(c.sdp); err != nil {
		t.Fatal(err)
	}
	if res := rc.do("OPTIONS", url, nil, nil); statusOf(res) != 200 {
		t.Errorf("OPTIONS: %d", statusOf(res))
	}
	for _, p := range []string{root + "/other", root + "/", root + "/ch/x", root + "/CH"} {
		if res := rc.do("DESCRIBE", p, nil, nil); statusOf(res) != 404 {
			t.Errorf("DESCRIBE %s: %d, want 404", p, statusOf(res))
		}
	}
	res := rc.do("DESCRIBE", url, nil, nil)
	if statusOf(res) != 200 || !bytes.Contains(res.Body, []byte("H264/90000")) ||
		!bytes.Contains(bytes.ToLower(res.Body), []byte("mpeg4-generic")) ||
		!bytes.Contains(res.Body, []byte("sprop-parameter-sets")) {
		t.Errorf("DESCRIBE: %d\n%s", statusOf(res), res.Body)
	}
	if res := rc.do("SETUP", root+"/nope/trackID=0",
		base.Header{"Transport": base.HeaderValue{"RTP/AVP/TCP;unicast;interleaved=0-1"}}, nil); statusOf(res) != 404 {
		t.Errorf("SETUP on a wrong path: %d, want 404", statusOf(res))
	}

	pub := dialRaw(t, addr)
	if res := pub.do("ANNOUNCE", url, base.Header{"Content-Type": base.HeaderValue{"application/sdp"}}, c.sdp); statusOf(res) != 405 {
		t.Errorf("ANNOUNCE: %d, want 405", statusOf(res))
	}
	if res := pub.do("RECORD", url, base.Header{"Session": base.HeaderValue{"12345678"}}, nil); statusOf(res) < 400 {
		t.Errorf("RECORD: %d, want a refusal", statusOf(res))
	}

	junk := dialRaw(t, addr)
	junk.c.Write([]byte("\x00\xff GARBAGE \r\n\r\nPLAY rtsp://x RTSP/9.9\r\n\r\n"))
	junk.c.Write(bytes.Repeat([]byte{'A'}, 70000))
	junk.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	junk.br.ReadString('\n') // whatever it answers, it must not crash

	if res := dialRaw(t, addr).do("DESCRIBE", url, nil, nil); statusOf(res) != 200 {
		t.Errorf("DESCRIBE after garbage: %d", statusOf(res))
	}
}

// TestRTSPVanishingReaders: players that disappear mid-stream — a TCP one
// by dropping its connection, a UDP one by going silent — cost nothing
// lasting; Close cleans up (goleak checks in TestMain).
func TestRTSPVanishingReaders(t *testing.T) {
	c := loadClip(t)
	s := newTestServer(t, nil)
	if err := s.SetDescription(c.sdp); err != nil {
		t.Fatal(err)
	}
	startFeeder(t, s, c, feedOptions{})
	url := s.URL()

	// TCP: play, read a little, vanish.
	for range 3 {
		rc := dialRaw(t, s.Addr())
		var sess string
		for i := range 2 {
			res := rc.do("SETUP", fmt.Sprintf("%s/trackID=%d", url, i), base.Header{
				"Transport": base.HeaderValue{fmt.Sprintf("RTP/AVP/TCP;unicast;interleaved=%d-%d", 2*i, 2*i+1)},
				"Session":   base.HeaderValue{sess},
			}, nil)
			if statusOf(res) != 200 {
				t.Fatalf("SETUP: %d", statusOf(res))
			}
			sess = strings.Split(res.Header["Session"][0], ";")[0]
		}
		if res := rc.do("PLAY", url, base.Header{"Session": base.HeaderValue{sess}}, nil); statusOf(res) != 200 {
			t.Fatalf("PLAY: %d", statusOf(res))
		}
		buf := make([]byte, 4096)
		if _, err := rc.br.Read(buf); err != nil {
			t.Fatalf("no media after PLAY: %v", err)
		}
		rc.c.Close()
	}
	waitFor(t, 5*time.Second, "vanished TCP readers removed", func() bool { return s.Stats().Readers == 0 })

	// UDP: play, then close the sockets without TEARDOWN.
	rtpC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rtpC.Close()
	port := rtpC.LocalAddr().(*net.UDPAddr).Port
	rc := dialRaw(t, s.Addr())
	res := rc.do("SETUP", url+"/trackID=0", base.Header{
		"Transport": base.HeaderValue{fmt.Sprintf("RTP/AVP;unicast;client_port=%d-%d", port, port+1)},
	}, nil)
	if statusOf(res) != 200 {
		t.Fatalf("UDP SETUP: %d", statusOf(res))
	}
	sess := strings.Split(res.Header["Session"][0], ";")[0]
	if res := rc.do("PLAY", url, base.Header{"Session": base.HeaderValue{sess}}, nil); statusOf(res) != 200 {
		t.Fatalf("UDP PLAY: %d", statusOf(res))
	}
	rtpC.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	if _, _, err := rtpC.ReadFrom(buf); err != nil {
		t.Fatalf("no UDP media after PLAY: %v", err)
	}
	rtpC.Close()
	rc.c.Close()
	time.Sleep(300 * time.Millisecond)
	if st := s.Stats(); st.ReadersTotal != 4 {
		t.Errorf("stats %+v: want 4 readers total", st)
	}

	// A new player is served as before.
	r := dialRaw(t, s.Addr()).do("DESCRIBE", url, nil, nil)
	if statusOf(r) != 200 {
		t.Errorf("DESCRIBE after vanished readers: %d", statusOf(r))
	}
}

// synthSDP is a one-media H.264 description for synthetic slices.
const synthSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=synth\r\nt=0 0\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" +
	"a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QADKzZQUH7ARAAAAMAEAAAAwPA8UKZYA==,aOvjyyLA; profile-level-id=64000C\r\n"

// synthSlice is a keyframe slice of n packets of 1400 bytes.
func synthSlice(seq uint64, n int) swarm.Slice {
	sl := swarm.Slice{Seq: seq, Capture: time.Now(), Duration: 20 * time.Millisecond, Keyframe: true}
	for i := range n {
		pl := make([]byte, 1388)
		pl[0] = 0x65
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(seq*1000) + uint16(i),
			Timestamp: uint32(seq * 1800), Marker: i == n-1}, Payload: pl}
		raw, _ := p.Marshal()
		sl.Packets = append(sl.Packets, wire.Packet{RTP: raw})
	}
	return sl
}

// TestRTSPSlowReaderDropped: a player that stops reading is disconnected
// once its queue is full, WriteSlice never blocks on it, and a player that
// keeps up is unaffected.
func TestRTSPSlowReaderDropped(t *testing.T) {
	s := newTestServer(t, func(c *RTSPConfig) { c.DisableUDP = true })
	if err := s.SetDescription([]byte(synthSDP)); err != nil {
		t.Fatal(err)
	}
	url := s.URL()

	// The stuck player: a small receive buffer, never reads after PLAY.
	addr, _ := net.ResolveTCPAddr("tcp", s.Addr())
	tc, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetReadBuffer(4096)
	stuck := &rawConn{t: t, c: tc, br: bufio.NewReader(tc)}
	res := stuck.do("SETUP", url+"/trackID=0", base.Header{
		"Transport": base.HeaderValue{"RTP/AVP/TCP;unicast;interleaved=0-1"}}, nil)
	if statusOf(res) != 200 {
		t.Fatalf("SETUP: %d", statusOf(res))
	}
	sess := strings.Split(res.Header["Session"][0], ";")[0]
	if res := stuck.do("PLAY", url, base.Header{"Session": base.HeaderValue{sess}}, nil); statusOf(res) != 200 {
		t.Fatalf("PLAY: %d", statusOf(res))
	}

	// The good player.
	u, _ := base.ParseURL(url)
	proto := gortsplib.ProtocolTCP
	cl := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto}
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	desc, _, err := cl.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	received := 0
	cl.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { mu.Lock(); received++; mu.Unlock() })
	if _, err := cl.Play(nil); err != nil {
		t.Fatal(err)
	}

	var worst time.Duration
	seq := uint64(1)
	write := func() {
		t0 := time.Now()
		s.WriteSlice(synthSlice(seq, 200))
		worst = max(worst, time.Since(t0))
		seq++
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(15 * time.Second)
	for s.Stats().ReadersDropped == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stuck reader never dropped: %+v", s.Stats())
		}
		write()
	}
	mu.Lock()
	before := received
	mu.Unlock()
	for range 10 {
		write()
	}
	waitFor(t, 5*time.Second, "the good player to keep receiving", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return received >= before+1000
	})
	st := s.Stats()
	if st.Readers != 1 || st.ReadersDropped != 1 {
		t.Errorf("stats %+v: want the good reader left and one dropped", st)
	}
	// Blocking on the stuck reader would take gortsplib's write timeout
	// (10 s); allow for a loaded machine under the race detector.
	if worst > time.Second {
		t.Errorf("WriteSlice took up to %v with a stuck reader", worst)
	}
}

// TestRTSPSetDescription: the same SDP again changes nothing; a different
// one disconnects players and is what DESCRIBE answers next; bad SDPs are
// refused.
func TestRTSPSetDescription(t *testing.T) {
	c := loadClip(t)
	s := newTestServer(t, nil)
	for _, bad := range [][]byte{nil, []byte("garbage"), []byte("v=0\r\ns=x\r\n")} {
		if err := s.SetDescription(bad); err == nil {
			t.Errorf("SetDescription(%q) accepted", bad)
		}
	}
	if err := s.SetDescription(c.sdp); err != nil {
		t.Fatal(err)
	}
	startFeeder(t, s, c, feedOptions{})

	u, _ := base.ParseURL(s.URL())
	cl := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	desc, _, err := cl.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Play(nil); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- cl.Wait() }()

	if err := s.SetDescription(bytes.Clone(c.sdp)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		t.Fatalf("same SDP again ended the player: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := s.SetDescription(c.sdpWithoutParams()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("a new SDP did not disconnect the player")
	}
	res := dialRaw(t, s.Addr()).do("DESCRIBE", s.URL(), nil, nil)
	if statusOf(res) != 200 || bytes.Contains(res.Body, []byte("sprop-parameter-sets")) {
		t.Errorf("DESCRIBE after reset: %d\n%s", statusOf(res), res.Body)
	}
}

func TestRTSPConfig(t *testing.T) {
	for _, cfg := range []RTSPConfig{
		{},
		{Channel: "a/b"},
		{Channel: "a b"},
		{Channel: strings.Repeat("x", 65)},
		{Channel: "ch", Addr: "nonsense"},
		{Channel: "ch", UDPRTPAddress: "127.0.0.1:9000"},
		{Channel: "ch", UDPRTPAddress: "127.0.0.1:9001", UDPRTCPAddress: "127.0.0.1:9002"},
	} {
		if _, err := NewRTSPServer(cfg); err == nil {
			t.Errorf("NewRTSPServer(%+v) accepted", cfg)
		}
	}
	s, err := NewRTSPServer(RTSPConfig{Channel: "ch"})
	if err != nil || s.cfg.Addr != DefaultRTSPAddr || s.URL() != "" {
		t.Fatalf("defaults: %v %+v %q", err, s.cfg, s.URL())
	}
	s.Close()
	if err := s.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}

	// Several servers on free ports: distinct UDP pairs, even/odd.
	seen := map[string]bool{}
	for range 3 {
		srv := newTestServer(t, nil)
		if err := srv.Start(); err == nil {
			t.Error("second Start succeeded")
		}
		if !strings.HasPrefix(srv.URL(), "rtsp://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/ch") {
			t.Errorf("URL %q", srv.URL())
		}
		a, b := srv.srv.UDPRTPAddress, srv.srv.UDPRTCPAddress
		pa, _ := addrPort(a)
		pb, _ := addrPort(b)
		if pa%2 != 0 || pb != pa+1 || seen[a] {
			t.Errorf("UDP pair %s %s", a, b)
		}
		seen[a] = true
	}
}

// TestRTSPConcurrentSetups: many players setting up at once, over UDP and
// TCP, two medias each. gortsplib v5.6.4 reads other sessions' transport
// while one of them is being set up; the server serializes SETUPs so
// that this is race-free (run with -race).
func TestRTSPConcurrentSetups(t *testing.T) {
	c := loadClip(t)
	s := newTestServer(t, nil)
	if err := s.SetDescription(c.sdp); err != nil {
		t.Fatal(err)
	}
	startFeeder(t, s, c, feedOptions{})
	url := s.URL()
	const players = 8
	var wg sync.WaitGroup
	for p := range players {
		wg.Go(func() {
			rc := dialRaw(t, s.Addr())
			var sess string
			for i := range 2 {
				tr := fmt.Sprintf("RTP/AVP/TCP;unicast;interleaved=%d-%d", 2*i, 2*i+1)
				if p%2 == 0 {
					port := 20000 + 10*p + 2*i // not bound: the server only sends to it
					tr = fmt.Sprintf("RTP/AVP;unicast;client_port=%d-%d", port, port+1)
				}
				res := rc.do("SETUP", fmt.Sprintf("%s/trackID=%d", url, i),
					base.Header{"Transport": base.HeaderValue{tr}, "Session": base.HeaderValue{sess}}, nil)
				if statusOf(res) != 200 {
					t.Errorf("player %d SETUP %d: %d", p, i, statusOf(res))
					return
				}
				sess = strings.Split(res.Header["Session"][0], ";")[0]
			}
			if res := rc.do("PLAY", url, base.Header{"Session": base.HeaderValue{sess}}, nil); statusOf(res) != 200 {
				t.Errorf("player %d PLAY: %d", p, statusOf(res))
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.ReadersTotal != players {
		t.Errorf("stats %+v: want %d readers total", st, players)
	}
}
