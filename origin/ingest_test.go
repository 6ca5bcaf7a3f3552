package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/swarmtv/swarmtv/internal/wire"
	"github.com/swarmtv/swarmtv/origin/testclip"
)

// noLeaks checks, after the test and all its cleanups, that no goroutine
// started during the test is left.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// collector gathers what a Source hands over and says when enough came.
type collector struct {
	mu       sync.Mutex
	descs    []*description.Session
	pkts     []Packet
	early    int // packets before any description
	enough   func(c *collector) bool
	done     chan struct{}
	doneOnce sync.Once
}

func newCollector(enough func(c *collector) bool) *collector {
	return &collector{enough: enough, done: make(chan struct{})}
}

func (c *collector) onDesc(d *description.Session) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.descs = append(c.descs, d)
	return nil
}

func (c *collector) emit(p Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.descs) == 0 {
		c.early++
	}
	c.pkts = append(c.pkts, p)
	if c.enough(c) {
		c.doneOnce.Do(func() { close(c.done) })
	}
}

// countLocked counts packets of a media from index from on.
func (c *collector) countLocked(media, from int) int {
	n := 0
	for _, p := range c.pkts[from:] {
		if p.Media == media {
			n++
		}
	}
	return n
}

func (c *collector) snapshot() ([]*description.Session, []Packet, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*description.Session(nil), c.descs...), append([]Packet(nil), c.pkts...), c.early
}

// checkClipDesc checks a description carries the clip's H.264 (with
// parameter sets) and AAC medias.
func checkClipDesc(t *testing.T, d *description.Session) {
	t.Helper()
	var h264 *format.H264
	var aac *format.MPEG4Audio
	if d.FindFormat(&h264) == nil || d.FindFormat(&aac) == nil {
		t.Fatalf("description lacks H.264 or AAC: %+v", d.Medias)
	}
	if len(h264.SPS) == 0 || len(h264.PPS) == 0 {
		t.Fatal("H.264 format without SPS/PPS")
	}
	if aac.ClockRate() != 48000 {
		t.Fatalf("AAC at %d Hz", aac.ClockRate())
	}
}

// checkFlow checks per-media RTP sequence continuity and ordered capture
// times, and that the packets chunk into at least one keyframe slice.
func checkFlow(t *testing.T, d *description.Session, pkts []Packet) {
	t.Helper()
	last := map[int]uint16{}
	var prev time.Time
	for i, p := range pkts {
		if s, ok := last[p.Media]; ok && p.RTP.SequenceNumber != s+1 {
			t.Fatalf("packet %d media %d: seq %d after %d", i, p.Media, p.RTP.SequenceNumber, s)
		}
		last[p.Media] = p.RTP.SequenceNumber
		if p.Capture.Before(prev) {
			t.Fatalf("packet %d: capture went back", i)
		}
		prev = p.Capture
	}
	ch, err := NewChunker(ChunkerConfig{Channel: "ch", Stripes: 4}, d)
	if err != nil {
		t.Fatal(err)
	}
	var chunks []*wire.Chunk
	for _, p := range pkts {
		chunks = append(chunks, ch.Push(p)...)
	}
	chunks = append(chunks, ch.Flush()...)
	// Every packet fits MaxRTPPacket (AAC split between access units); the
	// video's NAL units survive the fragmenting of larger packets.
	var in, out [][]byte
	big := 0
	for _, p := range pkts {
		if p.Media == 0 {
			in = append(in, p.RTP.Payload)
			if p.RTP.MarshalSize() > MaxRTPPacket {
				big++
			}
		}
	}
	for _, sl := range groupSlices(t, chunks, 4) {
		ps, err := wire.Merge(sl)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if len(p.RTP) > MaxRTPPacket {
				t.Fatalf("slice %d: a packet of media %d of %d bytes", sl[0].Seq, p.Media, len(p.RTP))
			}
			var r rtp.Packet
			if p.Media == 0 && r.Unmarshal(p.RTP) == nil {
				out = append(out, r.Payload)
			}
		}
	}
	inUnits, err := h264Units(in)
	if err != nil {
		t.Fatal(err)
	}
	outUnits, err := h264Units(out)
	if err != nil {
		t.Fatal(err)
	}
	// The last access unit may be cut short by the end of the capture.
	if len(outUnits) < len(inUnits)-1 || len(outUnits) > len(inUnits) {
		t.Fatalf("%d NAL units in, %d out", len(inUnits), len(outUnits))
	}
	for i := range outUnits {
		if i < len(outUnits)-1 && !bytes.Equal(inUnits[i], outUnits[i]) {
			t.Fatalf("NAL unit %d differs after fragmenting", i)
		}
	}
	t.Logf("%d of %d video packets over %d bytes were fragmented", big, len(in), MaxRTPPacket)
	keys := 0
	for _, c := range chunks {
		if c.Keyframe && c.Stripe == 0 {
			keys++
			if len(c.Params) < 2 {
				t.Fatalf("keyframe slice %d has %d parameter sets", c.Seq, len(c.Params))
			}
		}
	}
	if keys == 0 {
		t.Fatalf("no keyframe slice in %d packets", len(pkts))
	}
}

