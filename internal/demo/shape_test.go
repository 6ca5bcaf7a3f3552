package demo

import "testing"

// The shape check accepts the demo's trees under any numbering and
// rejects detached peers, a peer forwarding two stripes and a leaf fed
// by another leaf.
func TestShapeOfThree(t *testing.T) {
	for _, c := range []struct {
		ps [][]int
		ok bool
	}{
		{[][]int{nil, {0, 2, 3}, {1, 0, 3}, {1, 2, 0}}, true},
		{[][]int{nil, {3, 2, 0}, {3, 0, 1}, {0, 2, 1}}, true},
		{[][]int{nil, {0, 0, 3}, {-1, -1, -1}, {-1, -1, -1}}, false},
		{[][]int{nil, {0, 0, 0}, {1, 1, 1}, {1, 1, 1}}, false},
		{[][]int{nil, {0, 2, 3}, {1, 0, 3}, {2, 2, 0}}, false},
	} {
		if got := shapeOfThree(c.ps) == ""; got != c.ok {
			t.Errorf("%v: %q", c.ps, shapeOfThree(c.ps))
		}
	}
}
