package sim

import (
	"testing"
	"time"
)

// A download link serves transfers in the order they reach it: one that
// reaches it idle has arrived then; one that reaches it busy arrives its
// own transfer time after the transfers before it.
func TestDownloadInArrivalOrder(t *testing.T) {
	const ms = int64(1e6)
	var p peer
	if a := p.download(50*ms, 10*ms); a != 50*ms {
		t.Fatalf("a transfer reaching an idle link at 50 ms arrives at %d ms", a/ms)
	}
	// The link is busy 40–50 ms: one reaching it at 55 ms needs 10 ms
	// after 50.
	if a := p.download(55*ms, 10*ms); a != 60*ms {
		t.Fatalf("an overlapping arrival at %d ms, want 60", a/ms)
	}
	for i, want := range []int64{70, 80, 90} {
		if a := p.download(60*ms, 10*ms); a != want*ms {
			t.Fatalf("back-to-back transfer %d arrives at %d ms, want %d", i, a/ms, want)
		}
	}
	if a := p.download(500*ms, 10*ms); a != 500*ms {
		t.Fatalf("after the link went idle: arrival %d ms, want 500", a/ms)
	}
}

// A chunk sent early but delayed on the way (a congested parent's queue,
// a long path) does not hold up a receiver's download link for chunks
// that reach it before: the link is booked when a transfer reaches it,
// not when it is sent.
func TestDownloadBookedOnArrival(t *testing.T) {
	c := small(2, time.Second, 1)
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	b := s.peers[originIdx] // any live peer will do
	b.downNs = 1e6          // 1 ms a byte: a 10-byte chunk takes 10 ms
	raw := make([]byte, 10)
	late := event{at: 1000e6, kind: evChunk, node: originIdx, raw: raw}
	early := event{at: 50e6, kind: evChunk, node: originIdx, raw: raw}
	s.push(late) // sent first
	s.push(early)
	var got []event
	for s.q.len() > 0 {
		e := s.q.pop()
		if s.book(&e) {
			continue
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].at != 50e6 || got[1].at != 1000e6 {
		t.Fatalf("deliveries at %v, want the early chunk at 50 ms and the late one at 1000 ms", got)
	}
	// Two reaching the link at once: the second waits for the first.
	s.push(event{at: 2000e6, kind: evChunk, node: originIdx, raw: raw})
	s.push(event{at: 2000e6, kind: evChunk, node: originIdx, raw: raw})
	got = got[:0]
	for s.q.len() > 0 {
		e := s.q.pop()
		if s.book(&e) {
			continue
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].at != 2000e6 || got[1].at != 2010e6 || !got[1].booked {
		t.Fatalf("deliveries %+v, want at 2000 and, booked, at 2010 ms", got)
	}
}
