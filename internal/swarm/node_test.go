package swarm

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// feed hands node n the given stripes (all when none) of slice seq from
// sender from at now, failing the test on an error.
func feed(t testing.TB, n *Node, st *swarmtest.Stream, now time.Time, from NodeID, seq uint64, stripes ...int) {
	t.Helper()
	_, raws := st.Slice(seq)
	if len(stripes) == 0 {
		for s := range raws {
			stripes = append(stripes, s)
		}
	}
	for _, s := range stripes {
		if err := n.HandleChunk(now, from, raws[s]); err != nil {
			t.Fatalf("slice %d stripe %d: %v", seq, s, err)
		}
	}
}

func TestNewConfig(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	good := testConfig(st)
	n := mustNew(t, good)
	got := n.Config()
	if got.SliceDuration != DefaultSliceDuration || got.Window != DefaultWindow || got.PlayoutDelay != DefaultPlayoutDelay ||
		got.FetchMargin != DefaultFetchMargin || got.ParentTimeout != DefaultParentTimeout || got.ParentConnectTimeout != DefaultParentConnectTimeout || got.StallLimit != DefaultStallLimit ||
		got.FetchRetry != DefaultFetchRetry || got.MaxFetches != DefaultMaxFetches {
		t.Fatalf("defaults not applied: %+v", got)
	}
	custom := good
	custom.PlayoutDelay = 3 * time.Second
	if got := mustNew(t, custom).Config().PlayoutDelay; got != 3*time.Second {
		t.Fatalf("PlayoutDelay %v, want 3s", got)
	}

	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no channel", func(c *Config) { c.Channel = "" }, "channel name"},
		{"long channel", func(c *Config) { c.Channel = strings.Repeat("x", wire.MaxChannelLen+1) }, "channel name"},
		{"no key", func(c *Config) { c.PublicKey = nil }, "public key"},
		{"short key", func(c *Config) { c.PublicKey = c.PublicKey[:5] }, "public key"},
		{"no stripes", func(c *Config) { c.Stripes = 0 }, "stripes"},
		{"too many stripes", func(c *Config) { c.Stripes = wire.MaxStripes + 1 }, "stripes"},
		{"negative children", func(c *Config) { c.MaxChildren = -1 }, "MaxChildren"},
		{"negative fetches", func(c *Config) { c.MaxFetches = -1 }, "MaxFetches"},
		{"tiny slices", func(c *Config) { c.SliceDuration = time.Microsecond }, "SliceDuration"},
		{"negative slices", func(c *Config) { c.SliceDuration = -time.Second }, "SliceDuration"},
		{"window below a slice", func(c *Config) { c.Window = 10 * time.Millisecond }, "Window"},
		{"negative delay", func(c *Config) { c.PlayoutDelay = -1 }, "PlayoutDelay"},
		{"negative margin", func(c *Config) { c.FetchMargin = -1 }, "FetchMargin"},
		{"negative timeout", func(c *Config) { c.ParentTimeout = -1 }, "ParentTimeout"},
		{"negative connect timeout", func(c *Config) { c.ParentConnectTimeout = -1 }, "ParentConnectTimeout"},
		{"negative stall limit", func(c *Config) { c.StallLimit = -1 }, "StallLimit"},
		{"negative retry", func(c *Config) { c.FetchRetry = -1 }, "FetchRetry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			_, err := New(cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
}

// TestChain: origin → A → B with link delays; B plays every slice from
// the first keyframe on, in order, complete, on time.
// TestNoMergeSameRun: nodes that hand out played slices as chunks only
// (Config.NoMerge) make the same decisions and count the same as nodes
// that merge packets, over a lossy chain that fetches; their
// slices carry no packets, and their chunks merge into the stream's
// (checkPlayed).
func TestNoMergeSameRun(t *testing.T) {
	run := func(noMerge bool) (*testNet, []string) {
		tn := newTestNet(t, 4)
		tn.fetchDelay = 30 * time.Millisecond
		tn.link = func(from, to NodeID, id wire.ID) []time.Duration {
			if (id.Seq*7+uint64(id.Stripe))%11 == 0 {
				return nil // dropped: fetched at the margin, or late
			}
			return []time.Duration{time.Duration(10+id.Seq%40) * time.Millisecond}
		}
		var lines []string
		tn.outputs = &lines
		cfg := testConfig(tn.st)
		cfg.NoMerge = noMerge
		tn.viewer("A", "origin", cfg)
		tn.viewer("B", "A", cfg)
		tn.run(6*time.Second, 10*time.Millisecond)
		return tn, lines
	}
	merged, mLines := run(false)
	chunksOnly, cLines := run(true)
	if !slices.Equal(mLines, cLines) {
		for i := range min(len(mLines), len(cLines)) {
			if mLines[i] != cLines[i] {
				t.Fatalf("output %d differs:\nmerging:     %s\nchunks only: %s", i, mLines[i], cLines[i])
			}
		}
		t.Fatalf("%d outputs merging, %d with chunks only", len(mLines), len(cLines))
	}
	for _, id := range []NodeID{"A", "B"} {
		m, c := merged.played[id], chunksOnly.played[id]
		checkPlayed(t, merged.st, m)
		checkPlayed(t, chunksOnly.st, c)
		if len(c) < 30 || !slices.Equal(seqsOf(m), seqsOf(c)) {
			t.Fatalf("%s played %v merging, %v with chunks only", id, seqsOf(m), seqsOf(c))
		}
		for _, sl := range c {
			if sl.Packets != nil {
				t.Fatalf("%s: slice %d carries packets with NoMerge", id, sl.Seq)
			}
		}
		if sm, sc := merged.nodes[id].Stats(), chunksOnly.nodes[id].Stats(); !reflect.DeepEqual(sm, sc) {
			t.Fatalf("%s stats merging %+v, with chunks only %+v", id, sm, sc)
		}
	}
	if s := merged.nodes["B"].Stats(); s.Fetches == 0 || s.PlayerBytes == 0 {
		t.Fatalf("B fetched %d chunks and played %d bytes: the run shows nothing", s.Fetches, s.PlayerBytes)
	}
}

func TestChain(t *testing.T) {
	tn := newTestNet(t, 4)
	tn.link = func(from, to NodeID, id wire.ID) []time.Duration { return []time.Duration{20 * time.Millisecond} }
	cfg := testConfig(tn.st)
	a := tn.viewer("A", "origin", cfg)
	b := tn.viewer("B", "A", cfg)
	tn.run(5*time.Second, 10*time.Millisecond)

	for _, id := range []NodeID{"A", "B"} {
		played := tn.played[id]
		checkPlayed(t, tn.st, played)
		if len(played) < 35 || played[0].Seq != 0 {
			t.Fatalf("%s played %v", id, seqsOf(played))
		}
		s := tn.nodes[id].Stats()
		if s.PlayedSlices != uint64(len(played)) || s.LateSlices+s.LostSlices+s.Stalls+s.Fetches != 0 {
			t.Fatalf("%s stats %+v", id, s)
		}
		// Playout runs a constant lag behind capture: hop delays plus
		// the playout delay.
		hops := map[NodeID]time.Duration{"A": 20 * time.Millisecond, "B": 40 * time.Millisecond}[id]
		for _, sl := range played {
			if lag := sl.PlayAt.Sub(sl.Capture); lag != hops+DefaultPlayoutDelay {
				t.Fatalf("%s slice %d lag %v, want %v", id, sl.Seq, lag, hops+DefaultPlayoutDelay)
			}
		}
		if s.StartupDelay != DefaultPlayoutDelay {
			t.Fatalf("%s startup %v", id, s.StartupDelay)
		}
		var rtp uint64
		for _, sl := range played {
			for _, p := range sl.Packets {
				rtp += uint64(len(p.RTP))
			}
		}
		if s.PlayerBytes != rtp {
			t.Fatalf("%s PlayerBytes %d, want %d", id, s.PlayerBytes, rtp)
		}
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.OriginBytesIn == 0 || sa.P2PBytesIn != 0 || sb.P2PBytesIn != sa.OriginBytesIn || sb.OriginBytesIn != 0 {
		t.Fatalf("byte counts: A %+v, B %+v", sa, sb)
	}
	if sa.BytesForwarded != sb.P2PBytesIn || sb.BytesForwarded != 0 {
		t.Fatalf("forwarded: A %d B %d, B received %d", sa.BytesForwarded, sb.BytesForwarded, sb.P2PBytesIn)
	}
	if got := tn.nodes["origin"].Children(); !slices.Equal(got, []NodeID{"A"}) {
		t.Fatalf("origin children %v", got)
	}
	if len(tn.played["origin"]) != 0 {
		t.Fatal("the source played out")
	}
}

func TestBadChunks(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	_, raws := st.Slice(0)
	good := raws[1]
	flip := func(i int) []byte {
		b := slices.Clone(good)
		b[i] ^= 0x01
		return b
	}
	other := swarmtest.NewStream("other", 4, epoch)
	_, otherRaws := other.Slice(0)
	twoStripes := swarmtest.NewStream(testChannel, 2, epoch)
	_, twoRaws := twoStripes.Slice(0)
	forged := swarmtest.NewStream(testChannel, 4, epoch)
	forged.Key = swarmtest.Key(99)
	_, forgedRaws := forged.Slice(0)

	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"flipped signature", flip(len(good) - 1), ErrBadChunk},
		{"flipped payload", flip(len(good) - wire.SignatureSize - 1), ErrBadChunk},
		{"truncated", good[:len(good)-3], ErrBadChunk},
		{"garbage", []byte("not a chunk at all"), ErrBadChunk},
		{"empty", nil, ErrBadChunk},
		{"wrong key", forgedRaws[1], ErrBadChunk},
		{"wrong stripe count", twoRaws[1], ErrBadChunk},
		{"wrong channel", otherRaws[1], ErrWrongChannel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustNew(t, testConfig(st))
			n.SetParent(epoch, -1, "P")
			n.SetParent(epoch, 3, "Q")
			if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 0xf}); err != nil {
				t.Fatal(err)
			}
			err := n.HandleChunk(epoch, "P", tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("HandleChunk: %v, want %v", err, tt.want)
			}
			r := n.Ready()
			if !slices.Equal(r.CutOff, []NodeID{"P"}) {
				t.Fatalf("CutOff %v", r.CutOff)
			}
			wantLost := []Lost{{"P", 0}, {"P", 1}, {"P", 2}}
			if !slices.Equal(r.Lost, wantLost) {
				t.Fatalf("Lost %v, want %v", r.Lost, wantLost)
			}
			if len(r.Sends) != 0 || len(r.Play) != 0 {
				t.Fatalf("bad chunk forwarded or played: %+v", r)
			}
			if n.Parent(0) != "" || n.Parent(3) != "Q" {
				t.Fatalf("parents %q %q", n.Parent(0), n.Parent(3))
			}
			if s := n.Stats(); s.BadChunks != 1 || s.P2PBytesIn != 0 {
				t.Fatalf("stats %+v", s)
			}
			if _, ok := n.Lookup(wire.ID{Seq: 0, Stripe: 1}); ok {
				t.Fatal("bad chunk stored")
			}
			// The good chunk is still taken afterwards.
			if err := n.HandleChunk(epoch, "Q", good); err != nil {
				t.Fatal(err)
			}
			if r := n.Ready(); len(r.Sends) != 1 || r.Sends[0].To != "C" {
				t.Fatalf("good chunk not forwarded: %+v", r.Sends)
			}
		})
	}
}