// keyframeSeen reports whether a video packet carrying IDR data arrived.
func keyframeSeenLocked(c *collector, from int) bool {
	for _, p := range c.pkts[from:] {
		if p.Media == 0 && payloadHasIDR(p.RTP.Payload) {
			return true
		}
	}
	return false
}

func TestClipSource(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clip, err := testclip.Default()
	if err != nil {
		t.Fatal(err)
	}
	src := newClipSource(testLog(t), testclip.Options{NoPace: true, Loops: 2})
	c := newCollector(func(*collector) bool { return false })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Run(ctx, c.onDesc, c.emit); err != nil {
		t.Fatal(err)
	}
	descs, pkts, early := c.snapshot()
	if len(descs) != 1 || early != 0 {
		t.Fatalf("%d descriptions, %d packets before the first", len(descs), early)
	}
	checkClipDesc(t, descs[0])
	if len(pkts) != 2*clip.PacketsPerLoop() {
		t.Fatalf("%d packets, want 2 loops of %d", len(pkts), clip.PacketsPerLoop())
	}
	checkFlow(t, descs[0], pkts)

	// The real-time source stops on cancel.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	n := 0
	err = NewClipSource(nil, nil).Run(ctx2, func(*description.Session) error { return nil }, func(Packet) { n++ })
	if !errors.Is(err, context.DeadlineExceeded) || n == 0 || n > clip.PacketsPerLoop()/10 {
		t.Fatalf("paced run: %v after %d packets", err, n)
	}

	// An onDesc error stops Run before any packet.
	errStop := errors.New("stop")
	err = NewClipSource(nil, nil).Run(ctx, func(*description.Session) error { return errStop }, func(Packet) { t.Fatal("packet after onDesc failed") })
	if !errors.Is(err, errStop) {
		t.Fatalf("Run = %v, want the onDesc error", err)
	}
}

// clipServer is an RTSP server playing the bundled clip in real time at
// /clip, as a camera or mediamtx would.
type clipServer struct {
	url        string
	mu         sync.Mutex
	transports []gortsplib.Protocol
}

func freeUDPPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		if p%2 != 0 || p >= 65535 {
			a.Close()
			continue
		}
		b, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p+1))
		a.Close()
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no free even/odd UDP port pair on loopback")
	return 0
}

func startClipServer(t *testing.T) *clipServer {
	t.Helper()
	clip, err := testclip.Default()
	if err != nil {
		t.Fatal(err)
	}
	cs := &clipServer{}
	h := &clipHandler{cs: cs}
	port := freeUDPPair(t)
	srv := &gortsplib.Server{
		Handler:        h,
		RTSPAddress:    "127.0.0.1:0",
		UDPRTPAddress:  "127.0.0.1:" + strconv.Itoa(port),
		UDPRTCPAddress: "127.0.0.1:" + strconv.Itoa(port+1),
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	desc := clip.Description()
	stream := &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	h.stream.Store(stream)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = clip.Run(ctx, testclip.Options{}, func(p testclip.Packet) {
			_ = stream.WritePacketRTPWithNTP(desc.Medias[p.Media], p.RTP, p.Capture)
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		stream.Close()
		srv.Close()
	})
	cs.url = "rtsp://" + srv.NetListener().Addr().String() + "/clip"
	return cs
}

type clipHandler struct {
	cs     *clipServer
	stream atomic.Pointer[gortsplib.ServerStream] // set once after the server starts
}

func (h *clipHandler) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, h.stream.Load(), nil
}

func (h *clipHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	h.cs.mu.Lock()
	h.cs.transports = append(h.cs.transports, ctx.Transport.Protocol)
	h.cs.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, h.stream.Load(), nil
}

