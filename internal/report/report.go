// Package report defines swarmtv.report/v1, the JSON report that demo, sim
// and loadtest all write with --report FILE so their results compare
// (DESIGN.md, "The shared report"). Every field is always present; a mode
// that cannot measure one writes null.
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"time"
)

// Schema is the value of the schema field.
const Schema = "swarmtv.report/v1"

// Percentiles are taken over all samples, never averaged.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Depth summarises stripe-tree depth over stripes and peers.
type Depth struct {
	Mean float64 `json:"mean"`
	Max  int     `json:"max"`
}

// NAT counts peer connections by how they were made.
type NAT struct {
	Direct  int `json:"direct"`
	Relayed int `json:"relayed"`
	Failed  int `json:"failed"`
}

// Overlay holds the structured overlay's figures; each is null where the
// run did not measure it.
type Overlay struct {
	// LookupSuccess: lookups answered with the member that owns the key
	// (the true successor at answer time) ÷ lookups started.
	LookupSuccess *float64 `json:"lookup_success"`
	// LookupHops: forwards per answered lookup.
	LookupHops *Hops `json:"lookup_hops"`
	// Consistent: at the end of the run every member's successor and
	// predecessor are its true neighbours on one ring.
	Consistent *bool `json:"consistent"`
	// MergeMs: from a partition's healing to one consistent ring.
	MergeMs *float64 `json:"merge_ms"`
	// MergeMessagesPerPeer: overlay messages sent during the merge (from
	// healing to one consistent ring, background stabilisation
	// included) ÷ members.
	MergeMessagesPerPeer *float64 `json:"merge_messages_per_peer"`
}

// Placement holds the stripe placement's figures (the simulator fills
// it; null elsewhere): where the cross-ISP bytes came from, and how much
// the tracker's rounds changed the trees.
type Placement struct {
	// CrossISPTreeBytes: pushed live along the tracker's tree edges.
	CrossISPTreeBytes int64 `json:"cross_isp_tree_bytes"`
	// CrossISPBackupBytes: pushed live along edges a peer's own repair
	// switch chose (a backup), until the tracker placed it again.
	CrossISPBackupBytes int64 `json:"cross_isp_backup_bytes"`
	// CrossISPCatchupBytes: the backlog a new edge sent (slices the
	// origin had published before the edge was made).
	CrossISPCatchupBytes int64 `json:"cross_isp_catchup_bytes"`
	// CrossISPStaleBytes: sent by a parent the child had already left.
	CrossISPStaleBytes int64 `json:"cross_isp_stale_bytes"`
	// CatchupBytes: all P2P catch-up bytes, cross-ISP or not.
	CatchupBytes int64 `json:"catchup_bytes"`
	// CrossISPEdgeShare: tree edges between peers of different ISPs ÷
	// all tree edges between peers, over the periodic samples.
	CrossISPEdgeShare *float64 `json:"cross_isp_edge_share"`
	// Rounds: placement rounds the tracker ran (join batches included).
	Rounds int64 `json:"rounds"`
	// EdgesChangedPerRound: parent changes of peers present before and
	// after a round, mean over rounds; EdgesChangedMax the largest round.
	EdgesChangedPerRound *float64 `json:"edges_changed_per_round"`
	EdgesChangedMax      int      `json:"edges_changed_max"`
	// RelayedPlacements: tree edges the tracker placed knowing that the
	// pair needs the relay (no direct path between their NATs).
	RelayedPlacements int64 `json:"relayed_placements"`
}