// TestVerifyHook: Config.Verify replaces the Ed25519 check — no public
// key needed — and a chunk it rejects is a bad chunk like any other.
func TestVerifyHook(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	_, raws := st.Slice(0)
	forged := swarmtest.NewStream(testChannel, 2, epoch)
	forged.Key = swarmtest.Key(99)
	_, forgedRaws := forged.Slice(0)
	errUnknown := errors.New("not made by the test origin")
	var calls int
	cfg := testConfig(st)
	cfg.PublicKey = nil
	cfg.Verify = func(raw []byte) error {
		calls++
		if !bytes.Equal(raw, raws[0]) && !bytes.Equal(raw, forgedRaws[1]) {
			return errUnknown
		}
		return nil
	}
	n := mustNew(t, cfg)
	if err := n.HandleChunk(epoch, "P", raws[0]); err != nil {
		t.Fatal(err)
	}
	// The hook decides, not the key: a chunk signed by another key passes
	// it, and a correctly signed one it does not know fails.
	if err := n.HandleChunk(epoch, "P", forgedRaws[1]); err != nil {
		t.Fatalf("hook overridden: %v", err)
	}
	if err := n.HandleChunk(epoch, "Q", raws[1]); !errors.Is(err, ErrBadChunk) || !errors.Is(err, errUnknown) {
		t.Fatalf("HandleChunk: %v, want ErrBadChunk wrapping the hook's error", err)
	}
	if r := n.Ready(); !slices.Equal(r.CutOff, []NodeID{"Q"}) {
		t.Fatalf("CutOff %v", r.CutOff)
	}
	if calls != 3 {
		t.Fatalf("hook called %d times, want 3", calls)
	}
	cfg.Verify = nil
	if _, err := New(cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("no key and no hook: %v", err)
	}
}

func TestBadChunkNeverPlayed(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	n := mustNew(t, testConfig(st))
	_, raws := st.Slice(0)
	if err := n.HandleChunk(epoch, "P", raws[0]); err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(raws[1])
	bad[len(bad)-wire.SignatureSize-1] ^= 0xff // corrupt the last RTP byte
	if err := n.HandleChunk(epoch, "P", bad); !errors.Is(err, ErrBadChunk) {
		t.Fatalf("HandleChunk: %v", err)
	}
	n.Tick(epoch.Add(5 * time.Second))
	if r := n.Ready(); len(r.Play) != 0 {
		t.Fatalf("played a slice with a bad chunk: %v", seqsOf(r.Play))
	}
}

func TestDuplicatesNotReforwarded(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	n := mustNew(t, testConfig(st))
	n.SetParent(epoch, -1, "P")
	if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 3}); err != nil {
		t.Fatal(err)
	}
	feed(t, n, st, epoch, "P", 0)
	feed(t, n, st, epoch, "P", 0)
	feed(t, n, st, epoch, "X", 0, 1)
	r := n.Ready()
	if len(r.Sends) != 2 {
		t.Fatalf("%d sends, want 2", len(r.Sends))
	}
	s := n.Stats()
	if s.Duplicates != 3 {
		t.Fatalf("Duplicates %d, want 3", s.Duplicates)
	}
	_, raws := st.Slice(0)
	if s.P2PBytesIn != uint64(len(raws[0])+len(raws[1])) {
		t.Fatalf("P2PBytesIn %d counts duplicates", s.P2PBytesIn)
	}
	// Re-subscribing does not send the chunks again.
	if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 3}); err != nil {
		t.Fatal(err)
	}
	if r := n.Ready(); len(r.Sends) != 0 {
		t.Fatalf("re-added child got %d sends again", len(r.Sends))
	}
	// A chunk is not sent back to the child it came from.
	if err := n.AddChild(epoch, "D", wire.Hello{Channel: testChannel, Stripes: 3}); err != nil {
		t.Fatal(err)
	}
	n.Ready()
	feed(t, n, st, epoch, "D", 1, 0)
	if r := n.Ready(); len(r.Sends) != 1 || r.Sends[0].To != "C" {
		t.Fatalf("sends %+v, want one to C", r.Sends)
	}
}

func TestChildBacklog(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	cfg := testConfig(st)
	cfg.Window = 2 * time.Second // 20 slices
	for _, tt := range []struct {
		name string
		from uint64
		mask uint16
		want uint64 // first seq sent
	}{
		{"newest keyframe", 0, 0b0101, 20},
		{"from a seq", 15, 0b1111, 15},
		{"from before the backlog bound", 1, 0b0010, 14}, // 14 is captured MaxBacklog (1s) before 24
		{"bits beyond the stripes", 0, 0xfff0 | 0b1000, 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := mustNew(t, cfg)
			for seq := uint64(0); seq < 25; seq++ {
				feed(t, n, st, st.Capture(seq), "P", seq)
			}
			now := st.Capture(24)
			n.Ready()
			if err := n.AddChild(now, "C", wire.Hello{Channel: testChannel, Stripes: tt.mask, From: tt.from}); err != nil {
				t.Fatal(err)
			}
			var want []wire.ID
			for seq := tt.want; seq < 25; seq++ {
				for s := range 4 {
					if tt.mask&(1<<s) != 0 {
						want = append(want, wire.ID{Seq: seq, Stripe: uint8(s)})
					}
				}
			}
			r := n.Ready()
			var got []wire.ID
			for _, s := range r.Sends {
				if s.To != "C" {
					t.Fatalf("send to %q", s.To)
				}
				raw, _ := n.Lookup(s.ID)
				if string(raw) != string(s.Chunk) {
					t.Fatalf("send %v carries the wrong bytes", s.ID)
				}
				if !s.Backlog {
					t.Fatalf("backlog send %v not marked Backlog", s.ID)
				}
				got = append(got, s.ID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("backlog %v,\nwant %v", got, want)
			}
			// Then live chunks, on the subscribed stripes only.
			feed(t, n, st, st.Capture(25), "P", 25)
			r = n.Ready()
			for _, s := range r.Sends {
				if s.ID.Seq != 25 || tt.mask&(1<<s.ID.Stripe) == 0 || s.Backlog {
					t.Fatalf("live send %+v", s)
				}
			}
			if len(r.Sends) == 0 {
				t.Fatal("no live sends")
			}
		})
	}
}

