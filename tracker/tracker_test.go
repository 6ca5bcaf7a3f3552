package tracker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testEnv struct {
	tr     *Tracker
	srv    *httptest.Server
	cl     *Client
	clock  *clock
	origin NodeInfo
	reg    RegisterRequest
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// newEnv starts a tracker on loopback with a fake clock and registers
// channel "live" with the given origin capacity.
func newEnv(t *testing.T, originCap int) *testEnv {
	t.Helper()
	c := &clock{now: t0}
	tr, err := New(Config{HeartbeatInterval: time.Second, Now: c.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tr.Handler())
	t.Cleanup(srv.Close)
	env := &testEnv{tr: tr, srv: srv, clock: c, cl: &Client{BaseURL: srv.URL, HTTP: srv.Client()}}
	env.origin = NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}
	env.reg = RegisterRequest{Channel: channelInfo("live", env.origin, 1), Capacity: originCap}
	if err := env.cl.Register(context.Background(), env.reg); err != nil {
		t.Fatalf("register: %v", err)
	}
	return env
}

func channelInfo(name string, origin NodeInfo, keySeed byte) ChannelInfo {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{keySeed}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	return ChannelInfo{
		Name: name, SDP: "v=0\r\ns=live\r\nm=video 0 RTP/AVP 96\r\n",
		PublicKey: base64.StdEncoding.EncodeToString(pub),
		Origin:    origin, Stripes: 4, SliceMS: 100,
	}
}

func peer(i int) NodeInfo { return NodeInfo{ID: nid(i), Addr: "127.0.0.1:" + itoa(10000+i)} }

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func (e *testEnv) join(t *testing.T, i, capacity int) JoinResponse {
	t.Helper()
	p := peer(i)
	resp, err := e.cl.Join(context.Background(), "live", JoinRequest{ID: p.ID, Addr: p.Addr, Capacity: capacity})
	if err != nil {
		t.Fatalf("join %d: %v", i, err)
	}
	return resp
}

func (e *testEnv) heartbeat(t *testing.T, i int) HeartbeatResponse {
	t.Helper()
	resp, err := e.cl.Heartbeat(context.Background(), "live", HeartbeatRequest{ID: nid(i)})
	if err != nil {
		t.Fatalf("heartbeat %d: %v", i, err)
	}
	return resp
}

func TestRegisterJoinHeartbeatTree(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()

	info, err := e.cl.Channel(ctx, "live")
	if err != nil || info != e.reg.Channel {
		t.Fatalf("Channel = %+v, %v; want %+v", info, err, e.reg.Channel)
	}

	// A leaf gets every stripe from the origin while it is alone; four
	// forwarders (B..E, one stripe each) and another leaf F follow, and
	// then every stripe of every peer has a parent.
	a := e.join(t, 1, 0)
	if a.Channel != e.reg.Channel || a.HeartbeatMS != 1000 || len(a.Stripes) != 4 {
		t.Fatalf("join A = %+v", a)
	}
	for s, sa := range a.Stripes {
		if sa.Parent != e.origin {
			t.Fatalf("A's stripe %d from %+v, want the origin (it is alone)", s, sa.Parent)
		}
	}
	for i := 2; i <= 5; i++ {
		e.clock.Advance(10 * time.Millisecond)
		e.join(t, i, 6)
	}
	e.clock.Advance(10 * time.Millisecond)
	e.join(t, 6, 0)
	for i := 1; i <= 6; i++ {
		for s, sa := range e.heartbeat(t, i).Stripes {
			if sa.Parent.IsZero() {
				t.Fatalf("peer %d stripe %d without a parent", i, s)
			}
		}
	}
	checkChannel(t, e.tr, "live")

	stats := PeerStats{PlayedSlices: 50, LagMS: 420, P2PBytesIn: 1 << 20}
	e.clock.Advance(500 * time.Millisecond)
	hb, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: nid(2), Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	if hb.Parent != hb.Stripes[0].Parent || hb.Children == nil || len(hb.Stripes) != 4 {
		t.Fatalf("B's heartbeat = %+v", hb)
	}
	// B's children are the peers that name B on some stripe.
	var kids []NodeInfo
	for i := 1; i <= 6; i++ {
		for _, sa := range e.heartbeat(t, i).Stripes {
			if sa.Parent == peer(2) {
				kids = append(kids, peer(i))
				break
			}
		}
	}
	if !jsonEqual(hb.Children, append([]NodeInfo{}, kids...)) {
		t.Fatalf("B's children %+v, want %+v", hb.Children, kids)
	}
	if hb := e.heartbeat(t, 6); hb.Children == nil || len(hb.Children) != 0 {
		t.Fatalf("F's heartbeat = %+v (children must be [] not null)", hb)
	}
	// A beat that omits the children (over the wire, as the field
	// travels) gets the same place without them.
	lean, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: nid(2), Stats: stats, OmitChildren: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(lean.Children) != 0 || len(kids) == 0 || !jsonEqual(lean.Stripes, hb.Stripes) || lean.Parent != hb.Parent {
		t.Fatalf("B's beat without children = %+v, want %+v without its %d children", lean, hb.Stripes, len(kids))
	}

	view, err := e.cl.Tree(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	if view.Channel != "live" || view.Origin != e.origin || view.OriginCapacity != 1 || len(view.Nodes) != 6 {
		t.Fatalf("tree = %s", mustJSON(view))
	}
	for _, n := range view.Nodes {
		// B's stats were replaced by the empty ones of the heartbeats above.
		if n.ID == nid(2) && (n.LastHeartbeatUnixMS != t0.UnixMilli()+550 || n.Capacity != 6) {
			t.Fatalf("B in the tree: %+v", n)
		}
		if len(n.Stripes) != 4 || n.Depth < 1 || n.Children == nil {
			t.Fatalf("tree node %+v", n)
		}
	}
	inproc, err := e.tr.Tree("live")
	if err != nil || !jsonEqual(inproc, view) {
		t.Fatalf("in-process Tree differs: %v", err)
	}

	list, err := e.cl.Channels(ctx)
	if err != nil || len(list) != 1 || list[0] != (ChannelSummary{Name: "live", Viewers: 6}) {
		t.Fatalf("Channels = %+v, %v", list, err)
	}

	// Leave B: after the next round the others are fed without it;
	// leaving twice is fine.
	for range 2 {
		if err := e.cl.Leave(ctx, "live", nid(2)); err != nil {
			t.Fatalf("leave: %v", err)
		}
	}
	e.join(t, 7, 6) // a forwarder in B's place
	e.tr.Round()
	for _, i := range []int{1, 3, 4, 5, 6, 7} {
		for s, sa := range e.heartbeat(t, i).Stripes {
			if sa.Parent.IsZero() || sa.Parent == peer(2) {
				t.Fatalf("peer %d stripe %d after B left: %+v", i, s, sa.Parent)
			}
		}
	}
	if _, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: nid(2)}); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("heartbeat after leave: %v, want ErrUnknownPeer", err)
	}
	checkChannel(t, e.tr, "live")
}

