package wire

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/overlay"
)

func overlaySamples() []overlay.Message {
	a := overlay.Peer{ID: 0x0102030405060708, Addr: "0123456789abcdef0123456789abcdef@127.0.0.1:4000"}
	b := overlay.Peer{ID: 0xfffffffffffffff0, Addr: "fedcba9876543210fedcba9876543210@[::1]:4001"}
	return []overlay.Message{
		&overlay.FindSuccessor{Req: 7, Key: 0xdeadbeef, Origin: a, Kind: overlay.KindJoin, Hops: 3},
		&overlay.FindSuccessor{Req: 1 << 40, Key: 0, Origin: b, Kind: overlay.KindPartner},
		&overlay.Found{Req: 9, Key: 42, Kind: overlay.KindLookup, Pred: a, Succ: b, Hops: 5, Succs: []overlay.Peer{a, b}},
		&overlay.Found{Req: 9, Key: 42, Kind: overlay.KindMerge, Pred: a, Succ: b},
		&overlay.GetPred{Req: 300},
		&overlay.PredReply{Req: 3, Pred: a, HasPred: true, Succs: []overlay.Peer{b}},
		&overlay.PredReply{Req: 4},
		&overlay.Notify{},
		&overlay.SuccHint{Cand: b},
		&overlay.Ping{Req: 11},
		&overlay.Pong{Req: 11},
		&overlay.MergeHint{Contact: a},
		&overlay.Gossip{Epoch: 12, Sum: [3]float64{1000.5, 2e6, 0.99}, Weight: 0.25},
		&overlay.Gossip{Epoch: 13, Weight: 0.5, Offers: []overlay.Offer{
			{Peer: a, Stripe: 2, Depth: 1, Free: 3, Age: 1500 * time.Millisecond},
			{Peer: b, Stripe: 0, Depth: 65535, Free: 0},
		}},
		&overlay.Gossip{Epoch: 14, Weight: 0.5, Offers: []overlay.Offer{
			{Peer: a, Stripe: 2, Depth: 1, Free: 3, Age: 1500 * time.Millisecond, Newest: 1 << 40},
			{Peer: b, Stripe: 0, Depth: 3, Free: 0}, // newest unknown
		}},
	}
}

// An offer's newest slice travels in type 12 (gossip-newest); offers
// without one go as type 11, which a build older than type 12 decodes,
// and a type-11 frame of such a build decodes with newest 0 (unknown).
func TestOverlayOffersNewestVersions(t *testing.T) {
	a := overlay.Peer{ID: 1, Addr: "a@127.0.0.1:1"}
	with := &overlay.Gossip{Epoch: 1, Weight: 1, Offers: []overlay.Offer{{Peer: a, Stripe: 1, Depth: 2, Free: 1, Newest: 300}}}
	without := &overlay.Gossip{Epoch: 1, Weight: 1, Offers: []overlay.Offer{{Peer: a, Stripe: 1, Depth: 2, Free: 1}}}
	bw, err := AppendOverlay(nil, with)
	if err != nil || bw[1] != ovGossipNewest {
		t.Fatalf("with newest: type %d, %v; want %d", bw[1], err, ovGossipNewest)
	}
	bo, err := AppendOverlay(nil, without)
	if err != nil || bo[1] != ovGossipOffers {
		t.Fatalf("without newest: type %d, %v; want %d", bo[1], err, ovGossipOffers)
	}
	// The older build's encoding of the same offer, written out.
	old := append([]byte{Version, ovGossipOffers}, bo[2:]...)
	m, err := ParseOverlay(old)
	if err != nil || !reflect.DeepEqual(m, without) {
		t.Fatalf("type 11: %+v, %v", m, err)
	}
	// Type 12 is type 11 with one uvarint per offer.
	if len(bw) != len(bo)+2 || !bytes.Equal(bw[2:len(bw)-2], bo[2:]) {
		t.Fatalf("type 12 %x is not type 11 %x plus newest", bw, bo)
	}
	// An older build's decoder (type 11 only) cannot take type 12: the
	// trailing newest makes it refuse, rather than misread an offer.
	asOld := append([]byte{Version, ovGossipOffers}, bw[2:]...)
	if _, err := ParseOverlay(asOld); !errors.Is(err, ErrMalformed) {
		t.Fatalf("type 12 read as 11: %v", err)
	}
}

func TestOverlayRoundTrip(t *testing.T) {
	for _, m := range overlaySamples() {
		b, err := AppendOverlay(nil, m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		got, err := ParseOverlay(b)
		if err != nil {
			t.Fatalf("%T: parse: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %T: got %+v, want %+v", m, got, m)
		}
		// Through a frame too.
		var buf bytes.Buffer
		if err := WriteFrame(&buf, FrameOverlay, b); err != nil {
			t.Fatal(err)
		}
		f, err := ReadFrame(bufio.NewReader(&buf), MaxOverlayLen)
		if err != nil || f.Type != FrameOverlay || !bytes.Equal(f.Payload, b) {
			t.Fatalf("frame: %v %v", f.Type, err)
		}
	}
}

func TestOverlayHelloRoundTrip(t *testing.T) {
	h := OverlayHello{Channel: "demo", From: overlay.Peer{ID: 5, Addr: "x@127.0.0.1:1"}}
	got, err := ParseOverlayHello(h.Append(nil))
	if err != nil || got != h {
		t.Fatalf("got %+v, %v", got, err)
	}
	if FrameOverlayHello.String() != "overlay-hello" || FrameOverlay.String() != "overlay" {
		t.Error("frame names")
	}
}

func TestOverlayEncodeRefuses(t *testing.T) {
	long := overlay.Peer{ID: 1, Addr: strings.Repeat("a", MaxOverlayAddrLen+1)}
	many := make([]overlay.Peer, MaxOverlayPeers+1)
	for _, m := range []overlay.Message{
		&overlay.SuccHint{Cand: long},
		&overlay.PredReply{Succs: many},
		&overlay.FindSuccessor{Kind: overlay.Kind(200)},
		&overlay.FindSuccessor{Hops: MaxOverlayHops + 1},
		&overlay.Gossip{Weight: math.Inf(1)},
		&overlay.Gossip{Weight: 1, Offers: make([]overlay.Offer, MaxOverlayOffers+1)},
		&overlay.Gossip{Weight: 1, Offers: []overlay.Offer{{Peer: long}}},
		&overlay.Gossip{Weight: 1, Offers: []overlay.Offer{{Age: -time.Second}}},
		&overlay.Gossip{Weight: 1, Offers: []overlay.Offer{{Age: 2 * time.Hour}}},
		nil,
	} {
		b, err := AppendOverlay([]byte{9}, m)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%T: err %v, want ErrMalformed", m, err)
		}
		if !bytes.Equal(b, []byte{9}) {
			t.Errorf("%T: refused message left bytes behind: %x", m, b)
		}
	}
}