func TestChildren(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	cfg := testConfig(st)
	cfg.MaxChildren = 2
	n := mustNew(t, cfg)
	h := wire.Hello{Channel: testChannel, Stripes: 1}
	for _, id := range []NodeID{"z", "b"} {
		if err := n.AddChild(epoch, id, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.AddChild(epoch, "c", h); !errors.Is(err, ErrFull) {
		t.Fatalf("third child: %v, want ErrFull", err)
	}
	if err := n.AddChild(epoch, "z", wire.Hello{Channel: testChannel, Stripes: 2}); err != nil {
		t.Fatalf("re-adding a child: %v", err)
	}
	if err := n.AddChild(epoch, "c", wire.Hello{Channel: "other"}); !errors.Is(err, ErrWrongChannel) {
		t.Fatalf("wrong channel: %v", err)
	}
	if got := n.Children(); !slices.Equal(got, []NodeID{"b", "z"}) {
		t.Fatalf("children %v", got)
	}
	// z now gets stripe 1 only.
	feed(t, n, st, epoch, "P", 0)
	var to []NodeID
	for _, s := range n.Ready().Sends {
		to = append(to, NodeID(string(s.To)+string('0'+rune(s.ID.Stripe))))
	}
	if !slices.Equal(to, []NodeID{"b0", "z1"}) {
		t.Fatalf("sends %v", to)
	}
	n.RemoveChild("b")
	n.NodeGone(epoch, "z")
	if got := n.Children(); len(got) != 0 {
		t.Fatalf("children %v", got)
	}
}

func TestParents(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := mustNew(t, testConfig(st))
	n.SetParent(epoch, -1, "P")
	n.SetParent(epoch, 2, "Q")
	n.SetParent(epoch, 9, "X")  // ignored
	n.SetParent(epoch, -2, "X") // ignored
	for s, want := range []NodeID{"P", "P", "Q", "P"} {
		if got := n.Parent(s); got != want {
			t.Fatalf("Parent(%d) = %q, want %q", s, got, want)
		}
	}
	if n.Parent(-1) != "" || n.Parent(4) != "" {
		t.Fatal("out-of-range Parent not empty")
	}
	n.NodeGone(epoch, "P")
	r := n.Ready()
	if want := []Lost{{"P", 0}, {"P", 1}, {"P", 3}}; !slices.Equal(r.Lost, want) {
		t.Fatalf("Lost %v, want %v", r.Lost, want)
	}
	if n.Parent(0) != "" || n.Parent(2) != "Q" {
		t.Fatal("NodeGone cleared the wrong parents")
	}
	// The next chunk of a lost stripe ends its repair.
	feed(t, n, st, epoch.Add(300*time.Millisecond), "R", 0, 1)
	s := n.Stats()
	if s.Repairs != 1 || !slices.Equal(s.RepairTimes, []time.Duration{300 * time.Millisecond}) {
		t.Fatalf("repairs %d %v", s.Repairs, s.RepairTimes)
	}
	s.RepairTimes[0] = 0
	if n.Stats().RepairTimes[0] != 300*time.Millisecond {
		t.Fatal("Stats shares RepairTimes")
	}
	// Slice 0 is a keyframe: its chunks on stripes without a parent are
	// fetched at once (stripe 2's parent Q is being dialed: it will send
	// them).
	if f := n.Ready().Fetches; !slices.Equal(f, []wire.ID{{Seq: 0, Stripe: 0}, {Seq: 0, Stripe: 3}}) {
		t.Fatalf("fetches %v", f)
	}
	if n.HasReady() {
		t.Fatal("HasReady after drain with nothing new")
	}
}

// TestParentUp: a parent has ParentConnectTimeout from SetParent to come
// up; once up (ParentUp, or its first chunk), ParentTimeout applies from
// then on. Naming the same parent again changes nothing.
func TestParentUp(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := mustNew(t, testConfig(st))
	n.SetParent(epoch, -1, "P")
	if dl := n.NextDeadline(); !dl.Equal(epoch.Add(DefaultParentConnectTimeout)) {
		t.Fatalf("deadline %v, want the connect timeout", dl.Sub(epoch))
	}
	up := epoch.Add(2 * time.Second) // a slow dial: longer than ParentTimeout
	n.SetParent(up.Add(-time.Second), -1, "P")
	n.ParentUp(up, "P")
	for s := range 4 {
		if !n.ParentIsUp(s) {
			t.Fatalf("stripe %d not up", s)
		}
	}
	// The stream flows on stripes 0..2 only: P is alive (any chunk from it
	// on any stripe counts), so it is never lost; stripe 3 is fetched.
	var fetched []wire.ID
	for seq := uint64(20); seq < 60; seq++ {
		now := st.Capture(seq).Add(up.Sub(epoch))
		n.Tick(now)
		feed(t, n, st, now, "P", seq, 0, 1, 2)
		r := n.Ready()
		if len(r.Lost) != 0 {
			t.Fatalf("slice %d: lost %v while P sends", seq, r.Lost)
		}
		if len(r.FetchDue) != len(r.Fetches) {
			t.Fatalf("%d fetches, %d dues", len(r.Fetches), len(r.FetchDue))
		}
		for i, f := range r.Fetches {
			// Once playing, a fetch names its slice's playout time.
			if d := r.FetchDue[i]; seq >= 30 || !d.IsZero() {
				if due, ok := n.playAt(f.Seq); !ok || !d.Equal(due.Time()) {
					t.Fatalf("slice %d: fetch %v due %v, want its playout time %v", seq, f, d, due.Time())
				}
			}
			if f.Stripe == 3 { // the origin answers at once
				feed(t, n, st, now, "origin", f.Seq, 3)
			}
		}
		if seq >= 30 { // playout runs: before, a half-fed slice is fetched too
			fetched = append(fetched, r.Fetches...)
		}
	}
	if len(fetched) == 0 {
		t.Fatal("the lagging stripe was not fetched")
	}
	for _, f := range fetched {
		if f.Stripe != 3 {
			t.Fatalf("fetched %v of a stripe that flows", f)
		}
	}
	// P goes silent: lost ParentTimeout after its last chunk, on every
	// stripe at once.
	last := st.Capture(59).Add(up.Sub(epoch))
	n.Tick(last.Add(DefaultParentTimeout - time.Millisecond))
	if l := n.Ready().Lost; len(l) != 0 {
		t.Fatalf("lost early: %v", l)
	}
	n.Tick(last.Add(DefaultParentTimeout + 100*time.Millisecond))
	if l := n.Ready().Lost; !slices.Equal(l, []Lost{{"P", 0}, {"P", 1}, {"P", 2}, {"P", 3}}) {
		t.Fatalf("lost %v", l)
	}
}

// TestParentConnectTimeout: a parent that never comes up is lost
// ParentConnectTimeout after SetParent; a node that received nothing
// then asks the origin for its newest keyframe slice (slice 0).
func TestParentConnectTimeout(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	n := mustNew(t, testConfig(st))
	n.SetParent(epoch, -1, "P")
	n.Tick(epoch.Add(DefaultParentConnectTimeout - time.Millisecond))
	if r := n.Ready(); len(r.Lost)+len(r.Fetches) != 0 {
		t.Fatalf("early: %+v", r)
	}
	n.Tick(epoch.Add(DefaultParentConnectTimeout))
	r := n.Ready()
	if !slices.Equal(r.Lost, []Lost{{"P", 0}, {"P", 1}}) {
		t.Fatalf("lost %v", r.Lost)
	}
	if !slices.Equal(r.Fetches, []wire.ID{{Seq: 0, Stripe: 0}, {Seq: 0, Stripe: 1}}) {
		t.Fatalf("fetches %v", r.Fetches)
	}
}

// TestDetached: a node the tracker never placed (no parent at all)
// learns the newest keyframe slice from the origin after
// ParentConnectTimeout and plays from the origin from then on.
func TestDetached(t *testing.T) {
	tn := newTestNet(t, 4)
	tn.fetchDelay = 20 * time.Millisecond
	tn.run(3*time.Second, 10*time.Millisecond) // the stream runs a while
	tn.add("D", testConfig(tn.st))
	joined := tn.now
	tn.run(DefaultParentConnectTimeout-20*time.Millisecond, 10*time.Millisecond)
	if f := tn.fetches["D"]; len(f) != 0 {
		t.Fatalf("fetched before the grace: %v", f)
	}
	tn.run(6*time.Second, 10*time.Millisecond)
	f := tn.fetches["D"]
	if len(f) < 4 || !slices.Equal(f[:4], []wire.ID{{Seq: 0, Stripe: 0}, {Seq: 0, Stripe: 1}, {Seq: 0, Stripe: 2}, {Seq: 0, Stripe: 3}}) {
		t.Fatalf("first fetches %v, want slice 0 of every stripe", f[:min(len(f), 8)])
	}
	played := tn.played["D"]
	checkPlayed(t, tn.st, played)
	// It starts at the keyframe the origin held when asked, and plays on.
	wantFirst := uint64(joined.Add(DefaultParentConnectTimeout).Sub(epoch)/tn.st.SliceDuration) / tn.st.KeyframeEvery * tn.st.KeyframeEvery
	if len(played) < 40 || played[0].Seq != wantFirst {
		t.Fatalf("played %v, want from %d", seqsOf(played), wantFirst)
	}
	if s := tn.nodes["D"].Stats(); s.LostSlices != 0 || s.OriginBytesIn == 0 || s.P2PBytesIn != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestParentSilence: the origin stops pushing stripe 2 to A but goes on
// with the others. The origin is alive, so nobody reports it lost: A
// fetches stripe 2 from the origin and forwards it, so neither A nor its
// child B misses a slice.
func TestParentSilence(t *testing.T) {
	tn := newTestNet(t, 4)
	silent := false
	tn.link = func(from, to NodeID, id wire.ID) []time.Duration {
		if silent && from == "origin" && id.Stripe == 2 {
			return nil
		}
		return []time.Duration{10 * time.Millisecond}
	}
	cfg := testConfig(tn.st)
	a := tn.viewer("A", "origin", cfg)
	tn.viewer("B", "A", cfg)
	tn.run(2*time.Second, 10*time.Millisecond)
	silent = true
	tn.fetchDelay = 15 * time.Millisecond
	tn.run(5*time.Second, 10*time.Millisecond)
	if len(tn.lost["A"])+len(tn.lost["B"]) != 0 {
		t.Fatalf("lost a live parent: A %v, B %v", tn.lost["A"], tn.lost["B"])
	}
	if a.Parent(2) != "origin" {
		t.Fatal("A dropped its parent")
	}
	sa := a.Stats()
	if sa.Fetches == 0 || sa.OriginBytesIn == 0 {
		t.Fatalf("no fetches: %+v", sa)
	}
	for _, f := range tn.fetches["A"] {
		if f.Stripe != 2 {
			t.Fatalf("A fetched %v of a stripe that flows", f)
		}
	}
	for _, id := range []NodeID{"A", "B"} {
		checkPlayed(t, tn.st, tn.played[id])
		s := tn.nodes[id].Stats()
		if s.LostSlices != 0 || s.Stalls != 0 || s.LateSlices != 0 || len(tn.played[id]) < 60 {
			t.Fatalf("%s: %d played, stats %+v", id, len(tn.played[id]), s)
		}
	}
}

// TestNoLostCascade: origin → P → A → B → C; P dies without a word (its
// link just goes silent). A finds P lost and fetches its stripes from the
// origin, and forwards what it fetches: B and C keep hearing from their
// parents, so only A reports a lost parent, and nobody misses a slice.
func TestNoLostCascade(t *testing.T) {
	tn := newTestNet(t, 4)
	tn.link = func(from, to NodeID, id wire.ID) []time.Duration { return []time.Duration{20 * time.Millisecond} }
	tn.fetchDelay = 60 * time.Millisecond // a round trip to the origin
	cfg := testConfig(tn.st)
	tn.viewer("P", "origin", cfg)
	tn.viewer("A", "P", cfg)
	tn.viewer("B", "A", cfg)
	tn.viewer("C", "B", cfg)
	tn.run(3*time.Second, 10*time.Millisecond)
	// P crashes: nothing more comes from it, and nobody is told.
	delete(tn.nodes, "P")
	tn.order = slices.DeleteFunc(tn.order, func(id NodeID) bool { return id == "P" })
	tn.run(6*time.Second, 10*time.Millisecond)

	if want := []Lost{{"P", 0}, {"P", 1}, {"P", 2}, {"P", 3}}; !slices.Equal(tn.lost["A"], want) {
		t.Fatalf("A lost %v, want %v", tn.lost["A"], want)
	}
	for _, id := range []NodeID{"B", "C"} {
		if l := tn.lost[id]; len(l) != 0 {
			t.Fatalf("%s reported its live parent lost: %v", id, l)
		}
	}
	for _, id := range []NodeID{"A", "B", "C"} {
		checkPlayed(t, tn.st, tn.played[id])
		s := tn.nodes[id].Stats()
		if s.LostSlices != 0 || len(tn.played[id]) < 70 {
			t.Fatalf("%s: %d played, stats %+v", id, len(tn.played[id]), s)
		}
	}
	if s := tn.nodes["A"].Stats(); s.Repairs != 4 || s.OriginBytesIn == 0 {
		t.Fatalf("A: %+v", s)
	}
}

// directNode makes a viewer fed by hand: slices arrive at capture time.
func directNode(t testing.TB, st *swarmtest.Stream, mutate func(*Config)) *Node {
	cfg := testConfig(st)
	if mutate != nil {
		mutate(&cfg)
	}
	n := mustNew(t, cfg)
	n.SetParent(epoch, -1, "P")
	return n
}

func TestStallThenRecover(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := directNode(t, st, nil)
	var played []Slice
	// Slices 0..19 arrive on time, except stripe 1 of slice 5.
	for seq := uint64(0); seq < 20; seq++ {
		now := st.Capture(seq)
		n.Tick(now)
		if seq == 5 {
			feed(t, n, st, now, "P", seq, 0, 2, 3)
		} else {
			feed(t, n, st, now, "P", seq)
		}
		played = append(played, n.Ready().Play...)
	}
	due5 := st.Capture(5).Add(DefaultPlayoutDelay)
	n.Tick(due5.Add(-time.Millisecond))
	played = append(played, n.Ready().Play...)
	if got := seqsOf(played); !slices.Equal(got, []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("played %v", got)
	}
	n.Tick(due5)
	if s := n.Stats(); s.Stalls != 1 || len(n.Ready().Play) != 0 {
		t.Fatalf("no stall at slice 5's due time: %+v", s)
	}
	if dl := n.NextDeadline(); dl.After(due5.Add(DefaultStallLimit)) {
		t.Fatalf("deadline %v after the stall limit", dl.Sub(epoch))
	}
	// The missing chunk arrives 300ms late.
	feed(t, n, st, due5.Add(300*time.Millisecond), "P", 5, 1)
	r := n.Ready()
	if len(r.Play) != 1 || r.Play[0].Seq != 5 || !r.Play[0].PlayAt.Equal(due5.Add(300*time.Millisecond)) || r.Play[0].Discontinuity {
		t.Fatalf("late slice: %+v", r.Play)
	}
	s := n.Stats()
	if s.Stalls != 1 || s.LateSlices != 1 || s.StallTime != 300*time.Millisecond || s.LostSlices != 0 || s.PlayedSlices != 5 {
		t.Fatalf("stats %+v", s)
	}
	// Later slices are due 300ms later than before.
	if dl := n.NextDeadline(); !dl.Equal(st.Capture(6).Add(DefaultPlayoutDelay + 300*time.Millisecond)) {
		t.Fatalf("next deadline %v", dl.Sub(epoch))
	}
	n.Tick(st.Capture(19).Add(DefaultPlayoutDelay + 300*time.Millisecond))
	played = append(played, r.Play...)
	played = append(played, n.Ready().Play...)
	checkPlayed(t, st, played)
	if len(played) != 20 || n.Stats().PlayedSlices != 19 || n.Stats().Stalls != 1 {
		t.Fatalf("played %v, stats %+v", seqsOf(played), n.Stats())
	}
}

func TestStallSkip(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	// No catch-up: the stall's timing is checked to the end.
	n := directNode(t, st, func(c *Config) { c.MaxFetches, c.CatchUp = 0, -1 })
	n.cfg.MaxFetches = 0 // 0 in a Config means the default; force none here
	var played []Slice
	// Stripe 1 of slice 5 never comes.
	for seq := uint64(0); seq < 60; seq++ {
		now := st.Capture(seq)
		n.Tick(now)
		if seq == 5 {
			feed(t, n, st, now, "P", seq, 0, 2, 3)
		} else {
			feed(t, n, st, now, "P", seq)
		}
		played = append(played, n.Ready().Play...)
	}
	n.Tick(st.Capture(59).Add(DefaultPlayoutDelay + DefaultStallLimit))
	played = append(played, n.Ready().Play...)
	checkPlayed(t, st, played)
	got := seqsOf(played)
	if len(got) != 59 || got[4] != 4 || got[5] != 6 || !played[5].Discontinuity || played[4].Discontinuity || played[6].Discontinuity {
		t.Fatalf("played %v", got)
	}
	if want := st.Capture(6).Add(DefaultPlayoutDelay + DefaultStallLimit); !played[5].PlayAt.Equal(want) {
		t.Fatalf("slice 6 due %v, want %v", played[5].PlayAt.Sub(epoch), want.Sub(epoch))
	}
	s := n.Stats()
	if s.Stalls != 1 || s.LostSlices != 1 || s.LateSlices != 0 || s.PlayedSlices != 59 || s.StallTime != DefaultStallLimit {
		t.Fatalf("stats %+v", s)
	}
}

// TestSkipRun: an outage of 20 slices costs one stall, not twenty.
func TestSkipRun(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := directNode(t, st, func(c *Config) { c.CatchUp = -1 }) // timing checked to the end
	n.cfg.MaxFetches = 0
	var played []Slice
	for now := epoch; now.Before(st.Capture(80)); now = now.Add(10 * time.Millisecond) {
		for seq := uint64(0); seq < 80; seq++ {
			if st.Capture(seq).Equal(now) && (seq < 10 || seq >= 30) {
				feed(t, n, st, now, "P", seq)
			}
		}
		if dl := n.NextDeadline(); !dl.IsZero() && !dl.After(now) {
			n.Tick(now)
		}
		played = append(played, n.Ready().Play...)
	}
	n.Tick(st.Capture(79).Add(DefaultPlayoutDelay + DefaultStallLimit))
	played = append(played, n.Ready().Play...)
	checkPlayed(t, st, played)
	got := seqsOf(played)
	if len(got) != 60 || got[9] != 9 || got[10] != 30 || !played[10].Discontinuity {
		t.Fatalf("played %v", got)
	}
	s := n.Stats()
	if s.Stalls != 1 || s.LostSlices != 20 || s.PlayedSlices != 60 || s.StallTime != DefaultStallLimit {
		t.Fatalf("stats %+v", s)
	}
}

// TestFetchAtMargin: a chunk missing FetchMargin before its slice is due
// is fetched once per FetchRetry, and playout stays on time when the
// origin answers.
func TestFetchAtMargin(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	// P goes quiet after slice 9; a long ParentTimeout keeps it from
	// turning suspect (which fetches earlier) while the test looks.
	n := directNode(t, st, func(c *Config) { c.ParentTimeout = 10 * time.Second })
	for seq := uint64(0); seq < 10; seq++ {
		if seq == 5 {
			feed(t, n, st, st.Capture(seq), "P", seq, 0, 1, 3)
		} else {
			feed(t, n, st, st.Capture(seq), "P", seq)
		}
	}
	var played []Slice
	drain := func() []wire.ID {
		r := n.Ready()
		played = append(played, r.Play...)
		return r.Fetches
	}
	drain()
	at := st.Capture(5).Add(DefaultPlayoutDelay - DefaultFetchMargin)
	if dl := n.NextDeadline(); !dl.Equal(st.Capture(0).Add(DefaultPlayoutDelay)) {
		t.Fatalf("deadline %v", dl.Sub(epoch))
	}
	n.Tick(at.Add(-time.Millisecond))
	if f := drain(); len(f) != 0 {
		t.Fatalf("fetched early: %v", f)
	}
	n.Tick(at)
	want := []wire.ID{{Seq: 5, Stripe: 2}}
	if f := drain(); !slices.Equal(f, want) {
		t.Fatalf("fetches %v, want %v", f, want)
	}
	n.HandleMissing(at.Add(10*time.Millisecond), "origin", want[0])
	n.Tick(at.Add(DefaultFetchRetry - time.Millisecond))
	if f := drain(); len(f) != 0 {
		t.Fatalf("retried early: %v", f)
	}
	n.Tick(at.Add(DefaultFetchRetry))
	if f := drain(); !slices.Equal(f, want) {
		t.Fatalf("retry %v, want %v", f, want)
	}
	_, raws := st.Slice(5)
	if err := n.HandleChunk(at.Add(DefaultFetchRetry+20*time.Millisecond), "origin", raws[2]); err != nil {
		t.Fatal(err)
	}
	n.Tick(st.Capture(9).Add(DefaultPlayoutDelay))
	for _, f := range drain() {
		if f.Seq < 10 {
			t.Fatalf("fetched %v again", f)
		}
	}
	checkPlayed(t, st, played)
	s := n.Stats()
	if len(played) != 10 || s.PlayedSlices != 10 || s.Stalls != 0 {
		t.Fatalf("played %v, stats %+v", seqsOf(played), s)
	}
	if _, raws := st.Slice(5); s.OriginBytesIn != uint64(len(raws[2])) {
		t.Fatalf("OriginBytesIn %d", s.OriginBytesIn)
	}
}

func TestFetchBound(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := directNode(t, st, func(c *Config) { c.MaxFetches = 5 })
	feed(t, n, st, epoch, "P", 0)
	n.SetParent(epoch, -1, "")
	// Stripes without a parent are fetched as soon as their slices exist,
	// at most 5 at once.
	now := st.Capture(10)
	n.Tick(now)
	f := n.Ready().Fetches
	want := []wire.ID{{Seq: 1, Stripe: 0}, {Seq: 1, Stripe: 1}, {Seq: 1, Stripe: 2}, {Seq: 1, Stripe: 3}, {Seq: 2, Stripe: 0}}
	if !slices.Equal(f, want) {
		t.Fatalf("fetches %v, want %v", f, want)
	}
	if dl := n.NextDeadline(); !dl.After(now) || dl.After(now.Add(DefaultFetchRetry)) {
		t.Fatalf("deadline %v", dl.Sub(now))
	}
	_, raws := st.Slice(1)
	if err := n.HandleChunk(now, "origin", raws[0]); err != nil {
		t.Fatal(err)
	}
	if f := n.Ready().Fetches; !slices.Equal(f, []wire.ID{{Seq: 2, Stripe: 1}}) {
		t.Fatalf("after an answer: %v", f)
	}
}

// TestFetchBeforeStart: a stripe without a parent is fetched before
// playout starts, as soon as the newest keyframe slice began to arrive,
// so the node can start.
func TestFetchBeforeStart(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := mustNew(t, testConfig(st))
	n.SetParent(epoch, 0, "P")
	n.SetParent(epoch, 1, "P")
	n.SetParent(epoch, 2, "P")
	feed(t, n, st, epoch, "P", 0, 0, 1, 2)
	if f := n.Ready().Fetches; !slices.Equal(f, []wire.ID{{Seq: 0, Stripe: 3}}) {
		t.Fatalf("fetches %v", f)
	}
	feed(t, n, st, epoch.Add(50*time.Millisecond), "origin", 0, 3)
	n.Tick(epoch.Add(DefaultPlayoutDelay))
	if p := n.Ready().Play; len(p) != 1 || p[0].Seq != 0 {
		t.Fatalf("played %v", seqsOf(p))
	}
}

func TestFetchBeforeStartWithParents(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := directNode(t, st, nil)
	feed(t, n, st, epoch, "P", 0, 0, 1)
	n.Tick(epoch.Add(DefaultParentTimeout - time.Millisecond))
	if f := n.Ready().Fetches; len(f) != 0 {
		t.Fatalf("fetches before the parent had its time: %v", f)
	}
	n.Tick(epoch.Add(DefaultParentTimeout))
	if f := n.Ready().Fetches; !slices.Equal(f, []wire.ID{{Seq: 0, Stripe: 2}, {Seq: 0, Stripe: 3}}) {
		t.Fatalf("fetches %v", f)
	}
}

func TestNoFetchWithoutKeyframe(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := directNode(t, st, nil)
	n.SetParent(epoch, 3, "")
	feed(t, n, st, st.Capture(1), "P", 1, 0, 1)
	n.Tick(st.Capture(1).Add(time.Hour))
	if f := n.Ready().Fetches; len(f) != 0 {
		t.Fatalf("fetched with nothing to start from: %v", f)
	}
}

func TestWindowEviction(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	n := directNode(t, st, func(c *Config) { c.Window = 2 * time.Second })
	if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 3}); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(0); seq < 500; seq++ {
		feed(t, n, st, st.Capture(seq), "P", seq)
		n.Ready()
		if len(n.win) > 21 || len(n.idx) != len(n.win) || !slices.IsSortedFunc(n.win, func(a, b *slot) int { return cmp.Compare(a.seq, b.seq) }) {
			t.Fatalf("slice %d: %d slots, %d index entries, sorted %v", seq, len(n.win), len(n.idx), n.win)
		}
		for i, sl := range n.win {
			if n.idx[i].seq != sl.seq || n.idx[i].held != 3 {
				t.Fatalf("slice %d: index %v does not match the slots", seq, n.idx)
			}
		}
	}
	if _, ok := n.Lookup(wire.ID{Seq: 100, Stripe: 0}); ok {
		t.Fatal("old chunk still held")
	}
	if _, ok := n.Lookup(wire.ID{Seq: 499, Stripe: 1}); !ok {
		t.Fatal("newest chunk not held")
	}
	if _, ok := n.Lookup(wire.ID{Seq: 499, Stripe: 7}); ok {
		t.Fatal("out-of-range stripe found")
	}
	// A chunk older than the window is dropped, not stored or forwarded.
	feed(t, n, st, st.Capture(500), "P", 10)
	if _, ok := n.Lookup(wire.ID{Seq: 10, Stripe: 0}); ok || len(n.Ready().Sends) != 0 {
		t.Fatal("stale chunk taken")
	}
	// Nor is one playout already passed.
	if !n.play.started || n.play.next < 480 {
		t.Fatalf("playout at %d", n.play.next)
	}
}

func TestSourceMode(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	cfg := testConfig(st)
	cfg.Source = true
	n := mustNew(t, cfg)
	if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 3}); err != nil {
		t.Fatal(err)
	}
	chunks, raws := st.Slice(0)
	for i := range chunks {
		n.Publish(epoch, chunks[i], raws[i])
	}
	n.Publish(epoch, nil, nil)
	bad := *chunks[0]
	bad.Channel = "other"
	n.Publish(epoch, &bad, raws[0])
	n.Tick(epoch.Add(10 * time.Second))
	r := n.Ready()
	if len(r.Sends) != 2 || len(r.Play) != 0 || len(r.Fetches) != 0 {
		t.Fatalf("ready %+v", r)
	}
	if !n.NextDeadline().IsZero() {
		t.Fatal("source has a deadline")
	}
	if s := n.Stats(); s.P2PBytesIn != 0 || s.OriginBytesIn != 0 || s.BytesForwarded != uint64(len(raws[0])+len(raws[1])) {
		t.Fatalf("stats %+v", s)
	}
	// A viewer ignores Publish.
	v := mustNew(t, testConfig(st))
	v.Publish(epoch, chunks[0], raws[0])
	if _, ok := v.Lookup(chunks[0].ID()); ok {
		t.Fatal("viewer published")
	}
}

