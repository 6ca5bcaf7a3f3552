package transport

import (
	"sync"
	"time"
)

// Upload meter defaults.
const (
	meterWindow    = 500 * time.Millisecond
	meterMinWrites = 8 // writes a window needs to count
)

// uploadMeter estimates a node's upload capacity from what it forwards:
// the peak rate over a window in which children were mostly backlogged
// (a child's queue still held chunks after a write), so the link and not
// the stream set the pace. A window that ends after idle time counts
// that time too, so the estimate errs low. Safe for concurrent use.
type uploadMeter struct {
	mu         sync.Mutex
	start      time.Time // the current window's start; zero before a write
	bytes      int64     // written in the window
	writes     int       // writes in the window
	backlogged int       // of which left a backlog behind
	peak       int64     // bit/s; 0 until a backlogged window closed
}

// add records a write of n bytes to a child at now; backlogged says the
// child's queue was not empty after it.
func (m *uploadMeter) add(now time.Time, n int, backlogged bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.start.IsZero() {
		m.start = now
	}
	if el := now.Sub(m.start); el >= meterWindow {
		if m.writes >= meterMinWrites && 2*m.backlogged >= m.writes {
			m.peak = max(m.peak, int64(float64(m.bytes)*8/el.Seconds()))
		}
		m.start, m.bytes, m.writes, m.backlogged = now, 0, 0, 0
	}
	m.bytes += int64(n)
	m.writes++
	if backlogged {
		m.backlogged++
	}
}

// peakBPS is the highest backlogged rate seen, in bit/s (0: none yet).
func (m *uploadMeter) peakBPS() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// PeakUploadBPS is the highest rate, in bit/s, at which the driver
// forwarded chunks while its children were backlogged: a lower bound of
// its upload capacity, 0 until the uplink was the bottleneck for a
// while.
func (d *Driver) PeakUploadBPS() int64 { return d.upload.peakBPS() }
