package tracker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ReportLimiter rate-limits telemetry per peer with a token bucket: a
// peer may send ReportBurst heartbeats (which carry its stats) at once and
// ReportRate per heartbeat interval on average, twice what it needs, so
// heartbeats that bunch up after a stall pass. Beyond that a heartbeat
// gets 429 too_many_requests and changes nothing. Other requests pass.
// Wrap the tracker's API handler with [ReportLimiter.Wrap].
type ReportLimiter struct {
	every time.Duration // one token per every
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket // by channel and peer ID; guarded by mu
	swept   time.Time          // guarded by mu
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Bounds of [ReportLimiter].
const (
	ReportBurst = 4
	ReportRate  = 2
)

// NewReportLimiter returns a limiter for t's heartbeat interval.
func NewReportLimiter(t *Tracker) *ReportLimiter {
	return &ReportLimiter{every: t.cfg.HeartbeatInterval / ReportRate, now: t.cfg.Now, buckets: map[string]*bucket{}}
}

// allow takes a token of key at now and reports whether there was one.
func (l *ReportLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.at) > time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: ReportBurst, at: now}
		l.buckets[key] = b
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(ReportBurst, b.tokens+float64(d)/float64(l.every))
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Wrap returns h with heartbeats rate-limited per channel and peer.
func (l *ReportLimiter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/v1/channels/") || !strings.HasSuffix(r.URL.Path, "/heartbeat") {
			h.ServeHTTP(w, r)
			return
		}
		// Peek at the peer's ID; the API handler validates the rest.
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		r.Body.Close()
		if err != nil {
			writeError(w, badRequest("reading the body: %v", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var peek struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &peek) == nil && ValidNodeID(peek.ID) && !l.allow(r.URL.Path+" "+peek.ID, l.now()) {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, ErrorBody{Error: CodeTooManyReports,
				Message: fmt.Sprintf("heartbeats of %s come faster than %d per %v", peek.ID, ReportRate, ReportRate*l.every)})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// CodeTooManyReports is the error code of a rate-limited heartbeat.
const CodeTooManyReports = "too_many_requests"
