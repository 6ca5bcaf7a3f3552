package swarm

import (
	"testing"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
)

// StripeNewest reports, per stripe, the newest slice received and its
// capture; nothing before a chunk of the stripe arrived.
func TestStripeNewest(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 2, epoch)
	n := mustNew(t, testConfig(st))
	if _, _, ok := n.StripeNewest(0); ok {
		t.Fatal("a newest slice before any chunk")
	}
	for seq := uint64(1); seq <= 5; seq++ {
		feed(t, n, st, epoch.Add(st.Capture(seq).Sub(epoch)), "p", seq, 0)
	}
	seq, capture, ok := n.StripeNewest(0)
	if !ok || seq != 5 || !capture.Equal(st.Capture(5)) {
		t.Fatalf("stripe 0 newest %d at %v, %v; want 5 at %v", seq, capture, ok, st.Capture(5))
	}
	if _, _, ok := n.StripeNewest(1); ok {
		t.Fatal("stripe 1 has a newest slice without chunks")
	}
	if _, _, ok := n.StripeNewest(7); ok {
		t.Fatal("a stripe out of range has a newest slice")
	}
}
