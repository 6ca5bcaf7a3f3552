package transport

import (
	"bufio"
	"context"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/wire"
)

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

// fetchClient is a raw fetch stream to an origin: requests go out as
// written, answers are read on their own goroutine and timed.
type fetchClient struct {
	st      *quic.Stream
	answers chan fetchAnswerAt
}

type fetchAnswerAt struct {
	typ wire.FrameType
	id  wire.ID
	at  time.Time
}

func dialFetch(t *testing.T, origin *testNode) *fetchClient {
	t.Helper()
	ep := newEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	c, err := ep.Dial(ctx, origin.ep.Addr().String(), origin.ep.ID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseWithError(CodeNormal, "") })
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(hello(0)); err != nil {
		t.Fatal(err)
	}
	fc := &fetchClient{st: st, answers: make(chan fetchAnswerAt, 16)}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	done := make(chan struct{})
	t.Cleanup(func() { st.CancelRead(0); <-done })
	go func() {
		defer close(done)
		defer close(fc.answers)
		br := bufio.NewReader(st)
		for {
			f, err := wire.ReadFrame(br, 0)
			if err != nil {
				return
			}
			a := fetchAnswerAt{typ: f.Type, at: time.Now()}
			switch f.Type {
			case wire.FrameChunk:
				a.id, err = wire.PeekID(f.Payload)
			case wire.FrameMissing:
				a.id, err = wire.ParseID(f.Payload)
			}
			if err != nil {
				return
			}
			fc.answers <- a
		}
	}()
	return fc
}