func TestParseOverlayErrors(t *testing.T) {
	good, _ := AppendOverlay(nil, &overlay.Found{Req: 1, Pred: overlay.Peer{ID: 1}, Succ: overlay.Peer{ID: 2}})
	gossip, _ := AppendOverlay(nil, &overlay.Gossip{Epoch: 1, Weight: 1})
	nan := bytes.Clone(gossip)
	copy(nan[len(nan)-8:], []byte{0x7f, 0xf8, 0, 0, 0, 0, 0, 1})
	cases := map[string][]byte{
		"empty":          {},
		"version":        {2, ovNotify},
		"unknown type":   {Version, 99},
		"no type":        {Version},
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"bad kind":       {Version, ovFindSuccessor, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0},
		"pred flags":     {Version, ovPredReply, 1, 2, 0},
		"non-minimal":    {Version, ovPing, 0x80, 0x00},
		"nan gossip":     nan,
		"too many succs": append([]byte{Version, ovPredReply, 1, 0}, 65),
		"no offers":      append(append([]byte{Version, ovGossipOffers}, gossip[2:]...), 0),
		"offer depth":    append(append([]byte{Version, ovGossipOffers}, gossip[2:]...), 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x04, 0, 0),
		"no newest":      append(append([]byte{Version, ovGossipNewest}, gossip[2:]...), 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0),
		"newest all 0":   append(append([]byte{Version, ovGossipNewest}, gossip[2:]...), 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0),
		"newest minimal": append(append([]byte{Version, ovGossipNewest}, gossip[2:]...), 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x80, 0x00),
	}
	for name, b := range cases {
		if _, err := ParseOverlay(b); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"no channel": OverlayHello{From: overlay.Peer{ID: 1}}.Append(nil),
		"version":    append([]byte{3}, OverlayHello{Channel: "c"}.Append(nil)[1:]...),
		"trailing":   append(OverlayHello{Channel: "c"}.Append(nil), 1),
	} {
		if _, err := ParseOverlayHello(b); err == nil {
			t.Errorf("hello %s: parsed", name)
		}
	}
}

func FuzzParseOverlay(f *testing.F) {
	for _, m := range overlaySamples() {
		b, _ := AppendOverlay(nil, m)
		f.Add(b)
	}
	f.Add([]byte{Version, ovPredReply, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseOverlay(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same bytes.
		again, err := AppendOverlay(nil, m)
		if err != nil {
			t.Fatalf("parsed %T does not re-encode: %v", m, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding of %T changed the bytes", m)
		}
	})
}

func FuzzParseOverlayHello(f *testing.F) {
	f.Add(OverlayHello{Channel: "demo", From: overlay.Peer{ID: 5, Addr: "x@127.0.0.1:1"}}.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseOverlayHello(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.Append(nil), b) {
			t.Fatal("overlay hello re-encoding differs")
		}
	})
}

func TestOverlayInfo(t *testing.T) {
	ch, err := ParseInfoRequest(AppendInfoRequest(nil, "demo"))
	if err != nil || ch != "demo" {
		t.Fatalf("request: %q %v", ch, err)
	}
	b, err := AppendInfo(nil, []byte(`{"name":"demo"}`))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseInfo(b)
	if err != nil || string(info) != `{"name":"demo"}` {
		t.Fatalf("info: %q %v", info, err)
	}
	if _, err := AppendInfo(nil, make([]byte, MaxOverlayInfoLen+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized info: %v", err)
	}
	for name, p := range map[string][]byte{
		"empty channel": AppendInfoRequest(nil, ""),
		"version":       {9, 1, 'x'},
		"trailing":      append(AppendInfoRequest(nil, "x"), 0),
	} {
		if _, err := ParseInfoRequest(p); err == nil {
			t.Errorf("request %s: parsed", name)
		}
	}
	if _, err := ParseInfo(append(b, 1)); err == nil {
		t.Error("info with trailing bytes parsed")
	}
	if FrameOverlayInfo.String() != "overlay-info" {
		t.Error("frame name")
	}
}

func FuzzParseInfo(f *testing.F) {
	b, _ := AppendInfo(nil, []byte(`{"name":"demo"}`))
	f.Add(b)
	f.Add(AppendInfoRequest(nil, "demo"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ch, err := ParseInfoRequest(b); err == nil && !bytes.Equal(AppendInfoRequest(nil, ch), b) {
			t.Fatal("info request re-encoding differs")
		}
		if info, err := ParseInfo(b); err == nil {
			again, err := AppendInfo(nil, info)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatal("info re-encoding differs")
			}
		}
	})
}
