package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// serveFetch answers the Request frames of a fetch stream with a Chunk
// frame (the node holds it and its fetch budget sends it in time) or a
// Missing frame (not held, or refused by the budget).
//
// Answers to requests without a deadline (Request.Due 0: a start fetch,
// or an older build) are written in the order of those requests, as
// older builds expect; answers to requests with a deadline are written
// as their turns come, in any order: their askers match answers by ID.
func (d *Driver) serveFetch(c *Conn, s *quic.Stream, br *bufio.Reader) {
	fs := newFetchStream()
	done := make(chan struct{})
	wrote := make(chan struct{})
	d.wg.Go(func() {
		defer close(wrote)
		if err := fs.write(d.ctx, s, done); err != nil {
			s.CancelRead(quic.StreamErrorCode(CodeNormal)) // ends the reader below
		}
	})
	defer func() {
		d.fetchSvc.remove(fs)
		close(done)
		<-wrote
		s.CancelRead(quic.StreamErrorCode(CodeNormal))
		s.Close()
	}()
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
			req, err := wire.ParseRequest(f.Payload)
			if err != nil {
				d.protocolError(c, err)
				return
			}
			if !fs.waitRoom() {
				return
			}
			raw, ok, alive := d.lookup(req.ID)
			if !alive {
				return
			}
			a := &fetchAnswer{stream: fs, id: req.ID, raw: raw}
			if req.Due == 0 {
				a.seq = fs.nextSeq()
			}
			if !ok {
				fs.reply(a.seq, fetchReply{id: req.ID})
				continue
			}
			var deadline time.Time
			if req.Due > 0 {
				// Its last byte must leave a return trip before the due
				// time: the request took about half of one to come.
				deadline = d.now().Add(req.Due - c.ConnectionStats().SmoothedRTT)
			}
			d.fetchSvc.ask(d.now(), a, deadline)
		case wire.FrameCancel:
			id, err := wire.ParseID(f.Payload)
			if err != nil {
				d.protocolError(c, err)
				return
			}
			d.fetchSvc.cancel(fs, id)
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

// FetchBacklog is how long a fetch without a deadline may wait in a
// fetch budget (DriverConfig.FetchBPS): one that would wait longer is
// refused at once, since it would come too late to play — a node asks
// PushedMargin (200 ms) before the slice is due while its parent still
// pushes the stripe (swarm.Config.PushedMargin) — and the node hears so
// in time to pull it or ask again. A fetch that names its deadline
// (wire.Request.Due) waits instead as long as it can still leave in time
// (swarm.FetchBudget). The simulator's origin uses the same bound
// (internal/sim fetchBacklogLimit); there, 2,000 peers joining in 10 s
// (60 s, seed 1) stalled 564 times with 250 ms and 543 with 150 ms
// (startup p95 1,564 → 1,513 ms).
const FetchBacklog = 150 * time.Millisecond

// maxStreamFetches bounds the answers one fetch stream may have waiting
// in the budget or for its writer (a node asks at most
// swarm.Config.MaxFetches at once): beyond it the stream's reader waits.
const maxStreamFetches = 256

// fetchService is a node's fetch budget shared by every fetch stream
// (DriverConfig.FetchBPS): a swarm.FetchBudget that orders the waiting
// answers by deadline and paces them at the budget's rate, handing each
// to its stream's writer when its turn comes. Without a budget every
// answer is handed over at once.
type fetchService struct {
	d    *Driver
	wake chan struct{} // the budget has answers waiting: re-arm the timer (cap 1)

	mu      sync.Mutex
	b       swarm.FetchBudget[*fetchAnswer] // guarded by mu
	out     []swarm.Served[*fetchAnswer]    // scratch (guarded by mu)
	refused []*fetchAnswer                  // scratch (guarded by mu)
}

func newFetchService(d *Driver, bps int64) *fetchService {
	f := &fetchService{d: d, wake: make(chan struct{}, 1)}
	f.b.Backlog = FetchBacklog
	if bps > 0 {
		f.b.NsPerByte = 8e9 / float64(bps)
	}
	return f
}

// fetchAnswer is one fetch answer waiting in the budget.
type fetchAnswer struct {
	stream *fetchStream
	id     wire.ID // as asked (seq 0: the newest keyframe)
	raw    []byte
	seq    uint64 // its place among the stream's requests without a deadline; 0: it has one
}

// ask queues a, due by deadline (zero: none), and sends what is due.
func (f *fetchService) ask(now time.Time, a *fetchAnswer, deadline time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused = f.b.Ask(now, a, len(a.raw), deadline, f.refused[:0])
	for _, r := range f.refused {
		f.answerLocked(r, false)
	}
	clear(f.refused)
	if !f.serveLocked(now).IsZero() {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// serveLocked hands the answers whose turn came to their writers and
// returns when the next one's comes (zero: none waits).
func (f *fetchService) serveLocked(now time.Time) time.Time {
	var next time.Time
	f.out, next = f.b.Serve(now, f.out[:0])
	for _, a := range f.out {
		f.answerLocked(a.Item, !a.Dropped)
	}
	clear(f.out)
	return next
}

// answerLocked hands a's answer to its stream's writer: the chunk, or
// Missing when refused.
func (f *fetchService) answerLocked(a *fetchAnswer, send bool) {
	if send {
		f.d.fetchServed.Add(uint64(len(a.raw)))
		a.stream.reply(a.seq, fetchReply{id: a.id, raw: a.raw})
	} else {
		f.d.fetchRefused.Add(1)
		a.stream.reply(a.seq, fetchReply{id: a.id})
	}
}

// cancel drops fs's answer for id if it still waits, and answers it
// Missing; an answer on its way already stays so.
func (f *fetchService) cancel(fs *fetchStream, id wire.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refused = f.b.Remove(func(a *fetchAnswer) bool { return a.stream == fs && a.id == id }, f.refused[:0])
	for _, a := range f.refused {
		f.d.fetchCanceled.Add(1)
		a.stream.reply(a.seq, fetchReply{id: a.id})
	}
	clear(f.refused)
}

// remove drops the waiting answers of a stream that ended.
func (f *fetchService) remove(fs *fetchStream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.b.Remove(func(a *fetchAnswer) bool { return a.stream == fs }, nil)
}

// run sends the waiting answers as their turns come, until the driver
// stops.
func (f *fetchService) run() {
	ctx := f.d.ctx
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-timer.C:
		}
		f.mu.Lock()
		now := f.d.now()
		next := f.serveLocked(now)
		f.mu.Unlock()
		if next.IsZero() {
			timer.Reset(time.Hour)
		} else {
			timer.Reset(next.Sub(now))
		}
	}
}

// fetchReply is one answer on a fetch stream: raw, or Missing id when
// raw is nil.
type fetchReply struct {
	id  wire.ID
	raw []byte
}

// fetchStream holds one fetch stream's answers for its writer.
type fetchStream struct {
	ready  chan struct{} // replies has answers (cap 1)
	room   chan struct{} // the writer took answers (cap 1)
	broken chan struct{} // closed when the writer has stopped

	mu      sync.Mutex
	replies []fetchReply // for the writer (guarded by mu)
	waiting int          // requests read, answers not yet written (guarded by mu)
	// Answers to the requests without a deadline, in their order: seqs
	// counts those requests; ordered[i] (if filled[i]) answers request
	// seqs-len(ordered)+1+i, and goes to replies once all before it
	// did (guarded by mu).
	seqs    uint64
	ordered []fetchReply
	filled  []bool
}

// nextSeq numbers a request without a deadline.
func (fs *fetchStream) nextSeq() uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.seqs++
	fs.ordered = append(fs.ordered, fetchReply{})
	fs.filled = append(fs.filled, false)
	return fs.seqs
}

