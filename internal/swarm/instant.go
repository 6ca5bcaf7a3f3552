package swarm

import "time"

// instant is a point in time inside the core: Unix nanoseconds, the
// unit of a chunk's capture time, with zero meaning none (as the zero
// time.Time did). The core's inputs take a time.Time and convert it once
// (at); its state and arithmetic are plain integers, which cost a
// fraction of time.Time's (the simulator makes hundreds of millions of
// such calls). Durations stay time.Duration. Instants more than ~292
// years from the Unix epoch are out of range (the core's times are wall
// clock times of today, or the simulator's fixed epoch plus virtual
// time).
type instant int64

// at converts an input's time (zero stays zero).
func at(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	return instant(t.UnixNano())
}

// Time converts back to a time.Time (zero stays zero).
func (t instant) Time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(t))
}

// IsZero reports whether t is none.
func (t instant) IsZero() bool { return t == 0 }

// Add returns t+d.
func (t instant) Add(d time.Duration) instant { return t + instant(d) }

// Sub returns t-u.
func (t instant) Sub(u instant) time.Duration { return time.Duration(t - u) }

// Before reports whether t is before u.
func (t instant) Before(u instant) bool { return t < u }

// After reports whether t is after u.
func (t instant) After(u instant) bool { return t > u }

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t instant) Compare(u instant) int {
	switch {
	case t < u:
		return -1
	case t > u:
		return 1
	}
	return 0
}
