package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/swarmtv/swarmtv/tracker"
)

// The upload probe at start: how long it streams, its byte bound, and
// how long the peer keeps retrying while the tracker is busy with others.
const (
	probeDuration = 300 * time.Millisecond
	probeBytes    = 8 << 20
	probeBudget   = 3 * time.Second
	probeRetry    = 150 * time.Millisecond
)

// probeUpload measures the peer's upload rate with a timed upload to the
// tracker. A failure is logged and leaves the rate unmeasured (the
// forwarding rate may measure it later).
func (p *Peer) probeUpload(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, probeBudget)
	defer cancel()
	for {
		res, err := p.tracker.ProbeUpload(ctx, probeDuration, probeBytes)
		if err == nil {
			p.mu.Lock()
			p.probed = res.UploadBPS
			p.mu.Unlock()
			p.log.Info("upload measured", "bps", res.UploadBPS, "bytes", res.Bytes, "ms", res.DurationMS)
			return
		}
		if !errors.Is(err, tracker.ErrProbeBusy) {
			p.log.Warn("measuring upload: the tracker's probe failed; reporting it unmeasured", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			p.log.Warn("measuring upload: the tracker stayed busy; reporting it unmeasured")
			return
		case <-time.After(probeRetry):
		}
	}
}

// UploadBPS is the upload capacity the peer reports, in bit/s: the larger
// of the probe's rate and the peak forwarding rate while children were
// backlogged, capped by PeerConfig.MaxUploadBPS; 0 while unmeasured.
func (p *Peer) UploadBPS() int64 {
	p.mu.Lock()
	bps, d := p.probed, p.driver
	p.mu.Unlock()
	if d != nil {
		bps = max(bps, d.PeakUploadBPS())
	}
	if c := p.cfg.MaxUploadBPS; c > 0 && bps > c {
		bps = c
	}
	return bps
}
