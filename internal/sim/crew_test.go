package sim

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestCrewGivesThreadBack runs a two-worker simulation on a locked
// thread and checks that the thread may run on the same CPUs after it as
// before: the crew pins the run's thread to one CPU while it runs.
func TestCrewGivesThreadBack(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := allowedCPUs()
	_, s := run(t, small(40, 3*time.Second, 1))
	if s.workers != 2 {
		t.Fatalf("ran on %d workers, want 2", s.workers)
	}
	if after := allowedCPUs(); !slices.Equal(before, after) {
		t.Errorf("the run's thread may use CPUs %v after the run, %v before", after, before)
	}
}

// TestPinCPU pins the test's thread to one CPU it may use and back.
func TestPinCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := allowedCPUs()
	if runtime.GOOS == "linux" && len(before) == 0 {
		t.Fatal("no CPUs allowed, by the system's account")
	}
	if len(before) == 0 {
		return // not told here: pinCPU does nothing
	}
	last := before[len(before)-1]
	restore := pinCPU(last)
	if got := allowedCPUs(); !slices.Equal(got, []int{last}) {
		t.Errorf("pinned to CPU %d, the thread may use %v", last, got)
	}
	restore()
	if got := allowedCPUs(); !slices.Equal(got, before) {
		t.Errorf("after restore the thread may use %v, want %v", got, before)
	}
}

// TestCrewTakesEachPartOnce has two goroutines take a window's viewer
// parts, one from each end, as the run's and the crew's do: every part
// is taken once, and the one from the front takes the first.
func TestCrewTakesEachPartOnce(t *testing.T) {
	var c crew
	for range 200 {
		c.parts.Store(1<<32 | (numParts - 1))
		var got [2][]int
		done := make(chan struct{})
		go func() {
			for i := c.take(false); i >= 0; i = c.take(false) {
				got[1] = append(got[1], i)
			}
			close(done)
		}()
		for i := c.take(true); i >= 0; i = c.take(true) {
			got[0] = append(got[0], i)
		}
		<-done
		all := slices.Sorted(slices.Values(slices.Concat(got[0], got[1])))
		ok := len(all) == numParts-1
		for i := range all {
			ok = ok && all[i] == i+1
		}
		if !ok {
			t.Fatalf("took %v from the front and %v from the back, want each of 1..%d once", got[0], got[1], numParts-1)
		}
		if len(got[0]) > 0 && got[0][0] != 1 || len(got[1]) > 0 && got[1][0] != numParts-1 {
			t.Fatalf("front took %v, back %v: each should start at its own end", got[0], got[1])
		}
	}
	if c.take(true) != -1 || c.take(false) != -1 {
		t.Error("a part taken after all were")
	}
}

// TestSignal hands a count back and forth through two signals, awaited
// both while the other side spins and after it slept past spinFor.
func TestSignal(t *testing.T) {
	ping, pong := newSignal(), newSignal()
	const rounds = 300
	var seen []uint64
	go func() {
		for n := uint64(1); n <= rounds; n++ {
			ping.await(n)
			seen = append(seen, ping.n.Load())
			if n%100 == 0 {
				time.Sleep(2 * spinFor) // the other side sleeps by now
			}
			pong.raise()
		}
	}()
	for n := uint64(1); n <= rounds; n++ {
		if n%100 == 50 {
			time.Sleep(2 * spinFor)
		}
		ping.raise()
		pong.await(n)
	}
	for i, n := range seen {
		if n != uint64(i+1) {
			t.Fatalf("round %d saw ping raised %d times", i+1, n)
		}
	}
	if len(seen) != rounds || pong.n.Load() != rounds {
		t.Errorf("%d rounds seen, pong raised %d times, want %d", len(seen), pong.n.Load(), rounds)
	}
}