func (fc *fetchClient) ask(t *testing.T, reqs ...wire.Request) {
	t.Helper()
	var b []byte
	for _, r := range reqs {
		b = wire.AppendFrame(b, wire.FrameRequest, r.Append(nil))
	}
	if _, err := fc.st.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (fc *fetchClient) next(t *testing.T) fetchAnswerAt {
	t.Helper()
	a, ok := <-fc.answers
	if !ok {
		t.Fatal("fetch stream ended early")
	}
	return a
}

// Under a tight fetch budget the origin serves the nearer deadline
// first: a child that asks later, for a chunk due sooner, gets it before
// the chunks another child asked for earlier but needs later; a request
// that cannot be sent before its deadline is refused at once, out of
// order, and named by its ID; a request canceled while it waits is
// answered Missing and costs the budget nothing
// (TestFetchBudgetRefusesBurst keeps the older rule for requests without
// a deadline).
func TestFetchNearestDeadlineFirst(t *testing.T) {
	s := newStream(t, 1)
	var raws [][]byte
	origin := (*testNode)(nil)
	now := time.Now()
	for seq := uint64(1); seq <= 6; seq++ {
		cs, r := s.chunks(t, seq, now, s.key)
		if origin == nil {
			// Each answer takes 300 ms of the budget.
			origin = startNode(t, s, nodeOpts{source: true, fetchBPS: int64(len(r[0])) * 8 * 10 / 3})
		}
		origin.drv.Publish(cs[0], r[0])
		raws = append(raws, r[0])
	}
	origin.drv.Stats() // a round trip: the chunks are held

	far, near := dialFetch(t, origin), dialFetch(t, origin)
	id := func(seq uint64) wire.ID { return wire.ID{Seq: seq, Stripe: 0} }
	// The far child asks for four chunks due in 5 s: the first leaves at
	// once and holds the budget for 300 ms.
	far.ask(t, wire.Request{ID: id(1), Due: 5 * time.Second}, wire.Request{ID: id(2), Due: 5 * time.Second}, wire.Request{ID: id(3), Due: 5 * time.Second},
		wire.Request{ID: id(6), Due: 5 * time.Second})
	first := far.next(t)
	if first.typ != wire.FrameChunk || first.id != id(1) {
		t.Fatalf("first answer %v %v, want chunk 1", first.typ, first.id)
	}
	// Meanwhile the near child asks for one due in 2 s, and one due in
	// 100 ms, which the budget cannot send in time.
	asked := time.Now()
	near.ask(t, wire.Request{ID: id(4), Due: 2 * time.Second}, wire.Request{ID: id(5), Due: 100 * time.Millisecond})
	refused := near.next(t)
	if refused.typ != wire.FrameMissing || refused.id != id(5) {
		t.Fatalf("near child's first answer %v %v, want missing 5 (refused at once)", refused.typ, refused.id)
	}
	if took := refused.at.Sub(asked); took > 250*time.Millisecond {
		t.Errorf("refusal took %v: not at once", took)
	}
	// The far child got chunk 6 elsewhere meanwhile: it cancels it.
	if _, err := far.st.Write(wire.AppendFrame(nil, wire.FrameCancel, id(6).Append(nil))); err != nil {
		t.Fatal(err)
	}
	canceled := far.next(t)
	if canceled.typ != wire.FrameMissing || canceled.id != id(6) {
		t.Fatalf("far child's answer to its cancel %v %v, want missing 6 at once", canceled.typ, canceled.id)
	}
	got := near.next(t)
	if got.typ != wire.FrameChunk || got.id != id(4) {
		t.Fatalf("near child's second answer %v %v, want chunk 4", got.typ, got.id)
	}
	second, third := far.next(t), far.next(t)
	if second.typ != wire.FrameChunk || third.typ != wire.FrameChunk || second.id != id(2) || third.id != id(3) {
		t.Fatalf("far child's answers %v %v, %v %v, want chunks 2 and 3", second.typ, second.id, third.typ, third.id)
	}
	// Nearest deadline first: chunk 4 left before chunk 2, though asked
	// after it, and the budget paced them one after another.
	if !got.at.Before(second.at) {
		t.Fatalf("chunk 4 (due in 2 s) arrived %v after chunk 2 (due in 5 s)", got.at.Sub(second.at))
	}
	if gap := third.at.Sub(got.at); gap < 400*time.Millisecond {
		t.Errorf("chunks 4, 2, 3 within %v: not paced at 300 ms each", gap)
	}
	if r, c := origin.drv.FetchesRefused(), origin.drv.FetchesCanceled(); r != 1 || c != 1 {
		t.Errorf("FetchesRefused %d, FetchesCanceled %d, want 1 and 1", r, c)
	}
	if b := origin.drv.FetchBytesServed(); b != uint64(4*len(raws[0])) {
		t.Errorf("FetchBytesServed %d, want 4 answers' bytes", b)
	}
}

// The fetcher cancels a request that named a due time once the chunk
// came another way, once, and never one without a due time (an origin
// that does not read Request.Due would not read Cancel either); the
// canceled request stays in flight until the origin's answer.
func TestFetcherCancels(t *testing.T) {
	f := newFetcher(&Driver{}, Peer{})
	due := time.Unix(2000, 0)
	f.enqueue(wire.ID{Seq: 1}, due)
	f.enqueue(wire.ID{Seq: 2}, time.Time{})
	for range 2 {
		f.inflight = append(f.inflight, <-f.want)
	}
	f.cancel(wire.ID{Seq: 2})
	f.cancel(wire.ID{Seq: 1})
	f.cancel(wire.ID{Seq: 1})
	f.cancel(wire.ID{Seq: 3})
	if len(f.cancels) != 1 || <-f.cancels != (wire.ID{Seq: 1}) {
		t.Fatal("want exactly one cancel, of the request with a due time")
	}
	if !f.inflight[0].canceled || f.inflight[1].canceled {
		t.Fatalf("inflight %+v", f.inflight)
	}
	if !f.answered(wire.ID{Seq: 1}, false) || f.answered(wire.ID{Seq: 1}, false) {
		t.Fatal("the canceled request's Missing answers it, once")
	}
	if _, ok := f.queued[wire.ID{Seq: 1}]; ok {
		t.Fatal("answered request still queued")
	}
}
