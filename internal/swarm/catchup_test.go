package swarm

import (
	"testing"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm/swarmtest"
	"github.com/swarmtv/swarmtv/internal/wire"
)

// A viewer whose parent pushes three of four stripes at once and the
// fourth late or not at all fetches the rest from the origin at the
// margin, every slice. Its playout must stay near PlayoutDelay behind the
// parent's pushes: a fetch is asked at a time the playout clock sets, so
// judging the clock by the fetches' answers made it slower with every
// slice (2,000 simulated peers with scarce upload: lag p95 ~9 s, slices
// lost as playout fell a window behind). A parent's late copies do set
// the delay: once playout is far enough behind them, nothing is fetched.
func TestCatchUpIgnoresAsked(t *testing.T) {
	st := swarmtest.NewStream(testChannel, 4, epoch)
	const (
		transit = 50 * time.Millisecond
		answer  = 100 * time.Millisecond // the origin's fetch round trip
		slices  = 600
		step    = 5 * time.Millisecond
	)
	for _, tt := range []struct {
		name string
		late time.Duration // stripe 3's push after capture (0: never pushed)
	}{{"never pushed", 0}, {"pushed late", 900 * time.Millisecond}} {
		t.Run(tt.name, func(t *testing.T) {
			n := directNode(t, st, func(c *Config) {
				c.PlayoutDelay, c.StartMargin = ViewerPlayoutDelay, ViewerStartMargin
			})
			type answerAt struct {
				at time.Time
				id wire.ID
			}
			var answers []answerAt
			var played []Slice
			fetchedAfter := 0 // fetches asked in the last 10 s
			lastTen := st.Capture(slices - 100)
			drain := func(now time.Time) {
				for n.HasReady() {
					rd := n.Ready()
					for _, id := range rd.Fetches {
						answers = append(answers, answerAt{now.Add(answer), id})
						if !now.Before(lastTen) {
							fetchedAfter++
						}
					}
					played = append(played, rd.Play...)
				}
			}
			end := st.Capture(slices)
			for now := st.Capture(0); now.Before(end); now = now.Add(step) {
				if dl := n.NextDeadline(); !dl.IsZero() && !dl.After(now) {
					n.Tick(now)
				}
				// Pushes from the parent arriving in this step.
				for seq := uint64(0); seq < slices; seq++ {
					c := st.Capture(seq)
					if c.Add(transit).After(now) {
						break
					}
					if at := c.Add(transit); now.Sub(at) < step {
						feed(t, n, st, now, "P", seq, 0, 1, 2)
					}
					if at := c.Add(tt.late); tt.late > 0 && !at.After(now) && now.Sub(at) < step {
						feed(t, n, st, now, "P", seq, 3)
					}
				}
				// The origin's answers.
				keep := answers[:0]
				for _, a := range answers {
					if a.at.After(now) {
						keep = append(keep, a)
						continue
					}
					_, raws := st.Slice(a.id.Seq)
					if a.id.Seq == 0 || int(a.id.Stripe) >= len(raws) {
						continue
					}
					if err := n.HandleChunk(now, "origin", raws[a.id.Stripe]); err != nil {
						t.Fatal(err)
					}
				}
				answers = keep
				drain(now)
			}
			checkPlayed(t, st, played)
			if len(played) < slices/2 {
				t.Fatalf("played %d slices of %d", len(played), slices)
			}
			s := n.Stats()
			if s.LostSlices != 0 || s.Resyncs != 0 {
				t.Fatalf("lost %d slices, %d resyncs", s.LostSlices, s.Resyncs)
			}
			last := played[len(played)-1]
			lag := last.PlayAt.Sub(last.Capture)
			want := ViewerPlayoutDelay + max(transit, tt.late)
			if lag < want-50*time.Millisecond || lag > want+150*time.Millisecond {
				t.Fatalf("slice %d played %v behind capture, want about %v (the parent's pushes plus the playout delay)", last.Seq, lag, want)
			}
			if tt.late > 0 && fetchedAfter > 0 {
				t.Fatalf("%d fetches in the last 10 s: playout should have made room for the parent's late pushes", fetchedAfter)
			}
			if tt.late == 0 && s.Fetches < slices/2 {
				t.Fatalf("%d fetches: the test means stripe 3 to come by fetches", s.Fetches)
			}
		})
	}
}
