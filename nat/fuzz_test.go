package nat_test

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/swarmtv/swarmtv/nat"
)

// Whatever arrives on the shared socket, Receive neither panics nor
// claims a packet that answers no outstanding request.
func FuzzClientReceive(f *testing.F) {
	m, _ := stun.Build(stun.TransactionID, stun.BindingSuccess, &stun.XORMappedAddress{IP: []byte{1, 2, 3, 4}, Port: 5}, stun.Fingerprint)
	f.Add(m.Raw)
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42})
	f.Add([]byte{})
	c := nat.NewClient(func([]byte, netip.AddrPort) error { return nil })
	from := netip.MustParseAddrPort("192.0.2.1:3478")
	f.Fuzz(func(t *testing.T, b []byte) {
		if c.Receive(b, from) {
			t.Fatalf("claimed %x with nothing outstanding", b)
		}
	})
}
