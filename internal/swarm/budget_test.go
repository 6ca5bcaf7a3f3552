package swarm

import (
	"slices"
	"testing"
	"time"
)

// budgetAt is a test clock: t0 plus ms milliseconds.
func budgetAt(ms int) time.Time {
	return time.Unix(1_700_000_000, 0).Add(time.Duration(ms) * time.Millisecond)
}

// newTestBudget sends 1,000 bytes in 10 ms.
func newTestBudget() *FetchBudget[string] {
	return &FetchBudget[string]{NsPerByte: 10e6 / 1000, Backlog: 150 * time.Millisecond}
}

// serveAll runs b's Serve at every time it asks for, from now on, and
// returns the items in the order they were served (dropped ones
// prefixed "dropped ") with their Done times.
func serveAll(t *testing.T, b *FetchBudget[string], now time.Time) (order []string, done []time.Time) {
	t.Helper()
	var out []Served[string]
	for i := 0; i < 100; i++ {
		var next time.Time
		out, next = b.Serve(now, out[:0])
		for _, s := range out {
			if s.Dropped {
				order = append(order, "dropped "+s.Item)
				continue
			}
			order = append(order, s.Item)
			done = append(done, s.Done)
		}
		if next.IsZero() {
			return order, done
		}
		if !next.After(now) {
			t.Fatalf("Serve at %v asks again at %v", now, next)
		}
		now = next
	}
	t.Fatal("Serve never drained")
	return nil, nil
}

// Waiting asks are served nearest deadline first, whatever their order
// of arrival, each one after the other on the budget's upload.
func TestFetchBudgetNearestDeadlineFirst(t *testing.T) {
	b := newTestBudget()
	now := budgetAt(0)
	var refused []string
	// The upload is busy for 10 ms with a first answer.
	refused = b.Ask(now, "busy", 1000, budgetAt(500), refused)
	out, next := b.Serve(now, nil)
	if len(out) != 1 || out[0].Item != "busy" || !out[0].Done.Equal(budgetAt(10)) || !next.IsZero() {
		t.Fatalf("first ask: %+v next %v", out, next)
	}
	refused = b.Ask(now, "far", 1000, budgetAt(300), refused)
	refused = b.Ask(now, "none", 1000, time.Time{}, refused) // by 0+150+10 ms
	refused = b.Ask(now, "near", 1000, budgetAt(40), refused)
	refused = b.Ask(now, "mid", 1000, budgetAt(100), refused)
	if len(refused) != 0 {
		t.Fatalf("refused %v with room for all", refused)
	}
	if b.Waiting() != 4 {
		t.Fatalf("%d waiting, want 4", b.Waiting())
	}
	order, done := serveAll(t, b, now)
	if want := []string{"near", "mid", "none", "far"}; !slices.Equal(order, want) {
		t.Fatalf("served %v, want %v", order, want)
	}
	for i, d := range done {
		if want := budgetAt(20 + 10*i); !d.Equal(want) {
			t.Errorf("%s done at %v, want %v (back to back after the busy one)", order[i], d, want)
		}
	}
}

// An ask that cannot leave before its deadline behind those due earlier
// is refused at once, and nothing waiting changes.
func TestFetchBudgetRefusesWhatCannotMakeIt(t *testing.T) {
	b := newTestBudget()
	now := budgetAt(0)
	var refused []string
	for _, name := range []string{"a", "b", "c"} { // 30 ms of sending, all due by 30
		refused = b.Ask(now, name, 1000, budgetAt(30), refused)
	}
	refused = b.Ask(now, "late", 1000, budgetAt(35), refused) // behind them: would end at 40
	refused = b.Ask(now, "past", 100, budgetAt(-5), refused)
	refused = b.Ask(now, "short", 1000, budgetAt(5), refused) // even first, it would end at 10
	if !slices.Equal(refused, []string{"late", "past", "short"}) {
		t.Fatalf("refused %v, want [late past short]", refused)
	}
	// An ask due later than the waiting ones fits behind them.
	refused = b.Ask(now, "after", 1000, budgetAt(45), refused[:0])
	if len(refused) != 0 {
		t.Fatalf("refused %v", refused)
	}
	order, _ := serveAll(t, b, now)
	if want := []string{"a", "b", "c", "after"}; !slices.Equal(order, want) {
		t.Fatalf("served %v, want %v", order, want)
	}
}