// Latency breaks startup_ms and lag_ms into their parts (the simulator
// fills it; null elsewhere). Each part has percentiles over all its
// samples; the Tail fields hold each part's mean over the samples at or
// above the whole figure's p95, so the parts of the p95 viewer's budget
// add up (the percentiles of the parts do not).
type Latency struct {
	// Startup, per viewer: join request → the tracker's answer
	// (tracker), answer → first chunk (connect, punch, handshake and the
	// parent's first send), first chunk → start keyframe slice complete
	// (every stripe's parent delivered it), complete → played (the
	// playout delay).
	StartupTrackerMs    *Percentiles  `json:"startup_tracker_ms"`
	StartupFirstChunkMs *Percentiles  `json:"startup_first_chunk_ms"`
	StartupKeyframeMs   *Percentiles  `json:"startup_keyframe_ms"`
	StartupPlayoutMs    *Percentiles  `json:"startup_playout_ms"`
	StartupTail         *StartupParts `json:"startup_tail"`
	// StartupMaxMs is the slowest start; LateStarts counts the viewers
	// not playing 5 s after they joined: those that started later, and
	// those that stayed 5 s or more and never started. Both tell whether
	// every viewer of a flash crowd was playing within 5 s.
	StartupMaxMs float64 `json:"startup_max_ms"`
	LateStarts   int     `json:"late_starts"`
	// Lag, per played slice: capture → slice complete at the viewer
	// (arrival: the origin's slice, the hops down the stripe trees,
	// repairs and fetches) and complete → played (the playout margin).
	ArrivalMs *Percentiles `json:"arrival_ms"`
	MarginMs  *Percentiles `json:"margin_ms"`
	// KeyframeArrivalMs is the arrival of the keyframe slices alone: a
	// keyframe slice is larger than the others, so it takes longer at
	// every hop, and a viewer that starts on the next keyframe waits for
	// it.
	KeyframeArrivalMs *Percentiles `json:"keyframe_arrival_ms"`
	LagTail           *LagParts    `json:"lag_tail"`
	// ByTime splits startup and lag by when they happened: startups by
	// the viewer's join time, lags by the slice's play time, in windows
	// of 10 s for the first minute and of a minute after it. It tells a
	// flash crowd (a swarm that is itself starting) from joins into an
	// established swarm.
	ByTime []TimeWindow `json:"by_time"`
}

// TimeWindow holds the startup and lag percentiles of one window of a
// run (Latency.ByTime); nil where the window had no sample.
type TimeWindow struct {
	FromS     float64      `json:"from_s"`
	ToS       float64      `json:"to_s"`
	Joins     int          `json:"joins"` // viewers that joined in it and played
	StartupMs *Percentiles `json:"startup_ms"`
	LagMs     *Percentiles `json:"lag_ms"` // 10 ms resolution
}

// StartupParts are the mean parts of the startups at or above p95 (ms).
type StartupParts struct {
	Tracker    float64 `json:"tracker"`
	FirstChunk float64 `json:"first_chunk"`
	Keyframe   float64 `json:"keyframe"`
	Playout    float64 `json:"playout"`
}

// LagParts are the mean parts of the lags at or above p95 (ms).
type LagParts struct {
	Arrival float64 `json:"arrival"`
	Margin  float64 `json:"margin"`
}

// Mesh holds the partner mesh's and parent liveness figures (the
// simulator fills it; null elsewhere).
type Mesh struct {
	// PullBytes: chunk bytes partners sent in answer to pulls (part of
	// p2p_bytes); CrossISPPullBytes those crossing ISP borders.
	PullBytes         int64 `json:"pull_bytes"`
	CrossISPPullBytes int64 `json:"cross_isp_pull_bytes"`
	// Pulls: chunks asked of partners; Pulled: answered with the chunk;
	// PullMisses: answered Missing or not in time.
	Pulls      uint64 `json:"pulls"`
	Pulled     uint64 `json:"pulled"`
	PullMisses uint64 `json:"pull_misses"`
	// PartnersDropped: partners given up on (silent, or bad data).
	PartnersDropped uint64 `json:"partners_dropped"`
	// MapBytes and AliveBytes: the control bytes of buffer maps and
	// Alives (part of control_overhead).
	MapBytes   int64 `json:"map_bytes"`
	AliveBytes int64 `json:"alive_bytes"`
}