func TestReRegister(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	e.join(t, 1, 2)

	// Origin restart: same key, new address and ID.
	restarted := e.reg
	restarted.Channel.Origin = NodeInfo{ID: nid(100), Addr: "127.0.0.1:9100"}
	if err := e.cl.Register(ctx, restarted); err != nil {
		t.Fatalf("re-register: %v", err)
	}
	if info, _ := e.cl.Channel(ctx, "live"); info.Origin != restarted.Channel.Origin {
		t.Fatalf("origin not replaced: %+v", info.Origin)
	}
	if hb := e.heartbeat(t, 1); hb.Parent != restarted.Channel.Origin {
		t.Fatalf("peer's parent after origin restart = %+v", hb.Parent)
	}
	// A restart with fewer stripes and a smaller capacity rebuilds the
	// placement: the peer keeps a parent on every (remaining) stripe.
	smaller := restarted
	smaller.Channel.Stripes = 2
	smaller.Capacity = 1
	if err := e.cl.Register(ctx, smaller); err != nil {
		t.Fatalf("re-register smaller: %v", err)
	}
	if hb := e.heartbeat(t, 1); len(hb.Stripes) != 2 || hb.Stripes[1].Parent != restarted.Channel.Origin {
		t.Fatalf("after a 2-stripe restart: %+v", hb)
	}
	checkChannel(t, e.tr, "live")

	// Another key: refused.
	other := e.reg
	other.Channel = channelInfo("live", e.origin, 2)
	err := e.cl.Register(ctx, other)
	var apiErr *APIError
	if !errors.Is(err, ErrKeyMismatch) || !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "channel_key_mismatch" {
		t.Fatalf("register with another key: %v", err)
	}
	// The origin's ID taken by a peer: refused.
	clash := e.reg
	clash.Channel.Origin.ID = nid(1)
	if err := e.cl.Register(ctx, clash); !errors.Is(err, ErrIDConflict) {
		t.Fatalf("register with a peer's ID: %v", err)
	}
	// A peer cannot join with the origin's ID.
	_, err = e.cl.Join(ctx, "live", JoinRequest{ID: nid(100), Addr: "127.0.0.1:5", Capacity: 1})
	if !errors.Is(err, ErrIDConflict) {
		t.Fatalf("join with the origin's ID: %v", err)
	}
}

