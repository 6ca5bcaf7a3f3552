package proxy

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmtv/swarmtv/tracker"
	"github.com/swarmtv/swarmtv/web"
)

// View is the peer's status as its status page shows it: GET
// /api/v1/peer on the status address. Byte counts are totals since the
// peer joined; durations are milliseconds.
type View struct {
	ID             string           `json:"id"`
	Channel        string           `json:"channel"`
	RTSPURL        string           `json:"rtsp_url"`
	Parent         tracker.NodeInfo `json:"parent"` // stripe 0's; zero while waiting for a free slot
	ParentIsOrigin bool             `json:"parent_is_origin"`
	// Stripes: per stripe, the parent in use and the tracker's ranked
	// backups (never null).
	Stripes []StripeView `json:"stripes"`
	// UploadBPS is the measured upload capacity reported to the tracker
	// (0: unmeasured); UploadCapBPS the user's cap (0: none).
	UploadBPS    int64    `json:"upload_bps"`
	UploadCapBPS int64    `json:"upload_cap_bps"`
	Children     []string `json:"children"` // IDs, never null
	// Partners are the peer's neighbours in the channel's overlay ring
	// (predecessor, then successors; node IDs, never null): the members
	// it gossips with and turns to as parents of last resort while the
	// tracker is away. PartnersNote says what they are used for.
	Partners     []string `json:"partners"`
	PartnersNote string   `json:"partners_note"`
	// NAT: the peer's NAT class, mapped address and connection counts.
	NAT            string `json:"nat"`
	PlayoutDelayMS int64  `json:"playout_delay_ms"` // the buffer kept behind the first slice's arrival
	LagMS          int64  `json:"lag_ms"`           // capture to playout, latest slice
	StartupMS      int64  `json:"startup_ms"`       // join to first slice played; 0 before
	WatchedMS      int64  `json:"watched_ms"`
	PlayedSlices   uint64 `json:"played_slices"`
	LateSlices     uint64 `json:"late_slices"`
	LostSlices     uint64 `json:"lost_slices"`
	Stalls         uint64 `json:"stalls"`
	StallMS        int64  `json:"stall_ms"`
	BytesDownP2P   uint64 `json:"bytes_down_p2p"`
	BytesDownOrig  uint64 `json:"bytes_down_origin"`
	BytesUp        uint64 `json:"bytes_up"`
	PlayerBytes    uint64 `json:"player_bytes"`
	BadChunks      uint64 `json:"bad_chunks"`
	Repairs        uint64 `json:"repairs"`
	LaggingParents uint64 `json:"lagging_parents"` // parents left for falling behind
	RTSPReaders    int    `json:"rtsp_readers"`
	RTSPBytes      uint64 `json:"rtsp_bytes"`
	// Overlay: the peer's place in the channel's ring and the ring's
	// gossip estimates (see overlay.go).
	Overlay OverlayView `json:"overlay"`
}

// StripeView is one stripe's place in its tree, as the status page shows
// it.
type StripeView struct {
	Stripe         int                `json:"stripe"`
	Parent         tracker.NodeInfo   `json:"parent"` // zero: none (the origin's fallback covers it)
	ParentIsOrigin bool               `json:"parent_is_origin"`
	Backups        []tracker.NodeInfo `json:"backups"` // ranked, never null
}

// View returns the peer's status page view.
func (p *Peer) View() View {
	st := p.Status()
	p.mu.Lock()
	d, origin := p.driver, p.channel.Origin.ID
	p.mu.Unlock()
	v := View{
		ID:             string(st.ID),
		Channel:        st.Channel,
		RTSPURL:        st.URL,
		Parent:         st.Parent,
		ParentIsOrigin: st.Parent.ID != "" && st.Parent.ID == origin,
		Children:       []string{},
		Stripes:        []StripeView{},
		UploadBPS:      st.UploadBPS,
		UploadCapBPS:   p.cfg.MaxUploadBPS,
		Partners:       []string{},
		PartnersNote:   "overlay ring neighbours: membership, gossip and parents of last resort while the tracker is away; chunks a parent misses come from the origin (no buffer-map pull yet)",
		NAT:            p.natSummary(),
		PlayoutDelayMS: p.cfg.PlayoutDelay.Milliseconds(),
		LagMS:          max(st.Lag.Milliseconds(), 0),
		StartupMS:      st.Startup.Milliseconds(),
		WatchedMS:      st.Watched.Milliseconds(),
		PlayedSlices:   st.Swarm.PlayedSlices,
		LateSlices:     st.Swarm.LateSlices,
		LostSlices:     st.Swarm.LostSlices,
		Stalls:         st.Swarm.Stalls,
		StallMS:        st.Swarm.StallTime.Milliseconds(),
		BytesDownP2P:   st.Swarm.P2PBytesIn,
		BytesDownOrig:  st.Swarm.OriginBytesIn,
		BytesUp:        st.Swarm.BytesForwarded,
		PlayerBytes:    st.Swarm.PlayerBytes,
		BadChunks:      st.Swarm.BadChunks,
		Repairs:        st.Swarm.Repairs,
		LaggingParents: st.Swarm.LaggingParents,
		RTSPReaders:    st.RTSP.Readers,
		RTSPBytes:      st.RTSP.BytesServed,
		Overlay:        p.overlayView(),
	}
	for _, id := range append([]string{v.Overlay.Predecessor}, v.Overlay.Successors...) {
		if id != "" && id != v.ID && !slices.Contains(v.Partners, id) {
			v.Partners = append(v.Partners, id)
		}
	}
	for i, a := range st.Stripes {
		v.Stripes = append(v.Stripes, StripeView{Stripe: i, Parent: a.Parent,
			ParentIsOrigin: a.Parent.ID != "" && a.Parent.ID == origin, Backups: a.Backups})
	}
	if d != nil {
		for _, c := range d.Children() {
			v.Children = append(v.Children, string(c))
		}
	}
	return v
}

// StatusHandler serves the peer's local status: the status page at /,
// its JSON at GET /api/v1/peer, the raw [Status] at GET /status and
// Prometheus metrics at GET /metrics. The page uses relative URLs, so
// the handler can be mounted under a prefix (with http.StripPrefix).
func StatusHandler(p *Peer) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(p)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(web.PeerPage())
	})
	mux.HandleFunc("GET /api/v1/peer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(p.View())
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(p.Status())
	})
	mux.Handle("GET /metrics", web.MetricsHandler(reg))
	return mux
}