// Phase holds the viewers' figures over one phase of a run, as the
// report's top-level fields of the same names hold them over the whole
// run (the simulator fills the steady phase: Report.Steady).
type Phase struct {
	// FromS: the phase runs from this time (s) to the run's end.
	FromS float64 `json:"from_s"`
	// Joins: viewers that joined in the phase and played; StartupMs,
	// StartupMaxMs and LateStarts are theirs (LateStarts as
	// Latency.LateStarts counts them).
	Joins        int          `json:"joins"`
	StartupMs    *Percentiles `json:"startup_ms"`
	StartupMaxMs float64      `json:"startup_max_ms"`
	LateStarts   int          `json:"late_starts"`
	// The slices played, the stalls and the watch time in the phase, of
	// every viewer; the lag of the slices played in it.
	Continuity    *float64     `json:"continuity"`
	Stalls        int64        `json:"stalls"`
	RebufferRatio *float64     `json:"rebuffer_ratio"`
	LagMs         *Percentiles `json:"lag_ms"`
	// Repairs completed in the phase.
	RepairMs *Percentiles `json:"repair_ms"`
	// Bytes the viewers played and the origin sent in the phase.
	PlayerBytes       int64    `json:"player_bytes"`
	OriginEgressBytes int64    `json:"origin_egress_bytes"`
	Savings           *float64 `json:"savings"`
}

// Hops summarises lookup path lengths.
type Hops struct {
	Mean float64 `json:"mean"`
	P99  float64 `json:"p99"`
}

// Report is one run's swarmtv.report/v1. Pointer fields are null where
// the mode cannot measure them.
type Report struct {
	Schema                  string       `json:"schema"`
	Kind                    string       `json:"kind"`
	Scenario                string       `json:"scenario"`
	Seed                    *int64       `json:"seed"`
	Peers                   int          `json:"peers"`
	DurationS               float64      `json:"duration_s"`
	StreamKbps              float64      `json:"stream_kbps"`
	PlayerBytes             int64        `json:"player_bytes"`
	OriginEgressBytes       int64        `json:"origin_egress_bytes"`
	P2PBytes                int64        `json:"p2p_bytes"`
	Savings                 *float64     `json:"savings"`
	Continuity              *float64     `json:"continuity"`
	Stalls                  int64        `json:"stalls"`
	RebufferRatio           *float64     `json:"rebuffer_ratio"`
	StartupMs               *Percentiles `json:"startup_ms"`
	LagMs                   *Percentiles `json:"lag_ms"`
	RepairMs                *Percentiles `json:"repair_ms"`
	TreeDepth               *Depth       `json:"tree_depth"`
	CrossISPBytes           *int64       `json:"cross_isp_bytes"`
	CrossISPLowerBoundBytes *int64       `json:"cross_isp_lower_bound_bytes"`
	NAT                     *NAT         `json:"nat"`
	ControlOverhead         *float64     `json:"control_overhead"`
	TraceHash               *string      `json:"trace_hash"`
	Overlay                 *Overlay     `json:"overlay"`
	Placement               *Placement   `json:"placement"`
	Latency                 *Latency     `json:"latency"`
	Mesh                    *Mesh        `json:"mesh"`
	// Steady holds the figures after a warm-up (the simulator's
	// --measure-from; null without one): the whole-run fields above
	// include the warm-up.
	Steady *Phase  `json:"steady"`
	WallS  float64 `json:"wall_s"`
}

// New returns a report of the given kind with the schema set.
func New(kind, scenario string) *Report {
	return &Report{Schema: Schema, Kind: kind, Scenario: scenario}
}

// Savings returns 1 - origin/player, or nil when nothing was played.
func Savings(originEgress, player int64) *float64 {
	if player <= 0 {
		return nil
	}
	s := 1 - float64(originEgress)/float64(player)
	return &s
}

// Ratio returns num/den, or nil when den is zero.
func Ratio(num, den float64) *float64 {
	if den <= 0 {
		return nil
	}
	r := num / den
	return &r
}

// Of returns percentiles over samples (nearest rank), or nil if there are
// none.
func Of(samples []float64) *Percentiles {
	if len(samples) == 0 {
		return nil
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return &Percentiles{P50: rank(0.50), P95: rank(0.95), P99: rank(0.99)}
}

// Millis converts durations to float milliseconds.
func Millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// WriteFile writes r as indented JSON to path.
func (r *Report) WriteFile(path string) error { return WriteJSON(path, r) }

// WriteJSON writes v, a report or a type that embeds one with more
// figures (loadtest's), as indented JSON to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
