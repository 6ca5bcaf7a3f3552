package swarm

import (
	"slices"
	"time"
)

// FetchBudget schedules the origin's answers to fetches on the upload it
// keeps for them, nearest deadline first. The real origin's fetch
// service (internal/transport) and the simulator's origin model run it.
//
// An ask is one answer of known size waiting for its turn, with the
// time by which its last byte must have left (its deadline, from the
// asker's Request.Due less the return trip). Answers leave one after
// another, each taking its size × NsPerByte. Waiting asks are ordered by
// deadline (earliest first; equal ones in arrival order) — for answers
// all waiting at once, the order that meets every deadline if any order
// does. An ask that cannot be sent before its deadline behind the asks
// due earlier is refused at once, so its asker hears in time to pull the
// chunk elsewhere or ask again; an ask that pushes asks due later past
// their deadlines refuses those instead (the nearer deadline wins). An
// ask without a deadline keeps the older rule: it must start within
// Backlog of arriving (its deadline is then, plus its own sending time).
//
// The zero FetchBudget, or one with NsPerByte 0, serves every ask at
// once. A FetchBudget is not safe for concurrent use; it reads no clock.
type FetchBudget[T any] struct {
	// NsPerByte is the upload's time per byte (8e9 / bit rate); 0: unlimited.
	NsPerByte float64
	// Backlog is how long an ask without a deadline may wait.
	Backlog time.Duration

	free instant        // when the answers served so far have left
	q    []budgetAsk[T] // waiting, by deadline then arrival
	n    uint64         // asks so far: ties in arrival order
}

type budgetAsk[T any] struct {
	item     T
	tx       int64   // sending time, ns
	deadline instant // last byte gone by then
	n        uint64
}

// Served is an ask whose turn came: its answer starts leaving now and
// its last byte leaves at Done. Dropped asks (past their deadline when
// their turn came, which only a late Serve lets happen) have a zero Done.
type Served[T any] struct {
	Item    T
	Done    time.Time
	Dropped bool
}

// tx is how long size bytes take on the budget's upload.
func (b *FetchBudget[T]) tx(size int) int64 {
	return int64(float64(size) * b.NsPerByte)
}

// Waiting returns the number of asks waiting for their turn.
func (b *FetchBudget[T]) Waiting() int { return len(b.q) }

// Ask queues an answer of size bytes whose last byte must have left by
// deadline (zero: none, see Backlog), and appends to refused the asks
// it refuses now: the new one when it cannot make its deadline, or those
// it pushed past theirs. Call Serve afterwards: an ask may be due at
// once.
func (b *FetchBudget[T]) Ask(now time.Time, item T, size int, deadline time.Time, refused []T) []T {
	t := at(now)
	a := budgetAsk[T]{item: item, tx: b.tx(size), deadline: at(deadline), n: b.n}
	b.n++
	if b.NsPerByte <= 0 {
		b.q = append(b.q, a) // Serve sends it at once
		return refused
	}
	if a.deadline.IsZero() {
		a.deadline = t.Add(b.Backlog) + instant(a.tx)
	}
	i, _ := slices.BinarySearchFunc(b.q, a, func(x, y budgetAsk[T]) int {
		if c := x.deadline.Compare(y.deadline); c != 0 {
			return c
		}
		if x.n < y.n {
			return -1
		}
		return 1
	})
	// Its start behind the asks due before it.
	clock := max(t, b.free)
	for _, x := range b.q[:i] {
		clock += instant(x.tx)
	}
	if clock+instant(a.tx) > a.deadline {
		return append(refused, item)
	}
	b.q = slices.Insert(b.q, i, a)
	// The asks due after it that now miss their deadlines.
	clock += instant(a.tx)
	keep := b.q[:i+1]
	for _, x := range b.q[i+1:] {
		if clock+instant(x.tx) > x.deadline {
			refused = append(refused, x.item)
			continue
		}
		clock += instant(x.tx)
		keep = append(keep, x)
	}
	clear(b.q[len(keep):])
	b.q = keep
	return refused
}

// Serve appends to out the asks whose turn has come at now (their
// answers leave back to back from now on) and the asks that can no
// longer make their deadline, and returns when to call it next (zero:
// nothing waits).
func (b *FetchBudget[T]) Serve(now time.Time, out []Served[T]) ([]Served[T], time.Time) {
	t := at(now)
	if b.NsPerByte <= 0 {
		for _, a := range b.q {
			out = append(out, Served[T]{Item: a.item, Done: now})
		}
		clear(b.q)
		b.q = b.q[:0]
		return out, time.Time{}
	}
	i := 0
	for ; i < len(b.q) && !b.free.After(t); i++ {
		a := b.q[i]
		if t+instant(a.tx) > a.deadline {
			out = append(out, Served[T]{Item: a.item, Dropped: true})
			continue
		}
		b.free = t + instant(a.tx)
		out = append(out, Served[T]{Item: a.item, Done: b.free.Time()})
	}
	n := copy(b.q, b.q[i:])
	clear(b.q[n:])
	b.q = b.q[:n]
	if len(b.q) == 0 {
		return out, time.Time{}
	}
	return out, b.free.Time()
}

// Remove drops the waiting asks for which gone reports true (their
// asker left, or no longer needs them) and appends them to removed.
func (b *FetchBudget[T]) Remove(gone func(T) bool, removed []T) []T {
	keep := b.q[:0]
	for _, a := range b.q {
		if gone(a.item) {
			removed = append(removed, a.item)
			continue
		}
		keep = append(keep, a)
	}
	clear(b.q[len(keep):])
	b.q = keep
	return removed
}
