package chandelier

// Shed is the peer side's rule for a parent over its capacity while the
// tracker is away. The tracker's rounds rebalance a parent that its own
// accept slack (a child it moved away leaves only after its new parent
// took it) or backup switches brought over its capacity; with the
// tracker away nothing does, and a parent feeding more than its upload
// carries queues every child's chunks behind the others': its whole
// subtree falls ever further behind live (at 300 simulated peers, one
// parent two feeds over put a tenth of the viewers 10 s behind live in a
// minute). So it lets go of children, the last taken first, until it is
// within its capacity; they repair at once (backups, the ring rule),
// placed where there is room.
//
// feeds are the stripe feeds each child takes, oldest child first (1
// each where the capacity counts children). Shed returns how many
// children, from the end, to let go.
func Shed(feeds []int, capacity int) int {
	total := 0
	for _, f := range feeds {
		total += f
	}
	n := 0
	for k := len(feeds) - 1; k >= 0 && total > max(capacity, 0); k-- {
		total -= feeds[k]
		n++
	}
	return n
}