func TestNextDeadlineIdle(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	n := mustNew(t, testConfig(st))
	if !n.NextDeadline().IsZero() || n.HasReady() {
		t.Fatal("fresh node has work")
	}
	n.SetParent(epoch, -1, "P")
	n.ParentUp(epoch, "P")
	n.Tick(epoch.Add(time.Hour))
	if !n.NextDeadline().IsZero() || len(n.Ready().Lost) != 0 {
		t.Fatal("silence before any chunk counted as a lost parent")
	}
}

// A new parent of a stripe is asked from the slice after the newest the
// node holds on that stripe (wire.Hello.From), not from its newest
// keyframe: the node already holds the rest.
func TestNextMissing(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	n := mustNew(t, testConfig(st))
	if got := n.NextMissing(0); got != 0 {
		t.Fatalf("empty node: NextMissing = %d, want 0 (newest keyframe)", got)
	}
	kf := firstKeyframe(t, st)
	// Both stripes up to kf+3, then stripe 0 only for two more slices and
	// a hole in stripe 1 at kf+1.
	for seq := kf; seq <= kf+3; seq++ {
		if seq == kf+1 {
			feed(t, n, st, epoch, "P", seq, 0)
			continue
		}
		feed(t, n, st, epoch, "P", seq)
	}
	feed(t, n, st, epoch, "P", kf+4, 0)
	feed(t, n, st, epoch, "P", kf+5, 0)
	if got, want := n.NextMissing(0), kf+6; got != want {
		t.Fatalf("stripe 0: NextMissing = %d, want %d (after the newest)", got, want)
	}
	// Playout runs: the hole at kf+1 is left to the margin fetch; a new
	// parent is asked from after the stripe's newest chunk, not to send
	// everything after the hole again.
	if got, want := n.NextMissing(1), kf+4; got != want {
		t.Fatalf("stripe 1: NextMissing = %d, want %d (after its newest)", got, want)
	}
	for _, bad := range []int{-1, 2} {
		if got := n.NextMissing(bad); got != 0 {
			t.Fatalf("NextMissing(%d) = %d, want 0", bad, got)
		}
	}
}