func newFetchStream() *fetchStream {
	return &fetchStream{ready: make(chan struct{}, 1), room: make(chan struct{}, 1), broken: make(chan struct{})}
}

// waitRoom waits until the stream may have another request waiting for
// its answer, and counts it; false when the writer stopped meanwhile.
func (fs *fetchStream) waitRoom() bool {
	for {
		fs.mu.Lock()
		if fs.waiting < maxStreamFetches {
			fs.waiting++
			fs.mu.Unlock()
			return true
		}
		fs.mu.Unlock()
		select {
		case <-fs.room:
		case <-fs.broken:
			return false
		}
	}
}

// reply queues an answer for the writer (seq: see nextSeq; 0 for a
// request with a deadline); it never blocks.
func (fs *fetchStream) reply(seq uint64, r fetchReply) {
	fs.mu.Lock()
	if seq == 0 {
		fs.replies = append(fs.replies, r)
	} else {
		i := len(fs.ordered) - int(fs.seqs-seq) - 1
		fs.ordered[i], fs.filled[i] = r, true
		n := 0
		for n < len(fs.filled) && fs.filled[n] {
			n++
		}
		fs.replies = append(fs.replies, fs.ordered[:n]...)
		fs.ordered = fs.ordered[:copy(fs.ordered, fs.ordered[n:])]
		fs.filled = fs.filled[:copy(fs.filled, fs.filled[n:])]
	}
	fs.mu.Unlock()
	select {
	case fs.ready <- struct{}{}:
	default:
	}
}

