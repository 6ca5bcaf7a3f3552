package tracker

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/swarmtv/swarmtv/chandelier"
)

// StreamRateTolerance is how far (as a share) an origin's measured
// stream rate may stray from the rate a channel's placement plans with
// before the tracker re-plans with the new one. A re-plan re-places
// every peer, so small wobbles of a live stream's rate are ignored.
const StreamRateTolerance = 0.25

// rateChanged reports whether a channel planned with stream rate old
// must re-plan for rate new: new is known (not 0) and strays more than
// StreamRateTolerance from old (0: the default rate).
func rateChanged(old, new int64) bool {
	if new <= 0 {
		return false // not measured: keep planning with old
	}
	if old <= 0 {
		old = DefaultStreamBPS
	}
	return math.Abs(float64(new-old)) > StreamRateTolerance*float64(old)
}

// MinReplanInterval is the least time between two re-plans of a channel
// for its origin's measured stream rate: a re-plan re-places every peer.
const MinReplanInterval = 30 * time.Second

// originBeat is the heartbeat state of a channel whose origin promised
// heartbeats (RegisterRequest.HeartbeatMS).
type originBeat struct {
	every     time.Duration
	last      time.Time
	replanned time.Time // the last re-plan for a measured rate; zero: none
}

// originRegisteredLocked records a (re-)registration: it counts as a
// heartbeat, and sets or clears the heartbeat the origin promised.
func (t *Tracker) originRegisteredLocked(name string, req RegisterRequest, now time.Time) {
	if req.HeartbeatMS == 0 {
		delete(t.origins, name)
		return
	}
	t.origins[name] = &originBeat{every: time.Duration(req.HeartbeatMS) * time.Millisecond, last: now}
}

// expireChannelsLocked drops the channels whose origin promised
// heartbeats and fell silent for ExpiryIntervals of them: a dead origin's
// channel leaves the list, and its peers' next requests fail with
// ErrUnknownChannel.
func (t *Tracker) expireChannelsLocked(now time.Time) {
	var dead []string
	for name, b := range t.origins {
		if now.Sub(b.last) > ExpiryIntervals*b.every {
			dead = append(dead, name)
		}
	}
	slices.Sort(dead)
	for _, name := range dead {
		ch := t.channels[name]
		delete(t.origins, name)
		delete(t.channels, name)
		t.events[eventChannelExpire]++
		viewers := 0
		if ch != nil {
			viewers = len(ch.peers)
		}
		t.log.Info("channel dropped: its origin fell silent", "channel", name, "viewers", viewers)
	}
}

// OriginHeartbeat keeps a channel alive for its origin and takes the
// stream rate it measured: when it differs from the rate the placement
// plans with by more than StreamRateTolerance, the channel re-plans with
// it (at most once per MinReplanInterval for an origin that promised
// heartbeats). The answer names the origin's children that are gone or
// moved.
func (t *Tracker) OriginHeartbeat(name string, req OriginHeartbeatRequest) (OriginHeartbeatResponse, error) {
	if err := req.validate(); err != nil {
		return OriginHeartbeatResponse{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.cfg.Now()
	t.expireChannelsLocked(now)
	ch, err := t.channelLocked(name, now)
	if err != nil {
		return OriginHeartbeatResponse{}, err
	}
	if req.Origin != ch.info.Origin.ID {
		return OriginHeartbeatResponse{}, fmt.Errorf("%w: %s for %q", ErrNotOrigin, req.Origin, truncate(name))
	}
	b := t.origins[name]
	if b != nil {
		b.last = now
	}
	recent := b != nil && !b.replanned.IsZero() && now.Sub(b.replanned) < MinReplanInterval
	if r := req.StreamBPS; r > 0 && r != ch.info.StreamBPS && !recent {
		if planned := ch.streamRate(); rateChanged(planned, r) {
			old := ch.info
			ch.info.StreamBPS = r
			if err := ch.reset(ch.originCap, &now); err != nil {
				ch.info = old
				return OriginHeartbeatResponse{}, err
			}
			t.events[eventReplan]++
			if b != nil {
				b.replanned = now
			}
			t.log.Info("channel re-planned for its measured stream rate", "channel", name, "stream_bps", r, "was", planned)
		}
	}
	resp := OriginHeartbeatResponse{Gone: []string{}, Moved: []string{}, StreamBPS: ch.streamRate()}
	for _, id := range req.Children {
		switch _, member := ch.peers[id]; {
		case !member:
			resp.Gone = append(resp.Gone, id)
		case ch.stripesFrom(chandelier.Origin, id) == 0:
			resp.Moved = append(resp.Moved, id)
		}
	}
	slices.Sort(resp.Gone)
	slices.Sort(resp.Moved)
	resp.Gone = slices.Compact(resp.Gone)
	resp.Moved = slices.Compact(resp.Moved)
	return resp, nil
}