// A parent whose chunks keep arriving after the node fetched them from
// the origin has fallen behind: after Config.LagSlices such slices in a
// row it is lost, on every stripe it feeds. A chunk in time resets the
// count; the origin is never judged; LagSlices 0 never loses a slow
// parent.
func TestLaggingParentLost(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	fetchedThenLate := func(n *Node, seq uint64, from NodeID) {
		t.Helper()
		for s := range 2 {
			n.fetching = append(n.fetching, fetch{wire.ID{Seq: seq, Stripe: uint8(s)}, at(epoch)})
		}
		feed(t, n, st, epoch, "origin", seq) // the fetch answers first
		feed(t, n, st, epoch, from, seq)     // then the parent's copies
	}
	for _, tt := range []struct {
		name   string
		lag    int
		parent NodeID
		inTime bool // a chunk in time after the second late slice
		lost   bool
	}{
		{"lagging peer", 2, "P", false, true},
		{"in time in between", 2, "P", true, false},
		{"off", 0, "P", false, false},
		{"origin as parent", 2, "origin", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(st)
			cfg.LagSlices = tt.lag
			n := mustNew(t, cfg)
			n.SetParent(epoch, -1, tt.parent)
			n.ParentUp(epoch, tt.parent)
			feed(t, n, st, epoch, tt.parent, 1)
			fetchedThenLate(n, 2, tt.parent)
			if tt.inTime {
				feed(t, n, st, epoch, tt.parent, 3)
			}
			fetchedThenLate(n, 4, tt.parent)
			var lost []Lost
			for n.HasReady() {
				lost = append(lost, n.Ready().Lost...)
			}
			if got := len(lost) > 0; got != tt.lost {
				t.Fatalf("lost %v, want lost: %v", lost, tt.lost)
			}
			if tt.lost {
				if len(lost) != 2 || lost[0].Parent != tt.parent || n.Parent(0) != "" || n.Parent(1) != "" || n.Stats().LaggingParents != 1 {
					t.Fatalf("lost %v, parents %q %q, stats %+v", lost, n.Parent(0), n.Parent(1), n.Stats())
				}
			}
		})
	}
}

