package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/wire"
)

// serveFetch answers the Request frames of a fetch stream with a Chunk
// frame (the node holds it) or a Missing frame, in order.
func (d *Driver) serveFetch(c *Conn, s *quic.Stream, br *bufio.Reader) {
	defer func() {
		s.CancelRead(quic.StreamErrorCode(CodeNormal))
		s.Close()
	}()
	var buf []byte
	for {
		f, err := readFrame(br)
		if err != nil {
			if isGarbage(err) {
				d.protocolError(c, err)
			}
			return
		}
		switch f.Type {
		case wire.FrameRequest:
			id, err := wire.ParseID(f.Payload)
			if err != nil {
				d.protocolError(c, err)
				return
			}
			raw, ok, alive := d.lookup(id)
			if !alive {
				return
			}
			if ok && !d.fetches.book(d.now(), len(raw)) {
				ok = false // over budget: "missing" at once, the asker retries or skips
				d.fetchRefused.Add(1)
			}
			if ok {
				buf = wire.AppendFrame(buf[:0], wire.FrameChunk, raw)
				d.fetchServed.Add(uint64(len(raw)))
			} else {
				buf = wire.AppendFrame(buf[:0], wire.FrameMissing, id.Append(nil))
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		case wire.FrameChunk:
			if !d.chunkIn(c.Remote(), f.Payload) {
				return
			}
		case wire.FrameBye:
			return
		default:
			d.protocolError(c, fmt.Errorf("%v frame on a fetch stream", f.Type))
			return
		}
	}
}

// FetchBacklog is how far ahead a fetch budget (DriverConfig.FetchBPS)
// may be booked: a fetch that would wait longer behind the ones booked
// is refused at once, since it would come too late to play — a node
// asks PushedMargin (200 ms) before the slice is due while its parent
// still pushes the stripe (swarm.Config.PushedMargin) — and the node
// hears so in time to pull it or ask again. The simulator's origin uses
// the same bound (internal/sim fetchBacklogLimit); there, 2,000 peers
// joining in 10 s (60 s, seed 1) stalled 564 times with 250 ms and 543
// with 150 ms (startup p95 1,564 → 1,513 ms).
const FetchBacklog = 150 * time.Millisecond

// fetchBudget books fetch answers on an upload of bps bit/s shared by
// every connection: each answer takes its size ÷ bps of upload time
// after the ones booked before it.
type fetchBudget struct {
	bps  int64 // 0: unlimited
	mu   sync.Mutex
	free time.Time // when the booked answers will have left; guarded by mu
}

// book reserves upload for size bytes at now, or reports false when the
// budget is booked beyond FetchBacklog.
func (b *fetchBudget) book(now time.Time, size int) bool {
	if b.bps <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	start := now
	if b.free.After(now) {
		start = b.free
	}
	if start.Sub(now) > FetchBacklog {
		return false
	}
	b.free = start.Add(time.Duration(float64(size) * 8 / float64(b.bps) * float64(time.Second)))
	return true
}

// lookup asks the node for a chunk; alive is false when the driver stops.
// Slice 0 names the newest keyframe slice the node holds (see
// swarm.Node.NewestKeyframe): a node that has nothing yet asks for it.
func (d *Driver) lookup(id wire.ID) (raw []byte, ok, alive bool) {
	type result struct {
		raw []byte
		ok  bool
	}
	res := make(chan result, 1)
	if !d.do(func() {
		if id.Seq == 0 {
			seq, ok := d.node.NewestKeyframe()
			if !ok {
				res <- result{}
				return
			}
			id.Seq = seq
		}
		raw, ok := d.node.Lookup(id)
		res <- result{raw, ok}
	}) {
		return nil, false, false
	}
	select {
	case r := <-res:
		return r.raw, r.ok, true
	case <-d.ctx.Done():
		return nil, false, false
	}
}

// fetcher keeps one fetch stream to the origin, dialed when the first
// fetch is asked for and redialed with backoff when it fails. Requests
// are answered in order, so the oldest unanswered request names each
// answer; requests unanswered when a stream fails are sent again on the
// next one.
type fetcher struct {
	d      *Driver
	origin Peer
	want   chan wire.ID // from the Run goroutine

	mu       sync.Mutex
	inflight []wire.ID            // sent, unanswered, in order (guarded by mu)
	queued   map[wire.ID]struct{} // in want or inflight (guarded by mu)
}

func newFetcher(d *Driver, origin Peer) *fetcher {
	return &fetcher{
		d:      d,
		origin: origin,
		want:   make(chan wire.ID, fetchQueue),
		queued: make(map[wire.ID]struct{}),
	}
}

// enqueue asks for one chunk unless it is already asked for. Run
// goroutine; never blocks.
func (f *fetcher) enqueue(id wire.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.queued[id]; ok {
		return
	}
	select {
	case f.want <- id:
		f.queued[id] = struct{}{}
	default:
		f.d.log.Warn("fetch queue full; dropping a fetch", "seq", id.Seq, "stripe", id.Stripe)
	}
}

// answered pops the oldest in-flight request and reports whether it was id
// (the zero ID matches any).
func (f *fetcher) answered() (wire.ID, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.inflight) == 0 {
		return wire.ID{}, false
	}
	id := f.inflight[0]
	f.inflight = f.inflight[1:]
	delete(f.queued, id)
	return id, true
}

