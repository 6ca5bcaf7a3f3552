package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// The upload probe: a peer measures its upload capacity (it is not
// configured) by streaming filler bytes to the tracker for a short while;
// the tracker times their arrival, from the first byte to the end of the
// body, and answers the rate it saw. The peer reports it as UploadBPS in
// join and heartbeats (refined later by the rate it forwards at while its
// children wait).
const (
	// ProbePath is the probe's endpoint (POST, any content type).
	ProbePath = "/v1/probe/upload"
	// MaxProbeBytes bounds a probe body; a longer one is refused with
	// 413 before or while it is read.
	MaxProbeBytes = 32 << 20
	// MinProbeBytes is the least a probe must send to be timed.
	MinProbeBytes = 16 << 10
	// ProbeTimeout bounds a probe's body from the request on: a slower
	// body is cut off with 408.
	ProbeTimeout = 10 * time.Second
	// maxProbes is how many probes the tracker times at once; more get
	// 503 probe_busy and retry.
	maxProbes = 4
	// minProbeTime keeps a rate finite when the whole body arrived in
	// one read.
	minProbeTime = 100 * time.Microsecond
)

// Error codes of the probe endpoint.
const (
	CodeProbeTimeout = "probe_timeout" // the body did not arrive within ProbeTimeout
	CodeProbeBusy    = "probe_busy"    // too many probes at once; retry shortly
)

// ErrProbeBusy matches a [*APIError] with code CodeProbeBusy.
var ErrProbeBusy = errors.New("tracker: too many upload probes at once; retry shortly")

// probeSlots bounds the probes timed at once in this process.
var probeSlots = make(chan struct{}, maxProbes)

// probeTimeout is ProbeTimeout; tests shorten it.
var probeTimeout = ProbeTimeout

// ProbeResult is the tracker's answer to an upload probe.
type ProbeResult struct {
	Bytes      int64   `json:"bytes"`       // body bytes received
	DurationMS float64 `json:"duration_ms"` // first byte to end of body
	UploadBPS  int64   `json:"upload_bps"`  // Bytes×8 / duration, at most MaxUploadBPS
}

// routeProbe serves ProbePath, whose body is not bound by MaxBodyBytes,
// and reports whether r was for it.
func (t *Tracker) routeProbe(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != ProbePath {
		return false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: CodeMethodNotAllowed,
			Message: fmt.Sprintf("method %s is not allowed here; allowed: POST", truncate(r.Method))})
		return true
	}
	t.serveProbe(w, r)
	return true
}

// serveProbe times a probe body and answers its rate.
func (t *Tracker) serveProbe(w http.ResponseWriter, r *http.Request) {
	select {
	case probeSlots <- struct{}{}:
		defer func() { <-probeSlots }()
	default:
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: CodeProbeBusy, Message: ErrProbeBusy.Error()})
		return
	}
	tooLarge := ErrorBody{Error: CodeBodyTooLarge, Message: fmt.Sprintf("a probe body may have at most %d bytes", MaxProbeBytes)}
	if r.ContentLength > MaxProbeBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(probeTimeout)); err != nil {
		t.log.Debug("probe: no read deadline", "err", err)
	}
	defer rc.SetReadDeadline(time.Time{})
	body := http.MaxBytesReader(w, r.Body, MaxProbeBytes)
	buf := make([]byte, 64<<10)
	var n int64
	var first time.Time
	for {
		m, err := body.Read(buf)
		if m > 0 && first.IsZero() {
			first = time.Now()
		}
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				writeJSON(w, http.StatusRequestEntityTooLarge, tooLarge)
			case errors.Is(err, os.ErrDeadlineExceeded):
				writeJSON(w, http.StatusRequestTimeout, ErrorBody{Error: CodeProbeTimeout,
					Message: fmt.Sprintf("the probe body did not end within %v; send less", probeTimeout)})
			default:
				writeJSON(w, http.StatusBadRequest, ErrorBody{Error: CodeBadRequest, Message: "reading the probe body: " + truncate(err.Error())})
			}
			return
		}
	}
	if n < MinProbeBytes {
		writeJSON(w, http.StatusBadRequest, ErrorBody{Error: CodeBadRequest,
			Message: fmt.Sprintf("a probe must send at least %d bytes, got %d", MinProbeBytes, n)})
		return
	}
	writeJSON(w, http.StatusOK, probeResult(n, time.Since(first)))
}

// probeResult is the rate of n bytes received over d.
func probeResult(n int64, d time.Duration) ProbeResult {
	d = max(d, minProbeTime)
	bps := float64(n) * 8 / d.Seconds()
	return ProbeResult{Bytes: n, DurationMS: float64(d) / float64(time.Millisecond), UploadBPS: int64(min(bps, MaxUploadBPS))}
}

// ProbeUpload measures this host's upload rate to the tracker: it streams
// filler for about d (at most limit bytes, at most MaxProbeBytes) and
// returns the rate the tracker timed. An error matching ErrProbeBusy means
// retry shortly.
func (c *Client) ProbeUpload(ctx context.Context, d time.Duration, limit int64) (ProbeResult, error) {
	if c.BaseURL == "" {
		return ProbeResult{}, errors.New("tracker: client has no BaseURL (e.g. http://127.0.0.1:7000)")
	}
	if limit <= 0 || limit > MaxProbeBytes {
		limit = MaxProbeBytes
	}
	limit = max(limit, MinProbeBytes)
	body := &fillReader{end: time.Now().Add(d), left: limit, min: MinProbeBytes}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+ProbePath, body)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("tracker: probe: %w", err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("tracker: probe: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return ProbeResult{}, fmt.Errorf("tracker: probe: reading response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		apiErr := &APIError{Status: resp.StatusCode, Code: fmt.Sprintf("http_%d", resp.StatusCode), Message: truncate(strings.TrimSpace(string(data)))}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			apiErr.Code, apiErr.Message = eb.Error, eb.Message
		}
		if apiErr.Code == CodeProbeBusy {
			return ProbeResult{}, fmt.Errorf("%w (%w)", ErrProbeBusy, apiErr)
		}
		return ProbeResult{}, apiErr
	}
	var res ProbeResult
	if err := json.Unmarshal(data, &res); err != nil {
		return ProbeResult{}, fmt.Errorf("tracker: probe: malformed response: %w", err)
	}
	return res, nil
}

// fillReader yields filler bytes until its time is up (but at least min
// bytes) or left runs out.
type fillReader struct {
	end       time.Time
	left, min int64
	sent      int64
}

func (f *fillReader) Read(p []byte) (int, error) {
	if f.left <= 0 || (f.sent >= f.min && !time.Now().Before(f.end)) {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.left)
	clear(p[:n])
	f.left -= n
	f.sent += n
	return int(n), nil
}
