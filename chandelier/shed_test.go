package chandelier

import "testing"

func TestShed(t *testing.T) {
	for _, c := range []struct {
		feeds    []int
		capacity int
		want     int
	}{
		{nil, 4, 0},
		{[]int{1, 1, 1}, 4, 0},
		{[]int{1, 1, 1, 1}, 4, 0},
		{[]int{1, 1, 1, 1, 1, 1}, 4, 2},
		{[]int{2, 1, 3}, 4, 1},    // 6 feeds: the last child's 3 go
		{[]int{3, 1, 1}, 3, 2},    // both later children go
		{[]int{1, 1}, 0, 2},       // no capacity: all go
		{[]int{1, 1}, -1, 2},      // a bad capacity counts as none
		{[]int{4}, 2, 1},          // one child over the whole capacity
		{[]int{1, 2, 1, 1}, 3, 2}, // 5 feeds: the last two go
	} {
		if got := Shed(c.feeds, c.capacity); got != c.want {
			t.Errorf("Shed(%v, %d) = %d, want %d", c.feeds, c.capacity, got, c.want)
		}
	}
}