func (f *fetcher) run() {
	ctx := f.d.ctx
	backoff := fetchBackoffMin
	for {
		f.mu.Lock()
		idle := len(f.inflight) == 0
		f.mu.Unlock()
		if idle { // dial lazily: wait for work
			select {
			case id := <-f.want:
				f.mu.Lock()
				f.inflight = append(f.inflight, id)
				f.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
		start := time.Now()
		err := f.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 2*fetchBackoffMax {
			backoff = fetchBackoffMin
		}
		f.d.log.Warn("origin fetch link failed; redialing", "origin", f.origin.ID, "in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, fetchBackoffMax)
	}
}

// session runs one fetch stream until it fails.
func (f *fetcher) session(ctx context.Context) error {
	c, err := f.d.acquire(ctx, f.origin)
	if err != nil {
		return err
	}
	defer f.d.release(c)
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer func() {
		s.CancelRead(quic.StreamErrorCode(CodeNormal))
		s.CancelWrite(quic.StreamErrorCode(CodeNormal))
	}()
	buf := wire.AppendFrame(nil, wire.FrameHello, wire.Hello{Channel: f.d.cfg.Channel}.Append(nil))
	f.mu.Lock()
	for _, id := range f.inflight {
		buf = wire.AppendFrame(buf, wire.FrameRequest, id.Append(nil))
	}
	f.mu.Unlock()
	if _, err := s.Write(buf); err != nil {
		return fmt.Errorf("write: %w", err)
	}

	readErr := make(chan error, 1)
	f.d.wg.Go(func() { readErr <- f.readAnswers(c, s) })
	for {
		select {
		case <-ctx.Done():
			s.CancelRead(quic.StreamErrorCode(CodeNormal))
			<-readErr
			return ctx.Err()
		case err := <-readErr:
			return err
		case id := <-f.want:
			f.mu.Lock()
			f.inflight = append(f.inflight, id)
			f.mu.Unlock()
			if err := wire.WriteFrame(s, wire.FrameRequest, id.Append(nil)); err != nil {
				s.CancelRead(quic.StreamErrorCode(CodeNormal))
				<-readErr
				return fmt.Errorf("write request: %w", err)
			}
		}
	}
}

// readAnswers hands the origin's answers to the node until the stream
// fails.
func (f *fetcher) readAnswers(c *Conn, s *quic.Stream) error {
	br := bufio.NewReaderSize(s, 64<<10)
	for {
		fr, err := readFrame(br)
		if err != nil {
			if isGarbage(err) {
				f.d.protocolError(c, err)
			}
			return err
		}
		switch fr.Type {
		case wire.FrameChunk:
			if _, ok := f.answered(); !ok {
				err := errors.New("unrequested chunk on the fetch stream")
				f.d.protocolError(c, err)
				return err
			}
			if !f.d.chunkIn(f.origin.ID, fr.Payload) {
				return ErrClosed
			}
		case wire.FrameMissing:
			id, err := wire.ParseID(fr.Payload)
			if err != nil {
				f.d.protocolError(c, err)
				return err
			}
			if want, ok := f.answered(); !ok || want != id {
				err := fmt.Errorf("missing %v answers request %v", id, want)
				f.d.protocolError(c, err)
				return err
			}
			if !f.d.do(func() { f.d.node.HandleMissing(f.d.now(), f.origin.ID, id) }) {
				return ErrClosed
			}
		case wire.FrameBye:
			return errors.New("origin closed the fetch stream")
		default:
			err := fmt.Errorf("%v frame on a fetch stream", fr.Type)
			f.d.protocolError(c, err)
			return err
		}
	}
}
