package sim

import (
	"runtime"
	"sync/atomic"
	"time"
)

// crew is the second worker of a run with two: one goroutine, started
// with the run and kept to its end, that runs viewer parts beside the
// run's own goroutine in every window. The two take the window's parts
// one at a time, the run's goroutine from the front of the list and the
// crew from the back (take), so each mostly keeps the parts it ran in
// the window before, and the one on the faster CPU runs more of them:
// on this kind of machine one CPU ran the same half of the viewers
// 20-50 % slower than the other, and with fixed halves the faster one
// waited for it. The run's goroutine then runs part 0 while the crew
// merges the outboxes into the viewer parts' queues. Each stays on a
// thread of its own (runtime.LockOSThread) and, where the system lets
// it, that thread stays on a CPU of its own (pinCPU): what a worker
// keeps hot (its parts' queues and outboxes, the chunks it just
// handled) stays in that core's caches. They hand windows to each other
// through signals that spin before they sleep (signal.await): waking a
// sleeping thread took about half a millisecond a window here, a tenth
// of the window's work.
type crew struct {
	// end is the end of the window of the crew's next job, -1 to stop;
	// start is raised once it is set, done when the job is done.
	end   atomic.Int64
	start signal
	done  signal
	n     uint64 // jobs handed out
	// merging: the job is merging the viewer parts' inboxes (mergeViewers),
	// not running them; clamped is what that merge returned.
	merging bool
	clamped uint64
	// parts holds the viewer parts not yet taken in this window: first
	// in its top 32 bits, last in its low 32 (none: first > last).
	parts atomic.Uint64
	// unpin restores the run's thread as it was before startCrew.
	unpin func()
}

// startCrew locks the calling goroutine to its thread, pins that thread
// to the first CPU the process may use and starts the crew's goroutine
// on the second; stop undoes it.
func (s *Sim) startCrew() *crew {
	c := &crew{start: newSignal(), done: newSignal()}
	runtime.LockOSThread()
	cpus := allowedCPUs()
	c.unpin = func() {}
	if len(cpus) >= 2 {
		c.unpin = pinCPU(cpus[0])
	}
	go func() {
		// The goroutine ends locked: its thread, pinned or not, ends
		// with it.
		runtime.LockOSThread()
		if len(cpus) >= 2 {
			pinCPU(cpus[1])
		}
		for n := uint64(1); ; n++ {
			c.start.await(n)
			b := c.end.Load()
			switch {
			case b < 0:
				return
			case c.merging:
				c.clamped = s.mergeViewers(b)
			default:
				c.runParts(s, b, false)
			}
			c.done.raise()
		}
	}()
	return c
}

// run runs the viewer parts' window to b on the caller's goroutine and
// the crew's.
func (c *crew) run(s *Sim, b int64) {
	c.parts.Store(1<<32 | (numParts - 1))
	c.hand(b, false)
	c.runParts(s, b, true)
	c.done.await(c.n)
}

// merge has the crew merge the viewer parts' outboxes for the viewer
// parts into their queues (Sim.mergeViewers); wait waits for it and returns
// how many events it moved to b.
func (c *crew) merge(b int64) { c.hand(b, true) }

func (c *crew) wait() uint64 {
	c.done.await(c.n)
	return c.clamped
}

// hand gives the crew its next job, for the window that ends at b.
func (c *crew) hand(b int64, merging bool) {
	c.merging = merging
	c.n++
	c.end.Store(b)
	c.start.raise()
}

// runParts runs the parts it can take (from the front or the back) to
// b.
func (c *crew) runParts(s *Sim, b int64, front bool) {
	for {
		i := c.take(front)
		if i < 0 {
			return
		}
		h := s.parts[i]
		h.sync(s)
		h.runUntil(b)
	}
}

// take takes the first or the last part not yet taken and returns its
// index, or -1 when none is left.
func (c *crew) take(front bool) int {
	for {
		v := c.parts.Load()
		first, last := int(v>>32), int(uint32(v))
		if first > last {
			return -1
		}
		i, next := last, v-1
		if front {
			i, next = first, v+1<<32
		}
		if c.parts.CompareAndSwap(v, next) {
			return i
		}
	}
}

// stop ends the crew's goroutine and gives the caller's thread back as
// it was.
func (c *crew) stop() {
	c.end.Store(-1)
	c.start.raise()
	c.unpin()
	runtime.UnlockOSThread()
}

// signal is raised by one goroutine and awaited by one other. The
// waiter spins for up to spinFor before it sleeps on a channel.
type signal struct {
	n        atomic.Uint64 // times raised
	sleeping atomic.Bool   // the waiter sleeps, or is about to, on wake
	wake     chan struct{}
}

// spinFor is how long signal.await spins before it sleeps: longer than
// part 0 takes for most windows, so that the crew is awake when the
// next one starts, and short enough that a run's crew sleeps while part
// 0 places a crowd.
const spinFor = 3 * time.Millisecond

func newSignal() signal { return signal{wake: make(chan struct{}, 1)} }

// raise raises g once and wakes its waiter if it sleeps.
func (g *signal) raise() {
	g.n.Add(1)
	if g.sleeping.CompareAndSwap(true, false) {
		g.wake <- struct{}{}
	}
}

// await returns once g has been raised n times.
func (g *signal) await(n uint64) {
	var since time.Time
	for i := 0; g.n.Load() < n; i++ {
		if i&1023 != 0 {
			continue
		}
		if i == 0 {
			since = time.Now()
		} else if time.Since(since) >= spinFor {
			g.sleep(n)
			return
		}
	}
}

// sleep waits on g.wake until g has been raised n times.
func (g *signal) sleep(n uint64) {
	for g.n.Load() < n {
		g.sleeping.Store(true)
		if g.n.Load() >= n {
			// Raised meanwhile: take back the flag, or, if the raiser
			// took it first, the wake it sends.
			if !g.sleeping.CompareAndSwap(true, false) {
				<-g.wake
			}
			return
		}
		<-g.wake
	}
}