// TestResyncAfterLongOutage: a node cut off from every source for longer
// than the Window (a network partition), then fed live slices again,
// restarts its playout clock at a keyframe of the live stream, as a
// joining node does, instead of skipping the gap StallLimit at a time and
// playing the rest of the session that far behind live.
func TestResyncAfterLongOutage(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := directNode(t, st, nil)
	n.cfg.MaxFetches = 0
	const cutFrom, cutTo, end = 50, 450, 600 // 40 s without a slice
	var played []Slice
	for now := epoch; now.Before(st.Capture(end)); now = now.Add(10 * time.Millisecond) {
		for seq := uint64(0); seq < end; seq++ {
			if st.Capture(seq).Equal(now) && (seq < cutFrom || seq >= cutTo) {
				feed(t, n, st, now, "P", seq)
			}
		}
		if dl := n.NextDeadline(); !dl.IsZero() && !dl.After(now) {
			n.Tick(now)
		}
		played = append(played, n.Ready().Play...)
	}
	checkPlayed(t, st, played)
	got := seqsOf(played)
	i := slices.IndexFunc(got, func(seq uint64) bool { return seq >= cutFrom })
	if i < 0 {
		t.Fatalf("nothing played after the outage: %v", got)
	}
	first := played[i]
	if first.Seq < cutTo || !st.Keyframe(first.Seq) || !first.Discontinuity {
		t.Fatalf("first slice after the outage: %d (keyframe %v, discontinuity %v)", first.Seq, st.Keyframe(first.Seq), first.Discontinuity)
	}
	// Back at the live edge: a joining node's lag, not the outage's.
	if lag := first.PlayAt.Sub(first.Capture); lag > DefaultPlayoutDelay+2*time.Second {
		t.Fatalf("slice %d played %v behind capture", first.Seq, lag)
	}
	if last := played[len(played)-1]; last.Seq < end-20 {
		t.Fatalf("playout reached only slice %d of %d", last.Seq, end)
	}
	s := n.Stats()
	if s.Resyncs != 1 || s.LostSlices != first.Seq-cutFrom || s.PlayedSlices != uint64(len(played)) {
		t.Fatalf("stats %+v; first after the outage %d", s, first.Seq)
	}
}

// A node given its drained Ready back (Recycle) hands out the same
// outputs as one that is not, and nothing recycled leaks into them.
func TestRecycleSameOutputs(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	a, b := directNode(t, st, nil), directNode(t, st, nil)
	for _, n := range []*Node{a, b} {
		if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 0xf}); err != nil {
			t.Fatal(err)
		}
	}
	sends, played := 0, 0
	for seq := uint64(0); seq < 60; seq++ {
		now := st.Capture(seq).Add(30 * time.Millisecond)
		for _, n := range []*Node{a, b} {
			n.Tick(now)
			if seq%7 == 3 {
				feed(t, n, st, now, "P", seq, 0, 2) // two stripes missing: fetched later
			} else {
				feed(t, n, st, now, "P", seq)
			}
		}
		ra, rb := a.Ready(), b.Ready()
		if fmt.Sprint(ra.Sends, ra.Fetches, seqsOf(ra.Play), ra.Lost) != fmt.Sprint(rb.Sends, rb.Fetches, seqsOf(rb.Play), rb.Lost) {
			t.Fatalf("slice %d: recycled node gave %+v, other %+v", seq, ra, rb)
		}
		sends += len(ra.Sends)
		played += len(ra.Play)
		a.Recycle(ra)
	}
	if sends == 0 || played == 0 {
		t.Fatalf("%d sends, %d slices played: nothing compared", sends, played)
	}
}

// A node writing its outputs to storage lent to it (Lend), as the
// simulator passes one storage from node to node, hands out the same
// outputs as one that keeps its own. Return hands the lent storage back
// when the node has nothing ready, and else the node's own, empty. Lend
// refuses while outputs wait or storage is lent, and storage that is nil
// or holds outputs.
func TestLendSameOutputs(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	a, b := directNode(t, st, nil), directNode(t, st, nil)
	for _, n := range []*Node{a, b} {
		if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 0xf}); err != nil {
			t.Fatal(err)
		}
	}
	if a.Return() != nil {
		t.Fatal("Return handed storage back with none lent")
	}
	pool, own := new(Ready), a.ready
	kept := 0
	for seq := uint64(0); seq < 40; seq++ {
		if !a.Lend(pool) {
			t.Fatalf("slice %d: an idle node refused the storage", seq)
		}
		if a.Lend(new(Ready)) {
			t.Fatalf("slice %d: Lend lent twice", seq)
		}
		now := st.Capture(seq).Add(30 * time.Millisecond)
		for _, n := range []*Node{a, b} {
			n.Tick(now)
			feed(t, n, st, now, "P", seq)
		}
		if own.any() || pool.any() != a.HasReady() {
			t.Fatalf("slice %d: the outputs are not in the lent storage", seq)
		}
		if seq%5 == 4 && a.HasReady() {
			// The outputs wait in the lent storage, which the node
			// keeps: its own comes back, empty.
			back := a.Return()
			if back != own || back.any() || a.ready != pool {
				t.Fatalf("slice %d: Return with outputs ready gave %p (own %p), node holds %p (lent %p)", seq, back, own, a.ready, pool)
			}
			pool, own = back, pool
			kept++
			if !a.HasReady() {
				t.Fatalf("slice %d: the outputs were lost", seq)
			}
		}
		ra, rb := a.Ready(), b.Ready()
		if fmt.Sprint(ra.Sends, ra.Fetches, seqsOf(ra.Play), ra.Lost) != fmt.Sprint(rb.Sends, rb.Fetches, seqsOf(rb.Play), rb.Lost) {
			t.Fatalf("slice %d: node with lent storage gave %+v, other %+v", seq, ra, rb)
		}
		a.Recycle(ra)
		if seq%5 == 4 {
			continue // nothing lent now
		}
		if back := a.Return(); back != pool || a.ready != own {
			t.Fatalf("slice %d: Return gave back %p, want the lent storage %p", seq, back, pool)
		}
	}
	if kept == 0 {
		t.Fatal("no step had outputs ready: nothing compared")
	}
	if a.Lend(nil) || a.Lend(&Ready{CutOff: []NodeID{"X"}}) {
		t.Fatal("Lend took nil storage, or storage holding outputs")
	}
	feed(t, a, st, st.Capture(40), "P", 40)
	if !a.HasReady() || a.Lend(new(Ready)) {
		t.Fatal("Lend took storage while outputs were ready")
	}
}

// Before playout starts, a new parent is asked from the first slice of
// the newest keyframe's group that the node lacks on the stripe: it needs
// them all to start.
func TestNextMissingBeforeStart(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	n := mustNew(t, testConfig(st))
	kf := firstKeyframe(t, st)
	feed(t, n, st, epoch, "P", kf, 0)
	feed(t, n, st, epoch, "P", kf+1, 0, 1)
	feed(t, n, st, epoch, "P", kf+2, 0)
	if got, want := n.NextMissing(1), kf; got != want {
		t.Fatalf("stripe 1: NextMissing = %d, want %d (the keyframe it lacks)", got, want)
	}
	if got, want := n.NextMissing(0), kf+3; got != want {
		t.Fatalf("stripe 0: NextMissing = %d, want %d (after the newest)", got, want)
	}
}

// A child that holds nothing gets the group of pictures from the newest
// keyframe, unless the next keyframe is expected within KeyframeWait (0,
// the default: never): then it gets only live chunks and starts at that
// keyframe.
func TestBacklogKeyframeWait(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	kf := []uint64{}
	for seq := uint64(0); seq < 40; seq++ {
		if st.Keyframe(seq) {
			kf = append(kf, seq)
		}
	}
	if len(kf) < 3 || kf[2]-kf[1] != 10 {
		t.Fatalf("the test stream's keyframes %v are not 10 slices apart", kf)
	}
	const half = 500 * time.Millisecond
	for _, tt := range []struct {
		name   string
		newest uint64 // newest slice held
		wait   time.Duration
		want   uint64 // first seq sent; newest+1: live only
	}{
		{"young group", kf[2] + 4, half, kf[2]},                       // next keyframe 600ms away
		{"next keyframe near", kf[2] + 6, half, kf[2] + 7},            // 400ms away
		{"next keyframe near, no wait", kf[2] + 6, 0, kf[2]},          // the default: always the group
		{"one keyframe held", kf[1] + 8, half, kf[1]},                 // interval unknown
		{"keyframe just made", kf[2], half, kf[2]},                    // 1s away
		{"longer wait", kf[2] + 3, 800 * time.Millisecond, kf[2] + 4}, // 700ms away
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(st)
			cfg.KeyframeWait = tt.wait
			n := mustNew(t, cfg)
			lo := kf[1]
			for seq := lo; seq <= tt.newest; seq++ {
				feed(t, n, st, st.Capture(seq), "P", seq)
			}
			n.Ready()
			if err := n.AddChild(st.Capture(tt.newest), "C", wire.Hello{Channel: testChannel, Stripes: 0b1111}); err != nil {
				t.Fatal(err)
			}
			r := n.Ready()
			if tt.want > tt.newest {
				if len(r.Sends) != 0 {
					t.Fatalf("sent %d chunks, want none (live only)", len(r.Sends))
				}
			} else if len(r.Sends) == 0 || r.Sends[0].ID.Seq != tt.want || len(r.Sends) != int(tt.newest-tt.want+1)*4 {
				t.Fatalf("sent %d chunks from %v, want %d from slice %d", len(r.Sends), r.Sends[0].ID, (tt.newest-tt.want+1)*4, tt.want)
			}
			// Live chunks follow either way.
			feed(t, n, st, st.Capture(tt.newest+1), "P", tt.newest+1)
			if r := n.Ready(); len(r.Sends) != 4 {
				t.Fatalf("live sends %d, want 4", len(r.Sends))
			}
		})
	}
}

