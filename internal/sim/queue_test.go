package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The queue hands events out by time, then by the part that pushed
// them, then by that part's push order, whatever the order of pushes,
// pops and cancels in between; a canceled event never pops, and a cancel
// with a stale handle drops nothing.
func TestQueueOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue
	var want []event // pushed and not popped, kept sorted by (at, seq)
	slots := map[int64]int32{}
	now := int64(0)
	canceled, refused := 0, 0
	for step := range 20_000 {
		if q.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, q.len(), len(want))
		}
		// Phases: mostly pushes, then pops until the queue is empty (the
		// ring runs dry and the queue jumps to the far events).
		draining := step%2000 >= 1500
		if len(want) == 0 || !draining && rng.IntN(3) > 0 {
			// Many equal times; events in the current bucket, in the
			// ring and beyond it (the far heap), and gaps to skip.
			var d int64
			switch rng.IntN(4) {
			case 0:
				d = rng.Int64N(50)
			case 1:
				d = (1 + rng.Int64N(4)) << bucketShift // equal times in ring buckets
			case 2:
				d = rng.Int64N(2e9)
			default:
				d = 4e9 + rng.Int64N(30e9)
			}
			e := event{at: now + d, aux: int64(step), kind: evTick}
			q.src = rng.IntN(numParts) // equal times order by part, then push order
			slots[e.aux] = q.push(e)
			e.seq = uint64(q.src)<<partShift | q.seqs[q.src]
			i := len(want)
			for i > 0 && (want[i-1].at > e.at || want[i-1].at == e.at && want[i-1].seq > e.seq) {
				i--
			}
			want = append(want[:i], append([]event{e}, want[i:]...)...)
			continue
		}
		if rng.IntN(8) == 0 {
			// Cancel a waiting event (it fails when the event is in the
			// sorted run already), or one popped before (always fails:
			// its slot was reused or cleared).
			j := rng.IntN(len(want))
			if rng.IntN(4) == 0 && step > 0 {
				if aux := rng.Int64N(int64(step)); !slices.ContainsFunc(want, func(e event) bool { return e.aux == aux }) {
					if q.cancel(slots[aux], evTick, 0, aux) {
						t.Fatalf("step %d: canceled popped event %d", step, aux)
					}
					refused++
					continue
				}
			}
			if q.cancel(slots[want[j].aux], evTick, 0, want[j].aux) {
				if slots[want[j].aux] < 0 {
					t.Fatalf("step %d: canceled an event of the run", step)
				}
				want = append(want[:j], want[j+1:]...)
				canceled++
			} else if !slices.ContainsFunc(q.run[q.pos:], func(e event) bool { return e.aux == want[j].aux }) {
				t.Fatalf("step %d: cancel of event %+v failed, and it is not in the sorted run", step, want[j])
			}
			continue
		}
		if q.peekAt() != want[0].at {
			t.Fatalf("step %d: peek %d, want %d", step, q.peekAt(), want[0].at)
		}
		got := q.pop()
		if got.seq != want[0].seq || got.aux != want[0].aux || got.at != want[0].at {
			t.Fatalf("step %d: popped %+v, want %+v", step, got, want[0])
		}
		now = got.at
		want = want[1:]
	}
	if canceled < 100 || refused < 10 || q.canceled != uint64(canceled) {
		t.Fatalf("%d canceled (queue: %d), %d refused: the test cancels too little", canceled, q.canceled, refused)
	}
}

// BenchmarkQueue measures a push and a pop with 100,000 events waiting,
// spread over 2 s as in a run of 10,000 peers.
func BenchmarkQueue(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue
	for range 100_000 {
		q.push(event{at: rng.Int64N(2e9)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		e := q.pop()
		q.push(event{at: e.at + rng.Int64N(2e9)})
	}
}

// TestSortKeys: sortKeys orders keys as before does, on random keys,
// runs already sorted or reversed, and many equal times, at every
// length up to past the insertion sort's and across the fallback.
func TestSortKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := range 300 {
		for pattern := range 4 {
			ks := make([]key, n)
			for i := range ks {
				var at int64
				switch pattern {
				case 0:
					at = r.Int64N(1 << 21)
				case 1:
					at = int64(i)
				case 2:
					at = int64(n - i)
				case 3:
					at = r.Int64N(3) // ties broken by seq
				}
				ks[i] = key{at: at, seq: uint64(r.IntN(4))<<partShift | uint64(i), slot: int32(i)}
			}
			shallow := slices.Clone(ks) // sorted with the fallback soon
			want := slices.Clone(ks)
			slices.SortFunc(want, func(a, b key) int {
				if a.before(&b) {
					return -1
				}
				return 1
			})
			sortKeys(ks)
			sortKeysDepth(shallow, 1)
			if !slices.Equal(ks, want) || !slices.Equal(shallow, want) {
				t.Fatalf("n=%d pattern %d: sortKeys differs from a sort by before", n, pattern)
			}
		}
	}
}
