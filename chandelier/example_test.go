package chandelier_test

import (
	"fmt"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
)

// The tracker keeps one Optimizer per channel and runs a round about once
// a second with what changed; it sends each peer the assignments of its
// Plan that name it.
func Example() {
	opt, err := chandelier.New(chandelier.Config{
		Stripes:     4,
		StreamRate:  2_000_000, // bit/s
		OriginFeeds: 12,        // three feeds per stripe
	})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plan := opt.Round(now, chandelier.Changes{Join: []chandelier.Peer{
		{ID: "a", Upload: 4_000_000, ISP: "as1", NAT: chandelier.NATOpen, Joined: now},
		{ID: "b", Upload: 1_000_000, ISP: "as1", NAT: chandelier.NATSymmetric, Joined: now},
		{ID: "c", Upload: 0, ISP: "as2", NAT: chandelier.NATPortRestricted, Joined: now},
	}})
	fmt.Println("peers", plan.Peers, "placed", plan.Placed, "deficit", plan.Deficit)
	stripe, _ := opt.Interior("a")
	fmt.Println("a forwards stripe", stripe)

	// a leaves: only the assignments that change come back.
	plan = opt.Round(now.Add(time.Second), chandelier.Changes{Leave: []string{"a"}})
	fmt.Println("left", plan.Left, "changed", len(plan.Changed) > 0, "deficit", plan.Deficit)

	// A peer whose parent fails switches to its first live backup.
	next, ok := chandelier.Repair([]string{"x", "y"}, func(id string) chandelier.Status {
		return chandelier.Status{Failed: id == "x"}
	}, 500*time.Millisecond)
	fmt.Println("switch to", next, ok)
	// Output:
	// peers 3 placed 12 deficit 0
	// a forwards stripe 0
	// left [a] changed true deficit 0
	// switch to y true
}