// A node that starts on an old group of pictures (its slices arrive at
// once, half a second after the keyframe was captured) plays faster than
// the stream until it is PlayoutDelay behind the slices' arrival, never
// faster than CatchUp allows; with CatchUp negative it stays behind.
func TestCatchUp(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	kf := firstKeyframe(t, st)
	const transit = 50 * time.Millisecond
	for _, tt := range []struct {
		name    string
		catchUp float64
		caught  bool
	}{{"catch up", 0, true}, {"never", -1, false}} {
		t.Run(tt.name, func(t *testing.T) {
			n := directNode(t, st, func(c *Config) { c.CatchUp = tt.catchUp })
			var played []Slice
			// The group of pictures from kf arrives at once, 500 ms old.
			for seq := kf; seq <= kf+5; seq++ {
				feed(t, n, st, st.Capture(kf+5).Add(transit), "P", seq)
			}
			for seq := kf + 6; seq < kf+300; seq++ {
				now := st.Capture(seq).Add(transit)
				if dl := n.NextDeadline(); !dl.IsZero() && dl.Before(now) {
					n.Tick(dl)
					played = append(played, n.Ready().Play...)
				}
				feed(t, n, st, now, "P", seq)
				played = append(played, n.Ready().Play...)
			}
			checkPlayed(t, st, played)
			if s := n.Stats(); s.Stalls != 0 || s.LostSlices != 0 {
				t.Fatalf("stalls %d, lost %d: catching up must not stall", s.Stalls, s.LostSlices)
			}
			first, last := played[0], played[len(played)-1]
			if lag := first.PlayAt.Sub(first.Capture); lag < DefaultPlayoutDelay+500*time.Millisecond {
				t.Fatalf("start slice played %v behind capture, want the group's age on top of the delay", lag)
			}
			lag := last.PlayAt.Sub(last.Capture)
			if tt.caught && lag > DefaultPlayoutDelay+transit+10*time.Millisecond {
				t.Fatalf("slice %d played %v behind capture, want caught up to %v", last.Seq, lag, DefaultPlayoutDelay+transit)
			}
			if !tt.caught && lag < DefaultPlayoutDelay+500*time.Millisecond {
				t.Fatalf("slice %d played %v behind capture with catch-up off", last.Seq, lag)
			}
			// Never faster than CatchUp allows.
			minGap := time.Duration(float64(DefaultSliceDuration) * (1 - DefaultCatchUp))
			for i := 1; i < len(played); i++ {
				if gap := played[i].PlayAt.Sub(played[i-1].PlayAt); gap < minGap-time.Millisecond {
					t.Fatalf("slices %d and %d played %v apart, want at least %v", played[i-1].Seq, played[i].Seq, gap, minGap)
				}
			}
		})
	}
}

// A node cut off from every source keeps its window (eviction runs on
// arrivals), but a child that subscribes minutes later gets none of it:
// a chunk that arrived more than Window ago is too old to use, whether
// the child asks for the newest keyframe or from a slice. A steady
// 10,000-peer sim run saw a node hand two-minute-old chunks to a new
// child, which then played them. Live chunks still flow to it once the
// node hears from the stream again.
func TestNoStaleBacklogAfterCut(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	for _, from := range []uint64{0, 15} {
		t.Run(fmt.Sprint("from ", from), func(t *testing.T) {
			n := mustNew(t, testConfig(st))
			for seq := uint64(0); seq < 25; seq++ {
				feed(t, n, st, st.Capture(seq), "P", seq)
			}
			n.Ready()
			// Fresh: the backlog is there (the test would check nothing
			// otherwise).
			if err := n.AddChild(st.Capture(24), "A", wire.Hello{Channel: testChannel, Stripes: 0b1111, From: from}); err != nil {
				t.Fatal(err)
			}
			if len(n.Ready().Sends) == 0 {
				t.Fatal("no backlog for a child right after the stream flowed")
			}
			later := st.Capture(24).Add(2 * time.Minute)
			n.Tick(later)
			n.Ready()
			if err := n.AddChild(later, "C", wire.Hello{Channel: testChannel, Stripes: 0b1111, From: from}); err != nil {
				t.Fatal(err)
			}
			for _, s := range n.Ready().Sends {
				t.Errorf("sent %v (captured %v before now) to %s", s.ID, later.Sub(st.Capture(s.ID.Seq)), s.To)
			}
			live := uint64(24 + 1200)
			feed(t, n, st, st.Capture(live), "P", live)
			var got []wire.ID
			for _, s := range n.Ready().Sends {
				if s.To == "C" {
					got = append(got, s.ID)
				}
			}
			if len(got) != 4 || got[0].Seq != live {
				t.Fatalf("live sends to the new child: %v", got)
			}
		})
	}
}

// With StartMargin a node plays its start slice as soon as it completes
// when it holds that much of the stream beyond it (a start on an old
// group of pictures), else that much later (a fresh keyframe); either
// way playout then converges to PlayoutDelay behind the slices' arrival,
// never more than CatchUp faster or slower than the stream, and without
// a stall.
func TestStartMargin(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	kf := firstKeyframe(t, st)
	const (
		transit = 50 * time.Millisecond
		delay   = 500 * time.Millisecond
		margin  = 200 * time.Millisecond
	)
	for _, tt := range []struct {
		name string
		old  uint64 // slices of the group held beyond the start slice on arrival
		wait time.Duration
	}{{"old group", 5, 0}, {"fresh keyframe", 0, margin}} {
		t.Run(tt.name, func(t *testing.T) {
			n := directNode(t, st, func(c *Config) { c.PlayoutDelay, c.StartMargin = delay, margin })
			var played []Slice
			arrive := st.Capture(kf + tt.old).Add(transit)
			for seq := kf; seq <= kf+tt.old; seq++ {
				feed(t, n, st, arrive, "P", seq)
				played = append(played, n.Ready().Play...)
			}
			for seq := kf + tt.old + 1; seq < kf+200; seq++ {
				now := st.Capture(seq).Add(transit)
				for dl := n.NextDeadline(); !dl.IsZero() && dl.Before(now); dl = n.NextDeadline() {
					n.Tick(dl)
					played = append(played, n.Ready().Play...)
				}
				feed(t, n, st, now, "P", seq)
				played = append(played, n.Ready().Play...)
			}
			checkPlayed(t, st, played)
			if s := n.Stats(); s.Stalls != 0 || s.LostSlices != 0 {
				t.Fatalf("stalls %d, lost %d", s.Stalls, s.LostSlices)
			}
			first, last := played[0], played[len(played)-1]
			if first.Seq != kf || !first.PlayAt.Equal(arrive.Add(tt.wait)) {
				t.Fatalf("start slice %d due %v, want slice %d due %v (arrival + %v)", first.Seq, first.PlayAt.Sub(epoch), kf, arrive.Add(tt.wait).Sub(epoch), tt.wait)
			}
			if !first.Done.Equal(arrive) {
				t.Fatalf("start slice done %v, want %v", first.Done.Sub(epoch), arrive.Sub(epoch))
			}
			if lag := last.PlayAt.Sub(last.Capture); lag < delay+transit-time.Millisecond || lag > delay+transit+time.Millisecond {
				t.Fatalf("slice %d played %v behind capture, want converged to %v", last.Seq, lag, delay+transit)
			}
			lo := time.Duration(float64(DefaultSliceDuration) * (1 - DefaultCatchUp))
			hi := time.Duration(float64(DefaultSliceDuration) * (1 + DefaultCatchUp))
			for i := 1; i < len(played); i++ {
				if gap := played[i].PlayAt.Sub(played[i-1].PlayAt); gap < lo-time.Millisecond || gap > hi+time.Millisecond {
					t.Fatalf("slices %d and %d played %v apart, want %v..%v", played[i-1].Seq, played[i].Seq, gap, lo, hi)
				}
			}
		})
	}
}

// ChildStripes tells a repairing driver which stripes a node feeds whom:
// taking a child of the stripe as the new parent would close a cycle.
func TestChildStripes(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := mustNew(t, testConfig(st))
	if err := n.AddChild(epoch, "C", wire.Hello{Channel: testChannel, Stripes: 0b0110}); err != nil {
		t.Fatal(err)
	}
	if got := n.ChildStripes("C"); got != 0b0110 {
		t.Fatalf("ChildStripes(C) = %04b, want 0110", got)
	}
	if got := n.ChildStripes("D"); got != 0 {
		t.Fatalf("ChildStripes of a stranger = %04b, want 0", got)
	}
	n.RemoveChild("C")
	if got := n.ChildStripes("C"); got != 0 {
		t.Fatalf("ChildStripes of a removed child = %04b, want 0", got)
	}
}

// Two peers that lost their parents at once may take each other as
// backups before either hello arrived: the one that hears its own parent
// subscribe to the same stripe refuses it, so no cycle forms.
func TestAddChildRefusesItsParent(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := mustNew(t, testConfig(st))
	n.SetParent(epoch, 1, "B")
	if err := n.AddChild(epoch, "B", wire.Hello{Channel: testChannel, Stripes: 0b0010}); !errors.Is(err, ErrCycle) {
		t.Fatalf("AddChild of its own parent on its stripe: %v, want ErrCycle", err)
	}
	if got := n.ChildStripes("B"); got != 0 {
		t.Fatalf("the refused parent became a child on %04b", got)
	}
	// Its parent may take the other stripes from it.
	if err := n.AddChild(epoch, "B", wire.Hello{Channel: testChannel, Stripes: 0b0101}); err != nil {
		t.Fatalf("AddChild of its parent on other stripes: %v", err)
	}
}

// firstKeyframe returns the first keyframe slice after slice 0 of the
// test stream.
func firstKeyframe(t *testing.T, st *swarmtest.Stream) uint64 {
	t.Helper()
	for seq := uint64(1); seq < 40; seq++ {
		if st.Keyframe(seq) {
			return seq
		}
	}
	t.Fatal("the test stream has no keyframe in its first 40 slices")
	return 0
}

