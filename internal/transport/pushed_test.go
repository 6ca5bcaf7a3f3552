package transport

import (
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// TestFetchWaitsForFlowingStripe: over real QUIC, a child whose parent
// pushes one stripe steadily late — each chunk after the child's
// FetchMargin but before its PushedMargin, one per slice — does not ask
// the origin for that stripe's chunks while the stripe flows
// (swarm.Config.PushedMargin); with PushedMargin at FetchMargin it asks
// for nearly all of them. The child plays every slice either way.
func TestFetchWaitsForFlowingStripe(t *testing.T) {
	// startNode's peers play 800 ms behind arrival and fetch 400 ms
	// before a slice is due; the default PushedMargin is 200 ms. Stripe
	// 1 comes 500 ms after capture: 100 ms either side of the two.
	const late = 500 * time.Millisecond
	const last = 25
	for _, tc := range []struct {
		name   string
		pushed time.Duration
		few    bool // fetches are few (else most of stripe 1's)
	}{
		{"pushed margin", 0, true},
		{"at fetch margin", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream(t, 2)
			s.slice = 100 * time.Millisecond // the flow is judged over two slices
			origin := startNode(t, s, nodeOpts{source: true, maxChildren: 4})
			parent := startNode(t, s, nodeOpts{source: true, maxChildren: 4})
			child := startNode(t, s, nodeOpts{maxChildren: 4, origin: origin, pushedMargin: tc.pushed})
			child.drv.SetParent(parent.peer())
			waitChildren(t, parent, child)

			// The origin gets every chunk at capture; the parent stripe 0
			// at capture and stripe 1 late. The stream stays live a
			// second past slice last, which is due 800 ms after capture,
			// and the child's fetches are counted before it ends (after
			// its end the child asks for the slices it predicts).
			lag := int(late / s.slice)
			total := uint64(last + lag + 5)
			tick := time.NewTicker(s.slice)
			defer tick.Stop()
			var stripe1 []*wire.Chunk
			var stripe1Raw [][]byte
			for seq := uint64(1); seq <= total; seq++ {
				cs, raws := s.chunks(t, seq, time.Now(), s.key)
				for i := range cs {
					origin.drv.Publish(cs[i], raws[i])
				}
				parent.drv.Publish(cs[0], raws[0])
				stripe1, stripe1Raw = append(stripe1, cs[1]), append(stripe1Raw, raws[1])
				if i := int(seq) - 1 - lag; i >= 0 {
					parent.drv.Publish(stripe1[i], stripe1Raw[i])
				}
				<-tick.C
			}
			st := child.drv.Stats()
			child.play.waitFor(t, last, 5*time.Second)
			child.play.check(t, s, 1, last)
			if st.LostSlices != 0 {
				t.Fatalf("child lost %d slices", st.LostSlices)
			}
			n := st.Fetches
			if tc.few && n > total/10 {
				t.Fatalf("child fetched %d chunks of %d slices from the origin while its parent pushed them in time", n, total)
			}
			if !tc.few && n < total/2 {
				t.Fatalf("child fetched only %d chunks of %d slices at FetchMargin (want most of stripe 1's)", n, total)
			}
			t.Logf("fetches %d, origin bytes in %d", st.Fetches, st.OriginBytesIn)
		})
	}
}
