package sim

import "runtime"

// crew is the second worker of a run with two: one goroutine, started
// with the run and kept to its end, that runs the second half's
// windows while the run's own goroutine runs the first half's and then
// part 0's. Each stays on a thread of its own (runtime.LockOSThread)
// and, where the system lets it, that thread stays on a CPU of its own
// (pinCPU): a half then runs on the same core window after window, and
// what it keeps hot (its queue, its outboxes, its metrics, the chunks
// it just handled) stays in that core's caches. A goroutine started
// per window, as before, ran on either core and drew part 0's work into
// both caches: 10k × 40 s steady seed 1 took 61.7 and 72.4 s of wall
// that way, against 54.5 and 63.0 s with the crew, run in turn on an
// idle two-core machine.
type crew struct {
	start chan int64    // a window's end: run the second half to it
	done  chan struct{} // the window is run
	// unpin restores the run's thread as it was before startCrew.
	unpin func()
}

// startCrew locks the calling goroutine to its thread, pins that thread
// to the first CPU the process may use and starts the crew's goroutine
// on the second; stop undoes it.
func (s *Sim) startCrew() *crew {
	c := &crew{start: make(chan int64), done: make(chan struct{})}
	runtime.LockOSThread()
	cpus := allowedCPUs()
	c.unpin = func() {}
	if len(cpus) >= 2 {
		c.unpin = pinCPU(cpus[0])
	}
	h := s.parts[2]
	go func() {
		// The goroutine ends locked: its thread, pinned or not, ends
		// with it.
		runtime.LockOSThread()
		if len(cpus) >= 2 {
			pinCPU(cpus[1])
		}
		for b := range c.start {
			h.runUntil(b)
			c.done <- struct{}{}
		}
	}()
	return c
}

// run runs the window to b: the second half on the crew's goroutine,
// the first on the caller's.
func (c *crew) run(s *Sim, b int64) {
	c.start <- b
	s.parts[1].runUntil(b)
	<-c.done
}

// stop ends the crew's goroutine and gives the caller's thread back as
// it was.
func (c *crew) stop() {
	close(c.start)
	c.unpin()
	runtime.UnlockOSThread()
}
