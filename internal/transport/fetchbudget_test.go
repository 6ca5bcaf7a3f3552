package transport

import (
	"bufio"
	"context"
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// The budget books each answer's upload time after the ones before and
// refuses what would wait beyond FetchBacklog; time frees it again.
func TestFetchBudgetBook(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := fetchBudget{bps: 8000} // 1,000 bytes/s: 100 bytes take 100 ms
	var got []bool
	for range 5 {
		got = append(got, b.book(t0, 100))
	}
	// Starts at 0 and 100 ms are within 150 ms; 200 ms is not.
	want := []bool{true, true, false, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("bookings at once: %v, want %v", got, want)
		}
	}
	if !b.book(t0.Add(100*time.Millisecond), 100) {
		t.Fatal("refused 100 ms later, when the queue starts 100 ms ahead")
	}
	if !b.book(t0.Add(time.Hour), 100_000) {
		t.Fatal("an idle budget refused an answer (a big one waits for nothing)")
	}
	free := fetchBudget{}
	for range 1000 {
		if !free.book(t0, 1<<20) {
			t.Fatal("an unlimited budget refused")
		}
	}
}

// An origin with a fetch budget answers a burst of fetches with the
// chunks its budget allows and "missing" for the rest, at once.
func TestFetchBudgetRefusesBurst(t *testing.T) {
	s := newStream(t, 1)
	cs, raws := s.chunks(t, 1, time.Now(), s.key)
	// Each answer takes 100 ms of the budget.
	origin := startNode(t, s, nodeOpts{source: true, fetchBPS: int64(len(raws[0])) * 8 * 10})
	origin.drv.Publish(cs[0], raws[0])
	origin.drv.Stats() // a round trip: the chunk is held

	ep := newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := ep.Dial(ctx, origin.ep.Addr().String(), origin.ep.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseWithError(CodeNormal, "")
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	req := hello(0)
	for range n {
		req = wire.AppendFrame(req, wire.FrameRequest, wire.ID{Seq: 1, Stripe: 0}.Append(nil))
	}
	if _, err := st.Write(req); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(st)
	served, missing := 0, 0
	for i := range n {
		f, err := wire.ReadFrame(br, 0)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		switch f.Type {
		case wire.FrameChunk:
			if missing > 0 {
				t.Fatalf("answer %d: a chunk after a refusal within one burst", i)
			}
			served++
		case wire.FrameMissing:
			missing++
		default:
			t.Fatalf("answer %d: %v frame", i, f.Type)
		}
	}
	// 2 answers fit in 150 ms of backlog when the burst is served at
	// once; a slow machine frees a little budget meanwhile.
	if served < 2 || served > 4 || missing != n-served {
		t.Fatalf("served %d, missing %d of %d; want 2..4 served, the rest missing", served, missing, n)
	}
	if r := origin.drv.FetchesRefused(); r != uint64(missing) {
		t.Fatalf("FetchesRefused %d, want %d", r, missing)
	}
	if b := origin.drv.FetchBytesServed(); b != uint64(served*len(raws[0])) {
		t.Fatalf("FetchBytesServed %d, want %d", b, served*len(raws[0]))
	}
}
