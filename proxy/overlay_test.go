package proxy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/swarmtv/swarmtv/tracker"
)

// A channel description from a bootstrap peer is checked like the
// tracker's: a bad one is refused with the reason.
func TestParseChannelInfo(t *testing.T) {
	good := tracker.ChannelInfo{Name: "demo", SDP: "v=0\r\n", PublicKey: "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqo=",
		Origin: tracker.NodeInfo{ID: "0123456789abcdef0123456789abcdef", Addr: "127.0.0.1:1"}, Stripes: 4, SliceMS: 100}
	good.PublicKey = "GrO0GWxJV0mZSPFXYG9jR5G8n1FLxyuCp2OT2zYfwaU=" // 32 bytes
	enc := func(c tracker.ChannelInfo) []byte { b, _ := json.Marshal(c); return b }
	if _, err := parseChannelInfo(enc(good), "demo"); err != nil {
		t.Fatalf("good description refused: %v", err)
	}
	bad := map[string][]byte{
		"other channel": enc(good),
		"not json":      []byte("{"),
		"unknown field": []byte(`{"name":"demo","evil":1}`),
	}
	mod := func(f func(*tracker.ChannelInfo)) []byte { c := good; f(&c); return enc(c) }
	bad["no key"] = mod(func(c *tracker.ChannelInfo) { c.PublicKey = "" })
	bad["stripes"] = mod(func(c *tracker.ChannelInfo) { c.Stripes = 0 })
	bad["slice"] = mod(func(c *tracker.ChannelInfo) { c.SliceMS = -1 })
	bad["origin"] = mod(func(c *tracker.ChannelInfo) { c.Origin.ID = "x" })
	for name, b := range bad {
		ch := "demo"
		if name == "other channel" {
			ch = "live"
		}
		if _, err := parseChannelInfo(b, ch); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBootstrapFlagChecked(t *testing.T) {
	cfg := PeerConfig{Channel: "demo", Tracker: "http://127.0.0.1:1", Bootstrap: "nohostport"}
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Fatalf("bad --bootstrap: %v", err)
	}
}