func (h *clipHandler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func TestRTSPSourcePull(t *testing.T) {
	noLeaks(t)
	srv := startClipServer(t)
	for _, tc := range []struct {
		transport string
		want      gortsplib.Protocol
	}{{"tcp", gortsplib.ProtocolTCP}, {"udp", gortsplib.ProtocolUDP}, {"", gortsplib.ProtocolUDP}} {
		t.Run("transport="+tc.transport, func(t *testing.T) {
			src, err := NewRTSPSource(srv.url, tc.transport, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			srv.transports = nil
			srv.mu.Unlock()
			// Enough: a keyframe and half a second of audio after it.
			c := newCollector(func(c *collector) bool {
				return keyframeSeenLocked(c, 0) && c.countLocked(1, 0) >= 25
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go func() {
				<-c.done
				cancel()
			}()
			err = src.Run(ctx, c.onDesc, c.emit)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run = %v, want context.Canceled after enough packets", err)
			}
			descs, pkts, early := c.snapshot()
			if len(descs) != 1 || early != 0 {
				t.Fatalf("%d descriptions, %d packets before the first", len(descs), early)
			}
			checkClipDesc(t, descs[0])
			checkFlow(t, descs[0], pkts)
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.transports) != 2 || srv.transports[0] != tc.want {
				t.Fatalf("server saw SETUPs over %v, want 2 over %v", srv.transports, tc.want)
			}
		})
	}
}

// TestClipServedToFFmpeg checks that the clip's description and RTP
// packetization are decodable by a real player.
func TestClipServedToFFmpeg(t *testing.T) {
	srv := startClipServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-rtsp_transport", "tcp",
		"-i", srv.url, "-t", "3", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"Video: h264", "1280x720", "Audio: aac", "48000 Hz, mono"} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(s) {
			t.Fatalf("ffmpeg output lacks %q:\n%s", want, s)
		}
	}
	m := regexp.MustCompile(`frame=\s*(\d+)`).FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		t.Fatalf("no frame count in ffmpeg output:\n%s", s)
	}
	if n, _ := strconv.Atoi(m[len(m)-1][1]); n < 30 {
		t.Fatalf("ffmpeg decoded %d frames in 3 s (the first keyframe comes within 1 s), want >= 30:\n%s", n, s)
	}
}

func TestRTSPSourceErrors(t *testing.T) {
	noLeaks(t)
	for _, u := range []string{"http://x", "rtsp://", "", "rtsp://:554/x", "not a url", "rtsp://h/x#frag"} {
		if _, err := NewRTSPSource(u, "", nil); !errors.Is(err, ErrBadURL) {
			t.Errorf("NewRTSPSource(%q) = %v, want ErrBadURL", u, err)
		}
	}
	if _, err := NewRTSPSource("rtsp://127.0.0.1/x", "sctp", nil); !errors.Is(err, ErrBadTransport) {
		t.Errorf("transport sctp: %v, want ErrBadTransport", err)
	}

	// Nothing listens on port 1.
	src, err := NewRTSPSource("rtsp://127.0.0.1:1/none", "tcp", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = src.Run(ctx, func(*description.Session) error {
		t.Error("onDesc called")
		return nil
	}, func(Packet) {})
	if !errors.Is(err, ErrSourceFailed) || ctx.Err() != nil {
		t.Fatalf("Run = %v, want ErrSourceFailed at once", err)
	}
	t.Logf("user sees: %v", err)

	// A server that does not know the path.
	srv := startClipServerNoPath(t)
	src, err = NewRTSPSource(srv, "tcp", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(ctx, func(*description.Session) error { return nil }, func(Packet) {}); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("Run = %v, want ErrSourceFailed", err)
	}

	// An already cancelled context.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := src.Run(done, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run on a cancelled context = %v", err)
	}
}

// startClipServerNoPath is a publish source: it answers DESCRIBE with 404.
func startClipServerNoPath(t *testing.T) string {
	ps, err := NewPublishSource("127.0.0.1:0", "live", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Close)
	return ps.URL()
}

