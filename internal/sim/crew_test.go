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
