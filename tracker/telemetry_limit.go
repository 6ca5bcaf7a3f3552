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

// ReportLimiter rate-limits telemetry: a peer's heartbeats (which carry
// its stats) closer together than a quarter of the heartbeat interval
// get 429 too_many_requests and change nothing. Other requests pass. Wrap
// the tracker's API handler with [ReportLimiter.Wrap].
type ReportLimiter struct {
	gap time.Duration
	now func() time.Time

	mu    sync.Mutex
	last  map[string]time.Time // by channel and peer ID; guarded by mu
	swept time.Time            // guarded by mu
}

// NewReportLimiter returns a limiter for t's heartbeat interval.
func NewReportLimiter(t *Tracker) *ReportLimiter {
	return &ReportLimiter{gap: t.cfg.HeartbeatInterval / 4, now: t.cfg.Now, last: map[string]time.Time{}}
}

// allow records a report of key at now and reports whether it may pass.
func (l *ReportLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, at := range l.last {
			if now.Sub(at) > time.Minute {
				delete(l.last, k)
			}
		}
		l.swept = now
	}
	if at, ok := l.last[key]; ok && now.Sub(at) < l.gap {
		return false
	}
	l.last[key] = now
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
				Message: fmt.Sprintf("heartbeats of %s come faster than one per %v", peek.ID, l.gap)})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// CodeTooManyReports is the error code of a rate-limited heartbeat.
const CodeTooManyReports = "too_many_requests"