func TestExpiryReplacesChildren(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	for i := 1; i <= 6; i++ {
		e.join(t, i, 6)
	}
	// 1 goes silent; the others keep heartbeating.
	beat := func() {
		for i := 2; i <= 6; i++ {
			e.heartbeat(t, i)
		}
	}
	for range 3 {
		e.clock.Advance(time.Second)
		beat()
	}
	if _, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: nid(1)}); err != nil {
		t.Fatalf("1 silent for exactly 3 intervals must still be known: %v", err)
	}
	for range 4 {
		e.clock.Advance(time.Second)
		beat()
	}
	_, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: nid(1)})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "unknown_peer" || !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("heartbeat of expired peer: %v, want 404 unknown_peer", err)
	}
	e.tr.Round()
	for i := 2; i <= 6; i++ {
		for s, sa := range e.heartbeat(t, i).Stripes {
			if sa.Parent.IsZero() || sa.Parent == peer(1) {
				t.Fatalf("peer %d stripe %d after 1 expired: %+v", i, s, sa.Parent)
			}
		}
	}
	// The peer re-joins after the 404.
	if j := e.join(t, 1, 6); j.Parent.IsZero() {
		t.Fatalf("re-join parent %+v", j.Parent)
	}
	checkChannel(t, e.tr, "live")
}

func TestRunExpiresWithoutTraffic(t *testing.T) {
	c := &clock{now: t0}
	tr, err := New(Config{HeartbeatInterval: 20 * time.Millisecond, Now: c.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ch := channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9000"}, 1)
	if _, err := tr.Register(RegisterRequest{Channel: ch, Capacity: 4}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := tr.Join("live", JoinRequest{ID: nid(i), Addr: "127.0.0.1:1", Capacity: 1}); err != nil {
			t.Fatal(err)
		}
	}
	peers := func() int {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.channels["live"].peers) // no lazy expiry here
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	time.Sleep(50 * time.Millisecond) // several sweeps with the clock standing still
	if n := peers(); n != 3 {
		t.Fatalf("peers = %d before the clock moved, want 3", n)
	}
	c.Advance(61 * time.Millisecond) // just over 3 intervals
	deadline := time.Now().Add(2 * time.Second)
	for peers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not expire silent peers: %d left", peers())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestParentLostHTTP(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	for i := 1; i <= 8; i++ {
		e.join(t, i, 6)
	}
	// Find a peer fed by another peer on some stripe.
	who, lost := 0, NodeInfo{}
	for i := 8; i >= 1 && who == 0; i-- {
		for _, sa := range e.heartbeat(t, i).Stripes {
			if sa.Parent != e.origin {
				who, lost = i, sa.Parent
				break
			}
		}
	}
	if who == 0 {
		t.Fatal("every stripe comes from the origin")
	}
	// The lost parent is alive (it just joined): it stays, and the
	// reporter gets stripes from elsewhere at once.
	resp, err := e.cl.ParentLost(ctx, "live", ParentLostRequest{ID: nid(who), Parent: lost.ID})
	if err != nil || resp.Parent != resp.Stripes[0].Parent {
		t.Fatalf("parent-lost = %+v, %v", resp, err)
	}
	for s, sa := range resp.Stripes {
		if sa.Parent.IsZero() {
			t.Fatalf("stripe %d without a parent after the report: %+v", s, resp)
		}
	}
	if _, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: lost.ID}); err != nil {
		t.Fatalf("live lost parent removed: %v", err)
	}
	// A parent silent for more than one interval is removed on a report.
	e.clock.Advance(1500 * time.Millisecond)
	for i := 1; i <= 8; i++ {
		if nid(i) != lost.ID {
			e.heartbeat(t, i)
		}
	}
	if _, err := e.cl.ParentLost(ctx, "live", ParentLostRequest{ID: nid(who), Parent: lost.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: lost.ID}); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("silent lost parent not removed: %v", err)
	}
	// Losing the origin: every stripe has a parent again.
	resp, err = e.cl.ParentLost(ctx, "live", ParentLostRequest{ID: nid(who), Parent: nid(0)})
	if err != nil {
		t.Fatal(err)
	}
	for s, sa := range resp.Stripes {
		if sa.Parent.IsZero() {
			t.Fatalf("stripe %d without a parent after losing the origin", s)
		}
	}
	// Unknown reporter.
	_, err = e.cl.ParentLost(ctx, "live", ParentLostRequest{ID: nid(99), Parent: nid(0)})
	if !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown reporter: %v", err)
	}
	checkChannel(t, e.tr, "live")
}