// publisher runs ffmpeg publishing the clip to url at real-time pace.
type publisher struct {
	cmd    *exec.Cmd
	exitCh chan struct{} // closed when ffmpeg has exited; err is set before
	err    error
	out    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

func clipFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clip.ts")
	if err := os.WriteFile(p, testclip.TS(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startPublisher(t *testing.T, ctx context.Context, file, url string, extra ...string) *publisher {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", file}
	args = append(args, extra...)
	// ffmpeg 5.1 cannot copy ADTS AAC from MPEG-TS into RTSP ("AAC with
	// no global headers"), not even with aac_adtstoasc: re-encode audio,
	// as a live encoder (OBS) would.
	args = append(args, "-c:v", "copy", "-c:a", "aac", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	p := &publisher{cmd: exec.CommandContext(ctx, "ffmpeg", args...), exitCh: make(chan struct{}), out: &syncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exitCh)
	}()
	t.Cleanup(p.stop)
	return p
}

// wait waits for ffmpeg to exit and returns its error.
func (p *publisher) wait() error {
	<-p.exitCh
	return p.err
}

func (p *publisher) exited() bool {
	select {
	case <-p.exitCh:
		return true
	default:
		return false
	}
}

// stop kills ffmpeg (by its pid, through exec.Cmd) and waits for it.
func (p *publisher) stop() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
	}
	<-p.exitCh
}

func (ps *PublishSource) hasPublisher() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.publisher != nil
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestPublishSourceWithFFmpeg(t *testing.T) {
	noLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	file := clipFile(t)
	ps, err := NewPublishSource("127.0.0.1:0", "ch", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if ps.Addr().(*net.TCPAddr).Port == 0 {
		t.Fatal("Addr has no port")
	}

	// No Run yet: publishers are refused.
	early := startPublisher(t, ctx, file, ps.URL())
	if err := early.wait(); err == nil {
		t.Fatal("a publisher was accepted before Run")
	}
	t.Logf("early publisher: %s", early.out)

	var mark int // packets before the current publisher
	var c *collector
	c = newCollector(func(c *collector) bool { return false })
	runErr := make(chan error, 1)
	go func() { runErr <- ps.Run(ctx, c.onDesc, c.emit) }()
	waitFor(t, ctx, "Run", func() bool {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return ps.run != nil
	})

	for round := 1; round <= 2; round++ {
		pub := startPublisher(t, ctx, file, ps.URL())
		waitFor(t, ctx, fmt.Sprintf("publisher %d's keyframe and audio", round), func() bool {
			if pub.exited() {
				t.Fatalf("publisher %d exited: %s", round, pub.out)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			return keyframeSeenLocked(c, mark) && c.countLocked(1, mark) >= 3
		})
		if round == 1 {
			// A second publisher is refused while the first one sends.
			other := startPublisher(t, ctx, file, ps.URL())
			if err := other.wait(); err == nil {
				t.Fatal("a second concurrent publisher was accepted")
			}
		}
		pub.stop()
		waitFor(t, ctx, "the publisher to leave", func() bool { return !ps.hasPublisher() })
		descs, pkts, earlyPkts := c.snapshot()
		if len(descs) != 1 || earlyPkts != 0 {
			t.Fatalf("round %d: %d descriptions, %d packets before the first", round, len(descs), earlyPkts)
		}
		checkClipDesc(t, descs[0])
		checkFlow(t, descs[0], pkts[mark:])
		mark = len(pkts)
	}

	// A publisher with a different stream (no audio) ends Run.
	videoOnly := startPublisher(t, ctx, file, ps.URL(), "-an")
	select {
	case err := <-runErr:
		if !errors.Is(err, ErrDescriptionChanged) {
			t.Fatalf("Run = %v, want ErrDescriptionChanged", err)
		}
		t.Logf("user sees: %v", err)
	case <-ctx.Done():
		t.Fatal("Run did not stop on a changed description")
	}
	if err := videoOnly.wait(); err == nil {
		t.Fatal("the video-only publisher was accepted")
	}

	// Run can be called again, and stops on cancel.
	ctx2, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if err := ps.Run(ctx2, c.onDesc, c.emit); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Run = %v", err)
	}
	ps.Close()
	if err := ps.Run(ctx, c.onDesc, c.emit); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("Run after Close = %v", err)
	}
}

func TestPublishSourceErrors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, ch := range []string{"", "a/b", "a b", string(make([]byte, 65))} {
		if _, err := NewPublishSource("127.0.0.1:0", ch, nil); !errors.Is(err, ErrBadChannel) {
			t.Errorf("channel %q: %v, want ErrBadChannel", ch, err)
		}
	}
	if _, err := NewPublishSource("nope", "ch", nil); err == nil {
		t.Error("listen address without a port accepted")
	}
	ps, err := NewPublishSource("127.0.0.1:0", "ch", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if _, err := NewPublishSource(ps.Addr().String(), "ch", nil); err == nil {
		t.Error("second server on the same port started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- ps.Run(ctx, nil, nil) }()
	waitFor(t, context.Background(), "Run", func() bool {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return ps.run != nil
	})
	if err := ps.Run(ctx, nil, nil); !errors.Is(err, ErrRunning) {
		t.Errorf("concurrent Run = %v, want ErrRunning", err)
	}
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

// TestRTSPSourceCancelWhileConnecting: a server that accepts and never
// answers must not hold Run past its context.
func TestRTSPSourceCancelWhileConnecting(t *testing.T) {
	noLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-acceptDone
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	src, err := NewRTSPSource("rtsp://"+ln.Addr().String()+"/silent", "tcp", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	err = src.Run(ctx, func(*description.Session) error { return nil }, func(Packet) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("Run took %v to notice its context", d)
	}
}
