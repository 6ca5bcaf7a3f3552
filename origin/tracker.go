package origin

import (
	"context"
	"errors"
	"time"

	"github.com/swarmtv/swarmtv/internal/swarm"
	"github.com/swarmtv/swarmtv/tracker"
)

// The origin's heartbeat to the tracker.
const (
	// originHeartbeat is how often the origin heartbeats its channel (the
	// tracker drops the channel after tracker.ExpiryIntervals of silence).
	originHeartbeat = time.Second
	// rateWindow is the span the reported stream rate is measured over.
	// Nothing is reported before the samples span rateMinSpan: over a
	// second or two a paced source on a loaded machine looks 30 % slow
	// or fast, and a re-plan at the tracker re-places every peer (a
	// 3-peer demo under load was re-planned twice in its first 5 s).
	rateWindow  = 10 * time.Second
	rateMinSpan = rateWindow * 9 / 10
	// movedBeats is how many heartbeats in a row the tracker must name a
	// child as placed elsewhere before the origin lets go of it (a moved
	// child normally leaves by itself at once).
	movedBeats = 3
)

// rateMeter measures the stream rate from the bytes of the chunks made,
// over the last rateWindow.
type rateMeter struct {
	samples []rateSample // oldest first, spanning at most rateWindow
}

type rateSample struct {
	at    time.Time
	bytes uint64
}

// add records the byte count at now and returns the rate in bit/s over
// the samples kept (0 until they span rateMinSpan).
func (m *rateMeter) add(now time.Time, bytes uint64) int64 {
	m.samples = append(m.samples, rateSample{now, bytes})
	for len(m.samples) > 2 && now.Sub(m.samples[1].at) >= rateWindow {
		m.samples = m.samples[1:]
	}
	first := m.samples[0]
	span := now.Sub(first.at)
	if span < rateMinSpan || bytes < first.bytes {
		return 0
	}
	return int64(float64(bytes-first.bytes) * 8 / span.Seconds())
}

// trackerLoop registers the channel as soon as the source has described
// it, retrying until the tracker answers; then it heartbeats every
// originHeartbeat with the measured stream rate and the origin's
// children, lets go of the children the tracker says are gone (or placed
// elsewhere for movedBeats beats), and registers again when the tracker
// has forgotten the channel (a restart).
func (o *Origin) trackerLoop(ctx context.Context) {
	var (
		req        tracker.RegisterRequest
		have       bool
		registered bool
		meter      rateMeter
		moved      = map[string]int{} // child → beats in a row the tracker named it moved
	)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case req = <-o.register:
			have, registered = true, false
		case <-t.C:
		}
		if !have {
			continue
		}
		next := originHeartbeat
		if !registered {
			if err := o.registerOnce(ctx, req); err != nil {
				if ctx.Err() != nil {
					return
				}
				o.log.Warn("registering the channel with the tracker failed; retrying", "tracker", o.cfg.Tracker, "err", err)
			} else {
				o.log.Info("channel registered", "channel", req.Channel.Name, "tracker", o.cfg.Tracker, "origin", req.Channel.Origin.Addr, "stream_bps", req.Channel.StreamBPS)
				registered = true
			}
			t.Reset(next)
			continue
		}
		o.mu.Lock()
		sent := o.chunkBytes
		o.mu.Unlock()
		rate := meter.add(time.Now(), sent)
		if rate > 0 {
			req.Channel.StreamBPS = rate // registering again tells the same
		}
		kids := o.driver.Children()
		hb := tracker.OriginHeartbeatRequest{Origin: string(o.ID()), StreamBPS: rate, Children: make([]string, len(kids))}
		for i, k := range kids {
			hb.Children[i] = string(k)
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := o.tracker.OriginHeartbeat(rctx, req.Channel.Name, hb)
		cancel()
		switch {
		case err == nil:
			o.letGo(resp, moved)
		case ctx.Err() != nil:
			return
		case errors.Is(err, tracker.ErrUnknownChannel):
			o.log.Info("the tracker forgot the channel; registering again", "tracker", o.cfg.Tracker)
			registered = false
			next = 0
		case errors.Is(err, tracker.ErrNotOrigin):
			o.log.Warn("another origin registered this channel; heartbeats refused", "channel", req.Channel.Name, "err", err)
			next = 5 * time.Second
		default:
			o.log.Warn("origin heartbeat failed", "tracker", o.cfg.Tracker, "err", err)
		}
		t.Reset(next)
	}
}

// registerOnce registers the channel, bounded in time.
func (o *Origin) registerOnce(ctx context.Context, req tracker.RegisterRequest) error {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return o.tracker.Register(rctx, req)
}

// letGo drops the children the tracker no longer counts: at once those
// that left the channel (a killed peer's connection would hold its slot
// until the QUIC idle timeout, and the replacement the tracker placed
// would be refused meanwhile), and those placed elsewhere once the
// tracker has said so movedBeats times in a row.
func (o *Origin) letGo(resp tracker.OriginHeartbeatResponse, moved map[string]int) {
	for _, id := range resp.Gone {
		if o.driver.DropChild(swarm.NodeID(id), "the tracker no longer lists you in this channel") {
			o.log.Info("child dropped: it left the channel", "peer", id)
		}
	}
	seen := make(map[string]bool, len(resp.Moved))
	for _, id := range resp.Moved {
		seen[id] = true
		moved[id]++
		if moved[id] >= movedBeats {
			delete(moved, id)
			if o.driver.DropChild(swarm.NodeID(id), "the tracker placed you elsewhere") {
				o.log.Info("child dropped: the tracker placed it elsewhere", "peer", id)
			}
		}
	}
	for id := range moved {
		if !seen[id] {
			delete(moved, id)
		}
	}
}