func TestUnknownChannel(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["channel"] = e.cl.Channel(ctx, "nope")
	_, checks["join"] = e.cl.Join(ctx, "nope", JoinRequest{ID: nid(1), Addr: "127.0.0.1:1"})
	_, checks["heartbeat"] = e.cl.Heartbeat(ctx, "nope", HeartbeatRequest{ID: nid(1)})
	checks["leave"] = e.cl.Leave(ctx, "nope", nid(1))
	_, checks["parent-lost"] = e.cl.ParentLost(ctx, "nope", ParentLostRequest{ID: nid(1), Parent: nid(2)})
	_, checks["tree"] = e.cl.Tree(ctx, "nope")
	_, checks["odd name"] = e.cl.Tree(ctx, "a/../b c")
	for what, err := range checks {
		var apiErr *APIError
		if !errors.Is(err, ErrUnknownChannel) || errors.Is(err, ErrUnknownPeer) ||
			!errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Message == "" {
			t.Errorf("%s: err = %v, want 404 unknown_channel", what, err)
		}
	}
	if _, err := e.tr.Tree("nope"); !errors.Is(err, ErrUnknownChannel) {
		t.Errorf("in-process Tree: %v", err)
	}
}

// raw sends a request and returns the status and the decoded error body.
func raw(t *testing.T, e *testEnv, method, path, contentType string, body io.Reader) (int, ErrorBody, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb ErrorBody
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: error with Content-Type %q: %s", method, path, ct, data)
		}
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error == "" || eb.Message == "" {
			t.Errorf("%s %s: error body %q is not {error, message}", method, path, data)
		}
	}
	return resp.StatusCode, eb, resp.Header
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, 4)
	e.join(t, 1, 1)
	join := "/v1/channels/live/join"
	reg := mustJSON(e.reg)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"empty body", "POST", join, "", 400, CodeBadRequest},
		{"truncated JSON", "POST", join, `{"id":`, 400, CodeBadRequest},
		{"not an object", "POST", join, `[1,2]`, 400, CodeBadRequest},
		{"null", "POST", join, `null`, 400, CodeBadRequest},
		{"wrong type", "POST", join, `{"id":5,"addr":"127.0.0.1:1"}`, 400, CodeBadRequest},
		{"float capacity", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","capacity":1.5}`, 400, CodeBadRequest},
		{"huge capacity", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","capacity":1e400}`, 400, CodeBadRequest},
		{"capacity too big", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","capacity":65}`, 400, CodeBadRequest},
		{"negative capacity", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","capacity":-1}`, 400, CodeBadRequest},
		{"uppercase id", "POST", join, `{"id":"` + strings.ToUpper(nid(0xabc)) + `","addr":"127.0.0.1:1"}`, 400, CodeBadRequest},
		{"short id", "POST", join, `{"id":"abc","addr":"127.0.0.1:1"}`, 400, CodeBadRequest},
		{"no port", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1"}`, 400, CodeBadRequest},
		{"port 0", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:0"}`, 400, CodeBadRequest},
		{"trailing data", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1"} {}`, 400, CodeBadRequest},
		{"invalid UTF-8", "POST", join, "{\"id\":\"\xff\xfe\"}", 400, CodeBadRequest},
		{"negative stats", "POST", "/v1/channels/live/heartbeat", `{"id":"` + nid(1) + `","stats":{"stalls":-1}}`, 400, CodeBadRequest},
		{"stats wrong type", "POST", "/v1/channels/live/heartbeat", `{"id":"` + nid(1) + `","stats":[]}`, 400, CodeBadRequest},
		{"negative upload", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","upload_bps":-5}`, 400, CodeBadRequest},
		{"huge upload", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","upload_bps":1e15}`, 400, CodeBadRequest},
		{"unknown NAT class", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","nat":"weird"}`, 400, CodeBadRequest},
		{"bad candidate", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","candidates":["10.0.0.1"]}`, 400, CodeBadRequest},
		{"too many candidates", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","candidates":["a:1","a:1","a:1","a:1","a:1","a:1","a:1","a:1","a:1"]}`, 400, CodeBadRequest},
		{"long region", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1","region":"` + strings.Repeat("r", 65) + `"}`, 400, CodeBadRequest},
		{"heartbeat bad NAT", "POST", "/v1/channels/live/heartbeat", `{"id":"` + nid(1) + `","nat":"x"}`, 400, CodeBadRequest},
		{"switch stripe out of range", "POST", "/v1/channels/live/parent-lost", `{"id":"` + nid(1) + `","parent":"` + nid(3) + `","switched":[{"stripe":16,"parent":"` + nid(4) + `"}]}`, 400, CodeBadRequest},
		{"switch to the lost parent", "POST", "/v1/channels/live/parent-lost", `{"id":"` + nid(1) + `","parent":"` + nid(3) + `","switched":[{"stripe":1,"parent":"` + nid(3) + `"}]}`, 400, CodeBadRequest},
		{"self as lost parent", "POST", "/v1/channels/live/parent-lost", `{"id":"` + nid(1) + `","parent":"` + nid(1) + `"}`, 400, CodeBadRequest},
		{"bad key", "POST", "/v1/channels", strings.Replace(reg, `"public_key":"`, `"public_key":"AA`, 1), 400, CodeBadRequest},
		{"zero stripes", "POST", "/v1/channels", strings.Replace(reg, `"stripes":4`, `"stripes":0`, 1), 400, CodeBadRequest},
		{"17 stripes", "POST", "/v1/channels", strings.Replace(reg, `"stripes":4`, `"stripes":17`, 1), 400, CodeBadRequest},
		{"bad channel name", "POST", "/v1/channels", strings.Replace(reg, `"name":"live"`, `"name":"a b"`, 1), 400, CodeBadRequest},
		{"origin capacity 0", "POST", "/v1/channels", strings.Replace(reg, `"capacity":4`, `"capacity":0`, 1), 400, CodeBadRequest},
		{"oversized body", "POST", join, `{"id":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, CodeBodyTooLarge},
		{"oversized padding", "POST", join, `{"id":"` + nid(2) + `","addr":"127.0.0.1:1"}` + strings.Repeat(" ", MaxBodyBytes), 413, CodeBodyTooLarge},
		{"wrong method", "DELETE", "/v1/channels/live", "", 405, CodeMethodNotAllowed},
		{"GET on a POST endpoint", "GET", join, "", 405, CodeMethodNotAllowed},
		{"unknown path", "GET", "/v2/whatever", "", 404, CodeNotFound},
		{"unknown action", "POST", "/v1/channels/live/explode", "{}", 404, CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, eb, hdr := raw(t, e, tc.method, tc.path, "application/json", strings.NewReader(tc.body))
			if status != tc.status || eb.Error != tc.code {
				t.Fatalf("status %d %q (%s), want %d %q", status, eb.Error, eb.Message, tc.status, tc.code)
			}
			if tc.status == 405 && hdr.Get("Allow") == "" {
				t.Fatal("405 without Allow header")
			}
		})
	}
	// Nothing above changed the state.
	view, err := e.tr.Tree("live")
	if err != nil || len(view.Nodes) != 1 || view.OriginCapacity != 4 {
		t.Fatalf("state changed by bad requests: %+v, %v", view, err)
	}
	// Unknown fields are accepted (forward compatibility).
	body := `{"id":"` + nid(2) + `","addr":"127.0.0.1:2","capacity":1,"isp":"AS64500","extra":{"x":[1]}}`
	if status, _, _ := raw(t, e, "POST", join, "application/json", strings.NewReader(body)); status != 200 {
		t.Fatalf("join with unknown fields: %d", status)
	}
	if status, _, _ := raw(t, e, "GET", "/healthz", "", nil); status != 200 {
		t.Fatalf("healthz: %d", status)
	}
}

// TestGarbageHTTP writes broken HTTP on a raw loopback connection; the
// server answers 400 or closes, and keeps serving.
func TestGarbageHTTP(t *testing.T) {
	e := newEnv(t, 1)
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	for _, junk := range []string{
		"GARBAGE\r\n\r\n",
		"POST /v1/channels/live/join HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{",
		"POST /v1/channels/live/join HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"GET /v1/channels/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
	} {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		conn.Write([]byte(junk))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			if resp.StatusCode < 400 {
				t.Errorf("junk %q: status %d", junk, resp.StatusCode)
			}
			resp.Body.Close()
		}
		conn.Close()
	}
	if _, err := e.cl.Channel(context.Background(), "live"); err != nil {
		t.Fatalf("tracker unusable after garbage: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, time.Millisecond, 2 * time.Minute} {
		if _, err := New(Config{HeartbeatInterval: d}); err == nil {
			t.Errorf("New accepted heartbeat interval %v", d)
		}
	}
	tr, err := New(Config{})
	if err != nil || tr.cfg.HeartbeatInterval != DefaultHeartbeatInterval || tr.cfg.Now == nil || tr.log == nil {
		t.Fatalf("defaults not applied: %v", err)
	}
}

func TestValidNodeID(t *testing.T) {
	for id, want := range map[string]bool{
		nid(0): true, "0123456789abcdef0123456789abcdef": true,
		"0123456789ABCDEF0123456789abcdef": false, "0123456789abcdef0123456789abcde": false,
		"0123456789abcdef0123456789abcdefa": false, "0123456789abcdeg0123456789abcdef": false, "": false,
	} {
		if got := ValidNodeID(id); got != want {
			t.Errorf("ValidNodeID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestClientTransportErrors(t *testing.T) {
	// A server that answers non-JSON errors, as a proxy in between might.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down", http.StatusBadGateway)
	}))
	defer srv.Close()
	cl := &Client{BaseURL: srv.URL + "/", HTTP: srv.Client()}
	_, err := cl.Channel(context.Background(), "live")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 502 || apiErr.Message != "upstream down" || errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("err = %#v", err)
	}
	if err := (&Client{}).Leave(context.Background(), "live", nid(1)); err == nil {
		t.Fatal("client without BaseURL succeeded")
	}
}

// FuzzHandler throws arbitrary bodies at every POST endpoint: no panic,
// no 5xx, and every error is a JSON error body.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{"", "{}", "null", `{"id":"` + nid(1) + `","addr":"127.0.0.1:1","capacity":2}`,
		`{"id":"` + nid(1) + `","parent":"` + nid(0) + `"}`, `{"channel":{"name":"x"},"capacity":1}`, "[", "\xff"} {
		f.Add(s)
	}
	c := &clock{now: t0}
	tr, err := New(Config{Now: c.Now})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := tr.Register(RegisterRequest{Channel: channelInfo("live", NodeInfo{ID: nid(0), Addr: "127.0.0.1:9"}, 1), Capacity: 2}); err != nil {
		f.Fatal(err)
	}
	h := tr.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/channels", "/v1/channels/live/join", "/v1/channels/live/heartbeat",
			"/v1/channels/live/leave", "/v1/channels/live/parent-lost"} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
			if w.Code >= 500 && w.Code != 503 {
				t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
			}
			if w.Code >= 400 {
				var eb ErrorBody
				if json.Unmarshal(w.Body.Bytes(), &eb) != nil || eb.Error == "" {
					t.Fatalf("POST %s %q: error body %q", path, body, w.Body)
				}
			}
		}
		c.Advance(100 * time.Millisecond)
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func jsonEqual(a, b any) bool { return mustJSON(a) == mustJSON(b) }

// TestConcurrentClients runs joins, heartbeats, reports and leaves from
// several goroutines at once (for the race detector) and checks the tree.
func TestConcurrentClients(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				id := 1 + g*10 + i
				p := peer(id)
				if _, err := e.cl.Join(ctx, "live", JoinRequest{ID: p.ID, Addr: p.Addr, Capacity: 1 + i%3}); err != nil {
					errc <- err
					return
				}
				if _, err := e.cl.Heartbeat(ctx, "live", HeartbeatRequest{ID: p.ID, Stats: PeerStats{PlayedSlices: int64(i)}}); err != nil {
					errc <- err
					return
				}
				if _, err := e.cl.ParentLost(ctx, "live", ParentLostRequest{ID: p.ID, Parent: nid(0)}); err != nil {
					errc <- err
					return
				}
				if i%2 == 1 {
					if err := e.cl.Leave(ctx, "live", p.ID); err != nil {
						errc <- err
						return
					}
				}
				if _, err := e.cl.Tree(ctx, "live"); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	view, err := e.tr.Tree("live")
	if err != nil || len(view.Nodes) != 40 {
		t.Fatalf("tree has %d nodes, want 40 (%v)", len(view.Nodes), err)
	}
	e.tr.Round()
	checkChannel(t, e.tr, "live")
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, 2)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(e.tr); err != nil {
		t.Fatal(err)
	}
	e.join(t, 1, 4)
	e.join(t, 2, 4)
	e.join(t, 3, 0)
	if _, err := e.cl.Join(context.Background(), "live", JoinRequest{ID: nid(0), Addr: "127.0.0.1:4", Capacity: 0}); !errors.Is(err, ErrIDConflict) {
		t.Fatalf("join with the origin's ID: %v", err)
	}
	e.clock.Advance(2 * time.Second)
	e.heartbeat(t, 2)
	e.heartbeat(t, 3)
	if _, err := e.cl.ParentLost(context.Background(), "live", ParentLostRequest{ID: nid(2), Parent: nid(1)}); err != nil {
		t.Fatal(err)
	}
	e.tr.Round()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			if m.GetGauge() != nil {
				got[key] = m.GetGauge().GetValue()
			} else {
				got[key] = m.GetCounter().GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"swarmtv_tracker_channels":                                1,
		"swarmtv_tracker_peers{channel=live}":                     2,
		"swarmtv_tracker_peers_waiting{channel=live}":             0,
		"swarmtv_tracker_origin_capacity{channel=live}":           2,
		"swarmtv_tracker_events_total{event=join}":                3,
		"swarmtv_tracker_events_total{event=join_refused}":        1,
		"swarmtv_tracker_events_total{event=parent_lost}":         1,
		"swarmtv_tracker_events_total{event=lost_parent_removed}": 1,
		"swarmtv_tracker_events_total{event=leave}":               0,
		"swarmtv_tracker_placement_deficit{channel=live}":         0,
		"swarmtv_tracker_placement_rounds_total{channel=live}":    4, // 3 joins and the periodic one (the origin fed 2 directly: no stripe dropped)
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	if d := got["swarmtv_tracker_tree_depth_max{channel=live}"]; d < 1 || d > 2 {
		t.Errorf("depth %v", d)
	}
	if got["swarmtv_tracker_placement_round_seconds_total{channel=live}"] <= 0 {
		t.Error("no round time measured")
	}
	if _, ok := got["swarmtv_tracker_placement_edges_changed_total{channel=live}"]; !ok {
		t.Error("no edges-changed counter")
	}
}