// TestFetchLaterWhilePushed: a chunk whose stripe's parent is still
// pushing that stripe in order (it pushed an earlier chunk of it within
// the last two slices) is fetched at PushedMargin rather than
// FetchMargin while the stripe keeps flowing — it is most likely queued
// at the parent — and as soon as the stripe stops; one the parent
// skipped (it pushed a later one), or whose stripe went quiet before
// the margin, at FetchMargin.
func TestFetchLaterWhilePushed(t *testing.T) {
	const ms = time.Millisecond
	flow := 2 * DefaultSliceDuration // a stripe flows this long after a push
	for _, tc := range []struct {
		name   string
		pushes map[uint64]time.Duration // stripe-2 chunk P pushes late → when, relative to (8, 2)'s margin
		fetch  time.Duration            // when (8, 2) is fetched, relative to its margin
	}{
		{"flowing", map[uint64]time.Duration{6: -50 * ms, 7: 50 * ms}, DefaultFetchMargin - DefaultPushedMargin},
		{"stops", map[uint64]time.Duration{7: -110 * ms}, -110*ms + flow + ms}, // the first step after it stopped
		{"skipped", map[uint64]time.Duration{7: -110 * ms, 9: -100 * ms}, 0},
		{"quiet", map[uint64]time.Duration{7: -300 * ms}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := swarmtest.NewStream(testChannel, 4, epoch)
			n := directNode(t, st, nil)
			// Slices 0..9 on time, except stripe 2 of 6 to 9.
			for seq := uint64(0); seq < 10; seq++ {
				if seq >= 6 {
					feed(t, n, st, st.Capture(seq), "P", seq, 0, 1, 3)
				} else {
					feed(t, n, st, st.Capture(seq), "P", seq)
				}
			}
			due, ok := n.Due(8)
			if !ok {
				t.Fatal("slice 8 has no due time")
			}
			margin := due.Add(-DefaultFetchMargin)
			fetched := func() bool {
				for _, id := range n.Ready().Fetches {
					if id == (wire.ID{Seq: 8, Stripe: 2}) {
						return true
					}
				}
				return false
			}
			// Time runs in steps of a millisecond from well before the
			// margin; P's late pushes come at their times.
			for now := margin.Add(-400 * ms); !now.After(due); now = now.Add(ms) {
				for seq, at := range tc.pushes {
					if margin.Add(at).Equal(now) {
						feed(t, n, st, now, "P", seq, 2)
					}
				}
				n.Tick(now)
				if fetched() {
					if got := now.Sub(margin); got != tc.fetch {
						t.Fatalf("(8, 2) fetched %v after its margin, want %v", got, tc.fetch)
					}
					return
				}
			}
			t.Fatal("(8, 2) never fetched")
		})
	}
}

// The stripes one parent feeds share a group (its first stripe); a
// stripe without a parent has none, also after its parent is lost.
func TestParentGroups(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := mustNew(t, testConfig(st))
	groups := func() []uint8 {
		var g []uint8
		for s := range n.stripes {
			g = append(g, n.stripes[s].group)
		}
		return g
	}
	if g := groups(); !slices.Equal(g, []uint8{noGroup, noGroup, noGroup, noGroup}) {
		t.Fatalf("new node's groups %v", g)
	}
	n.SetParent(epoch, 1, "b")
	n.SetParent(epoch, 2, "a")
	n.SetParent(epoch, 3, "b")
	if g := groups(); !slices.Equal(g, []uint8{noGroup, 1, 2, 1}) {
		t.Fatalf("groups %v, want [none 1 2 1]", g)
	}
	n.SetParent(epoch, 0, "a")
	if g := groups(); !slices.Equal(g, []uint8{0, 1, 0, 1}) {
		t.Fatalf("groups %v, want [0 1 0 1]", g)
	}
	if nw, got := n.groupsNewest(); got != [wire.MaxStripes]bool{} || nw != [wire.MaxStripes]uint64{} {
		t.Fatalf("groupsNewest before anything arrived: %v %v", nw, got)
	}
	n.stripes[1].seen, n.stripes[1].newest = true, 7
	n.stripes[3].seen, n.stripes[3].newest = true, 9
	n.stripes[2].seen, n.stripes[2].newest = true, 4
	if nw, got := n.groupsNewest(); !got[0] || nw[0] != 4 || !got[1] || nw[1] != 9 || got[2] || got[3] {
		t.Fatalf("groupsNewest %v %v, want group 0 at 4, group 1 at 9, no others", nw[:4], got[:4])
	}
	for s := 1; s < 4; s++ {
		n.stripes[s].seen, n.stripes[s].newest = false, 0
	}
	n.loseParent(at(epoch), "a")
	if g := groups(); !slices.Equal(g, []uint8{noGroup, 1, noGroup, 1}) {
		t.Fatalf("groups after losing a: %v", g)
	}
	n.SetParent(epoch, -1, "c")
	if g := groups(); !slices.Equal(g, []uint8{0, 0, 0, 0}) {
		t.Fatalf("groups with one parent: %v", g)
	}
}

// A window that moves on (appends at its end, evictions at its front)
// keeps its contents in order and settles in one backing array: it
// moves back to the array's start instead of growing without end.
func TestWindowInsertMovesBack(t *testing.T) {
	var w, base []int
	for v := range 100 {
		w, base = windowInsert(w, base, len(w), v)
	}
	var settled *int
	for v := 100; v < 5000; v++ {
		w, base = windowInsert(w, base, len(w), v)
		w = w[1:]
		if len(w) != 100 || w[0] != v-99 || w[99] != v {
			t.Fatalf("after %d: window of %d from %d to %d", v, len(w), w[0], w[len(w)-1])
		}
		if v == 1000 {
			settled = &base[:1][0]
		}
		if v > 1000 && &base[:1][0] != settled {
			t.Fatalf("after %d: a new backing array (cap %d)", v, cap(base))
		}
	}
	if cap(base) > 400 {
		t.Fatalf("backing array of %d for a window of 100", cap(base))
	}
	// An insert in the middle of a window at the end of its array.
	w = w[:len(w):len(w)]
	w, base = windowInsert(w, base, 1, -1)
	if len(w) != 101 || w[0] != 4900 || w[1] != -1 || w[2] != 4901 || w[100] != 4999 {
		t.Fatalf("middle insert: %v ... %v", w[:3], w[len(w)-1])
	}
}

// playKey.same and scanKey.same compare every field: a key that differs
// in any one is not the same, and a field added to a key must be added
// to its same (the field counts below fail until it is).
func TestKeysSame(t *testing.T) {
	if n := reflect.TypeFor[playKey]().NumField(); n != 7 {
		t.Fatalf("playKey has %d fields: compare the new ones in playKey.same", n)
	}
	if n := reflect.TypeFor[scanKey]().NumField(); n != 7 {
		t.Fatalf("scanKey has %d fields: compare the new ones in scanKey.same", n)
	}
	p := playKey{true, 1, 2, 3, 4, true, true}
	for i, q := range []playKey{
		{false, 1, 2, 3, 4, true, true}, {true, 9, 2, 3, 4, true, true}, {true, 1, 9, 3, 4, true, true},
		{true, 1, 2, 9, 4, true, true}, {true, 1, 2, 3, 9, true, true}, {true, 1, 2, 3, 4, false, true},
		{true, 1, 2, 3, 4, true, false},
	} {
		if p.same(&q) || q.same(&p) {
			t.Errorf("playKey %d: %+v same as %+v", i, q, p)
		}
	}
	if q := p; !p.same(&q) {
		t.Errorf("playKey not the same as its copy")
	}
	s := scanKey{true, 1, 2, 3, true, true, 4}
	for i, q := range []scanKey{
		{false, 1, 2, 3, true, true, 4}, {true, 9, 2, 3, true, true, 4}, {true, 1, 9, 3, true, true, 4},
		{true, 1, 2, 9, true, true, 4}, {true, 1, 2, 3, false, true, 4}, {true, 1, 2, 3, true, false, 4},
		{true, 1, 2, 3, true, true, 9},
	} {
		if s.same(&q) || q.same(&s) {
			t.Errorf("scanKey %d: %+v same as %+v", i, q, s)
		}
	}
	if q := s; !s.same(&q) {
		t.Errorf("scanKey not the same as its copy")
	}
}

// Lookups by tag still compare whole IDs: two partners whose IDs share
// their last 8 bytes (and so their tag) are told apart, and an ID of
// fewer than 8 bytes has a tag too.
func TestIDTagLookups(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	n := mustNew(t, testConfig(st))
	a, b := NodeID("aaaa-12345678"), NodeID("bbbb-12345678")
	if idTag(a) != idTag(b) || idTag("x") == idTag("y") || idTag("") != 0 {
		t.Fatalf("tags: %x %x, short %x %x", idTag(a), idTag(b), idTag("x"), idTag("y"))
	}
	n.SetPartners(epoch, []NodeID{a, b, "c"})
	for i, id := range []NodeID{a, b, "c"} {
		if got := n.mesh.partnerIndex(id); got != i {
			t.Fatalf("partnerIndex(%q) = %d, want %d", id, got, i)
		}
	}
	if got := n.mesh.partnerIndex("cccc-12345678"); got != -1 {
		t.Fatalf("partnerIndex of a stranger with the same tag = %d", got)
	}
	n.SetParent(epoch, 0, a)
	n.SetParent(epoch, 1, b)
	n.ParentUp(epoch, a)
	n.ParentUp(epoch, b)
	n.stripes[0].up, n.stripes[1].up = false, false
	n.heard(at(epoch.Add(time.Second)), b)
	if n.stripes[0].up || !n.stripes[1].up {
		t.Fatalf("a chunk from b brought up stripes 0 %v and 1 %v, want only 1", n.stripes[0].up, n.stripes[1].up)
	}
}