// write writes the stream's answers as they come, until done, the
// driver stops or a write fails.
func (fs *fetchStream) write(ctx context.Context, s *quic.Stream, done <-chan struct{}) error {
	defer close(fs.broken)
	var buf []byte
	var batch []fetchReply
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-fs.ready:
		}
		fs.mu.Lock()
		batch = append(batch[:0], fs.replies...)
		clear(fs.replies)
		fs.replies = fs.replies[:0]
		fs.mu.Unlock()
		buf = buf[:0]
		for _, r := range batch {
			if r.raw != nil {
				buf = wire.AppendFrame(buf, wire.FrameChunk, r.raw)
			} else {
				buf = wire.AppendFrame(buf, wire.FrameMissing, r.id.Append(nil))
			}
		}
		_, err := s.Write(buf)
		fs.mu.Lock()
		fs.waiting -= len(batch)
		fs.mu.Unlock()
		clear(batch)
		select {
		case fs.room <- struct{}{}:
		default:
		}
		if err != nil {
			return err
		}
	}
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
// fetch is asked for and redialed with backoff when it fails. Each
// request names its slice's due time (wire.Request.Due) when the node
// knows it; such a request is canceled (wire.FrameCancel) when the chunk
// comes from another node first, so that the origin's budget does not
// send it for nothing (measured in the simulator, 2,000 peers joining
// in 10 s: 72 % of the answers the budget sent were held by their askers
// by then, after waiting a median 124 ms for their turn). Answers name their chunk: a Chunk answers the request for
// its slice and stripe (or, failing that, for slice 0 of its stripe, the
// newest keyframe), a Missing the request it names; an origin of an
// older build answers in order, which matches the same way. Requests
// unanswered when a stream fails are sent again on the next one.
type fetcher struct {
	d       *Driver
	origin  Peer
	want    chan fetchWant // from the Run goroutine
	cancels chan wire.ID   // requests to cancel, from the Run goroutine

	mu       sync.Mutex
	inflight []fetchWant          // sent, unanswered, in order (guarded by mu)
	queued   map[wire.ID]struct{} // in want or inflight (guarded by mu)
}

// fetchWant is a chunk to fetch and when its slice is due (zero: not
// known).
type fetchWant struct {
	id       wire.ID
	due      time.Time
	canceled bool // a Cancel was sent: its answer is still to come
}

// request is w's Request frame payload, its Due counted from now.
func (w fetchWant) request(now time.Time) []byte {
	r := wire.Request{ID: w.id}
	if !w.due.IsZero() {
		r.Due = max(w.due.Sub(now), 1) // due, or past due: as soon as can be
	}
	return r.Append(nil)
}

func newFetcher(d *Driver, origin Peer) *fetcher {
	return &fetcher{
		d:       d,
		origin:  origin,
		want:    make(chan fetchWant, fetchQueue),
		cancels: make(chan wire.ID, fetchQueue),
		queued:  make(map[wire.ID]struct{}),
	}
}

// enqueue asks for one chunk, due at due (zero: not known), unless it is
// already asked for. Run goroutine; never blocks.
func (f *fetcher) enqueue(id wire.ID, due time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.queued[id]; ok {
		return
	}
	select {
	case f.want <- fetchWant{id: id, due: due}:
		f.queued[id] = struct{}{}
	default:
		f.d.log.Warn("fetch queue full; dropping a fetch", "seq", id.Seq, "stripe", id.Stripe)
	}
}

// cancel cancels the in-flight request for id, if it named a due time
// (only an origin that reads Request.Due reads Cancel). Run goroutine;
// never blocks.
func (f *fetcher) cancel(id wire.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.queued[id]; !ok {
		return
	}
	i := slices.IndexFunc(f.inflight, func(w fetchWant) bool { return w.id == id })
	if i < 0 || f.inflight[i].due.IsZero() || f.inflight[i].canceled {
		return
	}
	select {
	case f.cancels <- id:
		f.inflight[i].canceled = true
	default:
	}
}

// answered drops the in-flight request an answer for id answers and
// reports whether there was one: the request for id, or for a Chunk
// (chunk true) failing that the request for slice 0 of its stripe.
func (f *fetcher) answered(id wire.ID, chunk bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.inflight, func(w fetchWant) bool { return w.id == id })
	if i < 0 && chunk {
		i = slices.IndexFunc(f.inflight, func(w fetchWant) bool { return w.id == wire.ID{Seq: 0, Stripe: id.Stripe} })
	}
	if i < 0 {
		return false
	}
	delete(f.queued, f.inflight[i].id)
	f.inflight = slices.Delete(f.inflight, i, i+1)
	return true
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
			case w := <-f.want:
				f.mu.Lock()
				f.inflight = append(f.inflight, w)
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
	now := f.d.now()
	f.inflight = slices.DeleteFunc(f.inflight, func(w fetchWant) bool {
		if w.canceled { // not needed any more: not asked again
			delete(f.queued, w.id)
		}
		return w.canceled
	})
	for _, w := range f.inflight {
		buf = wire.AppendFrame(buf, wire.FrameRequest, w.request(now))
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
		case w := <-f.want:
			f.mu.Lock()
			f.inflight = append(f.inflight, w)
			f.mu.Unlock()
			if err := wire.WriteFrame(s, wire.FrameRequest, w.request(f.d.now())); err != nil {
				s.CancelRead(quic.StreamErrorCode(CodeNormal))
				<-readErr
				return fmt.Errorf("write request: %w", err)
			}
		case id := <-f.cancels:
			if err := wire.WriteFrame(s, wire.FrameCancel, id.Append(nil)); err != nil {
				s.CancelRead(quic.StreamErrorCode(CodeNormal))
				<-readErr
				return fmt.Errorf("write cancel: %w", err)
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
			id, err := wire.PeekID(fr.Payload)
			if err == nil && !f.answered(id, true) {
				err = fmt.Errorf("unrequested chunk %v on the fetch stream", id)
			}
			if err != nil {
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
			if !f.answered(id, false) {
				err := fmt.Errorf("missing %v answers no request", id)
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