// A nearer deadline pushes asks due later past theirs: those are refused
// at once, not kept to miss their deadline.
func TestFetchBudgetNearerDeadlineWins(t *testing.T) {
	b := newTestBudget()
	now := budgetAt(0)
	refused := b.Ask(now, "x", 1000, budgetAt(25), nil)
	refused = b.Ask(now, "y", 1000, budgetAt(35), refused)
	refused = b.Ask(now, "z", 1000, budgetAt(300), refused)
	refused = b.Ask(now, "urgent", 1000, budgetAt(10), refused)
	// urgent 0-10, x 10-20, y would end at 30: fits; z fits.
	if len(refused) != 0 {
		t.Fatalf("refused %v", refused)
	}
	refused = b.Ask(now, "urgent2", 1000, budgetAt(20), refused)
	// urgent 0-10, urgent2 10-20, x would end at 30 > 25: refused, y 20-30.
	if !slices.Equal(refused, []string{"x"}) {
		t.Fatalf("refused %v, want [x]", refused)
	}
	order, _ := serveAll(t, b, now)
	if want := []string{"urgent", "urgent2", "y", "z"}; !slices.Equal(order, want) {
		t.Fatalf("served %v, want %v", order, want)
	}
}

// Asks without a deadline keep the older rule: first come, first
// served, and refused when they would wait over Backlog.
func TestFetchBudgetWithoutDeadline(t *testing.T) {
	b := newTestBudget()
	now := budgetAt(0)
	var refused []string
	var want []string
	for i := range 20 { // 10 ms each: 16 start within 150 ms
		name := string(rune('a' + i))
		refused = b.Ask(now, name, 1000, time.Time{}, refused)
		if i < 16 {
			want = append(want, name)
		}
	}
	if !slices.Equal(refused, []string{"q", "r", "s", "t"}) {
		t.Fatalf("refused %v, want the four that would start after 150 ms", refused)
	}
	order, _ := serveAll(t, b, now)
	if !slices.Equal(order, want) {
		t.Fatalf("served %v, want %v", order, want)
	}
}

// A Serve that comes late (a timer that fired late) drops the asks that
// can no longer make their deadline instead of sending them too late.
func TestFetchBudgetLateServeDrops(t *testing.T) {
	b := newTestBudget()
	refused := b.Ask(budgetAt(0), "a", 1000, budgetAt(100), nil)
	refused = b.Ask(budgetAt(0), "b", 1000, budgetAt(500), refused)
	if len(refused) != 0 {
		t.Fatalf("refused %v", refused)
	}
	out, next := b.Serve(budgetAt(95), nil)
	if len(out) != 2 || !out[0].Dropped || out[0].Item != "a" || out[1].Item != "b" || !out[1].Done.Equal(budgetAt(105)) {
		t.Fatalf("late serve: %+v", out)
	}
	if !next.IsZero() || b.Waiting() != 0 {
		t.Fatalf("next %v, %d waiting", next, b.Waiting())
	}
}

// An unlimited budget serves every ask at once; Remove drops the asks
// of an asker that left.
func TestFetchBudgetUnlimitedAndRemove(t *testing.T) {
	var u FetchBudget[string]
	refused := u.Ask(budgetAt(0), "a", 1<<20, budgetAt(-1), nil)
	out, next := u.Serve(budgetAt(0), nil)
	if len(refused) != 0 || len(out) != 1 || out[0].Item != "a" || !next.IsZero() {
		t.Fatalf("unlimited: refused %v served %+v next %v", refused, out, next)
	}
	b := newTestBudget()
	b.Serve(budgetAt(0), nil)
	refused = b.Ask(budgetAt(0), "gone1", 1000, budgetAt(100), nil)
	refused = b.Ask(budgetAt(0), "stay", 1000, budgetAt(100), refused)
	refused = b.Ask(budgetAt(0), "gone2", 1000, budgetAt(100), refused)
	out, _ = b.Serve(budgetAt(0), nil) // gone1 leaves now
	if len(refused) != 0 || len(out) != 1 || out[0].Item != "gone1" {
		t.Fatalf("served %+v refused %v", out, refused)
	}
	if got := b.Remove(func(s string) bool { return s[:4] == "gone" }, nil); !slices.Equal(got, []string{"gone2"}) {
		t.Fatalf("removed %v, want [gone2] (gone1 has left)", got)
	}
	order, _ := serveAll(t, b, budgetAt(0))
	if !slices.Equal(order, []string{"stay"}) {
		t.Fatalf("served %v after Remove", order)
	}
}
